"""A remote-access client and a stand-in for the daemon's AAA, for engine tests.

The engine is a gateway only (XAUTH and Mode Config servers), so the client
side of a subscriber login lives here: engine A initiates Aggressive Mode
with an ID_KEY_ID group name and the group key, as vpnc does, and `Client`
answers the gateway's Transaction exchanges with A's ISAKMP SA (the XAUTH
client, then a Mode Config pull with vpnc's attribute list).  Once it has
its address it turns A's tunnel on for address/32 <-> 0.0.0.0/0, so A's
Quick Mode follows, as vpnc's does.  `Aaa` answers `SubscriberLoginRequested`
the way the daemon does (local users and a pool).  `engine_client` is the
engine itself as a remote-access client (the load generator's role), and a
`Crowd` of them, each with its own address, is one `Pair` side: behind the
pair's NAT they are many subscribers from one address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any

from engine_helpers import A_IP, B_IP, Nat, Pair, rng

from ipsecgw.isakmp import transaction
from ipsecgw.isakmp.codec import Attribute, AttributePayload, Message
from ipsecgw.isakmp.constants import CfgType, ConfigAttribute, ExchangeType
from ipsecgw.isakmp.engine import Datagram, Engine
from ipsecgw.isakmp.events import Event, SubscriberAssignment, SubscriberLoginRequested
from ipsecgw.isakmp.policy import (
    EnginePolicy,
    Identity,
    IdentityPattern,
    IkeRule,
    RemoteAccess,
    TunnelPolicy,
    TunnelProfile,
)

GROUP = "remote-group"
GROUP_PSK = b"group-secret"
TRANSFORM = "esp-aes256-hmac-sha256"
RULE = IkeRule(group=14, hash="sha", aggressive_mode="accepted")

#: What vpnc asks for in its Mode Config REQUEST (vpnc.c do_phase2_config).
VPNC_REQUEST = (
    ConfigAttribute.INTERNAL_IP4_ADDRESS, ConfigAttribute.INTERNAL_IP4_NETMASK,
    ConfigAttribute.INTERNAL_IP4_DNS, ConfigAttribute.INTERNAL_IP4_NBNS,
    ConfigAttribute.UNITY_DEF_DOMAIN, ConfigAttribute.UNITY_FW_TYPE,
    ConfigAttribute.UNITY_PFS, ConfigAttribute.UNITY_BANNER, ConfigAttribute.UNITY_SAVE_PASSWD,
    ConfigAttribute.UNITY_SPLIT_INCLUDE, ConfigAttribute.UNITY_SPLIT_DNS,
    ConfigAttribute.UNITY_DDNS_HOSTNAME, ConfigAttribute.APPLICATION_VERSION,
)


def profile(**kwargs: Any) -> TunnelProfile:
    defaults: dict[str, Any] = dict(
        name="remote", local_address=B_IP, peer_identity=IdentityPattern("key-id", GROUP),
        psk=GROUP_PSK, transforms=(TRANSFORM,), dns=("10.1.0.53",), domain_suffix="corp.example")
    defaults.update(kwargs)
    return TunnelProfile(**defaults)


def gateway_policy(*profiles: TunnelProfile, **kwargs: Any) -> EnginePolicy:
    settings: dict[str, Any] = {"ike_rules": (RULE,), **kwargs}
    return EnginePolicy(vr="b", local_addresses=(B_IP,), profiles=profiles or (profile(),),
                        **settings)


def client_policy(group: str = GROUP, psk: bytes = GROUP_PSK,
                  address: str = A_IP) -> EnginePolicy:
    """A's tunnel is off until Mode Config gives it an address (`Client`)."""
    tunnel = TunnelPolicy(name="vpn", local_address=address, peer_address=B_IP,
                          transforms=(TRANSFORM,), local_identity=Identity("key-id", group),
                          local_network="0.0.0.0/32", remote_network="0.0.0.0/0", enabled=False)
    return EnginePolicy(vr="a", local_addresses=(address,),
                        ike_rules=(replace(RULE, aggressive_mode="required"),),
                        preshared_keys={B_IP: psk}, tunnels=(tunnel,))


def engine_client(username: str | None = "alice", password: str | None = "wonderland",
                  address: str = A_IP) -> EnginePolicy:
    """A as a remote-access client in the engine itself (the load generator's role)."""
    policy = client_policy(address=address)
    vpn = replace(policy.tunnels[0], enabled=True,
                  remote_access=RemoteAccess(username, password))
    return replace(policy, tunnels=(vpn,))


