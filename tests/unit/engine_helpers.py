"""Two engines back to back with a hand-advanced clock (aioquic's client_and_server pattern).

`Pair` moves datagrams between engine A (10.99.0.1) and engine B (10.99.0.2),
optionally through a simulated NAT in front of A (A appears to B as
192.0.2.1 with a translated source port), and lets a test drop, duplicate or
reorder datagrams with a `Filter`.  A side can be down (not started yet, or
crashed: `stop`) and come up later with a fresh engine (`boot`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ipsecgw.isakmp.collisions import same_entity
from ipsecgw.isakmp.engine import Datagram, Engine
from ipsecgw.isakmp.events import (
    Event,
    IpsecSaDeleted,
    IpsecSaEstablished,
    Phase1Deleted,
    Phase1Established,
)
from ipsecgw.isakmp.policy import EnginePolicy, IkeRule, TunnelPolicy
from ipsecgw.isakmp.registry import Registry, child_peer, ike_peer, peer_entity
from ipsecgw.isakmp.sa import Role

A_IP = "10.99.0.1"
B_IP = "10.99.0.2"
NAT_IP = "192.0.2.1"
PSK = b"s3cr3t-test-psk"

# (direction "ab" | "ba", datagram, its index in that direction) -> how many copies to
# deliver (0 drops it, 2 duplicates it), or HOLD to deliver it after the next datagram.
Filter = Callable[[str, Datagram, int], int]
HOLD = -1


def rng(seed: int) -> Callable[[int], bytes]:
    generator = random.Random(seed)
    return generator.randbytes


def tunnel(name: str, local: str, peer: str, **kwargs: Any) -> TunnelPolicy:
    defaults: dict[str, Any] = {}
    if local == A_IP:
        defaults.update(local_network="10.98.1.0/24", remote_network="10.98.2.0/24")
    else:
        defaults.update(local_network="10.98.2.0/24", remote_network="10.98.1.0/24")
    defaults.update(kwargs)
    return TunnelPolicy(name=name, local_address=local, peer_address=peer, **defaults)


def policies(*, nat: bool = False, rules: tuple[IkeRule, ...] = (IkeRule(group=19),),
             a_tunnel: dict[str, Any] | None = None, b_tunnel: dict[str, Any] | None = None,
             a: dict[str, Any] | None = None, b: dict[str, Any] | None = None,
             ) -> tuple[EnginePolicy, EnginePolicy]:
    a_seen_by_b = NAT_IP if nat else A_IP
    policy_a = EnginePolicy(
        vr="a", local_addresses=(A_IP,), ike_rules=rules, preshared_keys={B_IP: PSK},
        tunnels=(tunnel("gw", A_IP, B_IP, **(a_tunnel or {})),))
    policy_b = EnginePolicy(
        vr="b", local_addresses=(B_IP,), ike_rules=rules, preshared_keys={a_seen_by_b: PSK},
        tunnels=(tunnel("gw", B_IP, a_seen_by_b, **(b_tunnel or {})),))
    return replace(policy_a, **(a or {})), replace(policy_b, **(b or {}))


CHECK_LIMIT = 100


def check_registry(sas: Registry) -> None:
    """Debug check: every per-peer index of `sas` answers what a scan of its
    tables answers (the scans the indexes replaced, kept here as the reference)."""
    keys = {ike_peer(ike) for ike in sas.ike.values()} | \
        {child_peer(child) for child in sas.children.values()}
    for key in keys:
        ikes = sas.ike_of_peer(key)  # in order of addition
        assert {id(ike) for ike in ikes} == \
            {id(ike) for ike in sas.ike.values() if ike_peer(ike) == key}, key
        established = [ike for ike in ikes if ike.established]
        assert sas.phase1_in_progress(key) == (len(established) < len(ikes)), key
        assert sas.has_established(key) == bool(established), key
        assert sas.initiating_of_peer(key) == [
            ike for ike in ikes if ike.role is Role.INITIATOR and not ike.established], key
        assert sas.replaced_ike(key) == [ike for ike in established if ike.rekeyed], key
        for replaced in (False, True):
            candidates = [ike for ike in established if ike.rekeyed == replaced]
            expected = max(candidates, key=lambda ike: ike.established_at or 0.0, default=None)
            assert sas.newest_ike(key, replaced=replaced) is expected, (key, replaced)
        assert sas.ike_count(key) == len(ikes)
        assert sas.first_ike(key) is (ikes[0] if ikes else None)
        children = sas.children_of_peer(key)
        for ike in established:
            entity = peer_entity(ike.peer_id)
            assert sas.ike_of_entity(key, entity) == [
                other for other in established if same_entity(other.peer_id, ike.peer_id)]
        for child in children:
            assert sas.children_of_entity(key, peer_entity(child.peer_id)) == [
                other for other in children if same_entity(other.peer_id, child.peer_id)]


@dataclass
class Nat:
    """A NAT in front of A: A's (ip, port) <-> (NAT_IP, mapped port)."""

    next_port: int = 41000
    mapping: dict[tuple[str, int], int] = field(default_factory=dict)

    def outbound(self, source: tuple[str, int]) -> tuple[str, int]:
        if source not in self.mapping:
            self.mapping[source] = self.next_port
            self.next_port += 1
        return (NAT_IP, self.mapping[source])

    def inbound(self, destination: tuple[str, int]) -> tuple[str, int] | None:
        for source, port in self.mapping.items():
            if destination == (NAT_IP, port):
                return source
        return None


