"""ipsecgw on the kernel's XFRM against Libreswan 4.10's pluto with kernel ESP,
in the VM: whole tunnels, phase 2 included, which the host's kernel (no ESP)
cannot carry (tests/interop/test_libreswan_interop.py stops at phase 1).

Pluto comes unpacked from Debian's .deb (tests/interop/libreswan.py); the
launcher fetched it on the host and shares it with the guest. Its conn has
`leftupdown=/bin/true` (the machine's _updown is strongSwan's, TESTBED.md),
so the route to site A's network is added here: pluto's policies then carry
site B's replies. Each case runs both roles in one daemon: ipsecgw
initiates, then its tunnel becomes `tunnel responder-only`, `ipsec clear sa
all` removes everything at both ends, and pluto initiates. Each time: both
kernels' SAs (pluto dropped the cleared ones), pluto's own word that the
IPsec SA is established, ipsecgw's role and mode, and pings both ways."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import libreswan
import pytest
from gwlab import PSK, ping_ok, site_config, wait_until
from vmgw import Gateway

from ipsecgw.tools import testbed as tb

pytestmark = pytest.mark.kernel
SITE_A_FQDN = "sitea.example.net"
SITE_B_FQDN = "siteb.example.net"
# pluto tests its algorithms at start: over 10 s on the VM's emulated CPU
PLUTO_START_TIMEOUT = 60


@pytest.fixture(scope="module")
def swan() -> libreswan.Install:
    try:
        return libreswan.install()
    except libreswan.Unavailable as e:
        if os.environ.get("IPSECGW_REQUIRE_INTEROP") == "1" or os.environ.get("CI") == "true":
            pytest.fail(f"Libreswan unavailable in the VM: {e}", pytrace=False)
        pytest.skip(f"Libreswan unavailable in the VM: {e}")


@pytest.fixture
def sites() -> Iterator[tb.TwoSites]:
    with tb.TwoSites("igwl") as two:
        # pluto's updown is off: site B's route to site A's network, by hand
        two.b.ip("route", "add", tb.SITE_A_NET, "via", tb.SITE_A_OUTER, "src", tb.SITE_B_INNER)
        yield two


def ike_sa(gw: Gateway) -> tuple[str, str] | None:
    """(role, mode) of the one established ISAKMP SA, from `show ipsec ike-sa`."""
    rows = [line.split() for line in gw.cli("show ipsec ike-sa").splitlines()
            if line.startswith("ipsec:siteB") and line.split()[1] == "established"]
    return (rows[0][5], rows[0][6]) if len(rows) == 1 else None


def check_tunnel(sites: tb.TwoSites, gw: Gateway, pluto: libreswan.Pluto, *, role: str,
                 mode: str, negotiation: int) -> None:
    """The tunnel is up with ipsecgw in `role`, for pluto's `negotiation`-th IPsec SA."""
    assert gw.wait_tunnel_up("siteB", timeout=60), gw.log()[-4000:] + pluto.output()
    assert wait_until(lambda: ike_sa(gw) == (role, mode), 30), (
        gw.cli("show ipsec ike-sa") + pluto.output())
    assert wait_until(lambda: pluto.log().count("IPsec SA established") >= negotiation, 20), (
        pluto.output())
    # pluto dropped the SAs of a negotiation that ipsecgw cleared
    for ns in (sites.a, sites.b):
        assert wait_until(lambda ns=ns: ns.ip("xfrm", "state").count("enc cbc(aes)") == 2, 20), (
            ns.ip("xfrm", "state"))  # both directions, each end
    assert ping_ok(sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER), (
        gw.log()[-3000:] + sites.b.ip("-s", "xfrm", "state") + pluto.output())
    assert ping_ok(sites.b, tb.SITE_B_INNER, tb.SITE_A_INNER)
    assert sites.a.ip("xfrm", "state").count("if_id 0x495") == 2
    # the same SPIs at both ends: ipsecgw's inbound is pluto's outbound
    row = next(line.split() for line in gw.cli("show ipsec sa").splitlines()
               if line.startswith("ipsec:siteB"))
    pluto_states = sites.b.ip("xfrm", "state")
    assert f"spi {row[1]}" in pluto_states and f"spi {row[2]}" in pluto_states, (
        row, pluto_states)


def both_roles(sites: tb.TwoSites, gw: Gateway, pluto: libreswan.Pluto, mode: str) -> None:
    """ipsecgw initiates; then its tunnel becomes responder-only, everything
    is cleared, and pluto initiates. (Not the other way round: pluto
    renegotiates at once a connection it initiated when its SAs are deleted.)"""
    check_tunnel(sites, gw, pluto, role="initiator", mode=mode, negotiation=1)
    assert f"responding to {mode.capitalize()} Mode" in pluto.log(), pluto.output()
    gw.cli("configure terminal", "interface tunnel ipsec:siteB", "tunnel responder-only")
    gw.cli("ipsec clear sa all")
    assert wait_until(lambda: "up" not in gw.cli("show ipsec tunnel ipsec:siteB").split()
                      and sites.b.ip("xfrm", "state").strip() == "", 30), (
        gw.cli("show ipsec tunnel") + sites.b.ip("xfrm", "state") + pluto.output())
    pluto.initiate()
    check_tunnel(sites, gw, pluto, role="responder", mode=mode, negotiation=2)


def test_main_mode_psk_with_pluto_both_roles(swan: libreswan.Install, sites: tb.TwoSites,
                                             tmp_path: Path) -> None:
    conf = libreswan.ipsec_conf(extra="leftupdown=/bin/true")
    with libreswan.Pluto(sites.b, conf, f'{tb.SITE_B_OUTER} {tb.SITE_A_OUTER} : PSK "{PSK}"\n',
                         unpacked=swan, workdir=tmp_path / "pluto") as pluto:
        pluto.start(timeout=PLUTO_START_TIMEOUT)
        with Gateway(sites.a, tmp_path / "gw", site_config(pfs=14), dataplane="xfrm") as gw:
            both_roles(sites, gw, pluto, "main")


def test_aggressive_mode_psk_with_pluto_both_roles(swan: libreswan.Install, sites: tb.TwoSites,
                                                   tmp_path: Path) -> None:
    conf = libreswan.ipsec_conf(aggressive=True, leftid=f"@{SITE_B_FQDN}",
                                rightid=f"@{SITE_A_FQDN}", extra="leftupdown=/bin/true")
    with libreswan.Pluto(sites.b, conf, f'@{SITE_B_FQDN} @{SITE_A_FQDN} : PSK "{PSK}"\n',
                         unpacked=swan, workdir=tmp_path / "pluto") as pluto:
        pluto.start(timeout=PLUTO_START_TIMEOUT)
        with Gateway(sites.a, tmp_path / "gw", site_config(
                pfs=14, aggressive="required", local_identity=f"domain-name {SITE_A_FQDN}",
                peer_identity=f"domain-name {SITE_B_FQDN}", psk_peer=SITE_B_FQDN),
                dataplane="xfrm") as gw:
            both_roles(sites, gw, pluto, "aggressive")
