"""The daemon's runtime against the memory data plane: the seams to the engine,
the data plane's UDP output and name resolution."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipsecgw.cli.loader import load_config_text
from ipsecgw.daemon.endpoints import Endpoint
from ipsecgw.daemon.runtime import GatewayRuntime
from ipsecgw.dataplane.memory import MemoryDataPlane
from ipsecgw.status import LocalEndpointStatus, TunnelState

LOOPBACK = "127.0.0.1"


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def runtime(loop: asyncio.AbstractEventLoop, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayRuntime]:
    runtime = GatewayRuntime(loop, tmp_path / "startup.conf", dataplane="memory")
    # No IKE sockets: these tests look at what the engines are told.
    monkeypatch.setattr(runtime.endpoints, "sync", lambda loop, wanted: None)
    yield runtime
    runtime.close()


def _config(destination: str) -> str:
    return f"""\
ipsec transform-set ts esp-aes128-hmac-sha
interface tunnel ipsec:far transport-virtual-router default
 tunnel source 192.0.2.1
 tunnel destination {destination}
 tunnel transform-set ts
 tunnel remote-network 10.9.0.0/24
 exit
"""


def _apply(runtime: GatewayRuntime, text: str) -> None:
    config, errors = load_config_text(text)
    assert errors == []
    runtime.apply(config)


def _peers(runtime: GatewayRuntime) -> list[str]:
    return [t.peer_address for e in runtime.engines.values() for t in e.policy.tunnels]


def test_a_destination_name_is_resolved_off_the_event_loop(
        runtime: GatewayRuntime, loop: asyncio.AbstractEventLoop,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def slow_lookup(name: str, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.6)  # a DNS server far away
        if name != "peer.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if args or kwargs:  # getaddrinfo
            return [(socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("192.0.2.7", 0))]
        return "192.0.2.7"  # gethostbyname

    monkeypatch.setattr(socket, "getaddrinfo", slow_lookup)
    monkeypatch.setattr(socket, "gethostbyname", slow_lookup)
    started = time.monotonic()
    _apply(runtime, _config("peer.example"))
    assert time.monotonic() - started < 0.3  # the loop (every socket, the CLI) never waited
    assert _peers(runtime) == []  # no address yet: the tunnel waits for it

    async def until_resolved() -> None:
        while not _peers(runtime):
            await asyncio.sleep(0.02)

    loop.run_until_complete(asyncio.wait_for(until_resolved(), 5))
    assert _peers(runtime) == ["192.0.2.7"]


def test_an_address_destination_needs_no_lookup(
        runtime: GatewayRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lookup(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("looked up an address")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    _apply(runtime, _config("192.0.2.9"))
    assert _peers(runtime) == ["192.0.2.9"]


def test_clear_sa_by_state_asks_the_engines_for_states_only(
        runtime: GatewayRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    _apply(runtime, _config("192.0.2.9"))

    def no_status() -> None:
        raise AssertionError("full status built for `clear sa state`")

    monkeypatch.setattr(runtime, "tunnels", no_status)
    # No IKE policy rule, no key: the tunnel is down and holds no SA.
    assert runtime.tunnel_states() == {"far": ("default", TunnelState.DOWN)}
    assert runtime.clear_sa(None, ("state", TunnelState.DOWN), None) == 0
    assert runtime.clear_sa("default", ("state", TunnelState.UP), 1) == 0


def test_udp_encapsulated_esp_leaves_only_from_its_own_vr(runtime: GatewayRuntime,
                                                          loop: asyncio.AbstractEventLoop) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((LOOPBACK, 0))
    receiver.settimeout(2)
    endpoint = Endpoint("default", (LOOPBACK, 0), runtime._on_ike, runtime._on_esp)
    endpoint.open(loop)
    local = endpoint.sock.getsockname() if endpoint.sock else None
    assert local is not None
    # The same address in two VRs: only the socket of the SA's VR may carry it.
    runtime.endpoints.sockets[("vr2", LOOPBACK, local[1])] = endpoint
    try:
        with pytest.raises(OSError, match="no UDP socket on 127.0.0.1:.* in VR default"):
            runtime._send_esp_udp("default", b"esp", local, receiver.getsockname())
        runtime._send_esp_udp("vr2", b"esp", local, receiver.getsockname())
        assert receiver.recv(100) == b"esp"
    finally:
        receiver.close()


def test_an_endpoint_in_a_vr_without_namespace_is_down_with_the_reason(
        loop: asyncio.AbstractEventLoop, tmp_path: Path) -> None:
    vr = f"igwmissing{os.getpid()}"
    runtime = GatewayRuntime(loop, tmp_path / "startup.conf", dataplane="memory")
    try:
        _apply(runtime, f"virtual-router {vr}\n"
                        f"ipsec local-endpoint 192.0.2.1 transport-virtual-router {vr}\n")
        assert runtime.local_endpoint_status() == [LocalEndpointStatus(
            vr, "192.0.2.1", False, f"virtual router {vr}: no network namespace '{vr}'")]
        # Removed from the configuration: nothing is left, not even the failure.
        _apply(runtime, "")
        assert runtime.local_endpoint_status() == []
        assert runtime.endpoints.failed == {}
    finally:
        runtime.close()


_MANUAL = """\
ipsec transform-set one esp-aes128-hmac-sha
interface tunnel ipsec:m transport-virtual-router default
 tunnel source 192.0.2.1
 tunnel destination 192.0.2.2
 tunnel transform-set one
 tunnel remote-network 10.9.0.0/24
 tunnel manual inbound spi 4096 encryption-key {ekey} authentication-key {akey}
 tunnel manual outbound spi 8192 encryption-key {ekey} authentication-key {akey}
 exit
"""
_EKEY, _AKEY = "00" * 16, "11" * 20


def test_manual_sa_is_installed_replaced_and_removed(runtime: GatewayRuntime) -> None:
    dataplane = runtime.dataplane
    assert isinstance(dataplane, MemoryDataPlane)
    _apply(runtime, _MANUAL.format(ekey=_EKEY, akey=_AKEY))
    assert _peers(runtime) == []  # no IKE for it
    installed = dataplane.installed[(4096).to_bytes(4, "big")]
    assert installed.outbound.spi == (8192).to_bytes(4, "big")
    assert installed.outbound.integrity_key == bytes.fromhex(_AKEY)
    assert dataplane.is_up("m")
    assert runtime.tunnel_states() == {"m": ("default", TunnelState.UP)}
    (status,) = runtime.tunnels()
    assert status.state == TunnelState.UP and status.ipsec_sas[0].transform == \
        "esp-aes128-hmac-sha"
    # New keys: the pair is replaced.
    _apply(runtime, _MANUAL.format(ekey="22" * 16, akey=_AKEY))
    assert dataplane.installed[(4096).to_bytes(4, "big")].inbound.encryption_key == \
        bytes.fromhex("22" * 16)
    # No manual SA any more: removed, and the tunnel negotiates with IKE.
    _apply(runtime, "\n".join(line for line in _MANUAL.splitlines()
                              if "manual" not in line) + "\n")
    assert (4096).to_bytes(4, "big") not in dataplane.installed
    assert _peers(runtime) == ["192.0.2.2"]