@dataclass
class Crowd:
    """Remote-access clients (engines in the client role, `engine_client`), each
    with its own address, standing together as one side of a `Pair`: the
    pair's NAT gives each its own port on NAT_IP.  A client in `silent` has
    crashed: no timers, nothing sent, what reaches it is lost."""

    clients: dict[str, Engine]  # by local address
    silent: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, users: list[str], password: str, seed: int = 200, **policy: Any) -> Crowd:
        """One client per user (`policy`: EnginePolicy fields of every client)."""
        return cls({f"10.97.0.{10 + n}": Engine(replace(
            engine_client(user, password, address=f"10.97.0.{10 + n}"), **policy),
            rng=rng(seed + n)) for n, user in enumerate(users)})

    def _running(self) -> list[Engine]:
        return [engine for address, engine in self.clients.items() if address not in self.silent]

    @property
    def policy(self) -> EnginePolicy:
        return next(iter(self.clients.values())).policy

    def receive_datagram(self, data: bytes, local: tuple[str, int], remote: tuple[str, int],
                         now: float) -> None:
        if local[0] not in self.silent:
            self.clients[local[0]].receive_datagram(data, local, remote, now)

    def datagrams_to_send(self, now: float) -> list[Datagram]:
        return [d for engine in self._running() for d in engine.datagrams_to_send(now)]

    def next_event(self) -> Event | None:
        for engine in self.clients.values():
            event = engine.next_event()
            if event is not None:
                return event
        return None

    def get_timer(self) -> float | None:
        return min((t for e in self._running() if (t := e.get_timer()) is not None),
                   default=None)

    def handle_timer(self, now: float) -> None:
        for engine in self._running():
            engine.handle_timer(now)


def crowd_pair(crowd: Crowd, gateway: EnginePolicy | None = None, *, nat: bool = True) -> Pair:
    """The crowd as side A, behind a NAT (or each from its own address), and a
    gateway with a tunnel profile as side B."""
    pair = Pair(crowd, Engine(gateway or gateway_policy(), rng=rng(1)),  # type: ignore[arg-type]
                nat=Nat() if nat else None)
    pair.check_indexes = False  # the crowd has no registry of its own: B's is checked by tests
    return pair


@dataclass
class Client:
    """The client's side of XAUTH and Mode Config, on engine A's ISAKMP SA."""

    username: str = "alice"
    password: str | None = "wonderland"
    answer_xauth: bool = True
    pull: bool = True  # Mode Config REQUEST once XAUTH said OK
    ack_config: bool = True  # ACK a pushed Mode Config SET (strongSwan's `pull = no`)
    chains: dict[bytes, transaction.Chains] = field(default_factory=dict)
    config_sets: int = 0  # pushed SETs received (copies too)
    xauth_requests: int = 0
    xauth_status: int | None = None
    config: AttributePayload | None = None
    config_id: int = 0

    @property
    def address(self) -> str | None:
        attribute = None if self.config is None else \
            self.config.find(ConfigAttribute.INTERNAL_IP4_ADDRESS)
        if attribute is None or not isinstance(attribute.value, bytes):
            return None
        return str(ipaddress.IPv4Address(attribute.value))

    def handle(self, pair: Pair, message: Message) -> list[bytes]:
        ike = pair.a._sas.ike.get(message.initiator_cookie + message.responder_cookie)
        if ike is None:
            return []  # for a client the test has replaced (`pair.a`): it is gone
        chains = self.chains.setdefault(ike.cookies, transaction.Chains())
        payload = transaction.open_message(ike, chains, message)
        mid = message.message_id
        if payload.cfg_type == CfgType.REQUEST:
            self.xauth_requests += 1
            if not self.answer_xauth:
                chains.forget(mid)  # its retransmission starts the chain again
                return []
            answer = [Attribute(ConfigAttribute.XAUTH_TYPE, 0, True),
                      Attribute(ConfigAttribute.XAUTH_USER_NAME, self.username.encode(), False)]
            if self.password is not None:
                answer.append(Attribute(ConfigAttribute.XAUTH_USER_PASSWORD,
                                        self.password.encode(), False))
            reply = AttributePayload(CfgType.REPLY, payload.identifier, tuple(answer))
            return [transaction.seal(ike, chains, mid, reply)]
        if payload.cfg_type == CfgType.SET and \
                payload.find(ConfigAttribute.INTERNAL_IP4_ADDRESS) is not None:
            # Mode Config pushed: take it and ACK with the attributes taken,
            # empty, as strongSwan does (mode_config.c build_ack).
            self.config_sets += 1
            if not self.ack_config:
                chains.forget(mid)
                return []
            self.configured(pair, payload)
            ack = AttributePayload(CfgType.ACK, payload.identifier, tuple(
                Attribute(a.type, b"", False) for a in payload.attributes))
            return [transaction.seal(ike, chains, mid, ack)]
        if payload.cfg_type == CfgType.SET:
            status = payload.find(ConfigAttribute.XAUTH_STATUS)
            self.xauth_status = None if status is None else status.as_int()
            ack = AttributePayload(CfgType.ACK, payload.identifier, payload.attributes)
            out = [transaction.seal(ike, chains, mid, ack)]
            if self.xauth_status == 1 and self.pull:
                out.append(self.request_config(pair, ike.cookies))
            return out
        if payload.cfg_type == CfgType.REPLY and mid == self.config_id:
            self.configured(pair, payload)
        return []

    def configured(self, pair: Pair, config: AttributePayload) -> None:
        """Mode Config gave us `config`: negotiate for our address, as vpnc does."""
        self.config = config
        if self.address is not None:
            vpn = replace(pair.a.policy.tunnels[0], enabled=True,
                          local_network=f"{self.address}/32")
            pair.a.update_policy(replace(pair.a.policy, tunnels=(vpn,)), pair.now)

    def request_config(self, pair: Pair, cookies: bytes) -> bytes:
        """A Mode Config REQUEST (pull) as vpnc sends it."""
        ike = pair.a._sas.ike[cookies]
        chains = self.chains.setdefault(cookies, transaction.Chains())
        self.config_id = 0x5EED0000 + len(self.chains)
        request = AttributePayload(CfgType.REQUEST, 20, tuple(
            Attribute(kind, b"", False) for kind in VPNC_REQUEST))
        return transaction.seal(ike, chains, self.config_id, request)


