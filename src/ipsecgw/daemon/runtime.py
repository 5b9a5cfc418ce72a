"""The asyncio runtime: sockets, one timer, engines, data plane, control socket.

Data flows one way (DESIGN.md): datagram -> engine -> events -> data plane;
CLI command -> running configuration -> engine policies. The engines are
sans-IO; this module is the only place that reads the clock for them.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import time
from dataclasses import replace
from pathlib import Path

from ..cli.gateway import PoolUsage, SaSelector, SubscriberInfo
from ..cli.loader import read_config_file
from ..config.model import RunningConfig
from ..config.render import render
from ..config.store import save_atomic
from ..dataplane.base import DataPlane, TunnelSpec
from ..dataplane.memory import MemoryDataPlane
from ..dataplane.select import resolve
from ..dataplane.userspace import UserspaceDataPlane
from ..dataplane.xfrm import XfrmDataPlane
from ..isakmp import events as ev
from ..isakmp.constants import NAT_T_PORT
from ..isakmp.engine import Engine
from ..isakmp.policy import EnginePolicy
from ..netns import DEFAULT_VR
from ..status import (
    IkeSaStatus,
    IpsecSaStatus,
    LocalEndpointStatus,
    TunnelState,
    TunnelStatus,
    VrStatistics,
)
from . import subscriber_engine
from .control import ControlSocket, ControlSocketBusy
from .endpoints import NATT_KEEPALIVE, Address, Endpoints
from .manual import ManualSas
from .resolver import Resolver
from .savekeys import SaveKeys
from .subscribers import Grant, Refusal, SubscriberManager
from .translate import engine_policies, manual_sas, tunnel_specs

log = logging.getLogger("ipsecgw.daemon")

# Data-plane counters of the tunnels that carried traffic are handed to the
# engines this often: they drive kilobyte lifetimes, whose soft margin at
# JUNOSe's default 100 MB is under a second at 200 Mbit/s, and DPD's "was
# there traffic" test.  Idle tunnels cost nothing (DataPlane.traffic_changes).
TRAFFIC_POLL_SECONDS = 0.25
#: Data-plane counters shown by `show ipsec statistics` (TunnelCounters fields).
ESP_COUNTERS = ("esp_auth_failed", "esp_replay", "esp_unknown_spi", "esp_malformed",
                "esp_pad_error", "esp_policy", "esp_no_sa", "esp_io_errors")
# RFC 3948 section 4 suggests 20 s: shorter than common NAT UDP timeouts.
NATT_KEEPALIVE_SECONDS = 20.0
# A local endpoint that could not be opened (its VR's namespace does not
# exist yet, its address is held) is tried again this often.
ENDPOINT_RETRY_SECONDS = 2.0


class AddressInUse(Exception):
    """At start: another process holds one of the IKE endpoints (UDP 500/4500)."""


def _endpoints_of(policies: dict[str, EnginePolicy]) -> set[tuple[str, str]]:
    """(VR, address) of every local endpoint the engines need."""
    return {(vr, addr) for vr, policy in policies.items() for addr in policy.local_addresses}


class GatewayRuntime:
    """Owns the running configuration and everything that follows from it."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config_path: str | Path,
        *,
        dataplane: str = "userspace",
        save_keys: str | None = None,
    ) -> None:
        self.loop = loop
        self.config_path = Path(config_path)
        self.engines: dict[str, Engine] = {}
        self.endpoints = Endpoints(self._on_ike, self._on_esp, self._after_datagrams)
        self._ike_received = False  # since the last _service()
        self.save_keys = SaveKeys(save_keys) if save_keys else None
        self._config = RunningConfig()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._poll: asyncio.TimerHandle | None = None
        self._installed: dict[str, set[tuple[bytes, bytes]]] = {}  # tunnel -> SPI pairs
        self._tunnel_engine: dict[str, str] = {}  # tunnel -> transport VR of its SAs
        # After a configuration change every tunnel's counters are handed over
        # once: an engine or tunnel that is new must start from the totals.
        self._report_all_traffic = True
        self._tunnel_specs: dict[str, TunnelSpec] = {}
        self._keepalives: dict[bytes, tuple[str, Address, Address]] = {}
        self._next_keepalive_at = 0.0
        self._next_endpoint_retry_at = 0.0
        self.resolver = Resolver(loop, self._reapply)
        self.dataplane = self._make_dataplane(dataplane)
        self.manual = ManualSas(self.dataplane)
        self.subscriber_manager = SubscriberManager(self.dataplane, self._deliver_login,
                                                    clock=self.now)

    # -- construction -----------------------------------------------------

    def _make_dataplane(self, kind: str) -> DataPlane:
        kind, why = resolve(kind)
        self.dataplane_kind = kind
        #: `show version`: which data plane runs and why (dataplane/select.py).
        self.data_plane = f"{kind} ({why})"
        if kind == "memory":
            return MemoryDataPlane()
        if kind == "xfrm":
            return XfrmDataPlane(udp_socket=self._udp_socket, clock=self.now)
        return UserspaceDataPlane(self.loop, self._send_esp_udp, udp_socket=self._udp_socket)

    @staticmethod
    def now() -> float:
        return time.monotonic()

    # -- configuration ----------------------------------------------------

    @property
    def config(self) -> RunningConfig:
        return self._config

    def load_startup(self) -> RunningConfig:
        config, errors = read_config_file(self.config_path)
        for line_no, message in errors:
            log.error("%s:%d: %s", self.config_path, line_no, message)
        return config

    def apply(self, config: RunningConfig) -> None:
        """Make the running state follow ``config`` (called after every config change)."""
        now = self.now()
        policies = engine_policies(config, self.resolver.address)
        for vr, policy in policies.items():
            engine = self.engines.get(vr)
            if engine is None:
                engine = self.engines[vr] = Engine(policy)
            # Certificates are valid in wall time; the engine's clock is monotonic.
            engine.wall_offset = time.time() - now
            engine.update_policy(policy, now)
        for vr in list(self.engines):
            if vr not in policies:
                self._retire(vr, self.engines.pop(vr), now)
        # After the retired engines' Deletes have left through the old sockets.
        self.endpoints.sync(self.loop, _endpoints_of(policies))
        recreated = self._sync_tunnels(tunnel_specs(config))
        self.manual.sync(manual_sas(config, self.resolver.address), recreated)
        self.subscriber_manager.configure(config)
        self._config = config
        self._report_all_traffic = True
        self._service()

    def _reapply(self) -> None:
        """The address of a `tunnel destination` name changed (`Resolver`)."""
        self.apply(self._config)

    def _retire(self, vr: str, engine: Engine, now: float) -> None:
        """Delete every SA of an engine that goes (Delete payloads), without renegotiating."""
        engine.update_policy(replace(engine.policy, tunnels=(), profiles=()), now)
        engine.clear_sa(None, 1, now)
        self._drain(vr, engine, now)

    def _sync_tunnels(self, specs: list[TunnelSpec]) -> set[str]:
        """Tunnel interfaces follow the configuration; a changed one is re-created.
        Returns the tunnels whose interface went or was re-created (their SAs with it)."""
        recreated = set(self._tunnel_specs) - {spec.name for spec in specs}
        for name in recreated:
            self.dataplane.remove_tunnel(name)
            del self._tunnel_specs[name]
        for spec in specs:
            old = self._tunnel_specs.get(spec.name)
            if old == spec:
                continue
            if old is not None:
                self.dataplane.remove_tunnel(spec.name)
                del self._tunnel_specs[spec.name]
                recreated.add(spec.name)
            try:
                self.dataplane.add_tunnel(spec)
            except Exception as exc:  # a broken TUN must not stop the others
                log.error("tunnel ipsec:%s: cannot create its interface: %s", spec.name, exc)
                continue
            self._tunnel_specs[spec.name] = spec
            if self._installed.get(spec.name):
                # The new interface has none of the old one's SA state
                # (sequence numbers, replay windows): renegotiate phase 2.
                vr = self._tunnel_engine.get(spec.name)
                engine = self.engines.get(vr) if vr is not None else None
                if engine is not None:
                    engine.clear_sa({spec.name}, 2, self.now())
        return recreated

    def write_memory(self) -> str:
        save_atomic(self.config_path, render(self._config))
        return str(self.config_path)

    # -- remote-access subscribers (daemon/subscribers.py) ---------------------

    def _deliver_login(self, vr: str, subscriber: int, answer: Grant | Refusal) -> None:
        """A login decided (in a task of the manager): the answer goes to the engine."""
        engine = self.engines.get(vr)
        if engine is None:
            return  # the VR went meanwhile, and its subscribers with it
        subscriber_engine.deliver(engine, subscriber, answer, self.now())
        self._service()

    def subscribers(self) -> list[SubscriberInfo]:
        return self.subscriber_manager.subscribers()

    def pool_usage(self) -> list[PoolUsage]:
        return self.subscriber_manager.pool_usage()

    # -- operations ---------------------------------------------------------

    def clear_sa(self, vr: str | None, selector: SaSelector, phase: int | None) -> int:
        """`ipsec clear sa` (SPEC 1.1) in transport VR `vr` (None: every VR)."""
        now = self.now()
        names: set[str] | None
        if selector == "all":
            names = None
        elif selector[0] == "tunnel":
            names = {selector[1]}
        else:
            names = {name for name, (_, state) in self.tunnel_states().items()
                     if state == selector[1]}
        cleared = 0
        for engine_vr, engine in self.engines.items():
            if vr is None or engine_vr == vr:
                cleared += engine.clear_sa(names, phase, now)
        self._service()
        return cleared

    def tunnels(self) -> list[TunnelStatus]:
        now = self.now()
        # The engine's clock is monotonic; show commands want wall-clock time.
        wall_offset = time.time() - now
        result: list[TunnelStatus] = []
        for engine in self.engines.values():
            for status in engine.tunnel_status(now):
                result.append(replace(status.shifted(wall_offset),
                                      ipsec_sas=self._sa_counters(status.ipsec_sas)))
        for status in self.manual.status():
            result.append(replace(status, ipsec_sas=self._sa_counters(status.ipsec_sas)))
        return sorted(result, key=lambda t: t.name)

    def tunnel_states(self) -> dict[str, tuple[str, TunnelState]]:
        states = {name: (vr, state) for vr, engine in self.engines.items()
                  for name, state in engine.tunnel_states().items()}
        states.update(self.manual.states())
        return states

    def _sa_counters(self, sas: tuple[IpsecSaStatus, ...]) -> tuple[IpsecSaStatus, ...]:
        out = []
        for sa in sas:
            c = self.dataplane.sa_counters(sa.inbound_spi)
            if c is None:
                out.append(sa)
                continue
            out.append(replace(sa, inbound_bytes=c.inbound_bytes,
                               inbound_packets=c.inbound_packets,
                               outbound_bytes=c.outbound_bytes,
                               outbound_packets=c.outbound_packets))
        return tuple(out)

    def local_endpoint_status(self) -> list[LocalEndpointStatus]:
        """Each IKE local endpoint (configured or a tunnel's source): up, or why not."""
        return self.endpoints.status()

    def ike_sas(self) -> list[IkeSaStatus]:
        now = self.now()
        return [sa for engine in self.engines.values() for sa in engine.ike_sa_status(now)]

    def ipsec_sas(self) -> list[IpsecSaStatus]:
        return [sa for t in self.tunnels() for sa in t.ipsec_sas]

    def statistics(self) -> list[VrStatistics]:
        """The engines' counters per transport VR, with the data plane's ESP drops."""
        counters = {vr: dict(engine.statistics()) for vr, engine in self.engines.items()}
        esp: dict[str, dict[str, int]] = {vr: dict.fromkeys(ESP_COUNTERS, 0) for vr in counters}
        for tunnel in self._config.tunnels:
            try:
                c = self.dataplane.counters(tunnel.name)
            except KeyError:
                continue
            totals = esp.setdefault(tunnel.transport_vr, dict.fromkeys(ESP_COUNTERS, 0))
            for key in ESP_COUNTERS:
                totals[key] += getattr(c, key.removeprefix("esp_"))
        # Drops no tunnel can be charged with (an SPI from nowhere) go to the
        # default VR, where the whole router is seen.
        unattributed = esp.setdefault(DEFAULT_VR, dict.fromkeys(ESP_COUNTERS, 0))
        for reason, count in self.dataplane.drop_counters().items():
            unattributed["esp_" + str(reason)] += count
        for vr, totals in esp.items():
            counters.setdefault(vr, {}).update(totals)
        for vr, totals in self.subscriber_manager.statistics().items():
            counters.setdefault(vr, {}).update(totals)
        return [VrStatistics(vr=vr, counters=c) for vr, c in sorted(counters.items())]

    # -- I/O ----------------------------------------------------------------

    def _on_ike(self, vr: str, data: bytes, local: Address, remote: Address) -> None:
        engine = self.engines.get(vr)
        if engine is None:
            return
        engine.receive_datagram(data, local, remote, self.now())
        self._ike_received = True

    def _after_datagrams(self) -> None:
        """After each socket wakeup (up to 256 datagrams): send the engines' answers,
        act on their events and re-arm the timer once for the whole batch."""
        if self._ike_received:
            self._service()

    def _on_esp(self, vr: str, data: bytes, local: Address, remote: Address) -> None:
        self.dataplane.receive_esp(data, local, remote, True)

    def _udp_socket(self, vr: str, local: Address) -> socket.socket | None:
        endpoint = self.endpoints.get(vr, local)
        return endpoint.sock if endpoint is not None else None

    def _send_esp_udp(self, vr: str, data: bytes, local: Address, remote: Address) -> None:
        """UDP-encapsulated ESP from our port-4500 socket on `local` in transport VR `vr`.

        Only that VR's socket will do: the same address may exist in another
        VR, whose socket would put the packet on the wrong network.  No
        socket is an error the data plane counts on the tunnel (io_errors).
        """
        endpoint = self.endpoints.get(vr, local)
        if endpoint is None:
            raise OSError(errno.EADDRNOTAVAIL,
                          f"no UDP socket on {local[0]}:{local[1]} in VR {vr}")
        endpoint.send_raw(data, remote)

    def _service(self) -> None:
        """Flush every engine's output and events, then re-arm the one timer."""
        self._ike_received = False
        now = self.now()
        for vr, engine in list(self.engines.items()):
            self._drain(vr, engine, now)
        self._arm_timer()

    def _drain(self, vr: str, engine: Engine, now: float) -> None:
        while True:  # an event may make the engine send (sa_install_failed)
            for datagram in engine.datagrams_to_send(now):
                endpoint = self.endpoints.get(vr, datagram.local)
                if endpoint is None:
                    log.warning("no local endpoint %s:%d in VR %s for a message to %s",
                                *datagram.local, vr, datagram.remote[0])
                    continue
                endpoint.send_ike(datagram.data, datagram.remote)
            if (event := engine.next_event()) is None:
                return
            self._handle_event(vr, event)

    def _handle_event(self, vr: str, event: object) -> None:
        if isinstance(event, ev.IpsecSaEstablished):
            try:
                self.dataplane.install_sa(event)
            except Exception as exc:
                log.error("tunnel ipsec:%s: data plane refused SA: %s", event.tunnel, exc)
                self.engines[vr].sa_install_failed(event.tunnel, event.inbound.spi,
                                                   event.outbound.spi, str(exc), self.now())
                return
            pair = (event.inbound.spi, event.outbound.spi)
            self._installed.setdefault(event.tunnel, set()).add(pair)
            self._tunnel_engine[event.tunnel] = vr
            if len(self._installed[event.tunnel]) == 1:
                self.dataplane.set_tunnel_up(event.tunnel, True)
            if self.save_keys and event.protocol == "esp":  # Wireshark's table is ESP's
                self.save_keys.esp_sa_added(
                    event.inbound.spi, event.peer[0], event.local[0], event.inbound.encryption,
                    event.inbound.encryption_key, event.inbound.integrity,
                    event.inbound.integrity_key)
                self.save_keys.esp_sa_added(
                    event.outbound.spi, event.local[0], event.peer[0], event.outbound.encryption,
                    event.outbound.encryption_key, event.outbound.integrity,
                    event.outbound.integrity_key)
        elif isinstance(event, ev.IpsecSaDeleted):
            if event.tunnel not in self._installed:
                # Nothing of it is installed: a subscriber's tunnel went with its
                # SAs at SubscriberDown, which the engine may emit first.
                return
            self.dataplane.remove_sa(event.tunnel, event.inbound_spi, event.outbound_spi)
            pairs = self._installed.get(event.tunnel, set())
            pairs.discard((event.inbound_spi, event.outbound_spi))
            if not pairs:
                self.dataplane.set_tunnel_up(event.tunnel, False)
                self._installed.pop(event.tunnel, None)
                self._tunnel_engine.pop(event.tunnel, None)
        elif isinstance(event, ev.Phase1Established):
            if self.save_keys and event.encryption_key:
                self.save_keys.ike_sa_added(event.cookies[:8], event.encryption_key)
            if event.local_behind_nat:
                self._keepalives[event.cookies] = (vr, (event.local[0], NAT_T_PORT),
                                                   (event.peer[0], event.remote_port))
        elif isinstance(event, ev.Phase1Deleted):
            self._keepalives.pop(event.cookies, None)
        elif subscriber_engine.dispatch(self.subscriber_manager, vr, event):
            if isinstance(event, ev.SubscriberDown):  # the engine forgot its tunnel
                self._installed.pop(event.tunnel, None)
                self._tunnel_engine.pop(event.tunnel, None)

    def _arm_timer(self) -> None:
        deadlines = [t for e in self.engines.values() if (t := e.get_timer()) is not None]
        at = min(deadlines) if deadlines else None
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is not None:
            self._timer = self.loop.call_at(self._loop_time(at), self._on_timer)

    def _loop_time(self, at: float) -> float:
        # The engine's clock is time.monotonic(); asyncio's loop clock is too,
        # but do not depend on that.
        return self.loop.time() + max(0.0, at - self.now())

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.now()
        for engine in self.engines.values():
            deadline = engine.get_timer()
            if deadline is not None and deadline <= now:
                engine.handle_timer(now)
        self._service()

    def _send_keepalives(self, now: float) -> None:
        """RFC 3948 section 4: keep our NAT's mapping alive while we are behind it."""
        if now < self._next_keepalive_at:
            return
        self._next_keepalive_at = now + NATT_KEEPALIVE_SECONDS
        for vr, local, remote in self._keepalives.values():
            endpoint = self.endpoints.get(vr, local)
            if endpoint is not None:
                endpoint.send_raw(NATT_KEEPALIVE, remote)

    def _poll_traffic(self) -> None:
        """Hand data-plane counters to the engines: kilobyte lifetimes and DPD.

        Only tunnels that carried traffic since the last tick are visited
        (all of them once after a configuration change), so that thousands
        of idle tunnels cost nothing here.
        """
        now = self.now()
        self._send_keepalives(now)
        self.subscriber_manager.send_interims(now)
        if now >= self._next_endpoint_retry_at:
            self._next_endpoint_retry_at = now + ENDPOINT_RETRY_SECONDS
            self.endpoints.retry(self.loop)
        changes = self.dataplane.traffic_changes()
        if self._report_all_traffic:
            self._report_all_traffic = False
            for tunnel in self._tunnel_engine:
                if tunnel not in changes:
                    try:
                        c = self.dataplane.counters(tunnel)
                    except KeyError:
                        continue
                    changes[tunnel] = (c.inbound_bytes, c.outbound_bytes)
        for tunnel, (inbound_bytes, outbound_bytes) in changes.items():
            engine = self.engines.get(self._tunnel_engine.get(tunnel, ""))
            if engine is not None:
                engine.traffic(tunnel, inbound_bytes, outbound_bytes, now)
        if changes:
            self._service()
        self._poll = self.loop.call_later(TRAFFIC_POLL_SECONDS, self._poll_traffic)

    def start(self) -> None:
        """Load the startup file and run it; AddressInUse if another daemon
        holds one of its IKE endpoints.

        The sockets are opened before anything else, so that a daemon
        started twice by mistake goes without a datagram sent or a TUN
        device touched: the first one's peers see nothing.
        """
        config = self.load_startup()
        self.endpoints.sync(self.loop, _endpoints_of(engine_policies(config,
                                                                     self.resolver.address)))
        held = self.endpoints.in_use()
        if held:
            raise AddressInUse("; ".join(
                f"local endpoint {addr}:{port} in VR {vr}: address already in use"
                for vr, addr, port in held) + " (another ipsecgw or IKE daemon holds it); "
                "not starting")
        self.apply(config)
        self._poll = self.loop.call_later(TRAFFIC_POLL_SECONDS, self._poll_traffic)

    def close(self) -> None:
        now = self.now()
        self.subscriber_manager.stopping()
        # Tell peers we are going (Delete payloads) before the sockets close,
        # without renegotiating: no tunnels, then every phase 1 cleared.
        for vr, engine in self.engines.items():
            self._retire(vr, engine, now)
        if self._timer is not None:
            self._timer.cancel()
        if self._poll is not None:
            self._poll.cancel()
        self.resolver.close()
        self.endpoints.close()
        self.dataplane.close()


async def _serve(runtime: GatewayRuntime, control: ControlSocket) -> None:
    server = await control.serve(runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("ipsecgw running; control socket %s", control.path)
    async with server:
        await stop.wait()
    log.info("ipsecgw stopping")


def run_daemon(
    *, config_path: str, control_path: str, dataplane: str, save_keys: str | None
) -> int:
    """Run until SIGINT/SIGTERM; 1 when another daemon holds the control
    socket or an IKE endpoint (that daemon is left as it was)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        control = ControlSocket(control_path)
        try:
            runtime = GatewayRuntime(loop, config_path, dataplane=dataplane, save_keys=save_keys)
            try:
                runtime.start()
                await _serve(runtime, control)
            finally:
                runtime.close()
                # The Accounting-Stops of the subscribers the close logged out.
                await runtime.subscriber_manager.finish_accounting()
        finally:
            control.close()

    try:
        asyncio.run(main())
    except (ControlSocketBusy, AddressInUse) as exc:
        log.error("%s", exc)
        return 1
    return 0
