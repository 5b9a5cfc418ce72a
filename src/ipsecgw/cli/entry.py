"""`ipsecgw cli [--control SOCKET] [-c COMMAND]...`"""

from __future__ import annotations

import argparse
import os
import sys

from .batch import run_batch
from .protocol import ControlClient, ControlError

DEFAULT_CONTROL = "/run/ipsecgw.sock"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="ipsecgw cli",
        description="JUNOSe-style command line of a running ipsecgw daemon.",
    )
    parser.add_argument(
        "--control",
        help=f"control socket (default: $IPSECGW_CONTROL or {DEFAULT_CONTROL})",
    )
    parser.add_argument(
        "-c",
        dest="commands",
        action="append",
        metavar="COMMAND",
        help="run COMMAND (repeatable: one session, in order) instead of the interactive shell",
    )
    args = parser.parse_args(argv)
    path = args.control or os.environ.get("IPSECGW_CONTROL") or DEFAULT_CONTROL
    try:
        with ControlClient(path) as client:
            if args.commands:
                return run_batch(client, args.commands, sys.stdout, sys.stderr)
            from .shell import run_shell

            return run_shell(client)
    except ControlError as exc:
        print(f"ipsecgw cli: {exc}", file=sys.stderr)
        return 2
