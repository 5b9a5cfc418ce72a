"""`ipsecgw lab --remote-access`: a gateway with a tunnel profile, FreeRADIUS and a vpnc client.

Site A runs ipsecgw and FreeRADIUS (on 127.0.0.1: RADIUS leaves from the
router's own VR); site B runs vpnc, which logs in as a subscriber (group
name and key, XAUTH user checked by RADIUS), gets its address by Mode
Config and pings the inner address of site A. The interop tests of issue 16
use the same gateway configuration (`gateway_config`).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from . import testbed as tb
from . import testbed_remote as tr
from .lab import IpsecgwProcess, conclude, run_lab

RADIUS_SECRET = "radius-s3cret"
GROUP, GROUP_KEY = "vpngroup", "group-k3y"
DNS = "10.98.1.53"
POOL = ("10.200.0.10", "10.200.0.20")
USERS = (tr.RadiusUser("alice", "wonderland", "10.200.0.77"),
         tr.RadiusUser("bob", "builder"), tr.RadiusUser("carol", "c4rol"))


def gateway_config() -> str:
    """Site A: a profile for vpnc-style clients, users checked by RADIUS on 127.0.0.1."""
    return f"""\
hostname rasgw
ipsec ike-policy-rule 1
 encryption aes256
 hash sha
 group 2
 exit
ip local pool rapool {POOL[0]} {POOL[1]}
radius authentication server 127.0.0.1
 key {RADIUS_SECRET}
 timeout 1
 retransmit 1
 exit
radius accounting server 127.0.0.1
 key {RADIUS_SECRET}
 exit
aaa authentication xauth radius
ipsec tunnel-profile remote
 local-endpoint {tb.SITE_A_OUTER} transport-virtual-router default
 ike peer-identity key-id {GROUP}
 pre-share {GROUP_KEY}
 transform esp-aes256-hmac-sha esp-aes128-hmac-sha esp-3des-hmac-sha esp-3des-hmac-md5
 local-network {tb.SITE_A_NET}
 ip pool rapool
 dns primary {DNS}
 domain-suffix example.net
 exit
"""


def strongswan_road_warrior(options: str = "", user: str = "carol", password: str = "c4rol") -> str:
    """swanctl.conf of strongSwan as an IKEv1 road warrior of `gateway_config`'s
    profile: Aggressive Mode with the group key, XAUTH as `user`, a virtual IP;
    `options` (e.g. "\n    pull = no") are added to its connection."""
    return f"""\
connections {{
  rw {{
    version = 1
    aggressive = yes{options}
    local_addrs = {tb.SITE_B_OUTER}
    remote_addrs = {tb.SITE_A_OUTER}
    proposals = aes256-sha1-modp1024
    vips = 0.0.0.0
    local-1 {{ auth = psk
              id = keyid:{GROUP} }}
    local-2 {{ auth = xauth
              xauth_id = {user} }}
    remote-1 {{ auth = psk
               id = %any }}
    children {{
      rw {{ remote_ts = {tb.SITE_A_NET}
           esp_proposals = aes128-sha1 }} }}
  }}
}}
secrets {{
  ike-1 {{ id = keyid:{GROUP}
          secret = "{GROUP_KEY}" }}
  xauth-1 {{ id = {user}
            secret = "{password}" }}
}}
"""


def run_remote_access_lab(pings: int, keep: bool) -> int:
    missing = tb.missing_tools(("ip", "ping", tr.FREERADIUS, tr.VPNC))
    if missing:
        print(f"ipsecgw lab: missing {', '.join(missing)}; run scripts/bootstrap",
              file=sys.stderr)
        return 2
    return run_lab("labra", lambda workdir, sites, stack: _remote_access(
        pings, keep, workdir, sites, stack))


def _remote_access(pings: int, keep: bool, workdir: Path, sites: tb.TwoSites,
                   stack: contextlib.ExitStack) -> int:
    radius = tr.FreeRadius(sites.a, clients={"127.0.0.1": RADIUS_SECRET}, users=USERS,
                           workdir=workdir / "radius")
    client = tr.Vpnc(sites.b, gateway=tb.SITE_A_OUTER, group=GROUP, group_key=GROUP_KEY,
                     username="alice", password="wonderland", workdir=workdir / "vpnc")
    print(f"site A: namespace {sites.a.name}, ipsecgw + FreeRADIUS, {tb.SITE_A_OUTER}, "
          f"inner {tb.SITE_A_INNER}")
    print(f"site B: namespace {sites.b.name}, vpnc as user alice, {tb.SITE_B_OUTER}")
    stack.callback(radius.close)
    radius.start()
    gateway = stack.enter_context(IpsecgwProcess(sites.a, workdir / "gw", gateway_config()))
    stack.callback(client.close)
    client.start()
    try:
        given = client.wait_connected(60)
    except RuntimeError as exc:
        print(f"{exc}\nipsecgw log:\n{gateway.log()[-4000:]}", file=sys.stderr)
        return 1
    address = given["INTERNAL_IP4_ADDRESS"]
    print(f"vpnc got {address}, DNS {given.get('INTERNAL_IP4_DNS', '-')}\n")
    ping = sites.b.run("ping", "-c", str(pings), "-i", "0.2", "-W", "2", "-I", address,
                       tb.SITE_A_INNER, check=False)
    print(ping)
    for command in ("show subscribers", "show ip local pool", "show ipsec tunnel"):
        print(f"rasgw# {command}\n{gateway.cli(command)}")
    return conclude(f"{pings} received" in ping, keep,
                    f"ip netns exec {sites.a.name} ipsecgw cli --control {gateway.control}",
                    "subscriber logged in and traffic flowing")
