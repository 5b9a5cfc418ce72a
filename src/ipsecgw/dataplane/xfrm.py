"""The `xfrm` data plane: ESP and AH in the Linux kernel (XFRM), never in this process.

Each tunnel interface is an XFRM interface (`ip link ... type xfrm if_id N`)
in the tunnel's VR, named, addressed and routed as the user-space plane's
TUN device.  Its SAs and its in/out/fwd policies carry the same if_id, so
the kernel encrypts exactly what is routed into the interface and delivers
what it decrypts out of it (docs/DECISIONS.md: interface-based XFRM).  SAs
and policies live in the transport VR, where the outer packets flow.

The engine keeps the lifetimes: SAs are installed without kernel limits and
removed by `remove_sa`; byte counters and last use are read back from the
kernel (GETSA) for kilobyte lifetimes, DPD and the show commands.

NAT-T: the daemon's port-4500 socket gets UDP_ENCAP_ESPINUDP when the first
UDP-encapsulated SA of its address is installed, so the kernel takes
ESP-in-UDP off it while IKE (behind the non-ESP marker, RFC 3948 2.2) still
reaches the daemon; the SAs carry the encapsulation ports.

Ownership: every if_id ipsecgw uses lies in `IF_ID_FIRST`..`IF_ID_LAST`.  When
the backend first uses a namespace it removes the SAs, policies and XFRM
interfaces with an if_id in that range (what a crashed run left), and
`close` removes everything it created; state with other if_ids (another
daemon's) is never touched.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ipsecgw.dataplane.base import (
    DataPlaneError,
    IpsecSa,
    SaCounters,
    TunnelCounters,
    TunnelSpec,
    UdpSocketOf,
    UnknownTunnel,
)
from ipsecgw.dataplane.common import DEFAULT_REPLAY_WINDOW, DropReason
from ipsecgw.dataplane.rtnl import Rtnl
from ipsecgw.dataplane.sadb import SWITCH_DELAY
from ipsecgw.dataplane.tun import default_ifname
from ipsecgw.dataplane.xfrm_netlink import (
    UDP_ENCAP_ESPINUDP,
    XFRM_MSG_DELPOLICY,
    XFRM_MSG_DELSA,
    XFRM_MSG_NEWSA,
    XFRM_MSG_UPDPOLICY,
    XFRM_POLICY_FWD,
    XFRM_POLICY_IN,
    XFRM_POLICY_OUT,
    Encap,
    PolicySpec,
    Selector,
    StateInfo,
    StateSpec,
    XfrmError,
    XfrmSocket,
    algorithms,
    encode_policy,
    encode_policy_id,
    encode_state,
    encode_state_id,
)
from ipsecgw.netns import DEFAULT_VR, NETNS_RUN_DIR, NetnsError, in_vr

log = logging.getLogger("ipsecgw.dataplane")

# ipsecgw's if_ids: "IP" in the top half, a tunnel number in the bottom;
# the last one is the `select` probe's.
IF_ID_FIRST = 0x49500001
IF_ID_LAST = 0x4950FFFF
IF_ID_PROBE = IF_ID_LAST
UDP_ENCAP = 100  # linux/udp.h socket option (SOL_UDP)


def owned(if_id: int) -> bool:
    return IF_ID_FIRST <= if_id <= IF_ID_LAST


class _Namespace:
    """Netlink sockets of one VR: links and routes, SAs and policies."""

    def __init__(self, vr: str) -> None:
        with in_vr(vr):
            self.rtnl = Rtnl()
            try:
                self.xfrm = XfrmSocket()
            except BaseException:
                self.rtnl.close()
                raise

    def sweep(self, vr: str) -> None:
        """Remove what a previous run of ipsecgw left here (its if_id range only)."""
        policies = [p for p in self.xfrm.policies() if owned(p.if_id)]
        for policy in policies:
            self.xfrm.delete_dumped_policy(policy)
        states = [s for s in self.xfrm.states() if owned(s.if_id)]
        for state in states:
            self.xfrm.delete_state(state.destination, state.spi,
                                   "ah" if state.protocol == 51 else "esp")
        links = [link for link in self.rtnl.xfrm_links() if owned(link[2])]
        for index, _, _ in links:
            self.rtnl.delete_link(index)
        if policies or states or links:
            log.warning(
                "VR %s: removed what an earlier ipsecgw left in the kernel: "
                "%d SAs, %d policies, %d XFRM interfaces (%s)",
                vr, len(states), len(policies), len(links),
                ", ".join(name for _, name, _ in links) or "-",
            )

    def close(self) -> None:
        self.rtnl.close()
        self.xfrm.close()


@dataclass
class _Pair:
    """One installed SA pair: where its two kernel SAs are."""

    local: str
    peer: str
    inbound_spi: bytes
    outbound_spi: bytes
    protocol: str
    selectors: tuple[str, str]  # (local network, remote network)
    installed_at: float
    # The kernel keeps no last-use time of an SA that netlink reports, so it
    # is when its byte counters were last seen moving (each read, at least
    # every traffic poll).
    seen: tuple[int, int] = (0, 0)  # (inbound, outbound) bytes
    last_inbound_at: float | None = None
    last_outbound_at: float | None = None
    # A rekey's outbound SA, held back until `outbound_due` or until the peer
    # sends on the new inbound SA (`XfrmDataPlane._switch_outbound`).
    pending_outbound: bytes | None = None
    outbound_due: float = 0.0

    def observe(self, inbound_bytes: int, outbound_bytes: int, now: float) -> None:
        if inbound_bytes != self.seen[0]:
            self.last_inbound_at = now
        if outbound_bytes != self.seen[1]:
            self.last_outbound_at = now
        self.seen = (inbound_bytes, outbound_bytes)


@dataclass
class _Tunnel:
    spec: TunnelSpec
    ifname: str
    index: int
    if_id: int
    up: bool = False
    pairs: dict[bytes, _Pair] = field(default_factory=dict)  # by inbound SPI
    # (local network, remote network) -> (SA pairs using the policies,
    # their template: local, peer, protocol)
    policies: dict[tuple[str, str], tuple[int, tuple[str, str, str]]] = field(
        default_factory=dict)
    # Totals of SAs already removed: (in bytes, in packets, out bytes, out
    # packets, auth failed, replay).
    retired: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)
    reported: tuple[int, int] = (0, 0)
    last_inbound_at: float | None = None  # of removed SAs
    last_outbound_at: float | None = None


@dataclass(frozen=True)
class _PairReading:
    inbound: StateInfo | None
    outbound: StateInfo | None

    def totals(self) -> tuple[int, int, int, int, int, int]:
        i, o = self.inbound, self.outbound
        return (
            i.bytes if i else 0, i.packets if i else 0,
            o.bytes if o else 0, o.packets if o else 0,
            i.integrity_failed if i else 0, i.replay if i else 0,
        )


def _add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, int, int, int, int, int]:
    s = tuple(x + y for x, y in zip(a, b, strict=True))
    return (s[0], s[1], s[2], s[3], s[4], s[5])


@contextmanager
def _netns_fd(vr: str) -> Iterator[int]:
    path = "/proc/self/ns/net" if vr == DEFAULT_VR else os.path.join(NETNS_RUN_DIR, vr)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


class XfrmDataPlane:
    """A `DataPlane` on the kernel's XFRM (base.py has the contract).

    `udp_socket(vr, local)`: the daemon's UDP socket of that address (port
    4500), which gets UDP_ENCAP_ESPINUDP for NAT-T SAs.  `clock`: the time
    base of `installed_at` and `last_inbound_at` (the daemon's `now`).
    """

    def __init__(
        self,
        *,
        udp_socket: UdpSocketOf | None = None,
        clock: Callable[[], float] = time.monotonic,
        replay_window: int = DEFAULT_REPLAY_WINDOW,
    ) -> None:
        self._udp_socket = udp_socket
        self._clock = clock
        self._replay_window = replay_window
        self._namespaces: dict[str, _Namespace] = {}
        self._tunnels: dict[str, _Tunnel] = {}
        self._by_inbound_spi: dict[bytes, str] = {}
        self._encap_sockets: set[int] = set()  # file numbers set to ESP-in-UDP
        self._free_if_ids: list[int] = []
        self._next_if_id = IF_ID_FIRST
        self._unknown_spi = 0

    def _namespace(self, vr: str) -> _Namespace:
        namespace = self._namespaces.get(vr)
        if namespace is None:
            try:
                namespace = _Namespace(vr)
            except OSError as error:
                raise DataPlaneError(f"VR {vr}: no netlink access: {error}") from error
            self._namespaces[vr] = namespace
            try:
                namespace.sweep(vr)
            except OSError as error:
                log.error("VR %s: cannot remove an earlier run's XFRM state: %s", vr, error)
        return namespace

    def _allocate_if_id(self) -> int:
        if self._free_if_ids:
            return self._free_if_ids.pop()
        if self._next_if_id >= IF_ID_PROBE:
            raise DataPlaneError("no XFRM interface id left")
        self._next_if_id += 1
        return self._next_if_id - 1

    # Tunnels

    def add_tunnel(self, tunnel: TunnelSpec) -> None:
        if tunnel.name in self._tunnels:
            raise DataPlaneError(f"tunnel {tunnel.name} exists")
        ifname = tunnel.ifname or default_ifname(tunnel.name)
        outer = self._namespace(tunnel.outer_vr)
        inner = self._namespace(tunnel.vr)
        if_id = self._allocate_if_id()
        try:
            # The interface is created where its SAs are (the kernel looks
            # policies up in the interface's creation namespace) and then
            # moved into the tunnel's VR.
            index = outer.rtnl.add_xfrm_link(ifname, if_id)
            if tunnel.vr != tunnel.outer_vr:
                with _netns_fd(tunnel.vr) as fd:
                    outer.rtnl.move_link(index, fd)
                index = inner.rtnl.link_index(ifname)
            inner.rtnl.disable_link_local(index)
            inner.rtnl.set_link(index, mtu=tunnel.mtu, up=True)
            if tunnel.address is not None:
                inner.rtnl.add_address(index, tunnel.address)
        except (OSError, NetnsError) as error:
            self._free_if_ids.append(if_id)
            for namespace in (inner, outer):
                try:
                    namespace.rtnl.delete_link(namespace.rtnl.link_index(ifname))
                except OSError:
                    pass
            raise DataPlaneError(
                f"tunnel {tunnel.name}: cannot create XFRM interface {ifname} "
                f"in VR {tunnel.vr}: {error}"
            ) from error
        self._tunnels[tunnel.name] = _Tunnel(tunnel, ifname, index, if_id)
        log.info("tunnel %s: XFRM interface %s (if_id %#x) in VR %s",
                 tunnel.name, ifname, if_id, tunnel.vr)

    def remove_tunnel(self, name: str) -> None:
        tunnel = self._tunnels.get(name)
        if tunnel is None:
            return
        for pair in list(tunnel.pairs.values()):
            self.remove_sa(name, pair.inbound_spi, pair.outbound_spi)
        del self._tunnels[name]
        try:
            self._namespace(tunnel.spec.vr).rtnl.delete_link(tunnel.index)
        except OSError as error:
            log.error("tunnel %s: cannot delete %s: %s", name, tunnel.ifname, error)
        self._free_if_ids.append(tunnel.if_id)

    def _tunnel(self, name: str) -> _Tunnel:
        tunnel = self._tunnels.get(name)
        if tunnel is None:
            raise UnknownTunnel(name)
        return tunnel

    def set_tunnel_up(self, name: str, up: bool) -> None:
        tunnel = self._tunnels.get(name)
        if tunnel is None or tunnel.up == up:
            return
        tunnel.up = up
        spec = tunnel.spec
        rtnl = self._namespace(spec.vr).rtnl
        candidates = rtnl.addresses() if up and spec.remote_networks else []
        for network in spec.remote_networks:
            try:
                rtnl.route(up, network, tunnel.index, spec.route_source(network, candidates))
            except OSError as error:
                log.error("tunnel %s: cannot %s route %s via %s: %s", name,
                          "add" if up else "remove", network, tunnel.ifname, error)

    def interface_name(self, tunnel: str) -> str:
        return self._tunnel(tunnel).ifname

    # SAs

    def install_sa(self, sa: IpsecSa) -> None:
        tunnel = self._tunnel(sa.tunnel)
        if sa.inbound.spi in self._by_inbound_spi:
            raise DataPlaneError(f"tunnel {sa.tunnel}: inbound SPI {sa.inbound.spi.hex()} "
                                 "already installed")
        if sa.protocol == "ah" and sa.encapsulation == "udp-tunnel":
            raise DataPlaneError(f"tunnel {sa.tunnel}: AH cannot be UDP-encapsulated")
        try:
            inbound_algorithms = algorithms(
                sa.inbound.encryption, sa.inbound.encryption_key, sa.inbound.integrity,
                sa.inbound.integrity_key, sa.protocol)
            outbound_algorithms = algorithms(
                sa.outbound.encryption, sa.outbound.encryption_key, sa.outbound.integrity,
                sa.outbound.integrity_key, sa.protocol)
        except ValueError as error:
            raise DataPlaneError(f"tunnel {sa.tunnel}: {error}") from error
        udp = sa.encapsulation == "udp-tunnel"
        namespace = self._namespace(tunnel.spec.outer_vr)
        if udp:
            self._enable_encap(tunnel.spec.outer_vr, sa)
        local, peer = sa.local[0], sa.peer[0]
        inbound = StateSpec(
            peer, local, sa.inbound.spi, sa.protocol, inbound_algorithms, tunnel.if_id,
            reqid=tunnel.if_id, replay_window=self._replay_window,
            encap=Encap(sa.peer[1], sa.local[1]) if udp else None)
        outbound = StateSpec(
            local, peer, sa.outbound.spi, sa.protocol, outbound_algorithms, tunnel.if_id,
            reqid=tunnel.if_id, encap=Encap(sa.local[1], sa.peer[1]) if udp else None)
        transform = "/".join(filter(None, (
            sa.inbound.encryption if sa.protocol == "esp" else None, sa.inbound.integrity)))
        selectors = (sa.local_network, sa.remote_network)
        template = (local, peer, sa.protocol)
        users, installed = tunnel.policies.get(selectors, (0, None))
        # The kernel sends on the newest SA of a template at once. A rekey's
        # outbound SA sent on before the peer has processed Quick Mode's
        # HASH(3) and installed it as its inbound SA would lose packets, so
        # it waits as in the user-space plane (sadb.SWITCH_DELAY).
        deferred = users > 0 and installed == template
        requests = [(XFRM_MSG_NEWSA, encode_state(inbound))]
        if not deferred:
            requests.append((XFRM_MSG_NEWSA, encode_state(outbound)))
        states = len(requests)
        if installed != template:
            # UPDPOLICY: also replaces the template of a rekey towards a
            # peer that moved (NAT); a rekey to the same peer sends nothing.
            requests += [(XFRM_MSG_UPDPOLICY, encode_policy(policy))
                         for policy in self._policies(tunnel, selectors, *template)]
        errors = namespace.xfrm.batch(requests)
        if any(errors):
            if errors[0] is None:
                self._delete_state(namespace, local, sa.inbound.spi, sa.protocol)
            if states == 2 and errors[1] is None:
                self._delete_state(namespace, peer, sa.outbound.spi, sa.protocol)
            if users == 0 and not all(errors[states:]):
                self._delete_policies(namespace, tunnel, selectors, template)
            failed = next(i for i, e in enumerate(errors) if e is not None)
            refused = errors[failed]
            what = ("inbound SA", "outbound SA")[failed] if failed < states else "policies"
            raise DataPlaneError(
                f"tunnel {sa.tunnel}: the kernel refused the {what} ({sa.protocol.upper()} "
                f"{transform}, {sa.local_network} <-> {sa.remote_network}): {refused}"
            ) from refused
        tunnel.policies[selectors] = (users + 1, template)
        pair = _Pair(local, peer, sa.inbound.spi, sa.outbound.spi, sa.protocol, selectors,
                     self._clock())
        if deferred:
            pair.pending_outbound = encode_state(outbound)
            pair.outbound_due = pair.installed_at + SWITCH_DELAY
        tunnel.pairs[sa.inbound.spi] = pair
        self._by_inbound_spi[sa.inbound.spi] = sa.tunnel
        log.info(
            "tunnel %s: kernel SA installed, SPI in %s out %s, %s %s %s, %s -> %s",
            sa.tunnel, sa.inbound.spi.hex(), sa.outbound.spi.hex(), sa.protocol.upper(),
            transform, sa.encapsulation, sa.local_network, sa.remote_network,
        )

    @staticmethod
    def _policies(tunnel: _Tunnel, selectors: tuple[str, str], local: str, peer: str,
                  protocol: str) -> list[PolicySpec]:
        local_net, remote_net = selectors
        out = Selector(local_net, remote_net)
        into = Selector(remote_net, local_net)
        return [
            PolicySpec(out, XFRM_POLICY_OUT, local, peer, protocol, tunnel.if_id, tunnel.if_id),
            PolicySpec(into, XFRM_POLICY_IN, peer, local, protocol, tunnel.if_id, tunnel.if_id),
            PolicySpec(into, XFRM_POLICY_FWD, peer, local, protocol, tunnel.if_id, tunnel.if_id),
        ]

    def _delete_policies(self, namespace: _Namespace, tunnel: _Tunnel,
                         selectors: tuple[str, str], template: tuple[str, str, str]) -> None:
        for policy in self._policies(tunnel, selectors, *template):
            try:
                namespace.xfrm.delete_policy(policy.selector, policy.direction, policy.if_id)
            except XfrmError as error:
                log.warning("tunnel %s: cannot delete policy: %s", tunnel.spec.name, error)

    def _enable_encap(self, vr: str, sa: IpsecSa) -> None:
        sock = self._udp_socket(vr, sa.local) if self._udp_socket else None
        if sock is None:
            raise DataPlaneError(f"tunnel {sa.tunnel}: no UDP socket on {sa.local[0]}:"
                                 f"{sa.local[1]} in VR {vr} for ESP-in-UDP")
        if sock.fileno() in self._encap_sockets:
            return
        sock.setsockopt(socket.SOL_UDP, UDP_ENCAP, UDP_ENCAP_ESPINUDP)
        self._encap_sockets.add(sock.fileno())

    @staticmethod
    def _delete_state(namespace: _Namespace, destination: str, spi: bytes,
                      protocol: str) -> None:
        try:
            namespace.xfrm.delete_state(destination, spi, protocol)
        except XfrmError as error:
            log.warning("cannot delete SA %s to %s: %s", spi.hex(), destination, error)

    def _switch_outbound(self, namespace: _Namespace, tunnel: str, pair: _Pair) -> None:
        """Install a rekey's held-back outbound SA: the kernel sends on it from now."""
        if pair.pending_outbound is None:
            return
        request, pair.pending_outbound = pair.pending_outbound, None
        for error in filter(None, namespace.xfrm.batch([(XFRM_MSG_NEWSA, request)])):
            log.error("tunnel %s: the kernel refused the outbound SA %s: %s", tunnel,
                      pair.outbound_spi.hex(), error)
            return
        log.info("tunnel %s: outbound traffic moves to SPI %s", tunnel,
                 pair.outbound_spi.hex())

    def remove_sa(self, tunnel: str, inbound_spi: bytes, outbound_spi: bytes) -> None:
        state = self._tunnels.get(tunnel)
        pair = state.pairs.get(inbound_spi) if state is not None else None
        if state is None or pair is None or pair.outbound_spi != outbound_spi:
            return
        namespace = self._namespace(state.spec.outer_vr)
        for other in state.pairs.values():
            if other is not pair:  # the rekeyed SA goes: its successor sends now
                self._switch_outbound(namespace, tunnel, other)
        state.retired = _add(state.retired, self._read_pair(namespace, pair).totals())
        state.last_inbound_at = _latest(state.last_inbound_at, pair.last_inbound_at)
        state.last_outbound_at = _latest(state.last_outbound_at, pair.last_outbound_at)
        del state.pairs[inbound_spi]
        del self._by_inbound_spi[inbound_spi]
        requests = [
            (XFRM_MSG_DELSA, encode_state_id(pair.local, pair.inbound_spi, pair.protocol))]
        if pair.pending_outbound is None:
            requests.append(
                (XFRM_MSG_DELSA, encode_state_id(pair.peer, pair.outbound_spi, pair.protocol)))
        users, template = state.policies[pair.selectors]
        if users > 1:
            state.policies[pair.selectors] = (users - 1, template)
        else:
            del state.policies[pair.selectors]
            requests += [
                (XFRM_MSG_DELPOLICY, encode_policy_id(policy.selector.encode(),
                                                      policy.direction, policy.if_id))
                for policy in self._policies(state, pair.selectors, *template)
            ]
        for error in filter(None, namespace.xfrm.batch(requests)):
            log.warning("tunnel %s: the kernel did not remove an SA or policy: %s",
                        tunnel, error)
        log.info("tunnel %s: kernel SA removed, SPI in %s out %s", tunnel,
                 inbound_spi.hex(), outbound_spi.hex())

    # Packets: the kernel carries them.

    def receive_esp(self, data: bytes, local: tuple[str, int], remote: tuple[str, int],
                    udp: bool) -> None:
        """ESP that reached the daemon's socket, not the kernel: only before
        UDP_ENCAP was set, i.e. for an SPI the kernel does not have yet."""
        self._unknown_spi += 1

    def receive_ah(self, packet: bytes) -> None:
        self._unknown_spi += 1

    # Counters, read from the kernel

    def _read_pair(self, namespace: _Namespace, pair: _Pair) -> _PairReading:
        def get(destination: str, spi: bytes) -> StateInfo | None:
            try:
                return namespace.xfrm.get_state(destination, spi, pair.protocol)
            except XfrmError:
                return None  # expired or removed behind our back
        reading = _PairReading(get(pair.local, pair.inbound_spi),
                               get(pair.peer, pair.outbound_spi))
        totals = reading.totals()
        pair.observe(totals[0], totals[2], self._clock())
        return reading

    def counters(self, tunnel: str) -> TunnelCounters:
        state = self._tunnel(tunnel)
        namespace = self._namespace(state.spec.outer_vr)
        totals = state.retired
        last_in, last_out = state.last_inbound_at, state.last_outbound_at
        for pair in state.pairs.values():
            totals = _add(totals, self._read_pair(namespace, pair).totals())
            last_in = _latest(last_in, pair.last_inbound_at)
            last_out = _latest(last_out, pair.last_outbound_at)
        return TunnelCounters(
            inbound_bytes=totals[0], inbound_packets=totals[1],
            outbound_bytes=totals[2], outbound_packets=totals[3],
            auth_failed=totals[4], replay=totals[5],
            last_inbound_at=last_in, last_outbound_at=last_out,
        )

    def sa_counters(self, inbound_spi: bytes) -> SaCounters | None:
        name = self._by_inbound_spi.get(inbound_spi)
        if name is None:
            return None
        state = self._tunnels[name]
        pair = state.pairs[inbound_spi]
        t = self._read_pair(self._namespace(state.spec.outer_vr), pair).totals()
        return SaCounters(
            tunnel=name, inbound_spi=inbound_spi, outbound_spi=pair.outbound_spi,
            inbound_bytes=t[0], inbound_packets=t[1], outbound_bytes=t[2],
            outbound_packets=t[3], auth_failed=t[4], replay=t[5], malformed=0,
            pad_error=0, policy=0, sequence_number=t[3], rekey_needed=False,
            installed_at=pair.installed_at,
            last_inbound_at=pair.last_inbound_at,
        )

    def drop_counters(self) -> dict[DropReason, int]:
        return {DropReason.UNKNOWN_SPI: self._unknown_spi} if self._unknown_spi else {}

    def traffic_changes(self) -> dict[str, tuple[int, int]]:
        """One SA dump per transport VR, not one request per SA."""
        readings: dict[str, dict[tuple[str, bytes], StateInfo]] = {}
        changes: dict[str, tuple[int, int]] = {}
        for name, state in self._tunnels.items():
            if not state.pairs:
                continue
            vr = state.spec.outer_vr
            if vr not in readings:
                try:
                    dumped = self._namespace(vr).xfrm.states()
                except (OSError, DataPlaneError) as error:
                    log.warning("VR %s: cannot read SA counters: %s", vr, error)
                    dumped = []
                readings[vr] = {(s.destination, s.spi): s for s in dumped if owned(s.if_id)}
            states = readings[vr]
            inbound, outbound = state.retired[0], state.retired[2]
            now = self._clock()
            for pair in state.pairs.values():
                i = states.get((pair.local, pair.inbound_spi))
                o = states.get((pair.peer, pair.outbound_spi))
                pair.observe(i.bytes if i else 0, o.bytes if o else 0, now)
                if pair.pending_outbound is not None and (
                        now >= pair.outbound_due or pair.seen[0] > 0):
                    self._switch_outbound(self._namespace(vr), name, pair)
                inbound += pair.seen[0]
                outbound += pair.seen[1]
            if (inbound, outbound) != state.reported:
                state.reported = (inbound, outbound)
                changes[name] = (inbound, outbound)
        return changes

    def close(self) -> None:
        for name in list(self._tunnels):
            self.remove_tunnel(name)
        for namespace in self._namespaces.values():
            namespace.close()
        self._namespaces.clear()


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)

