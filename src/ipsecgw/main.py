"""The ``ipsecgw`` command: ``daemon``, ``cli`` and ``lab``."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys

DEFAULT_CONTROL = "/run/ipsecgw.sock"


def control_path(arg: str | None) -> str:
    return arg or os.environ.get("IPSECGW_CONTROL") or DEFAULT_CONTROL


def setup_logging(level: str, syslog: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if syslog and os.path.exists("/dev/log"):
        handler = logging.handlers.SysLogHandler(address="/dev/log")
        handler.setFormatter(logging.Formatter("ipsecgw[%(process)d]: %(name)s: %(message)s"))
        handlers.append(handler)
    handlers[0].setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level.upper(), handlers=handlers, force=True)


def _daemon(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ipsecgw daemon", description="Run the gateway.")
    parser.add_argument("--config", required=True, help="startup configuration file")
    parser.add_argument("--control", help=f"control socket (default {DEFAULT_CONTROL})")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    parser.add_argument("--syslog", action="store_true", help="also log to syslog")
    parser.add_argument("--save-keys", metavar="DIR",
                        help="write Wireshark key tables to DIR (debugging only: live keys)")
    parser.add_argument("--dataplane", default="auto",
                        choices=["auto", "xfrm", "userspace", "memory"],
                        help="ESP backend: xfrm (the kernel's), userspace (Python over TUN); "
                             "default auto: xfrm where the kernel carries ESP, else userspace")
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.syslog)
    from .cli.loader import ConfigFileError
    from .daemon.runtime import run_daemon

    try:
        return run_daemon(
            config_path=args.config,
            control_path=control_path(args.control),
            dataplane=args.dataplane,
            save_keys=args.save_keys,
        )
    except ConfigFileError as exc:
        logging.getLogger("ipsecgw").error("%s", exc)
        return 1


def _cli(argv: list[str]) -> int:
    from .cli import main_cli

    return main_cli(argv)


def _lab(argv: list[str]) -> int:
    from .tools.lab import main_lab
    from .tools.lab_remote import run_remote_access_lab

    return main_lab(argv, run_remote_access_lab)


COMMANDS = {"daemon": _daemon, "cli": _cli, "lab": _lab}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(
            "usage: ipsecgw {daemon,cli,lab} ...\n"
            "  daemon --config FILE [--control SOCKET]   run the gateway\n"
            "  cli [--control SOCKET] [-c COMMAND]...   JUNOSe-style command line\n"
            "  lab [--remote-access]                    two-site lab against strongSwan\n"
            "                                           (or a vpnc subscriber and FreeRADIUS)",
            file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout,
        )
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
