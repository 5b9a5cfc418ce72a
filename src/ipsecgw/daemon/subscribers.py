"""Remote-access subscribers in the daemon (issue 16): login, interface, accounting.

The engine (sans-IO) negotiates; this module does what needs I/O, following
the engine's subscriber events (docs/INTERNALS.md, "Subscribers"):

- a login request (the client's XAUTH reply, or phase 1 done when the
  profile has `xauth none`) is checked by `aaa.authenticator` (RADIUS and
  local users in the order of `aaa authentication xauth`) and given an
  address (RADIUS Framed-IP-Address, else the profile's pool); the answer
  goes back through `deliver`, which the runtime hands to the engine;
- a subscriber that is up gets its tunnel interface in the data plane (a
  host route to its address while its SAs are installed) and an
  Accounting-Start, then an Interim-Update every Acct-Interim-Interval of
  its Access-Accept, or else every `aaa user accounting interval`;
- a subscriber that goes loses its interface and its address, and an
  Accounting-Stop reports the interface's octet and packet counters.

The events are read through the Protocols below (the fields the engine's
event classes carry), so this module depends on no engine class and is
tested with stand-ins. RADIUS work runs in asyncio tasks; a task whose
subscriber went meanwhile is cancelled and holds nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..aaa.authenticator import AuthSettings, Outcome, authenticate
from ..aaa.pools import AddressPool, PoolExhausted
from ..aaa.radius import AccountingRecord, RadiusClient, RadiusServer, RadiusTimeout
from ..cli.gateway import PoolUsage, SubscriberInfo, pool_usage
from ..config.model import RunningConfig
from ..config.remote_access import RadiusRole, RemoteAccess, TunnelProfile
from ..dataplane.base import DataPlane, TunnelSpec
from ..netns import DEFAULT_VR

log = logging.getLogger("ipsecgw.subscribers")


Address = tuple[str, int]

#: Counters of `show ipsec statistics`, per transport VR.  The AAA verdicts
#: (RADIUS or local users) are counted here; the engine counts the XAUTH
#: exchanges' outcomes (`xauth_succeeded` / `xauth_failed`), which also end
#: in failure when a client never answers.
STATISTICS = ("aaa_logins_accepted", "aaa_logins_refused", "radius_timeouts",
              "subscriber_logins_refused", "subscribers_up")


class LoginRequest(Protocol):
    """`SubscriberLoginRequested` (the engine's event)."""

    @property
    def subscriber(self) -> int: ...
    @property
    def profile(self) -> str: ...
    @property
    def peer(self) -> Address: ...
    @property
    def identity(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...


class SubscriberUpEvent(Protocol):
    """`SubscriberUp`."""

    @property
    def subscriber(self) -> int: ...
    @property
    def tunnel(self) -> str: ...
    @property
    def profile(self) -> str: ...
    @property
    def peer(self) -> Address: ...
    @property
    def username(self) -> str | None: ...
    @property
    def address(self) -> str: ...


class SubscriberDownEvent(Protocol):
    """`SubscriberDown`."""

    @property
    def subscriber(self) -> int: ...
    @property
    def tunnel(self) -> str: ...
    @property
    def reason(self) -> str: ...


class LoginFailedEvent(Protocol):
    """`SubscriberLoginFailed`."""

    @property
    def subscriber(self) -> int: ...
    @property
    def profile(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def reason(self) -> str: ...


@dataclass(frozen=True)
class Grant:
    """A login accepted: what Mode Config gives the client (SubscriberAssignment)."""

    address: str
    netmask: str = "255.255.255.255"
    dns: tuple[str, ...] = ()
    wins: tuple[str, ...] = ()
    domain: str | None = None
    split_networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refusal:
    reason: str


#: The runtime's way back to the engine: (transport VR, subscriber, answer).
Deliver = Callable[[str, int, "Grant | Refusal"], None]


@dataclass
class _Session:
    subscriber: int
    vr: str
    profile: str
    peer: Address
    username: str
    address: str | None = None
    pool: str | None = None  # the pool the address came from
    authentic: Literal["radius", "local"] = "local"
    class_: bytes | None = None
    tunnel: str | None = None  # set once up
    since: float = 0.0  # wall clock, once up
    started: float = 0.0  # monotonic, once up
    session_id: str = ""
    accounted: float = 0.0  # monotonic time of the last Start or Interim-Update
    interim: int | None = None  # RADIUS Acct-Interim-Interval (seconds), if it gave one
    task: asyncio.Task[None] | None = field(default=None, repr=False)


def _terminate_cause(reason: str) -> str:
    """RFC 2866 5.10 Acct-Terminate-Cause from the engine's reason text."""
    text = reason.lower()
    for words, cause in ((("dead", "dpd"), "lost-carrier"), (("clear",), "admin-reset"),
                         (("expire", "lifetime"), "session-timeout"),
                         (("shutdown", "stopping", "retire"), "nas-reboot"),
                         (("delete", "logout"), "user-request")):
        if any(word in text for word in words):
            return cause
    return "nas-error"


def interface_name(subscriber: int) -> str:
    """The TUN device of a subscriber (Linux names: 15 characters, no ':')."""
    return f"ipss{subscriber}"


class SubscriberManager:
    def __init__(self, dataplane: DataPlane, deliver: Deliver,
                 *, radius: RadiusClient | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.dataplane = dataplane
        self.deliver = deliver
        self.clock = clock  # the runtime's monotonic `now` (tests advance their own)
        self.radius = radius if radius is not None else RadiusClient()
        self._config = RemoteAccess()
        self._local_users: dict[str, str] = {}
        self._pools: dict[str, AddressPool] = {}
        self._sessions: dict[tuple[str, int], _Session] = {}
        self._accounting: set[asyncio.Task[None]] = set()
        self._counters: dict[str, dict[str, int]] = {}
        self._stopping = False  # the daemon is stopping: subscribers go with NAS-Reboot
        # Acct-Session-Id must be unique across restarts (RFC 2866 5.5).
        self._boot = f"{int(time.time()) & 0xFFFFFFFF:08x}"

    # -- configuration ---------------------------------------------------------

    def configure(self, config: RunningConfig) -> None:
        """Pools follow the configuration, keeping what they lent in range."""
        self._config = config.remote_access
        # Looked up once per login: built once per configuration change, not
        # per login (thousands of local users would make each login O(users)).
        self._local_users = {u.name: u.password for u in self._config.users}
        pools = {}
        for pool in self._config.pools:
            old = self._pools.get(pool.name)
            pools[pool.name] = (old.resized(pool.first, pool.last) if old is not None
                                else AddressPool(pool.name, pool.first, pool.last))
        self._pools = pools

    def _servers(self, role: RadiusRole) -> tuple[RadiusServer, ...]:
        # A server of VR default is asked from the client's own VR (the router's).
        return tuple(RadiusServer(s.address, (s.key or "").encode(), s.port, float(s.timeout),
                                  s.retransmit, vr=None if s.vr == DEFAULT_VR else s.vr)
                     for s in self._config.servers(role))

    def _count(self, vr: str, name: str, delta: int = 1) -> None:
        counters = self._counters.setdefault(vr, dict.fromkeys(STATISTICS, 0))
        counters[name] += delta

    # -- engine events -----------------------------------------------------------

    def login_requested(self, vr: str, event: LoginRequest) -> None:
        key = (vr, event.subscriber)
        session = _Session(event.subscriber, vr, event.profile, event.peer,
                           event.username or event.identity)
        self._sessions[key] = session
        session.task = asyncio.get_running_loop().create_task(self._login(session, event))

    async def _login(self, session: _Session, event: LoginRequest) -> None:
        answer = await self._decide(session, event)
        session.task = None
        if isinstance(answer, Refusal):
            self._sessions.pop((session.vr, session.subscriber), None)
            self._count(session.vr, "subscriber_logins_refused")
            log.warning("subscriber %d (profile %s, %s, user %s) refused: %s",
                        session.subscriber, session.profile, session.peer[0],
                        session.username, answer.reason)
        self.deliver(session.vr, session.subscriber, answer)

    async def _decide(self, session: _Session, event: LoginRequest) -> Grant | Refusal:
        profile = self._config.profile(session.profile)
        if profile is None:
            return Refusal(f"tunnel profile {session.profile} no longer exists")
        framed: str | None = None
        if profile.xauth:
            timeouts = self.radius.timeouts
            outcome = await self._authenticate(session, event)
            self._count(session.vr, "radius_timeouts", self.radius.timeouts - timeouts)
            if not outcome.accepted:
                self._count(session.vr, "aaa_logins_refused")
                return Refusal(outcome.reason)
            self._count(session.vr, "aaa_logins_accepted")
            session.authentic = outcome.method or "local"
            session.class_ = outcome.class_
            session.interim = outcome.interim_interval
            framed = outcome.framed_address
        return self._assign(session, profile, framed)

    async def _authenticate(self, session: _Session, event: LoginRequest) -> Outcome:
        if event.username is None or event.password is None:
            return Outcome(False, None, "no XAUTH user name or password")
        settings = AuthSettings(self._config.xauth_methods, self._servers("authentication"),
                                self._local_users)
        return await authenticate(self.radius, settings, event.username, event.password,
                                  calling_station=f"{session.peer[0]}:{session.peer[1]}")

    def _assign(self, session: _Session, profile: TunnelProfile,
                framed: str | None) -> Grant | Refusal:
        pool = self._pools.get(profile.pool) if profile.pool is not None else None
        if framed is not None:
            if pool is not None and pool.contains(framed):
                if not pool.reserve(framed):
                    return Refusal(f"Framed-IP-Address {framed} is lent to another subscriber")
                session.pool = pool.name
            elif any(s.address == framed for s in self._sessions.values()):
                return Refusal(f"Framed-IP-Address {framed} is lent to another subscriber")
            session.address = framed
        elif pool is not None:
            try:
                session.address = pool.allocate()
            except PoolExhausted as exc:
                return Refusal(str(exc))
            session.pool = pool.name
        else:
            return Refusal(f"no address: RADIUS gave none and profile {profile.name} "
                           "has no ip pool")
        return Grant(session.address, dns=profile.dns, wins=profile.wins,
                     domain=profile.domain_suffix, split_networks=profile.local_networks)

    def login_failed(self, vr: str, event: LoginFailedEvent) -> None:
        """The engine gave up on a login (refused, or the client went before the end)."""
        self._drop(vr, event.subscriber)
        log.info("subscriber %d (profile %s, user %s) login failed: %s", event.subscriber,
                 event.profile, event.username or "-", event.reason)

    def up(self, vr: str, event: SubscriberUpEvent) -> None:
        session = self._sessions.get((vr, event.subscriber))
        profile = self._config.profile(event.profile)
        if session is None or profile is None:
            log.error("subscriber %d up without a login of ours; ignored", event.subscriber)
            return
        spec = TunnelSpec(name=event.tunnel, vr=vr, mtu=profile.mtu,
                          remote_networks=(f"{ipaddress.IPv4Address(event.address)}/32",),
                          local_networks=profile.local_networks, transport_vr=vr,
                          ifname=interface_name(event.subscriber))
        try:
            self.dataplane.add_tunnel(spec)
        except Exception as exc:  # a broken TUN must not stop the others
            log.error("subscriber %d: cannot create its interface: %s", event.subscriber, exc)
            return
        session.tunnel = event.tunnel
        session.since, session.started = time.time(), self.clock()
        session.session_id = f"{self._boot}{event.subscriber:08x}"
        self._count(vr, "subscribers_up")
        log.info("subscriber %d up: user %s from %s:%d, address %s, interface %s",
                 event.subscriber, session.username, *session.peer, event.address,
                 event.tunnel)
        self._account(session, "start")

    def down(self, vr: str, event: SubscriberDownEvent) -> None:
        session = self._sessions.get((vr, event.subscriber))
        if session is not None and session.tunnel is not None:
            counts = self._counts(session.tunnel)
            self.dataplane.remove_tunnel(session.tunnel)
            self._count(vr, "subscribers_up", -1)
            cause = "nas-reboot" if self._stopping else _terminate_cause(event.reason)
            self._account(session, "stop", cause, counts)
        log.info("subscriber %d down (%s)", event.subscriber, event.reason)
        self._drop(vr, event.subscriber)

    def _counts(self, tunnel: str) -> tuple[int, int, int, int]:
        """Octets and packets in and out of a subscriber's interface."""
        try:
            c = self.dataplane.counters(tunnel)
        except KeyError:
            return (0, 0, 0, 0)
        return (c.inbound_bytes, c.outbound_bytes, c.inbound_packets, c.outbound_packets)

    def stopping(self) -> None:
        """The daemon stops: the subscribers it logs out are accounted as NAS-Reboot."""
        self._stopping = True

    def send_interims(self, now: float) -> None:
        """Interim-Update (RFC 2866 5.1) for each subscriber last accounted its
        interval ago (`now` on `clock`): RADIUS's Acct-Interim-Interval for it
        (RFC 2869 5.16), else `aaa user accounting interval`, as JUNOSe does."""
        default = self._config.accounting_interval * 60
        for session in self._sessions.values():
            interval = session.interim or default
            if session.tunnel is not None and now - session.accounted >= interval:
                self._account(session, "interim", counts=self._counts(session.tunnel))

    def _drop(self, vr: str, subscriber: int) -> None:
        """Forget a subscriber: its pending login, its address."""
        session = self._sessions.pop((vr, subscriber), None)
        if session is None:
            return
        if session.task is not None:
            session.task.cancel()
        if session.pool is not None and session.address is not None:
            pool = self._pools.get(session.pool)
            if pool is not None:
                pool.release(session.address)

    # -- accounting (RFC 2866) -----------------------------------------------------

    def _account(self, session: _Session, status: Literal["start", "interim", "stop"],
                 cause: str | None = None, counts: tuple[int, int, int, int] = (0, 0, 0, 0)
                 ) -> None:
        session.accounted = self.clock()
        servers = self._servers("accounting")
        if not servers:
            return
        record = AccountingRecord(
            status, session.session_id, session.username, session.address,
            calling_station=f"{session.peer[0]}:{session.peer[1]}",
            # Input is what the client sent: the gateway's inbound.
            input_octets=counts[0], output_octets=counts[1],
            input_packets=counts[2], output_packets=counts[3],
            session_time=int(self.clock() - session.started),
            authentic=session.authentic, terminate_cause=cause, class_=session.class_)
        task = asyncio.get_running_loop().create_task(self._send(servers, record, session.vr))
        self._accounting.add(task)
        task.add_done_callback(self._accounting.discard)

    async def _send(self, servers: tuple[RadiusServer, ...], record: AccountingRecord,
                    vr: str) -> None:
        try:
            await self.radius.account(servers, record)
        except RadiusTimeout:
            self._count(vr, "radius_timeouts")
            log.error("accounting %s of session %s lost: no RADIUS server answered",
                      record.status, record.session_id)

    async def finish_accounting(self, timeout: float = 5.0) -> None:
        """Wait (a bounded time) for Accounting-Requests in flight: at shutdown."""
        if self._accounting:
            await asyncio.wait(set(self._accounting), timeout=timeout)

    # -- status -------------------------------------------------------------------

    def subscribers(self) -> list[SubscriberInfo]:
        result = []
        for s in self._sessions.values():
            if s.tunnel is None:
                continue
            try:
                c = self.dataplane.counters(s.tunnel)
                inbound, outbound = c.inbound_bytes, c.outbound_bytes
            except KeyError:
                inbound = outbound = 0
            result.append(SubscriberInfo(s.subscriber, s.profile, s.vr, s.username,
                                         f"{s.peer[0]}:{s.peer[1]}", s.address,
                                         f"ipsec:{s.tunnel}", s.since, inbound, outbound))
        return result

    def pool_usage(self) -> list[PoolUsage]:
        return [pool_usage(p.name, p.first, p.last, p.in_use) for p in self._pools.values()]

    def statistics(self) -> dict[str, dict[str, int]]:
        return {vr: dict(c) for vr, c in self._counters.items()}
