"""esp-throughput: iperf3 through user-space ESP, ipsecgw vs strongSwan.

Site A runs the system under test (ipsecgw, or a second charon), site B runs
charon with kernel-libipsec; iperf3 goes from A's inner address to B's
(10.98.1.1 -> 10.98.2.1) through the tunnel, so every byte is encrypted on
one side and decrypted on the other. Plain veth between the outer addresses
is the ceiling. TCP: one stream, throughput as the receiver counts it. UDP:
1400-byte datagrams; the highest offered rate with under 1% loss (found by
doubling, then bisecting), reported as the rate the receiver saw.

esp-throughput-xfrm (`run_xfrm`): the same in the kernel VM with ESP in the
kernel at both ends: ipsecgw on its XFRM data plane, charon with
kernel-netlink alone.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import bench_common as bc
from bench_common import Context, Row

from ipsecgw.tools import testbed as tb

NAME = "esp-throughput"

# cipher label -> (IKE proposal, strongSwan ESP proposal, ipsecgw transform)
CIPHERS = {
    "aes128-sha1": ("aes128-sha1-modp2048", "aes128-sha1", "esp-aes128-hmac-sha"),
    "aes256gcm": ("aes256-sha256-modp2048", "aes256gcm16", "esp-aes256-gcm"),
}

LOSS_LIMIT = 1.0  # percent
UDP_LEN = 1400
# Receive and send buffers big enough that iperf3's own sockets are not
# where datagrams are lost.
UDP_WINDOW = "4M"


class Iperf:
    """An iperf3 server in B and the client runs from A."""

    def __init__(self, sites: tb.TwoSites, server_addr: str, client_addr: str) -> None:
        self.sites = sites
        self.server_addr = server_addr
        self.client_addr = client_addr
        self.server = sites.b.popen(["iperf3", "-s", "-B", server_addr],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)

    def client(self, *args: str, seconds: float) -> dict[str, Any]:
        out = self.sites.a.run(
            "iperf3", "-c", self.server_addr, "-B", self.client_addr, "-J",
            "-t", str(seconds), *args, check=False, timeout=seconds + 30)
        result: dict[str, Any] = json.loads(out)
        if "error" in result:
            raise RuntimeError(f"iperf3: {result['error']}")
        return result

    def tcp(self, seconds: float) -> float:
        """Mbit/s received over one TCP stream."""
        end = self.client(seconds=seconds)["end"]
        return float(end["sum_received"]["bits_per_second"]) / 1e6

    def udp(self, rate_mbit: float, seconds: float) -> tuple[float, float]:
        """(Mbit/s received, loss percent) at an offered rate."""
        end = self.client("-u", "-l", str(UDP_LEN), "-w", UDP_WINDOW, "-b", f"{rate_mbit:.1f}M",
                          seconds=seconds)["end"]
        return (float(end["sum_received"]["bits_per_second"]) / 1e6,
                float(end["sum"]["lost_percent"]))

    def udp_loss_free(self, seconds: float, max_trials: int, hint: float) -> dict[str, Any]:
        """The highest offered rate with loss under LOSS_LIMIT, searched around ``hint``.

        Loss through user-space ESP is bursty, so loss versus rate is not
        monotonic and a bisection would be steered by noise; and far above
        capacity the path livelocks, so a saturating run says little. Instead:
        start at half of ``hint`` (the TCP throughput of the same path), step
        down by 1.4x until a rate passes, then up in 15% steps until two rungs
        in a row fail; the best passing rung counts.
        """
        trials: list[tuple[float, float, float]] = []
        best: tuple[float, float] | None = None  # (offered, received)

        def trial(rate: float) -> bool:
            nonlocal best
            received, loss = self.udp(rate, seconds)
            trials.append((rate, received, loss))
            if loss >= LOSS_LIMIT:
                return False
            if best is None or received > best[1]:
                best = (rate, received)
            return True

        rate = min(0.5 * hint, 2000.0)
        while len(trials) < max_trials and rate >= 5 and not trial(rate):
            rate /= 1.4
        failures = 0
        while best is not None and len(trials) < max_trials and failures < 2:
            rate *= 1.15
            failures = 0 if trial(rate) else failures + 1
        return {
            "loss_free_mbit": round(best[1], 1) if best else None,
            "offered_mbit": round(best[0], 1) if best else None,
            "trials": [{"offered": round(o, 1), "received": round(r, 1), "loss_pct": round(lp, 2)}
                       for o, r, lp in trials],
        }

    def close(self) -> None:
        self.server.kill()
        self.server.wait()


def measure(ctx: Context, sites: tb.TwoSites, server: str, client: str,
            pids: list[int]) -> dict[str, Any]:
    """TCP and UDP through whatever path connects ``client`` to ``server``."""
    seconds = 2 if ctx.quick else 10
    udp_seconds = 1 if ctx.quick else 3
    steps = 4 if ctx.quick else 14
    iperf = Iperf(sites, server, client)
    try:
        meter = bc.CpuMeter(*pids).start() if pids else None
        tcp = iperf.tcp(seconds)
        tcp_cpu = meter.stop() if meter else None
        udp = iperf.udp_loss_free(udp_seconds, steps, hint=tcp)
    finally:
        iperf.close()
    result: dict[str, Any] = {"tcp_mbit": round(tcp, 1), "udp": udp}
    if tcp_cpu:
        result["tcp_cpu_percent"] = [round(100 * c / tcp_cpu.wall, 1)
                                     for c in tcp_cpu.cpu.values()]
    return result


def veth_ceiling(ctx: Context) -> dict[str, Any]:
    with bc.two_sites() as sites:
        return measure(ctx, sites, tb.SITE_B_OUTER, tb.SITE_A_OUTER, [])


def strongswan_pair(ctx: Context, cipher: str, kernel: bool = False) -> dict[str, Any]:
    proposals, esp, _ = CIPHERS[cipher]
    with bc.two_sites() as sites:
        b = tb.StrongSwan(sites.b, tb.swanctl_conf(
            local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
            local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=bc.PSK,
            proposals=proposals, esp_proposals=esp), workdir=ctx.subdir("swan-b"))
        a = tb.StrongSwan(sites.a, tb.swanctl_conf(
            local_addr=tb.SITE_A_OUTER, remote_addr=tb.SITE_B_OUTER,
            local_ts=tb.SITE_A_NET, remote_ts=tb.SITE_B_NET, psk=bc.PSK,
            proposals=proposals, esp_proposals=esp), workdir=ctx.subdir("swan-a"))
        with b, a:
            for swan in (a, b):
                bc.quiet_strongswan(swan)
                if kernel:
                    swan.use_kernel_esp()
            b.start()
            a.start()
            a.initiate()
            pids = [bc.charon_pid(a), bc.charon_pid(b)]
            return measure(ctx, sites, tb.SITE_B_INNER, tb.SITE_A_INNER, pids)


def ipsecgw_vs_strongswan(ctx: Context, cipher: str, kernel: bool = False) -> dict[str, Any]:
    proposals, esp, transform = CIPHERS[cipher]
    encryption, hash_ = {"aes128-sha1": ("aes128", "sha"),
                         "aes256gcm": ("aes256", "sha256")}[cipher]
    with bc.two_sites() as sites:
        b = tb.StrongSwan(sites.b, tb.swanctl_conf(
            local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
            local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=bc.PSK,
            proposals=proposals, esp_proposals=esp), workdir=ctx.subdir("swan-b"))
        with b:
            bc.quiet_strongswan(b)
            if kernel:
                b.use_kernel_esp()
            b.start()
            config = bc.site_config(encryption=encryption, hash_=hash_, group=14,
                                    transforms=transform)
            with bc.Ipsecgw(sites.a, ctx.subdir("ipsecgw"), config,
                            dataplane="xfrm" if kernel else "userspace") as gw:
                if not gw.wait_tunnel_up("siteB", timeout=30):
                    raise RuntimeError("ipsecgw tunnel did not come up:\n" + gw.log()[-3000:])
                pids = [gw.pid, bc.charon_pid(b)]
                return measure(ctx, sites, tb.SITE_B_INNER, tb.SITE_A_INNER, pids)


def _value(result: dict[str, Any] | None, proto: str) -> float | None:
    if result is None:
        return None
    v = result["tcp_mbit"] if proto == "tcp" else result["udp"]["loss_free_mbit"]
    return None if v is None else float(v)


def _rows(name: str, ceiling: dict[str, Any], results: dict[str, dict[str, Any]],
          errors: dict[str, str]) -> list[Row]:
    rows = []
    for cipher in CIPHERS:
        for proto in ("tcp", "udp"):
            details: dict[str, Any] = {
                "veth_ceiling_mbit": ceiling["tcp_mbit"] if proto == "tcp"
                else ceiling["udp"]["loss_free_mbit"],
            }
            for side in ("ipsecgw", "strongswan"):
                r = results.get(f"{side}/{cipher}")
                if r is not None:
                    details[side + "_detail"] = r if proto == "udp" else {
                        k: v for k, v in r.items() if k != "udp"}
                if f"{side}/{cipher}" in errors:
                    details[side + "_error"] = errors[f"{side}/{cipher}"]
            if proto == "udp":
                details["method"] = (f"{UDP_LEN}-byte UDP, highest offered rate with "
                                     f"<{LOSS_LIMIT:g}% loss; value is the received rate")
            rows.append(Row(f"{name}/{proto}/{cipher}", "Mbit/s", True,
                            _value(results.get(f"ipsecgw/{cipher}"), proto),
                            _value(results.get(f"strongswan/{cipher}"), proto), details))
    return rows


def summary(r: dict[str, Any]) -> str:
    udp = r["udp"]
    return (f"{r['tcp_mbit']} Mbit/s TCP, UDP loss-free {udp['loss_free_mbit']} Mbit/s "
            f"after {len(udp['trials'])} trials")


def run(ctx: Context) -> list[Row]:
    return _run(ctx, NAME, kernel=False)


def run_xfrm(ctx: Context) -> list[Row]:
    """The same in the kernel VM: ipsecgw on the XFRM data plane, charon with
    kernel-netlink alone, both ends ESP in the kernel (an emulated CPU: only
    the ratio of the two columns means anything)."""
    return _run(ctx, NAME + "-xfrm", kernel=True)


def _run(ctx: Context, name: str, kernel: bool) -> list[Row]:
    if bc.IN_KERNEL_VM:
        # iperf3 checks that its UDP_WINDOW buffers were granted; the VM's
        # kernel caps them lower than this machine's (the VM is thrown away).
        tb.run(["sysctl", "-qw", "net.core.rmem_max=16777216", "net.core.wmem_max=16777216"])
    ctx.log("plain veth ceiling")
    ceiling = veth_ceiling(ctx)
    ctx.log(f"veth: {summary(ceiling)}")
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for cipher in CIPHERS:
        for side, fn in (("strongswan", strongswan_pair), ("ipsecgw", ipsecgw_vs_strongswan)):
            ctx.log(f"{side} <-> strongswan, {cipher}")
            try:
                results[f"{side}/{cipher}"] = fn(ctx, cipher, kernel)
                r = results[f"{side}/{cipher}"]
                ctx.log(f"  {summary(r)}")
            except Exception as exc:  # one side failing must not hide the other's numbers
                errors[f"{side}/{cipher}"] = bc.error_text(exc)
                ctx.log(f"  FAILED: {errors[f'{side}/{cipher}']}")
    return _rows(name, ceiling, results, errors)
