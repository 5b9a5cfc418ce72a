"""Shared pieces of the interop tests: site configs and traffic checks."""

from __future__ import annotations

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
    lines += [
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


#: The home network behind `behind_nat`'s masquerading site B.
HOME_ADDRESS, HOME_GATEWAY = "10.97.0.2", "10.97.0.1"
HOME_NETWORK = "10.97.0.0/24"


@contextmanager
def behind_nat(nat: tb.Netns, prefix: str) -> Iterator[tb.Netns]:
    """A new namespace (HOME_ADDRESS) whose traffic `nat` (site B) masquerades
    as its own outer address 10.99.0.2: clients there reach site A through a NAT.
    Only the home network is masqueraded: site B's own packets (a strongSwan
    road warrior's virtual IP there) must leave with their own source, or the
    NAT would rewrite them before their IPsec policy sees them and they would
    cross in clear."""
    with tb.Netns.create(prefix) as home:
        tb.run(["ip", "-n", nat.name, "link", "add", "veth-c", "type", "veth",
                "peer", "name", "veth-h", "netns", home.name])
        nat.ip("addr", "add", f"{HOME_GATEWAY}/24", "dev", "veth-c")
        nat.ip("link", "set", "veth-c", "up")
        home.ip("addr", "add", f"{HOME_ADDRESS}/24", "dev", "veth-h")
        home.ip("link", "set", "veth-h", "up")
        home.ip("route", "add", "default", "via", HOME_GATEWAY)
        nat.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        rules = textwrap.dedent(f"""\
            table ip igwnat {{
              chain post {{ type nat hook postrouting priority 100;
                           oifname "veth-b" ip saddr {HOME_NETWORK} masquerade; }}
            }}""")
        subprocess.run([*nat.exec_prefix(), "nft", "-f", "-"], input=rules, text=True,
                       check=True)
        yield home


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


__all__ = ["IpsecgwProcess", "PSK", "Suite", "site_config", "ping", "ping_ok", "tcp_transfer",
           "wait_until"]