@dataclass
class SubscriberPair(Pair):
    """A `Pair` whose side A is a remote-access client (`Client`)."""

    client: Client = field(default_factory=Client)

    def _deliver(self, direction: str, datagram: Datagram) -> None:
        message = Message.decode_header(datagram.data)
        if direction == "ba" and message.exchange_type == ExchangeType.TRANSACTION:
            self.wire.append((direction, datagram))
            for reply in self.client.handle(self, Message.decode(datagram.data)):
                self.send_from_client(reply)
            return
        super()._deliver(direction, datagram)

    def send_from_client(self, data: bytes) -> None:
        self._deliver("ab", Datagram(data, (A_IP, 500), (B_IP, 500)))

    def connect(self) -> None:
        """A starts Aggressive Mode for its (still disabled) tunnel."""
        self.a.initiate_phase1(self.a.policy.tunnels[0], self.now, rekey=False)
        self.pump()


@dataclass
class Aaa:
    """The daemon's part: local users, a pool, and the answer to each login."""

    users: dict[str, str] = field(default_factory=lambda: {"alice": "wonderland"})
    pool: list[str] = field(default_factory=lambda: [f"10.200.0.{n}" for n in range(5, 9)])
    answer: bool = True
    seen: int = 0
    requests: list[SubscriberLoginRequested] = field(default_factory=list)

    def serve(self, pair: Pair) -> None:
        """Answer every login B asked for since last time, until quiet."""
        while True:
            new = pair.events("b", SubscriberLoginRequested)[self.seen:]
            if not new or not self.answer:
                return
            self.seen += len(new)
            for request in new:
                self.requests.append(request)
                ok = request.username is None or \
                    self.users.get(request.username) == request.password
                if ok:
                    pair.b.subscriber_login_result(
                        request.subscriber, pair.now, accepted=True,
                        assignment=SubscriberAssignment(self.pool.pop(0)))
                else:
                    pair.b.subscriber_login_result(request.subscriber, pair.now, accepted=False,
                                                   reason="wrong password")
            pair.pump()


def subscriber_pair(gateway: EnginePolicy | None = None, client: Client | None = None,
                    client_engine: EnginePolicy | None = None, seed: int = 1) -> SubscriberPair:
    return SubscriberPair(Engine(client_engine or client_policy(), rng=rng(seed)),
                          Engine(gateway or gateway_policy(), rng=rng(seed + 1000)),
                          client=client or Client())


def login(pair: SubscriberPair, aaa: Aaa) -> None:
    pair.connect()
    aaa.serve(pair)
    pair.advance(5)  # A's Quick Mode
    aaa.serve(pair)