@dataclass
class Pair:
    a: Engine
    b: Engine
    now: float = 0.0
    nat: Nat | None = None
    filter: Filter | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"ab": 0, "ba": 0})
    events_a: list[Event] = field(default_factory=list)
    events_b: list[Event] = field(default_factory=list)
    wire: list[tuple[str, Datagram]] = field(default_factory=list)
    held: list[tuple[str, Datagram]] = field(default_factory=list)
    #: Called after every pump (so after every timer firing of `advance`).
    observer: Callable[[Pair], None] | None = None
    #: Sides whose gateway is not running: no timers, nothing sent, what reaches it is lost.
    down: set[str] = field(default_factory=set)
    #: Per side, where the events of its current engine start in its sink (see `boot`).
    booted: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    #: Check both engines' registry indexes against scans after every pump, while
    #: they hold at most CHECK_LIMIT phase 1 SAs (above, the check's scans would
    #: dominate the test's time: the large tests measure scale, the small ones
    #: exercise every index).
    check_indexes: bool = True

    def engine(self, side: str) -> Engine:
        return self.a if side == "a" else self.b

    def sink(self, side: str) -> list[Event]:
        return self.events_a if side == "a" else self.events_b

    def running(self) -> list[Engine]:
        return [self.engine(side) for side in "ab" if side not in self.down]

    def stop(self, side: str) -> None:
        """The gateway on `side` crashes or is switched off (it keeps no state)."""
        self.down.add(side)

    def boot(self, side: str, seed: int) -> None:
        """A fresh gateway with the same configuration starts on `side` now."""
        engine = Engine(self.engine(side).policy, rng=rng(seed))
        setattr(self, side, engine)
        self.down.discard(side)
        self.booted[side] = len(self.sink(side))
        engine.handle_timer(self.now)
        self.pump()

    def _drain_events(self) -> None:
        for engine, sink in ((self.a, self.events_a), (self.b, self.events_b)):
            while (event := engine.next_event()) is not None:
                sink.append(event)

    def _deliver(self, direction: str, datagram: Datagram) -> None:
        self.wire.append((direction, datagram))
        if direction[1] in self.down:
            return
        if direction == "ab":
            source = self.nat.outbound(datagram.local) if self.nat else datagram.local
            self.b.receive_datagram(datagram.data, datagram.remote, source, self.now)
            return
        destination: tuple[str, int] | None = datagram.remote
        if self.nat is not None:
            destination = self.nat.inbound(datagram.remote)
            if destination is None:
                return  # no mapping: the NAT drops it
        self.a.receive_datagram(datagram.data, destination, datagram.local, self.now)

    def pump(self, rounds: int = 50) -> int:
        """Deliver datagrams until both engines are quiet; returns how many moved."""
        moved = 0
        for _ in range(rounds):
            outgoing = [(side + peer, d) for side, peer in (("a", "b"), ("b", "a"))
                        if side not in self.down
                        for d in self.engine(side).datagrams_to_send(self.now)]
            self._drain_events()
            if not outgoing:
                break
            for direction, datagram in outgoing:
                index = self.counts[direction]
                self.counts[direction] += 1
                copies = 1 if self.filter is None else self.filter(direction, datagram, index)
                if copies == HOLD:
                    self.held.append((direction, datagram))
                    continue
                for _ in range(copies):
                    moved += 1
                    self._deliver(direction, datagram)
                if copies and self.held:
                    held, self.held = self.held, []
                    for item in held:
                        moved += 1
                        self._deliver(*item)
        self._drain_events()
        if self.check_indexes and len(self.a._sas.ike) + len(self.b._sas.ike) <= CHECK_LIMIT:
            check_registry(self.a._sas)
            check_registry(self.b._sas)
        if self.observer is not None:
            self.observer(self)
        return moved

    def advance(self, seconds: float) -> None:
        """Run both engines' timers up to now + seconds, pumping after each firing."""
        target = self.now + seconds
        for _ in range(100_000):
            timers = [t for t in (e.get_timer() for e in self.running()) if t is not None]
            due = min(timers) if timers else None
            if due is None or due > target:
                break
            self.now = max(self.now, due)
            for engine in self.running():
                engine.handle_timer(self.now)
            self.pump()
        else:
            raise AssertionError(f"timers do not advance (stuck at {self.now})")
        self.now = target
        for engine in self.running():
            engine.handle_timer(self.now)
        self.pump()

    def start(self) -> None:
        """A initiates first; B only starts its timers once it has heard from A."""
        self.a.handle_timer(self.now)
        self.pump()
        self.b.handle_timer(self.now)
        self.pump()

    def live_sas(self, side: str) -> set[tuple[bytes, bytes]]:
        """(inbound SPI, outbound SPI) of every installed IPsec SA of one side."""
        engine = self.a if side == "a" else self.b
        return {(sa.inbound_spi, sa.outbound_spi) for status in engine.tunnel_status(self.now)
                for sa in status.ipsec_sas}

    def consistent(self) -> bool:
        """Both sides hold mirror-image IPsec SAs, and at least one."""
        a = self.live_sas("a")
        return bool(a) and {(o, i) for i, o in a} == self.live_sas("b")

    def events(self, side: str, kind: type[Any], since: int = 0) -> list[Any]:
        """The events of `kind` one side emitted (from index `since` of its sink on)."""
        return [event for event in self.sink(side)[since:] if isinstance(event, kind)]


