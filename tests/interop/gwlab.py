"""Shared pieces of the interop tests: site configs and traffic checks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ipsecgw.tools import testbed as tb
from ipsecgw.tools.lab import IpsecgwProcess

PSK = "s3cr3t-test-psk"


@dataclass(frozen=True)
class Suite:
    """One algorithm suite, as ipsecgw's configuration and the peer's name it."""

    name: str
    # ipsecgw side
    encryption: str
    hash_: str
    group: int
    transforms: str
    pfs: int | None
    # the peer's proposal strings (phase 1, phase 2)
    peer_ike: str
    peer_esp: str


def site_config(
    *,
    hostname: str = "siteA",
    local: str = tb.SITE_A_OUTER,
    peer: str = tb.SITE_B_OUTER,
    local_net: str = tb.SITE_A_NET,
    remote_net: str = tb.SITE_B_NET,
    tunnel: str = "siteB",
    encryption: str = "aes128",
    hash_: str = "sha",
    group: int = 14,
    transforms: str = "esp-aes128-hmac-sha",
    pfs: int | None = 14,
    aggressive: str | None = None,
    local_identity: str | None = None,
    peer_identity: str | None = None,
    psk_peer: str | None = None,
    shutdown: bool = False,
    responder_only: bool = False,
    extra_global: str = "",
    extra_tunnel: str = "",
) -> str:
    lines = [
        f"hostname {hostname}",
        f"ipsec local-endpoint {local} transport-virtual-router default",
        "ipsec ike-policy-rule 1",
        " authentication pre-share",
        f" encryption {encryption}",
        f" hash {hash_}",
        f" group {group}",
    ]
    if aggressive:
        lines.append(f" aggressive-mode {aggressive}")
    lines += [
        " exit",
        f"ipsec key manual pre-share {psk_peer or peer}",
        f" key {PSK}",
        " exit",
        f"ipsec transform-set ts {transforms}",
    ]
    if extra_global:
        lines += textwrap.dedent(extra_global).strip().splitlines()
    return "\n".join(lines) + "\n" + tunnel_config(
        local=local, peer=peer, local_net=local_net, remote_net=remote_net, tunnel=tunnel,
        pfs=pfs, local_identity=local_identity, peer_identity=peer_identity,
        shutdown=shutdown, responder_only=responder_only, extra_tunnel=extra_tunnel)


def tunnel_config(
    *,
    local: str = tb.SITE_A_OUTER,
    peer: str = tb.SITE_B_OUTER,
    local_net: str = tb.SITE_A_NET,
    remote_net: str = tb.SITE_B_NET,
    tunnel: str = "siteB",
    pfs: int | None = 14,
    local_identity: str | None = None,
    peer_identity: str | None = None,
    shutdown: bool = False,
    responder_only: bool = False,
    extra_tunnel: str = "",
) -> str:
    """One `interface tunnel` block with transform set `ts`: `site_config`'s,
    or another tunnel appended to it."""
    lines = [
        f"interface tunnel ipsec:{tunnel} transport-virtual-router default",
        f" tunnel source {local}",
        f" tunnel destination {peer}",
        " tunnel transform-set ts",
        f" tunnel local-network {local_net}",
        f" tunnel remote-network {remote_net}",
    ]
    if pfs:
        lines.append(f" tunnel pfs group {pfs}")
    if local_identity:
        lines.append(f" tunnel local-identity {local_identity}")
    if peer_identity:
        lines.append(f" tunnel peer-identity {peer_identity}")
    if extra_tunnel:
        lines += [" " + x for x in textwrap.dedent(extra_tunnel).strip().splitlines()]
    if responder_only:
        lines.append(" tunnel responder-only")
    if shutdown:
        lines.append(" shutdown")
    lines.append(" exit")
    return "\n".join(lines) + "\n"


@contextmanager
def linked_namespace(other: tb.Netns, prefix: str, address: str, other_address: str, *,
                     other_device: str = "veth-w") -> Iterator[tb.Netns]:
    """A new namespace joined to `other` by a veth pair (`veth-v` in it,
    `other_device` in `other`), with `address` and `other_address` on a /24."""
    with tb.Netns.create(prefix) as ns:
        tb.run(["ip", "-n", ns.name, "link", "add", "veth-v", "type", "veth",
                "peer", "name", other_device, "netns", other.name])
        ns.ip("addr", "add", f"{address}/24", "dev", "veth-v")
        other.ip("addr", "add", f"{other_address}/24", "dev", other_device)
        ns.ip("link", "set", "veth-v", "up")
        other.ip("link", "set", other_device, "up")
        yield ns


#: The home network behind `behind_nat`'s masquerading router.
HOME_ADDRESS, HOME_GATEWAY = "10.97.0.2", "10.97.0.1"
HOME_NETWORK = "10.97.0.0/24"


@contextmanager
def behind_nat(nat: tb.Netns, prefix: str, *, outside: str = "veth-b",
               ports: str | None = None) -> Iterator[tb.Netns]:
    """A new namespace (HOME_ADDRESS) whose traffic `nat` masquerades as the
    address of its interface `outside` (by default site B's 10.99.0.2): what
    runs there reaches the other site through a NAT. `ports` ("40000-40999"):
    the range the NAT maps source ports into, so that the peer sees ports
    other than 500 and 4500 (by default it keeps a port that is free).
    Only the home network is masqueraded: `nat`'s own packets (a strongSwan
    road warrior's virtual IP there) must leave with their own source, or the
    NAT would rewrite them before their IPsec policy sees them and they would
    cross in clear."""
    with linked_namespace(nat, prefix, HOME_ADDRESS, HOME_GATEWAY) as home:
        home.ip("route", "add", "default", "via", HOME_GATEWAY)
        nat.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        # a port range needs a transport protocol: TCP and UDP get one, the rest
        # (ESP, ICMP) the plain masquerade
        home_out = f'oifname "{outside}" ip saddr {HOME_NETWORK}'
        ranged = (f"{home_out} meta l4proto {{ tcp, udp }} masquerade to :{ports}; "
                  if ports else "")
        rules = textwrap.dedent(f"""\
            table ip igwnat {{
              chain post {{ type nat hook postrouting priority 100;
                {ranged}{home_out} masquerade; }}
            }}""")
        subprocess.run([*nat.exec_prefix(), "nft", "-f", "-"], input=rules, text=True,
                       check=True)
        yield home


@dataclass
class NatSites:
    """Site A behind a masquerading router (`nat_sites`)."""

    a: tb.Netns  # site A: outer address HOME_ADDRESS, inner network SITE_A_NET
    r: tb.Netns  # the router: masquerades `a` as SITE_A_OUTER towards `b`
    b: tb.Netns  # site B as in tb.TwoSites


@contextmanager
def nat_sites(prefix: str, ports: str | None = None) -> Iterator[NatSites]:
    """TwoSites whose site A moved behind a NAT: the router keeps site A's
    outer address, the gateway behind it gets site A's inner network."""
    with tb.TwoSites(prefix) as sites, behind_nat(sites.a, prefix + "h", outside="veth-a",
                                                  ports=ports) as home:
        sites.a.ip("addr", "del", f"{tb.SITE_A_INNER}/24", "dev", "lo")
        home.ip("addr", "add", f"{tb.SITE_A_INNER}/24", "dev", "lo")
        yield NatSites(home, sites.a, sites.b)


_COOKIE_PROBE = r"""
import json, os, socket, sys, time
from ipsecgw.isakmp import Message, ExchangeType, Notification, NotifyType
target, port, count, spoof = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
# RFC 3948 2.2: IKE on port 4500 follows four zero octets (the non-ESP marker)
marker = bytes(4) if port == 4500 else b""
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
sent = received = 0
notify = []
for i in range(count):
    if spoof:
        ck = bytes.fromhex(spoof)
        m = Message(ck[:8], ck[8:], ExchangeType.INFORMATIONAL, 0, 0,
                    (Notification(1, 1, NotifyType.INVALID_COOKIE, ck, b""),))
    else:
        # What a peer with a stale phase 1 sends: an encrypted Quick Mode
        # under cookies we never had. (An unknown-cookie Informational is
        # never answered: two gateways could otherwise notify each other forever.)
        m = Message(os.urandom(8), os.urandom(8), ExchangeType.QUICK_MODE, 1,
                    int.from_bytes(os.urandom(4), "big") | 1,
                    encrypted_body=os.urandom(96), first_payload=8)
    data = marker + m.encode()
    s.sendto(data, (target, port)); sent += len(data)
deadline = time.time() + 1.5
while time.time() < deadline:
    try:
        data, _ = s.recvfrom(65535)
    except socket.timeout:
        continue
    received += len(data)
    assert data.startswith(marker), data[:8]
    msg = Message.decode(data[len(marker):])
    notify += [p.notify_type for p in msg.payloads if isinstance(p, Notification)]
print(json.dumps({"sent_bytes": sent, "reply_bytes": received, "notifies": notify}))
"""


def probe(ns: tb.Netns, target: str, count: int = 1, spoof: str = "",
          port: int = 500) -> dict[str, object]:
    """Send `count` IKE messages under unknown cookies to `target`:`port` (or,
    with `spoof`, an INVALID-COOKIE naming those cookies) and collect the
    notify types of the replies within 1.5 s."""
    out = ns.run(sys.executable, "-c", _COOKIE_PROBE, target, str(port), str(count), spoof,
                 timeout=60)
    return json.loads(out)  # type: ignore[no-any-return]


class KeepaliveCounter:
    """Counts the NAT-keepalives (RFC 3948 section 4: one 0xFF byte in a UDP
    datagram to port 4500) that arrive in a namespace, in an nftables counter
    that sees them before anything else there does."""

    TABLE = "igwkeepalives"

    def __init__(self, netns: tb.Netns) -> None:
        self.netns = netns
        netns.run("nft", f"add table ip {self.TABLE}; "
                         f"add chain ip {self.TABLE} in "
                         "{ type filter hook prerouting priority -300; }; "
                         f"add rule ip {self.TABLE} in udp dport 4500 udp length 9 "
                         "@th,64,8 0xff counter")

    def count(self) -> int:
        listed = self.netns.run("nft", "list", "table", "ip", self.TABLE)
        found = re.search(r"counter packets (\d+)", listed)
        assert found, listed
        return int(found.group(1))


def ping(netns: tb.Netns, source: str, target: str, count: int = 3) -> str:
    return netns.run("ping", "-c", str(count), "-i", "0.2", "-W", "2", "-I", source, target,
                     check=False)


def ping_ok(netns: tb.Netns, source: str, target: str, count: int = 3) -> bool:
    return f"{count} received" in ping(netns, source, target, count)


def wait_until(predicate, timeout: float = 20, interval: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


_TCP_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.settimeout(20)
total = 0
while True:
    b = c.recv(65536)
    if not b: break
    total += len(b)
c.sendall(str(total).encode()); c.close()
"""

_TCP_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20,
                             source_address=(sys.argv[3], 0))
data = b"x" * int(sys.argv[4]); c.sendall(data); c.shutdown(socket.SHUT_WR)
print(c.recv(100).decode())
"""


def tcp_transfer(server_ns: tb.Netns, server_addr: str, client_ns: tb.Netns, client_addr: str,
                 size: int = 200_000, port: int = 5001) -> int:
    """Send ``size`` bytes over TCP through the tunnel; return what the server counted."""
    server = server_ns.popen([sys.executable, "-c", _TCP_SERVER, server_addr, str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)
        out = client_ns.run(sys.executable, "-c", _TCP_CLIENT, server_addr, str(port),
                            client_addr, str(size), timeout=40)
        return int(out.strip() or 0)
    finally:
        server.kill()
        server.wait()


__all__ = ["IpsecgwProcess", "PSK", "Suite", "site_config", "ping", "ping_ok", "probe",
           "tcp_transfer", "wait_until"]
