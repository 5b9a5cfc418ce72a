"""Load-generating IKEv1 initiator: many tunnels with distinct identities at one gateway.

Why this module is a little over 600 lines: it is one command (options, the
engines, one socket, the report, `--hold`'s status and marks), read top to
bottom by whoever runs a benchmark; its pieces serve nothing else.

    python -m ipsecgw.tools.loadgen --target 10.99.0.2 --tunnels 1000 --concurrency 50 \\
        --proposal aes128-sha1-modp2048 [--pfs 14] --psk SECRET

Each tunnel is driven by its own `ipsecgw.isakmp.Engine` with a single
`TunnelPolicy`: IKEv1 reuses an ISAKMP SA for every tunnel between the same
peers (RFC 2409 5.5: Quick Mode runs under an existing phase 1), so one engine
per tunnel is what forces a full phase 1 per tunnel, and a distinct local
identity per tunnel (user-fqdn ``load<n>@loadgen.test`` by default) keeps the
target from treating the tunnels as one peer re-authenticating. All engines
share one UDP socket; replies are demultiplexed by the initiator cookie, which
is ours in every message of every exchange (RFC 2408 3.1). There is no data
plane: an IPsec SA counts when the engine reports `IpsecSaEstablished`.

At most ``--concurrency`` tunnels negotiate at once; a tunnel's setup time runs
from the creation of its engine (its first message) to its IPsec SA. The rate
is the number established divided by the time from the first message to the
last IPsec SA. With ``--hold`` the tunnels are kept after the report (the
engines answer DPD) and a status line is printed whenever the number of
tunnels up changes; SIGUSR1 sets a mark, and the status then counts the
tunnels that got a fresh IPsec SA since the mark (how long a gateway takes to
bring every tunnel back after ``clear sa``). Without ``--hold`` (or when a
hold ends) the tunnels are deleted with Delete payloads before exit unless
``--no-delete``.

As a subscriber (``--group NAME --group-key KEY [--remote-access USER:PASSWORD]``)
each tunnel is a remote-access client of a gateway's tunnel profile, like
vpnc: Aggressive Mode with the group name as its key-id identity and the
group key, XAUTH with USER (``{n}`` = the tunnel's number) and PASSWORD
(without ``--remote-access``: no XAUTH expected), a Mode Config pull for its
address, then Quick Mode for that address/32 <-> ``--remote-network``. The
engine's client role does all of it (`TunnelPolicy.remote_access`,
isakmp/remote_access.py); the report then counts logins (``logins_per_s``)
and the distinct addresses the gateway gave out. A refused login is counted
under its reason and retried after the tunnel's back-off until ``--timeout``.

Output: one human line on stderr and, with ``--json``, JSON objects on stdout
(``{"report": ...}`` once, ``{"status": ...}`` while holding, ``{"final": ...}``).
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import json
import math
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..isakmp import events as ev
from ..isakmp.constants import IKE_PORT, NAT_T_PORT, NON_ESP_MARKER
from ..isakmp.engine import Engine
from ..isakmp.policy import (
    DpdPolicy,
    EnginePolicy,
    Identity,
    IdentityKind,
    IkeRule,
    RemoteAccess,
    TunnelPolicy,
)

_RECV_BATCH = 256

_ENCRYPTIONS = {"des": "des", "3des": "3des", "aes128": "aes128", "aes192": "aes192",
                "aes256": "aes256"}
# strongSwan proposal keyword -> the CLI's hash name (SPEC 3.3: sha = SHA-1).
_HASHES = {"md5": "md5", "sha1": "sha", "sha": "sha", "sha256": "sha256", "sha384": "sha384",
           "sha512": "sha512"}
_GROUPS = {"modp768": 1, "modp1024": 2, "modp1536": 5, "modp2048": 14, "modp3072": 15,
           "modp4096": 16, "ecp256": 19, "ecp384": 20}
_TRANSFORM_HASHES = {"md5": "md5", "sha": "sha", "sha256": "sha256", "sha384": "sha256",
                     "sha512": "sha256"}


def parse_proposal(text: str) -> IkeRule:
    """A strongSwan-style IKE proposal ("aes128-sha1-modp2048") as an IKE policy rule."""
    parts = text.lower().split("-")
    if len(parts) != 3 or parts[0] not in _ENCRYPTIONS or parts[1] not in _HASHES or \
            parts[2] not in _GROUPS:
        raise ValueError(
            f"proposal {text!r}: expected ENCRYPTION-HASH-GROUP, e.g. aes128-sha1-modp2048 "
            f"(encryption {'|'.join(_ENCRYPTIONS)}; hash {'|'.join(_HASHES)}; "
            f"group {'|'.join(_GROUPS)})")
    return IkeRule(priority=1, authentication="pre-share", encryption=_ENCRYPTIONS[parts[0]],
                   hash=_HASHES[parts[1]], group=_GROUPS[parts[2]])


def default_transform(rule: IkeRule) -> str:
    """The ESP transform that matches an IKE proposal (CLI transform names, SPEC 3.3)."""
    encryption = "aes128" if rule.encryption == "aes192" else rule.encryption
    return f"esp-{encryption}-hmac-{_TRANSFORM_HASHES[rule.hash]}"


@dataclass(frozen=True)
class LoadSpec:
    """What to generate; see `main` for the meaning of each option."""

    target: str
    tunnels: int
    concurrency: int
    rule: IkeRule
    transform: str
    psk: bytes = field(repr=False)
    pfs_group: int | None = None
    local_address: str = ""
    source_port: int = IKE_PORT
    target_port: int = IKE_PORT
    identity_kind: IdentityKind = "user-fqdn"
    identity_format: str = "load{n}@loadgen.test"
    local_network_base: str = "10.100.0.0"
    remote_network: str = "0.0.0.0/0"
    nat_t: bool = True
    dpd: bool = False
    timeout: float = 60.0
    first_tunnel: int = 0
    # Subscribers: the group (key-id) of a tunnel profile, `psk` its group key.
    group: str | None = None
    username_format: str | None = None  # XAUTH user, {n} = tunnel number
    password: str | None = field(default=None, repr=False)

    @property
    def subscriber(self) -> bool:
        return self.group is not None

    def identity(self, n: int) -> Identity:
        if self.group is not None:
            return Identity("key-id", self.group)  # the group name, as vpnc sends it
        return Identity(self.identity_kind, self.identity_format.format(n=n))

    def local_network(self, n: int) -> str:
        if self.subscriber:
            return "0.0.0.0/32"  # replaced by the Mode Config address (remote_access.py)
        return f"{ipaddress.IPv4Address(self.local_network_base) + n}/32"

    def credentials(self, n: int) -> RemoteAccess | None:
        if self.group is None:
            return None
        if self.username_format is None:
            return RemoteAccess()
        return RemoteAccess(self.username_format.format(n=n), self.password)


@dataclass
class Tunnel:
    """One tunnel under load: its engine and its timestamps (monotonic seconds)."""

    index: int
    engine: Engine
    started: float
    timer_at: float | None = None
    phase1_at: float | None = None
    established_at: float | None = None
    sas: int = 0
    renewed: bool = False
    abandoned: bool = False
    address: str | None = None  # a subscriber's, from its first IPsec SA


class _Socket:
    """A UDP socket that stands for one of the engine's local ports (500 or 4500)."""

    def __init__(self, address: str, port: int, marker: bool) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Thousands of exchanges in flight: let bursts queue instead of dropping.
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, option, 8 << 20)
            except OSError:
                pass
        self.sock.bind((address, port))
        self.sock.setblocking(False)
        self.marker = marker

    def send(self, data: bytes, remote: tuple[str, int]) -> None:
        try:
            self.sock.sendto(NON_ESP_MARKER + data if self.marker else data, remote)
        except BlockingIOError:
            pass  # the engine retransmits, as it would after a loss on the wire
        except OSError as exc:
            print(f"loadgen: send to {remote[0]}:{remote[1]}: {exc}", file=sys.stderr)

    def receive(self) -> list[tuple[bytes, tuple[str, int]]]:
        out = []
        for _ in range(_RECV_BATCH):
            try:
                data, remote = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # e.g. ICMP port unreachable reported on the socket
            if self.marker:
                if not data.startswith(NON_ESP_MARKER):
                    continue  # ESP: no data plane here
                data = data[len(NON_ESP_MARKER):]
            out.append((data, remote))
        return out


