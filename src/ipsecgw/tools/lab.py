"""``ipsecgw lab``: the gateway's main job on one machine.

Two sites in network namespaces (TESTBED.md addresses): site A runs
ipsecgw, site B runs strongSwan (or a second ipsecgw with ``--peer
ipsecgw``). The lab brings the tunnel up, pings site B's inner network from
site A's through it, prints what a network engineer would look at, and
removes everything it created on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..cli.protocol import ControlClient, ControlError
from . import testbed as tb

PSK = "lab-psk-change-me"

def lab_config(hostname: str, local: str, peer: str, local_net: str, remote_net: str,
               tunnel: str) -> str:
    """The startup configuration of one lab site: PSK, AES-128/SHA-1, group 14, PFS."""
    return f"""hostname {hostname}
ipsec local-endpoint {local} transport-virtual-router default
ipsec ike-policy-rule 1
 authentication pre-share
 encryption aes128
 hash sha
 group 14
 exit
ipsec key manual pre-share {peer}
 key {PSK}
 exit
ipsec transform-set lab esp-aes128-hmac-sha
interface tunnel ipsec:{tunnel} transport-virtual-router default
 tunnel source {local}
 tunnel destination {peer}
 tunnel transform-set lab
 tunnel pfs group 14
 tunnel local-network {local_net}
 tunnel remote-network {remote_net}
 exit