def make_pair(policy_a: EnginePolicy | None = None, policy_b: EnginePolicy | None = None, *,
              nat: bool = False, seed: int = 1) -> Pair:
    if policy_a is None or policy_b is None:
        policy_a, policy_b = policies(nat=nat)
    return Pair(Engine(policy_a, rng=rng(seed)), Engine(policy_b, rng=rng(seed + 1000)),
                nat=Nat() if nat else None)


def peer_address(index: int) -> str:
    """The index-th of B's addresses when B stands for many peers (10.100.0.1 ...)."""
    return f"10.100.{index // 250}.{index % 250 + 1}"


def many_tunnels(count: int, *, distinct_peers: bool = True, seed: int = 1,
                 a: dict[str, Any] | None = None, b: dict[str, Any] | None = None) -> Pair:
    """A with `count` tunnels to B: one peer address of B per tunnel (each tunnel owns
    its phase 1, as in the tunnels-held benchmark), or all to B_IP (one phase 1)."""
    tunnels_a, tunnels_b = [], []
    for index in range(count):
        peer = peer_address(index) if distinct_peers else B_IP
        a_net = f"10.{101 + index // 65536}.{index // 256 % 256}.{index % 256}/32"
        b_net = f"10.{111 + index // 65536}.{index // 256 % 256}.{index % 256}/32"
        tunnels_a.append(tunnel(f"t{index}", A_IP, peer, local_network=a_net,
                                remote_network=b_net))
        tunnels_b.append(tunnel(f"t{index}", peer, A_IP, local_network=b_net,
                                remote_network=a_net))
    addresses_b = tuple(sorted({t.local_address for t in tunnels_b}))
    policy_a = EnginePolicy(vr="a", local_addresses=(A_IP,), ike_rules=(IkeRule(group=19),),
                            preshared_keys={"0.0.0.0": PSK}, tunnels=tuple(tunnels_a))
    policy_b = EnginePolicy(vr="b", local_addresses=addresses_b, ike_rules=(IkeRule(group=19),),
                            preshared_keys={A_IP: PSK}, tunnels=tuple(tunnels_b))
    pair = make_pair(replace(policy_a, **(a or {})), replace(policy_b, **(b or {})), seed=seed)
    pair.check_indexes = count <= 20
    return pair


