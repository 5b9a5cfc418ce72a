"""The runtime services its engines once per socket wakeup, not once per datagram.

An endpoint reads up to 256 datagrams per wakeup; sending the engines'
answers, acting on their events and re-arming the timer (`_service`) then runs
once after the batch (`Endpoint.on_batch`).  Loopback UDP on ephemeral ports,
VR "default" (no namespace).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsecgw.daemon.endpoints import Address, Endpoint
from ipsecgw.daemon.runtime import GatewayRuntime
from ipsecgw.isakmp.codec import Message, Notification
from ipsecgw.isakmp.constants import ExchangeType, NotifyType
from ipsecgw.isakmp.engine import Engine
from ipsecgw.isakmp.policy import EnginePolicy

LOOPBACK = "127.0.0.1"


def _unknown_cookie(n: int) -> bytes:
    return Message(n.to_bytes(8, "big"), b"\x99" * 8, ExchangeType.QUICK_MODE, 1, 7, (),
                   b"\x00" * 32, 8).encode()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def client() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def _port(endpoint: Endpoint) -> int:
    assert endpoint.sock is not None
    port: int = endpoint.sock.getsockname()[1]
    return port


def _received(sock: socket.socket) -> list[bytes]:
    out: list[bytes] = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            out.append(sock.recv(65535))
        except BlockingIOError:
            if out:
                return out
            time.sleep(0.01)
    return out


def test_endpoint_calls_its_batch_hook_once_after_the_datagrams(
        loop: asyncio.AbstractEventLoop, client: socket.socket) -> None:
    calls: list[str] = []

    def on_ike(vr: str, data: bytes, local: Address, remote: Address) -> None:
        calls.append("ike")

    endpoint = Endpoint("default", (LOOPBACK, 0), on_ike, on_ike,
                        lambda: calls.append("batch"))
    endpoint.open(loop)
    try:
        for n in range(5):
            client.sendto(_unknown_cookie(n), (LOOPBACK, _port(endpoint)))
        time.sleep(0.05)
        endpoint._readable()
        assert calls == ["ike"] * 5 + ["batch"]
        endpoint._readable()  # a wakeup with nothing to read still ends its batch
        assert calls == ["ike"] * 5 + ["batch"] * 2
    finally:
        endpoint.close()


def test_runtime_services_the_engines_once_per_wakeup(
        loop: asyncio.AbstractEventLoop, client: socket.socket, tmp_path: Path) -> None:
    runtime = GatewayRuntime(loop, tmp_path / "startup.conf", dataplane="memory")
    runtime.engines["default"] = Engine(EnginePolicy(
        vr="default", local_addresses=(LOOPBACK,), tx_invalid_cookie=True))
    endpoint = Endpoint("default", (LOOPBACK, 0), runtime._on_ike, runtime._on_esp,
                        runtime._after_datagrams)
    endpoint.open(loop)
    runtime.endpoints.sockets[("default", LOOPBACK, 0)] = endpoint
    serviced: list[float] = []
    service = runtime._service

    def counted() -> None:
        serviced.append(time.monotonic())
        service()

    runtime._service = counted  # type: ignore[method-assign]
    try:
        # One datagram handed over: its answer leaves when the batch ends, not before.
        runtime._on_ike("default", _unknown_cookie(0), (LOOPBACK, 0), client.getsockname())
        with pytest.raises(BlockingIOError):
            client.recv(65535)
        assert serviced == []
        runtime._after_datagrams()
        assert len(serviced) == 1 and len(_received(client)) == 1
        # A wakeup with two datagrams: one service for both.
        for n in (1, 2):
            client.sendto(_unknown_cookie(n), (LOOPBACK, _port(endpoint)))
        time.sleep(0.05)
        endpoint._readable()
        assert len(serviced) == 2
        replies = _received(client)
        assert len(replies) == 2  # within the per-peer burst of INVALID-COOKIE replies
        notify = Message.decode(replies[0]).find(Notification)
        assert notify is not None and notify.notify_type == NotifyType.INVALID_COOKIE
        assert runtime.engines["default"].statistics()["unknown_cookie"] == 3
        # A wakeup that brought no IKE services nothing.
        runtime._after_datagrams()
        assert len(serviced) == 2
    finally:
        runtime.close()
