"""INITIAL-CONTACT removes the older SAs of the sending entity only (RFC 2407
4.6.3.3): same peer address *and* same authenticated identity.

Two gateways with different identities ("one.example", "two.example") sit
behind one NAT (192.0.2.1) and bring up a tunnel each to B, a responder-only
concentrator.  Each starts fresh, so each phase 1 carries INITIAL-CONTACT.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from engine_helpers import B_IP, NAT_IP, PSK, rng, tunnel

from ipsecgw.isakmp import collisions
from ipsecgw.isakmp.codec import Identification
from ipsecgw.isakmp.engine import Engine
from ipsecgw.isakmp.events import Event, IpsecSaDeleted, Phase1Deleted, Phase1Established
from ipsecgw.isakmp.policy import Address, EnginePolicy, Identity, IkeRule

RULES = (IkeRule(group=19),)
HOSTS = {"one": ("10.99.0.1", "10.98.1.0/24"), "two": ("10.99.0.3", "10.98.3.0/24")}
CONCENTRATOR_NETWORK = "10.98.2.0/24"


def _host_policy(name: str) -> EnginePolicy:
    address, network = HOSTS[name]
    return EnginePolicy(
        vr=name, local_addresses=(address,), ike_rules=RULES, preshared_keys={B_IP: PSK},
        tunnels=(tunnel("gw", address, B_IP, local_network=network,
                        remote_network=CONCENTRATOR_NETWORK,
                        local_identity=Identity("domain-name", f"{name}.example")),))


def _concentrator_policy() -> EnginePolicy:
    tunnels = tuple(tunnel(name, B_IP, NAT_IP, local_network=CONCENTRATOR_NETWORK,
                           remote_network=network, initiate=False)
                    for name, (_, network) in HOSTS.items())
    return EnginePolicy(vr="b", local_addresses=(B_IP,), ike_rules=RULES,
                        preshared_keys={NAT_IP: PSK}, tunnels=tunnels)


@dataclass
class BehindOneNat:
    """The hosts' datagrams reach B from NAT_IP, each host on its own ports."""

    b: Engine = field(default_factory=lambda: Engine(_concentrator_policy(), rng=rng(100)))
    hosts: dict[str, Engine] = field(default_factory=dict)
    events: dict[str, list[Event]] = field(default_factory=lambda: {"b": []})
    now: float = 0.0

    def boot(self, name: str, seed: int) -> None:
        """A fresh gateway `name` starts (again) and brings its tunnel up."""
        self.hosts[name] = Engine(_host_policy(name), rng=rng(seed))
        self.events[name] = []
        self.hosts[name].handle_timer(self.now)
        self.pump()
        self.advance(5)  # B lets the initiator's Quick Mode go first

    def _nat_port(self, name: str, port: int) -> int:
        return 40000 + 100 * list(HOSTS).index(name) + (port == 4500)

    def _inside(self, outside: Address) -> tuple[str, Address]:
        for name in HOSTS:
            for port in (500, 4500):
                if outside == (NAT_IP, self._nat_port(name, port)):
                    return name, (HOSTS[name][0], port)
        raise AssertionError(f"no NAT mapping for {outside}")

    def _engines(self) -> Iterator[tuple[str, Engine]]:
        yield "b", self.b
        yield from self.hosts.items()

    def pump(self) -> None:
        for _ in range(50):
            moved = False
            for name, host in self.hosts.items():
                for datagram in host.datagrams_to_send(self.now):
                    moved = True
                    source = (NAT_IP, self._nat_port(name, datagram.local[1]))
                    self.b.receive_datagram(datagram.data, datagram.remote, source, self.now)
            for datagram in self.b.datagrams_to_send(self.now):
                moved = True
                name, destination = self._inside(datagram.remote)
                self.hosts[name].receive_datagram(datagram.data, destination, datagram.local,
                                                  self.now)
            for name, engine in self._engines():
                while (event := engine.next_event()) is not None:
                    self.events[name].append(event)
            if not moved:
                return

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while True:
            timers = [t for _, e in self._engines() if (t := e.get_timer()) is not None]
            if not timers or min(timers) > target:
                break
            self.now = max(self.now, min(timers))
            for _, engine in self._engines():
                engine.handle_timer(self.now)
            self.pump()
        self.now = target

    def sas(self, tunnel_name: str) -> set[bytes]:
        """Inbound SPIs of B's IPsec SAs for one host's tunnel."""
        return {sa.inbound_spi for status in self.b.tunnel_status(self.now)
                if status.name == tunnel_name for sa in status.ipsec_sas}

    def phase1_identities(self) -> list[str]:
        return sorted(sa.peer_identity for sa in self.b.ike_sa_status(self.now))


def test_another_identity_behind_the_same_address_leaves_the_first_ones_sas() -> None:
    net = BehindOneNat()
    net.boot("one", seed=1)
    first = net.sas("one")
    assert first and net.phase1_identities() == ["one.example"]
    net.boot("two", seed=2)
    # B saw "two"'s INITIAL-CONTACT (its first SA with B) and kept "one"'s SAs.
    assert net.sas("two") and net.sas("one") == first
    assert net.phase1_identities() == ["one.example", "two.example"]
    assert not [e for e in net.events["b"] if isinstance(e, (IpsecSaDeleted, Phase1Deleted))]
    established = [e for e in net.events["b"] if isinstance(e, Phase1Established)]
    assert [e.peer[0] for e in established] == [NAT_IP, NAT_IP]  # one address for both


def test_the_same_identity_again_removes_its_own_older_sas_only() -> None:
    net = BehindOneNat()
    net.boot("one", seed=1)
    net.boot("two", seed=2)
    old_one, two = net.sas("one"), net.sas("two")
    net.advance(10)
    net.boot("one", seed=3)  # "one" restarted: it has no state, B still has the old
    deleted = [e for e in net.events["b"] if isinstance(e, IpsecSaDeleted)]
    assert {e.inbound_spi for e in deleted} == old_one
    assert {e.reason for e in deleted} == {"initial contact"}
    assert [e.reason for e in net.events["b"] if isinstance(e, Phase1Deleted)] == \
        ["initial contact"]
    assert net.sas("one") and not net.sas("one") & old_one
    assert net.sas("two") == two
    assert net.phase1_identities() == ["one.example", "two.example"]


def test_identities_compare_by_type_and_value() -> None:
    one = Identification.fqdn("one.example")
    assert collisions.same_entity(one, Identification.fqdn("ONE.example"))
    assert not collisions.same_entity(one, Identification.fqdn("two.example"))
    assert not collisions.same_entity(one, Identification.user_fqdn("one.example"))
    assert not collisions.same_entity(one, None)
    assert collisions.same_entity(Identification.address("192.0.2.1"),
                                  Identification.address("192.0.2.1", protocol_id=17, port=500))