def installed_sas(events: list[Event], *, tied: bool, adopts: bool = False) -> dict[bytes, bytes]:
    """inbound SPI -> outbound SPI of the SAs a data plane driven by `events` holds,
    oldest first (the newest carries outbound traffic).  A `tied` peer also drops
    the IPsec SAs of an ISAKMP SA when that is deleted, as strongSwan does; one
    that `adopts` moves them all to a phase 1 the other side initiates, as
    strongSwan does as a Main Mode responder (its IKEv1 reauthentication)."""
    sas: dict[bytes, tuple[bytes, bytes]] = {}
    for event in events:
        if isinstance(event, IpsecSaEstablished):
            sas[event.inbound.spi] = (event.outbound.spi, event.phase1_cookies)
        elif isinstance(event, IpsecSaDeleted):
            sas.pop(event.inbound_spi, None)
        elif isinstance(event, Phase1Deleted) and tied:
            sas = {spi: sa for spi, sa in sas.items() if sa[1] != event.cookies}
        elif isinstance(event, Phase1Established) and adopts and event.role == "responder":
            sas = {spi: (outbound, event.cookies) for spi, (outbound, _) in sas.items()}
    return {spi: outbound for spi, (outbound, _) in sas.items()}


def traffic_flows(pair: Pair, *, tied: str | None = "b", adopts: bool = False) -> bool:
    """Both sides' newest SA reaches an SA the other side still holds, when the
    `tied` side behaves like strongSwan (see `installed_sas`; None: neither, two
    ipsecgw gateways).  A side's data plane starts empty when its gateway boots."""
    a = installed_sas(pair.events_a[pair.booted["a"]:], tied=tied == "a",
                      adopts=adopts and tied == "a")
    b = installed_sas(pair.events_b[pair.booted["b"]:], tied=tied == "b",
                      adopts=adopts and tied == "b")
    return bool(a) and bool(b) and list(a.values())[-1] in b and list(b.values())[-1] in a


def staggered(policy_a: EnginePolicy | None = None, policy_b: EnginePolicy | None = None, *,
              offset: float, first: str = "a", seed: int = 1) -> Pair:
    """Both gateways initiate; `first` starts at 0, the other `offset` seconds later
    (until then it is down: the first one's messages to it are lost)."""
    pair = make_pair(policy_a, policy_b, seed=seed)
    late = "b" if first == "a" else "a"
    pair.engine(first).handle_timer(pair.now)
    if offset:
        pair.down.add(late)
        pair.pump()
        pair.advance(offset)
        pair.down.discard(late)
    pair.engine(late).handle_timer(pair.now)
    pair.pump()
    return pair


def lossy(probability: float, until: float, seed: int, pair: Pair) -> Filter:
    """Drop each datagram with `probability` while the clock is before `until`."""
    generator = random.Random(seed)

    def decide(direction: str, datagram: Datagram, index: int) -> int:
        return 0 if pair.now < until and generator.random() < probability else 1

    return decide
