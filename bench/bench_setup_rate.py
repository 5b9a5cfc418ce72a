"""setup-rate: tunnels (Main Mode PSK + Quick Mode) per second with the gateway as responder.

The same load, ipsecgw's own load generator (`python -m ipsecgw.tools.loadgen`) in
site A, is aimed once at ipsecgw and once at charon in site B, one at a time,
each target freshly started. Every tunnel has its own identity
(``load<n>@loadgen.test``) and proposes its own /32 as local network. The
rate is tunnels established / (last IPsec SA - first message); the target's
CPU seconds over the run divided by the tunnels it set up is the cost per
tunnel.

Targets:
- strongSwan: `unique = never`, `remote { id = %any }`, a secret without ids,
  DoS limits lifted, `openssl` first for short DH exponents (TESTBED.md).
- ipsecgw: one `tunnel responder-only` interface whose destination is the
  generator's address and whose remote network covers every generator /32.
  ipsecgw has no "any peer" responder template, so every Quick Mode lands in
  that one tunnel, each with its own selectors and so its own IPsec SA; each
  generator identity keeps its own ISAKMP SA (INITIAL-CONTACT is per identity).

setup-rate-xfrm (`run_xfrm`): the same in the kernel VM, each target with its
SAs in the kernel (ipsecgw's XFRM data plane, charon's kernel-netlink alone).
"""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Any

import bench_common as bc
from bench_common import Context, Row

from ipsecgw.tools import testbed as tb

NAME = "setup-rate"
LOAD_NETWORK = "10.100.0.0/16"  # the generator's /32s come from here


def ipsecgw_responder_config(suite: str) -> str:
    _, _, transform, pfs = bc.SUITES[suite]
    encryption, hash_ = {"aes128-sha1-modp2048": ("aes128", "sha"),
                         "aes128-sha1-modp2048-pfs": ("aes128", "sha"),
                         "aes256-sha256-modp2048": ("aes256", "sha256")}[suite]
    lines = [
        "hostname bench",
        f"ipsec local-endpoint {tb.SITE_B_OUTER} transport-virtual-router default",
        "ipsec ike-policy-rule 1",
        " authentication pre-share",
        f" encryption {encryption}",
        f" hash {hash_}",
        " group 14",
        " exit",
        f"ipsec key manual pre-share {tb.SITE_A_OUTER}",
        f" key {bc.PSK}",
        " exit",
        f"ipsec transform-set ts {transform}",
        "interface tunnel ipsec:load transport-virtual-router default",
        f" tunnel source {tb.SITE_B_OUTER}",
        f" tunnel destination {tb.SITE_A_OUTER}",
        " tunnel transform-set ts",
        f" tunnel local-network {tb.SITE_B_NET}",
        f" tunnel remote-network {LOAD_NETWORK}",
        " tunnel responder-only",
        *([f" tunnel pfs group {pfs}"] if pfs else []),
        " exit",
    ]
    return "\n".join(lines) + "\n"


def loadgen_command(tunnels: int, concurrency: int, *extra: str) -> list[str]:
    """The load generator aimed at site B, reporting in JSON and holding its
    tunnels until stopped (so that the target's CPU is measured up to the report)."""
    return [
        "env", f"PYTHONPATH={bc.python_env()['PYTHONPATH']}", bc.python(), "-m",
        "ipsecgw.tools.loadgen", "--target", tb.SITE_B_OUTER, "--tunnels", str(tunnels),
        "--concurrency", str(concurrency), "--json", "--hold", "inf", *extra,
    ]


def loadgen_args(suite: str, tunnels: int, concurrency: int) -> list[str]:
    proposal, _, transform, pfs = bc.SUITES[suite]
    return loadgen_command(
        tunnels, concurrency, "--proposal", proposal, "--esp", transform,
        *(["--pfs", str(pfs)] if pfs else []), "--psk", bc.PSK,
        "--remote-network", tb.SITE_B_NET)