"""


SITE_A_CONFIG = lab_config("siteA", tb.SITE_A_OUTER, tb.SITE_B_OUTER, tb.SITE_A_NET,
                           tb.SITE_B_NET, "siteB")
SITE_B_IPSECGW_CONFIG = lab_config("siteB", tb.SITE_B_OUTER, tb.SITE_A_OUTER, tb.SITE_B_NET,
                                   tb.SITE_A_NET, "siteA")


def strongswan_site_b() -> str:
    return tb.swanctl_conf(
        local_addr=tb.SITE_B_OUTER,
        remote_addr=tb.SITE_A_OUTER,
        local_ts=tb.SITE_B_NET,
        remote_ts=tb.SITE_A_NET,
        psk=PSK,
        proposals="aes128-sha1-modp2048",
        esp_proposals="aes128-sha1-modp2048",
    )


class IpsecgwProcess:
    """``ipsecgw daemon`` running inside a namespace, driven through its CLI.

    The one wrapper the lab, the interop tests and the benchmarks share.
    `python`/`env`: the interpreter and environment of the daemon and of
    `cli` (the benchmarks run the checkout's package from a venv).
    """

    def __init__(self, netns: tb.Netns, workdir: Path, config: str, *, log_level: str = "info",
                 save_keys: bool = False, dataplane: str | None = None,
                 python: str = sys.executable, env: dict[str, str] | None = None,
                 start_timeout: float = 15) -> None:
        self.netns = netns
        self.workdir = workdir
        self.python = python
        self.env = env
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "ipsecgw.conf"
        self.config_path.write_text(config)
        self.control = workdir / "control.sock"
        self.log_path = workdir / "ipsecgw.log"
        args = [python, "-m", "ipsecgw", "daemon", "--config", str(self.config_path),
                "--control", str(self.control), "--log-level", log_level]
        if save_keys:
            args += ["--save-keys", str(workdir / "keys")]
        if dataplane is not None:
            args += ["--dataplane", dataplane]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # `ip netns exec` execs the command: the child's pid is the daemon's.
        self.proc = netns.popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        # Started = answering on the control socket: the socket file appears
        # before the startup configuration is loaded, requests are answered
        # once it is (and its IKE sockets are open).
        deadline = time.monotonic() + start_timeout
        while not self._answers(deadline):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ipsecgw daemon did not start:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def _answers(self, deadline: float) -> bool:
        if not self.control.exists():
            return False
        try:
            with ControlClient(str(self.control),
                               timeout=max(0.1, deadline - time.monotonic())) as client:
                client.prompt()
        except ControlError:
            return False
        return True

    def cli(self, *commands: str, check: bool = True, timeout: float = 30) -> str:
        args = [self.python, "-m", "ipsecgw", "cli", "--control", str(self.control)]
        for command in commands:
            args += ["-c", command]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              env=self.env)
        if check and proc.returncode != 0:
            raise RuntimeError(f"ipsecgw cli {commands}: {proc.stderr.strip()}")
        return proc.stdout

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_tunnel_up(self, name: str, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.cli(f"show ipsec tunnel ipsec:{name}", check=False)
            if any(line.split()[1:2] == ["up"] for line in out.splitlines() if line.strip()):
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

    def __enter__(self) -> IpsecgwProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main_lab(argv: list[str],
             remote_access_lab: Callable[[int, bool], int] | None = None) -> int:
    """`ipsecgw lab`; `remote_access_lab(pings, keep)` runs `--remote-access`
    (`lab_remote`, which builds on this module)."""
    parser = argparse.ArgumentParser(
        prog="ipsecgw lab",
        description="Two sites in network namespaces, a tunnel between them, a ping through it.",
    )
    parser.add_argument("--peer", choices=["strongswan", "ipsecgw"], default="strongswan",
                        help="what runs at site B (default strongswan)")
    parser.add_argument("--pings", type=int, default=3)
    parser.add_argument("--keep", action="store_true",
                        help="keep the lab running until Ctrl-C (then clean up)")
    parser.add_argument("--remote-access", action="store_true",
                        help="instead: a tunnel profile, FreeRADIUS and a vpnc subscriber")
    args = parser.parse_args(argv)
    if not tb.is_root():
        print("ipsecgw lab: needs root (network namespaces)", file=sys.stderr)
        return 2
    if args.remote_access and remote_access_lab is not None:
        return remote_access_lab(args.pings, args.keep)
    missing = tb.missing_tools(("ip", "ping") + (("swanctl", tb.CHARON)
                                                  if args.peer == "strongswan" else ()))
    if missing:
        print(f"ipsecgw lab: missing {', '.join(missing)}; run scripts/bootstrap",
              file=sys.stderr)
        return 2

    return run_lab("lab", lambda workdir, sites, stack: _site_to_site(args, workdir, sites, stack))


def _site_to_site(args: argparse.Namespace, workdir: Path, sites: tb.TwoSites,
                  stack: contextlib.ExitStack) -> int:
    swan: tb.StrongSwan | None = None
    print(f"site A: namespace {sites.a.name}, ipsecgw, {tb.SITE_A_OUTER}, inner {tb.SITE_A_NET}")
    if args.peer == "strongswan":
        print(f"site B: namespace {sites.b.name}, strongSwan, {tb.SITE_B_OUTER}, "
              f"inner {tb.SITE_B_NET}")
        swan = tb.StrongSwan(sites.b, strongswan_site_b(), workdir=workdir / "strongswan")
        stack.callback(swan.close)
        swan.start()
    else:
        print(f"site B: namespace {sites.b.name}, ipsecgw, {tb.SITE_B_OUTER}, "
              f"inner {tb.SITE_B_NET}")
        stack.enter_context(IpsecgwProcess(sites.b, workdir / "siteB", SITE_B_IPSECGW_CONFIG))
    site_a = stack.enter_context(IpsecgwProcess(sites.a, workdir / "siteA", SITE_A_CONFIG))
    started = time.monotonic()
    if not site_a.wait_tunnel_up("siteB"):
        print("tunnel did not come up; ipsecgw log:\n" + site_a.log(), file=sys.stderr)
        if swan:
            print("strongSwan log:\n" + swan.log()[-4000:], file=sys.stderr)
        return 1
    print(f"tunnel up after {time.monotonic() - started:.2f} s\n")
    ping = sites.a.run("ping", "-c", str(args.pings), "-i", "0.2", "-W", "2",
                       "-I", tb.SITE_A_INNER, tb.SITE_B_INNER, check=False)
    print(ping)
    print("siteA# show ipsec tunnel")
    print(site_a.cli("show ipsec tunnel"))
    print("siteA# show ipsec sa")
    print(site_a.cli("show ipsec sa"))
    if swan:
        print("strongSwan: swanctl --list-sas")
        print(swan.list_sas())
    return conclude(f"{args.pings} received" in ping, args.keep,
                    f"ip netns exec {sites.a.name} ping {tb.SITE_B_INNER} -I {tb.SITE_A_INNER}\n"
                    f"  ip netns exec {sites.a.name} ipsecgw cli --control {site_a.control}",
                    "tunnel up and traffic flowing")


LabBody = Callable[[Path, tb.TwoSites, contextlib.ExitStack], int]


def run_lab(name: str, body: LabBody) -> int:
    """Run a lab in two fresh sites and a work directory: `body` puts what it
    starts on the stack, and everything is stopped (newest first), the
    namespaces removed and the directory deleted when it ends, Ctrl-C
    included (IPSECGW_LAB_KEEP_LOGS keeps the directory)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"ipsecgw-{name}-"))
    sites = tb.TwoSites(name)
    try:
        with contextlib.ExitStack() as stack:
            return body(workdir, sites, stack)
    except KeyboardInterrupt:
        print("\nlab: interrupted, cleaning up")
        return 130
    finally:
        sites.close()
        if os.environ.get("IPSECGW_LAB_KEEP_LOGS"):
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def conclude(ok: bool, keep: bool, hint: str, success: str) -> int:
    """A lab's last words and exit status; with `keep`, wait for Ctrl-C first."""
    if keep:
        print(f"lab running; try: {hint}\nCtrl-C to stop and clean up")
        while True:
            time.sleep(3600)
    print(f"lab: {success}" if ok else "lab: PING FAILED")
    return 0 if ok else 1
