"""One tunnel pair to strongSwan (kernel ESP) through the operations that
change ipsecgw's kernel state, in the VM, one after the other on the same
setup (the VM's time is dear): every form of `ipsec clear sa`, a dead peer
and its return (DPD), and rekeys of both phases under a continuous ping.

ipsecgw (XFRM) at site A initiates two tunnels to one strongSwan at site B,
under one ISAKMP SA: siteB and siteB2 (networks .11/.12), so that the
per-tunnel forms can be seen to leave the other tunnel's SAs alone. After
each step both kernels must hold exactly the SAs `show ipsec sa` names (A's
inbound SA is B's outbound one), A one in/out/fwd policy triple per tunnel,
and pings must pass through both tunnels.

DPD here learns of traffic from the kernel's SA counters: a continuous ping
keeps it from probing, and a peer cut off (nftables drops what reaches it)
is declared dead, its SAs and policies leave the kernel, and the tunnels
come back by themselves once it is reachable again."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from gwlab import ping_ok, site_config, tunnel_config, wait_until
from vmgw import Gateway, kernel_bytes, kernel_policies, kernel_strongswan, nothing_left, sa_pairs

from ipsecgw.tools import testbed as tb

pytestmark = pytest.mark.kernel
SECOND_A_NET, SECOND_B_NET = "10.98.11.0/24", "10.98.12.0/24"
SECOND_A_INNER, SECOND_B_INNER = "10.98.11.1", "10.98.12.1"
# tunnel -> (site A's inner address, site B's): what a ping through it uses
TUNNELS = {"ipsec:siteB": (tb.SITE_A_INNER, tb.SITE_B_INNER),
           "ipsec:siteB2": (SECOND_A_INNER, SECOND_B_INNER)}
BOTH = frozenset(TUNNELS)
DPD_FAST = "ipsec option dpd idle 2 silence 2 retry 1 retries 2"
ESP = "aes128-sha1"  # no PFS: the DH of each Quick Mode is slow on the emulated CPU

# (command, the tunnels whose IPsec SAs it renews, whether phase 1 is new).
# A phase 1 that goes takes the IPsec SAs negotiated under it along: they
# are renewed on the new one (engine.py), so every phase 1 form renews both.
CLEAR_FORMS = [
    ("ipsec clear sa tunnel ipsec:siteB phase 2", {"ipsec:siteB"}, False),
    ("ipsec clear sa tunnel ipsec:siteB2 phase 1", BOTH, True),
    ("ipsec clear sa tunnel ipsec:siteB2", BOTH, True),
    ("ipsec clear sa all phase 2", BOTH, False),
    ("ipsec clear sa all phase 1", BOTH, True),
    ("ipsec clear sa all", BOTH, True),
    ("ipsec clear sa state up phase 2", BOTH, False),
    ("ipsec clear sa state up phase 1", BOTH, True),
    ("ipsec clear sa state up", BOTH, True),
]


@dataclass(frozen=True)
class Held:
    """What both ends hold once settled."""

    pairs: dict[str, tuple[str, str]]  # tunnel -> (inbound SPI, outbound SPI)
    cookies: str  # of the one established ISAKMP SA


class Setup:
    def __init__(self, sites: tb.TwoSites, gw: Gateway, swan: tb.StrongSwan) -> None:
        self.sites, self.gw, self.swan = sites, gw, swan

    def held(self) -> Held | None:
        """Both ends' state if settled: one SA pair per tunnel in `show ipsec
        sa`, exactly those SAs in both kernels, A's policies, one phase 1."""
        pairs = sa_pairs(self.gw)
        if set(pairs) != BOTH or any(len(p) != 1 for p in pairs.values()):
            return None
        spis = {spi for [pair] in pairs.values() for spi in pair}
        if set(kernel_bytes(self.sites.a)) != spis or set(kernel_bytes(self.sites.b)) != spis:
            return None
        if kernel_policies(self.sites.a) != 3 * len(BOTH):
            return None
        cookies = self.cookies()
        if len(cookies) != 1:
            return None
        return Held({tunnel: pair for tunnel, [pair] in pairs.items()}, cookies.pop())

    def cookies(self) -> set[str]:
        """The cookies of the established ISAKMP SAs."""
        return {row.split()[4] for row in self.gw.cli("show ipsec ike-sa").splitlines()
                if row.startswith("ipsec:") and row.split()[1] == "established"}

    def kernel_as_shown(self) -> bool:
        """A's kernel holds exactly the SAs `show ipsec sa` lists, and the policies."""
        spis = {spi for pairs in sa_pairs(self.gw).values() for pair in pairs for spi in pair}
        return set(kernel_bytes(self.sites.a)) == spis and \
            kernel_policies(self.sites.a) == 3 * len(BOTH)

    def settle(self, timeout: float = 90) -> Held:
        found: list[Held] = []

        def settled() -> bool:
            held = self.held()
            found[:] = [held] if held else []
            return held is not None

        assert wait_until(settled, timeout, interval=0.5), self.diagnostics()
        for tunnel, (a, b) in TUNNELS.items():
            assert ping_ok(self.sites.a, a, b), f"{tunnel}\n{self.diagnostics()}"
        return found[0]

    def counter(self, label: str) -> int:
        found = re.search(rf"{label}\s+(\d+)", self.gw.cli("show ipsec statistics"))
        return int(found.group(1)) if found else 0

    def diagnostics(self) -> str:
        return "\n".join([
            self.gw.cli("show ipsec sa"), self.gw.cli("show ipsec ike-sa"),
            self.sites.a.ip("xfrm", "state"), self.sites.a.ip("xfrm", "policy"),
            self.sites.b.ip("xfrm", "state"), self.swan.list_sas(),
            self.gw.log()[-4000:], self.swan.log()[-2000:],
        ])


def clear_every_form(setup: Setup, held: Held) -> Held:
    # An error clears nothing.
    out = setup.gw.cli("ipsec clear sa tunnel ipsec:nosuch", check=False)
    assert "cleared" not in out and setup.held() == held, out
    for command, renewed, new_phase1 in CLEAR_FORMS:
        out = setup.gw.cli(command)
        assert re.fullmatch(r"[1-9]\d* SAs? cleared", out.strip()), (command, out)
        before = held

        def moved_on(command: str = command, renewed: set[str] | frozenset[str] = renewed,
                     new_phase1: bool = new_phase1, before: Held = before) -> bool:
            now = setup.held()
            return now is not None and (now.cookies != before.cookies) == new_phase1 and all(
                (set(now.pairs[t]) & set(before.pairs[t]) == set()) == (t in renewed)
                for t in BOTH)

        assert wait_until(moved_on, 90, interval=0.5), (
            f"{command}: from {before}\n{setup.diagnostics()}")
        held = setup.settle()
    return held


def test_clear_sa_forms_dead_peer_and_rekeys_on_xfrm(tmp_path: Path) -> None:
    config = site_config(pfs=None, extra_global=DPD_FAST) + tunnel_config(
        tunnel="siteB2", local_net=SECOND_A_NET, remote_net=SECOND_B_NET, pfs=None)
    with tb.TwoSites("igko") as sites, kernel_strongswan(
            sites.b, tmp_path / "swan", esp=ESP,
            extra_children=f"gw2 {{ local_ts = {SECOND_B_NET}\n remote_ts = {SECOND_A_NET}\n"
                           f" esp_proposals = {ESP} }}") as swan:
        sites.a.ip("addr", "add", f"{SECOND_A_INNER}/24", "dev", "lo")
        sites.b.ip("addr", "add", f"{SECOND_B_INNER}/24", "dev", "lo")
        swan.start()
        with Gateway(sites.a, tmp_path / "gw", config, dataplane="xfrm") as gw:
            setup = Setup(sites, gw, swan)
            held = setup.settle(120)
            held = clear_every_form(setup, held)

            # The phase 1 negotiated after the dead peer lives 20 s (rekeyed
            # below); the one in place keeps its lifetime, and its SAs stay.
            gw.cli("configure terminal", "ipsec ike-policy-rule 1", "lifetime seconds 20")
            # Dead peer: everything that reaches site B is dropped.
            with tb.Faults(sites.b) as faults:
                faults.drop()
                assert wait_until(lambda: setup.counter("DPD peers dead") >= 1
                                  and kernel_bytes(sites.a) == {}
                                  and kernel_policies(sites.a) == 0, 60), setup.diagnostics()
                tunnels = gw.cli("show ipsec tunnel")
                assert " up " not in tunnels, tunnels
                # the interfaces stay: the tunnels are configured, only down
                links = sites.a.ip("link", "show", "type", "xfrm")
                assert re.search(r" ips-siteB[@:]", links) and re.search(r" ips-siteB2[@:]",
                                                                         links), links
                # siteB's IPsec SAs that come back live 15 s (rekeyed below); the
                # changed tunnel has nothing to lose now.
                gw.cli("configure terminal", "interface tunnel ipsec:siteB",
                       "tunnel lifetime seconds 15")
            # Reachable again: ipsecgw brings both tunnels back by itself.
            back = setup.settle(120)
            assert back.cookies != held.cookies

            # Rekeys of both phases under pings through both tunnels, make before
            # break: nothing lost; DPD sees the pings in the kernel's counters and
            # stays quiet. siteB2 (long lifetime) gets new SAs only because the
            # phase 1 rekey moves them.
            probes = setup.counter("DPD R-U-THERE sent")
            moves = gw.log().count("outbound traffic moves to SPI")
            pings = [sites.a.popen(["ping", "-c", "200", "-i", "0.2", "-W", "2", "-I", a, b],
                                   stdout=subprocess.PIPE, text=True)
                     for a, b in TUNNELS.values()]

            def moved() -> bool:
                pairs = sa_pairs(gw)
                return back.cookies not in setup.cookies() and all(
                    any(set(pair).isdisjoint(back.pairs[t]) for pair in pairs.get(t, []))
                    for t in BOTH)

            try:
                assert wait_until(moved, 60, interval=0.5), setup.diagnostics()
                outs = [ping.communicate(timeout=90)[0] for ping in pings]
            finally:
                for ping in pings:
                    ping.kill()
            for out in outs:
                assert "200 received" in out, out[-400:] + setup.diagnostics()
            assert setup.counter("DPD R-U-THERE sent") - probes <= 3
            assert "detected rekeying of CHILD_SA" in swan.log(), swan.log()[-3000:]
            # each new outbound SA waited for the peer (xfrm.py: deferred)
            assert gw.log().count("outbound traffic moves to SPI") - moves >= 3, (
                gw.log()[-3000:])
            # rekeyed SAs leave the kernel with the engine's: nothing stale stays
            assert wait_until(setup.kernel_as_shown, 20), setup.diagnostics()
        nothing_left(sites.a)