class LoadGenerator:
    """Runs the tunnels of a `LoadSpec`; `run()` returns the report."""

    def __init__(self, spec: LoadSpec, *, clock: Callable[[], float] = time.monotonic,
                 status: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.spec = spec
        self.clock = clock
        self.status_out = status
        self.local_address = spec.local_address or _route_source(spec.target)
        self.tunnels: list[Tunnel] = []
        self.by_cookie: dict[bytes, Tunnel] = {}
        self.selector = selectors.DefaultSelector()
        self.sockets: dict[int, _Socket] = {}
        self._open_socket(IKE_PORT)
        self.timers: list[tuple[float, int]] = []
        self.dirty: set[int] = set()
        self.negotiating = 0
        self.next_index = 0
        self.failures: dict[str, int] = {}
        self.deleted = 0
        self.peers_dead = 0
        # Kept up to date by _event so that a status line costs nothing per tunnel.
        self.up_count = 0
        self.established_count = 0
        self.renewed_count = 0
        self.mark_at: float | None = None
        self._mark_requested = False
        self._stop = False
        self._last_status: tuple[int, int] | None = None
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._base_policy = EnginePolicy(
            vr="loadgen", local_addresses=(self.local_address,), ike_rules=(spec.rule,),
            preshared_keys={spec.target: spec.psk}, nat_t=spec.nat_t,
            dpd=DpdPolicy(enabled=spec.dpd))

    # --- sockets ------------------------------------------------------------

    def _open_socket(self, engine_port: int) -> _Socket:
        if engine_port == IKE_PORT:
            port = self.spec.source_port
        else:
            # Floated to NAT-T: a real 4500 only if we also own the real 500.
            port = NAT_T_PORT if self.spec.source_port == IKE_PORT else 0
        sock = _Socket(self.local_address, port, marker=engine_port == NAT_T_PORT)
        self.sockets[engine_port] = sock
        self.selector.register(sock.sock, selectors.EVENT_READ, engine_port)
        return sock

    def _send(self, data: bytes, local_port: int, remote: tuple[str, int]) -> None:
        sock = self.sockets.get(local_port) or self._open_socket(local_port)
        if remote[1] == IKE_PORT and self.spec.target_port != IKE_PORT:
            remote = (remote[0], self.spec.target_port)
        sock.send(data, remote)

    # --- tunnels ------------------------------------------------------------

    def _policy(self, n: int) -> EnginePolicy:
        spec = self.spec
        tunnel = TunnelPolicy(
            name=f"load{n}", local_address=self.local_address, peer_address=spec.target,
            transforms=(spec.transform,), pfs_group=spec.pfs_group,
            local_identity=spec.identity(n), local_network=spec.local_network(n),
            remote_network=spec.remote_network, remote_access=spec.credentials(n))
        return replace(self._base_policy, tunnels=(tunnel,))

    def _start_tunnel(self, now: float) -> None:
        n = self.spec.first_tunnel + self.next_index
        policy = self._policy(n)
        engine = Engine(policy)
        tunnel = Tunnel(self.next_index, engine, now)
        self.tunnels.append(tunnel)
        self.next_index += 1
        self.negotiating += 1
        if self.first_at is None:
            self.first_at = now
        engine.update_policy(policy, now)
        self._poke(tunnel, now)

    def _poke(self, tunnel: Tunnel, now: float) -> None:
        """Run due timers, send what the engine has, act on its events, re-arm its timer."""
        engine = tunnel.engine
        deadline = engine.get_timer()
        if deadline is not None and deadline <= now:
            engine.handle_timer(now)
        for datagram in engine.datagrams_to_send(now):
            self.by_cookie.setdefault(datagram.data[:8], tunnel)
            self._send(datagram.data, datagram.local[1], datagram.remote)
        while (event := engine.next_event()) is not None:
            self._event(tunnel, event, now)
        deadline = engine.get_timer()
        if deadline != tunnel.timer_at:
            tunnel.timer_at = deadline
            if deadline is not None:
                heapq.heappush(self.timers, (deadline, tunnel.index))

    def _event(self, tunnel: Tunnel, event: ev.Event, now: float) -> None:
        if isinstance(event, ev.IpsecSaEstablished):
            tunnel.sas += 1
            if tunnel.sas == 1:
                self.up_count += 1
            if tunnel.established_at is None and not tunnel.abandoned:
                tunnel.established_at = now
                tunnel.address = event.local_network.split("/")[0]
                self.established_count += 1
                self.last_at = now
                self.negotiating -= 1
            if self.mark_at is not None and not tunnel.renewed:
                tunnel.renewed = True
                self.renewed_count += 1
        elif isinstance(event, ev.IpsecSaDeleted):
            self.deleted += 1
            if tunnel.sas > 0:
                tunnel.sas -= 1
                if tunnel.sas == 0:
                    self.up_count -= 1
                    if tunnel.renewed:
                        tunnel.renewed = False
                        self.renewed_count -= 1
        elif isinstance(event, ev.Phase1Established):
            if tunnel.phase1_at is None:
                tunnel.phase1_at = now
        elif isinstance(event, ev.Phase1Failed):
            self._failed(event.reason)
        elif isinstance(event, ev.Phase1Deleted):
            if tunnel.established_at is None and not tunnel.abandoned:
                self._failed(event.reason)  # e.g. a refused login (XAUTH STATUS=0)
        elif isinstance(event, ev.PeerDead):
            self.peers_dead += 1

    def _failed(self, reason: str) -> None:
        reason = reason.split(":")[0][:80]
        self.failures[reason] = self.failures.get(reason, 0) + 1

    def _abandon_late(self, now: float) -> None:
        for tunnel in self.tunnels:
            if tunnel.established_at is None and not tunnel.abandoned and \
                    now - tunnel.started > self.spec.timeout:
                tunnel.abandoned = True
                self.negotiating -= 1
                self._failed("timeout")
                # Stop it: no more retransmissions from a tunnel we gave up on.
                tunnel.engine.update_policy(replace(self._base_policy, tunnels=()), now)
                self._poke(tunnel, now)

    # --- the loop ------------------------------------------------------------

    def _step(self, max_wait: float) -> None:
        now = self.clock()
        wait = max_wait
        while self.timers:
            at, index = self.timers[0]
            tunnel = self.tunnels[index]
            if tunnel.timer_at != at:
                heapq.heappop(self.timers)  # superseded by a later re-arm
                continue
            wait = min(wait, max(0.0, at - now))
            break
        for key, _ in self.selector.select(wait):
            sock = self.sockets[key.data]
            for data, remote in sock.receive():
                tunnel_for = self.by_cookie.get(data[:8])
                if tunnel_for is None:
                    continue
                tunnel_for.engine.receive_datagram(data, (self.local_address, key.data), remote,
                                                   self.clock())
                self.dirty.add(tunnel_for.index)
        now = self.clock()
        while self.timers and self.timers[0][0] <= now:
            at, index = heapq.heappop(self.timers)
            if self.tunnels[index].timer_at == at:
                self.tunnels[index].timer_at = None
                self.dirty.add(index)
        dirty, self.dirty = self.dirty, set()
        for index in dirty:
            self._poke(self.tunnels[index], now)

    def establish(self) -> dict[str, Any]:
        """Bring up every tunnel of the spec (or give up on it); return the report."""
        cpu_start = time.process_time()
        last_check = self.clock()
        while not self._stop:
            now = self.clock()
            while self.negotiating < self.spec.concurrency and \
                    self.next_index < self.spec.tunnels:
                self._start_tunnel(now)
            if self.negotiating == 0 and self.next_index >= self.spec.tunnels:
                break
            self._step(0.5)
            if now - last_check >= 1.0:
                self._abandon_late(now)
                last_check = now
        return self.report(time.process_time() - cpu_start)

    def report(self, cpu_seconds: float) -> dict[str, Any]:
        times = sorted(t.established_at - t.started for t in self.tunnels
                       if t.established_at is not None)
        phase1 = sorted(t.phase1_at - t.started for t in self.tunnels
                        if t.phase1_at is not None)
        established = len(times)
        elapsed = (self.last_at - self.first_at) if self.last_at and self.first_at else 0.0
        rate = round(established / elapsed, 2) if elapsed > 0 else None
        subscriber = {
            "group": self.spec.group,
            "logins_per_s": rate,
            "addresses": len({t.address for t in self.tunnels if t.address is not None}),
        } if self.spec.subscriber else {}
        return {
            "target": self.spec.target,
            "proposal": _proposal_name(self.spec.rule),
            "transform": self.spec.transform,
            "pfs_group": self.spec.pfs_group,
            "tunnels": self.spec.tunnels,
            "concurrency": self.spec.concurrency,
            "established": established,
            "failed": self.spec.tunnels - established,
            "failures": dict(self.failures),
            "elapsed_s": round(elapsed, 4),
            "tunnels_per_s": rate,
            "setup_ms": _percentiles(times),
            "phase1_ms": _percentiles(phase1),
            "loadgen_cpu_s": round(cpu_seconds, 3),
            **subscriber,
        }

    def status(self) -> dict[str, Any]:
        return {
            "time": self.clock(),
            "up": self.up_count,
            "established": self.established_count,
            "mark": self.mark_at,
            "renewed": self.renewed_count,
            "deleted": self.deleted,
            "peers_dead": self.peers_dead,
        }

    def hold(self, seconds: float) -> None:
        """Keep the tunnels (answering DPD, rekeying) until `seconds` pass or a stop."""
        end = self.clock() + seconds
        last_print = 0.0
        while not self._stop and self.clock() < end:
            if self._mark_requested:
                self._mark_requested = False
                self.mark_at = self.clock()
                for tunnel in self.tunnels:
                    tunnel.renewed = False
                self.renewed_count = 0
                self._last_status = None
            self._step(min(0.25, max(0.0, end - self.clock())))
            now = self.clock()
            if self.status_out is not None and now - last_print >= 0.1:
                status = self.status()
                key = (status["up"], status["renewed"])
                if key != self._last_status:
                    self._last_status = key
                    last_print = now
                    self.status_out(status)

    def delete_all(self, linger: float = 1.0) -> None:
        """Delete every SA (Delete payloads to the target), then serve `linger` seconds."""
        now = self.clock()
        empty = replace(self._base_policy, tunnels=())
        for tunnel in self.tunnels:
            # Without its tunnel the engine deletes the IPsec SAs; clear_sa then
            # deletes the phase 1 too and, with no tunnel left, starts nothing new.
            tunnel.engine.update_policy(empty, now)
            tunnel.engine.clear_sa(None, None, now)
            self._poke(tunnel, now)
        end = self.clock() + linger
        while self.clock() < end:
            self._step(end - self.clock())

    def request_mark(self) -> None:
        self._mark_requested = True

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        self.selector.close()
        for sock in self.sockets.values():
            sock.sock.close()


def _route_source(target: str) -> str:
    """The local address the kernel would use to reach `target`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((target, IKE_PORT))
        return str(probe.getsockname()[0])


def _proposal_name(rule: IkeRule) -> str:
    group = {v: k for k, v in _GROUPS.items()}[rule.group]
    hash_ = "sha1" if rule.hash == "sha" else rule.hash
    return f"{rule.encryption}-{hash_}-{group}"


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None

    def at(q: float) -> float:
        return round(1000 * values[min(len(values) - 1, math.floor(q * len(values)))], 2)

    return {"p50": at(0.5), "p95": at(0.95), "max": round(1000 * values[-1], 2)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ipsecgw.tools.loadgen",
        description="Load-generating IKEv1 initiator: N tunnels (phase 1 + Quick Mode), "
                    "each with its own identity, C at a time, at one gateway; prints tunnels/s.")
    parser.add_argument("--target", required=True, help="the gateway's IKE address")
    parser.add_argument("--tunnels", type=int, default=100, help="tunnels to set up (100)")
    parser.add_argument("--concurrency", type=int, default=20,
                        help="exchanges in flight at once (20)")
    parser.add_argument("--proposal", default="aes128-sha1-modp2048",
                        help="IKE proposal, strongSwan style (aes128-sha1-modp2048)")
    parser.add_argument("--esp", help="ESP transform, CLI name (default: from the proposal, "
                                      "e.g. esp-aes128-hmac-sha)")
    parser.add_argument("--pfs", type=int, metavar="GROUP", help="PFS DH group for Quick Mode")
    parser.add_argument("--psk", help="pre-shared key (or env IPSECGW_LOADGEN_PSK)")
    parser.add_argument("--aggressive", action="store_true", help="Aggressive Mode phase 1")
    parser.add_argument("--local", default="", help="local address (default: route source)")
    parser.add_argument("--source-port", type=int, default=IKE_PORT,
                        help="local UDP port (500; 0 = ephemeral, then the target sees a NAT "
                             "unless --no-nat-t)")
    parser.add_argument("--target-port", type=int, default=IKE_PORT)
    parser.add_argument("--id-type", default="user-fqdn",
                        choices=["user-fqdn", "domain-name", "address"])
    parser.add_argument("--id-format", default=None,
                        help="identity per tunnel, {n} = tunnel number "
                             "(load{n}@loadgen.test / load{n}.loadgen.test)")
    parser.add_argument("--first", type=int, default=0, help="number of the first tunnel")
    parser.add_argument("--local-network-base", default="10.100.0.0",
                        help="tunnel n proposes BASE+n/32 as its local network")
    parser.add_argument("--remote-network", default="0.0.0.0/0",
                        help="remote network every tunnel proposes (0.0.0.0/0)")
    parser.add_argument("--group", metavar="NAME",
                        help="be subscribers of a tunnel profile: Aggressive Mode with key-id "
                             "NAME, Mode Config pull, Quick Mode for the address given")
    parser.add_argument("--group-key", metavar="KEY",
                        help="the group's pre-shared key (or --psk / IPSECGW_LOADGEN_PSK)")
    parser.add_argument("--remote-access", metavar="USER[:PASSWORD]",
                        help="with --group: answer XAUTH as USER ({n} = tunnel number) with "
                             "PASSWORD (or env IPSECGW_LOADGEN_PASSWORD)")
    parser.add_argument("--no-nat-t", action="store_true", help="do not offer NAT traversal")
    parser.add_argument("--dpd", action="store_true", help="send our own DPD probes")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="give up on a tunnel after this many seconds (60)")
    parser.add_argument("--hold", type=float, metavar="SECONDS",
                        help="keep the tunnels this long after the report (inf = until "
                             "SIGTERM); SIGUSR1 sets the 'renewed' mark")
    parser.add_argument("--no-delete", action="store_true",
                        help="exit without deleting the tunnels")
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout")
    return parser


def spec_from_args(args: argparse.Namespace) -> LoadSpec:
    rule = parse_proposal(args.proposal)
    if args.aggressive:
        rule = replace(rule, aggressive_mode="required")
    psk = args.group_key or args.psk or os.environ.get("IPSECGW_LOADGEN_PSK")
    if not psk:
        raise ValueError("a pre-shared key is needed: --psk, --group-key or IPSECGW_LOADGEN_PSK")
    username, password = _credentials(args)
    if args.group is not None:
        # A group name is a key-id, which only Aggressive Mode carries before
        # the key is chosen (RFC 2409 5.4).
        rule = replace(rule, aggressive_mode="required")
    id_format = args.id_format or {"user-fqdn": "load{n}@loadgen.test",
                                   "domain-name": "load{n}.loadgen.test",
                                   "address": "10.101.{hi}.{lo}"}[args.id_type]
    if args.id_type == "address":
        raise ValueError("address identities cannot be distinct per tunnel from one "
                         "source address; use user-fqdn or domain-name")
    if args.tunnels < 1 or args.concurrency < 1:
        raise ValueError("--tunnels and --concurrency must be positive")
    return LoadSpec(
        target=args.target, tunnels=args.tunnels, concurrency=args.concurrency, rule=rule,
        transform=args.esp or default_transform(rule), psk=psk.encode(), pfs_group=args.pfs,
        local_address=args.local, source_port=args.source_port, target_port=args.target_port,
        identity_kind=args.id_type, identity_format=id_format,
        local_network_base=args.local_network_base, remote_network=args.remote_network,
        nat_t=not args.no_nat_t, dpd=args.dpd, timeout=args.timeout, first_tunnel=args.first,
        group=args.group, username_format=username, password=password)


def _credentials(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """`--remote-access USER[:PASSWORD]` checked against `--group`."""
    if args.remote_access is None:
        return None, None
    if args.group is None:
        raise ValueError("--remote-access needs --group (the tunnel profile's group name)")
    username, _, password = args.remote_access.partition(":")
    password = password or os.environ.get("IPSECGW_LOADGEN_PASSWORD", "")
    if not username or not password:
        raise ValueError("--remote-access USER:PASSWORD (or USER and "
                         "IPSECGW_LOADGEN_PASSWORD): both are needed")
    try:
        username.format(n=0)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"--remote-access user {username!r}: only {{n}} may be "
                         f"substituted ({exc})") from None
    return username, password


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        spec = spec_from_args(args)
    except ValueError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2

    def emit(kind: str, data: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps({kind: data}), flush=True)

    try:
        generator = LoadGenerator(spec, status=lambda s: emit("status", s))
    except OSError as exc:
        print(f"loadgen: cannot open the IKE socket: {exc} (another IKE daemon on port "
              f"{spec.source_port}? try --source-port 0)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: generator.stop())
    signal.signal(signal.SIGINT, lambda *_: generator.stop())
    signal.signal(signal.SIGUSR1, lambda *_: generator.request_mark())
    try:
        report = generator.establish()
        rate = report["tunnels_per_s"]
        what = "subscriber logins" if spec.subscriber else "tunnels"
        print(f"loadgen: {report['established']}/{spec.tunnels} {what} to {spec.target} in "
              f"{report['elapsed_s']:.2f} s: {rate if rate is not None else 0:.1f} {what}/s "
              f"(setup ms {report['setup_ms']}, failures {report['failures'] or 'none'}, "
              f"loadgen CPU {report['loadgen_cpu_s']:.1f} s)", file=sys.stderr, flush=True)
        emit("report", report)
        if args.hold is not None:
            generator.hold(args.hold)
        emit("final", generator.status())
        if not args.no_delete:
            generator.delete_all()
    finally:
        generator.close()
    return 0 if report["established"] == spec.tunnels else 1


if __name__ == "__main__":
    sys.exit(main())