class Loadgen:
    """The load generator in site A, read line by line as it reports."""

    def __init__(self, ctx: Context, sites: tb.TwoSites, args: list[str]) -> None:
        self.log_path = ctx.subdir("loadgen") / "stderr.log"
        with open(self.log_path, "w") as log:
            self.proc = sites.a.popen(args, stdout=subprocess.PIPE, stderr=log, text=True)

    def wait_for(self, kind: str, timeout: float) -> dict[str, Any]:
        """The next JSON object of this kind ("report", "status", "final")."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            for obj in bc.json_lines(line):
                if kind in obj:
                    return dict(obj[kind])
        self.stop()
        raise RuntimeError(f"loadgen gave no {kind}: {self.stderr()[-2000:]}")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> None:
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure(ctx: Context, sites: tb.TwoSites, target_pid: int, args: list[str],
            tunnels: int) -> dict[str, Any]:
    """Run the load generator (`loadgen_command`) for `tunnels` and measure the target."""
    rss_before = bc.rss_kib(target_pid)
    meter = bc.CpuMeter(target_pid).start()
    load = Loadgen(ctx, sites, args)
    try:
        # the kernel VM's emulated CPU is some ten times slower
        report = load.wait_for("report", timeout=tunnels / 5 * (10 if bc.IN_KERNEL_VM else 1)
                               + 120)
        meter.stop()
        rss_after = bc.rss_kib(target_pid)
    finally:
        load.stop()
    established = report["established"]
    cpu = meter.cpu[target_pid]
    return {
        "tunnels_per_s": report["tunnels_per_s"],
        "cpu_ms_per_tunnel": round(1000 * cpu / established, 3) if established else None,
        "target_cpu_s": round(cpu, 2),
        "target_rss_kib": [rss_before, rss_after],
        "loadgen": report,
    }


def strongswan_target(ctx: Context, suite: str, tunnels: int, concurrency: int,
                      kernel: bool = False) -> dict[str, Any]:
    with bc.two_sites() as sites:
        swan = tb.StrongSwan(sites.b, bc.load_responder_conf(suite),
                             charon_extra=bc.LOAD_CHARON_EXTRA, workdir=ctx.subdir("swan"))
        with swan:
            bc.quiet_strongswan(swan)
            if kernel:
                swan.use_kernel_esp()
            swan.start()
            return measure(ctx, sites, bc.charon_pid(swan),
                           loadgen_args(suite, tunnels, concurrency), tunnels)


def ipsecgw_target(ctx: Context, suite: str, tunnels: int, concurrency: int,
                   kernel: bool = False) -> dict[str, Any]:
    with bc.two_sites() as sites, bc.Ipsecgw(
            sites.b, ctx.subdir("ipsecgw"), ipsecgw_responder_config(suite),
            dataplane="xfrm" if kernel else "userspace") as gw:
        result = measure(ctx, sites, gw.pid, loadgen_args(suite, tunnels, concurrency),
                         tunnels)
        result["statistics"] = gw.cli("show ipsec statistics", check=False)[-2000:]
        return result


def run(ctx: Context) -> list[Row]:
    return _run(ctx, NAME, list(bc.SUITES), 300 if ctx.quick else 1500, kernel=False)


def run_xfrm(ctx: Context) -> list[Row]:
    """In the kernel VM, each target putting its IPsec SAs into the kernel:
    ipsecgw on its XFRM data plane, charon with kernel-netlink alone. The CPU
    is emulated, so fewer tunnels and one suite, and only ratios mean anything."""
    return _run(ctx, NAME + "-xfrm", ["aes128-sha1-modp2048"], 50 if ctx.quick else 200,
                kernel=True)


def _run(ctx: Context, name: str, suites: list[str], tunnels: int, kernel: bool) -> list[Row]:
    concurrency = 50
    rows = []
    for suite in suites:
        results: dict[str, dict[str, Any]] = {}
        errors: dict[str, str] = {}
        for side, fn in (("strongswan", strongswan_target), ("ipsecgw", ipsecgw_target)):
            ctx.log(f"{suite}: {tunnels} tunnels at {side}, {concurrency} in flight")
            try:
                results[side] = fn(ctx, suite, tunnels, concurrency, kernel)
                r = results[side]
                ctx.log(f"  {r['tunnels_per_s']} tunnels/s, {r['cpu_ms_per_tunnel']} ms CPU "
                        f"per tunnel, {r['loadgen']['established']} established, failures "
                        f"{r['loadgen']['failures'] or 'none'}")
            except Exception as exc:  # one side failing must not hide the other's numbers
                errors[side] = bc.error_text(exc)
                ctx.log(f"  FAILED: {errors[side]}")
        common = {"tunnels": tunnels, "concurrency": concurrency,
                  "initiator": "python -m ipsecgw.tools.loadgen (site A)"}
        details = {**common, **{f"{side}_detail": r for side, r in results.items()},
                   **{f"{side}_error": e for side, e in errors.items()}}
        rows.append(Row(
            f"{name}/{suite}", "tunnels/s", True,
            bc.pick(results, "ipsecgw", "tunnels_per_s"), bc.pick(results, "strongswan", "tunnels_per_s"),
            details))
        rows.append(Row(
            f"{name}/{suite}/cpu", "ms CPU/tunnel", False,
            bc.pick(results, "ipsecgw", "cpu_ms_per_tunnel"),
            bc.pick(results, "strongswan", "cpu_ms_per_tunnel"),
            {**common, "what": "target's CPU time during the run / tunnels established"}))
    return rows

