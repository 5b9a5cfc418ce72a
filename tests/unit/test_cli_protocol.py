"""The control socket (JSON lines) and batch mode, against a FakeGateway server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsecgw.cli.gateway import FakeGateway
from ipsecgw.cli.protocol import ControlClient, ControlError
from ipsecgw.daemon.control import handle_connection


class Server:
    """handle_connection on a Unix socket, in an event loop of its own thread."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        self.dir = tempfile.mkdtemp(prefix="igwcli")
        self.path = os.path.join(self.dir, "control.sock")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def start() -> asyncio.base_events.Server:
            return await asyncio.start_unix_server(
                lambda r, w: handle_connection(r, w, gateway, clock=lambda: 2000.0), path=self.path
            )

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(5)

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if os.path.exists(self.path):
            os.unlink(self.path)
        os.rmdir(self.dir)


@pytest.fixture
def server() -> Iterator[Server]:
    server = Server(FakeGateway(startup_path=Path(tempfile.gettempdir()) / "unused-ipsecgw.conf"))
    yield server
    server.close()


def test_requests_and_answers(server: Server) -> None:
    with ControlClient(server.path) as client:
        assert client.prompt() == "host1#"
        answer = client.execute("configure terminal")
        assert answer == {
            "ok": True,
            "output": "",
            "error": "",
            "caret": None,
            "closed": False,
            "prompt": "host1(config)#",
        }
        answer = client.execute("ipsec ike-policy-rule 11")
        assert not answer["ok"] and answer["caret"] == 22 and "<1-10>" in answer["error"]
        assert client.complete("ipsec ike") == [
            ("ike-policy-rule", "ISAKMP/IKE (phase 1) policy rule")
        ]
        help_ = client.help("ipsec option ")
        assert [w for w, _ in help_["help"]] == ["dpd", "nat-t", "tx-invalid-cookie"]
        assert help_["prompt"] == "host1(config)#"


def test_each_connection_is_its_own_session(server: Server) -> None:
    with ControlClient(server.path) as a, ControlClient(server.path) as b:
        a.execute("configure terminal")
        a.execute("virtual-router blue")
        assert a.prompt() == "host1:blue(config)#"
        assert b.prompt() == "host1#"
        a.execute("hostname edge")
        assert b.prompt() == "edge#", "the configuration is shared"


def test_bad_requests_keep_the_connection(server: Server) -> None:
    with ControlClient(server.path) as client:
        file = client._file
        for raw in [b"not json\n", b'{"line": "x"}\n', b'{"op": 5}\n', b'{"op": "dance"}\n']:
            file.write(raw)
            file.flush()
            answer = json.loads(file.readline())
            assert answer["ok"] is False and answer["error"].startswith("%")
        assert client.execute("show ipsec lifetime")["ok"]


def test_an_exception_in_a_command_is_an_error_not_a_crash(server: Server) -> None:
    def broken() -> list[object]:
        raise RuntimeError("bug")

    server.gateway.tunnels = broken  # type: ignore[method-assign]
    with ControlClient(server.path) as client:
        answer = client.execute("show ipsec tunnel")
        assert answer["ok"] is False and "Internal error" in answer["error"]
        assert client.execute("show ipsec lifetime")["ok"]


def test_exit_closes_the_connection(server: Server) -> None:
    with ControlClient(server.path) as client:
        assert client.execute("exit")["closed"] is True
        with pytest.raises(ControlError):
            client.execute("show ipsec lifetime")


def test_connect_error() -> None:
    with pytest.raises(ControlError, match="cannot connect"):
        ControlClient("/nonexistent/ipsecgw.sock")


def cli(
    server: Server, *commands: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "ipsecgw.cli"]
    if env is None:
        args += ["--control", server.path]
    for command in commands:
        args += ["-c", command]
    return subprocess.run(
        args, capture_output=True, text=True, timeout=30, env={**os.environ, **(env or {})}
    )


def test_batch_mode(server: Server) -> None:
    proc = cli(
        server,
        "configure terminal",
        "ipsec transform-set ts esp-aes128-hmac-sha",
        "do show ipsec transform-set",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "esp-aes128-hmac-sha" in proc.stdout
    assert server.gateway.config.transform_set("ts") is not None


def test_batch_mode_errors_go_to_stderr_and_set_the_exit_status(server: Server) -> None:
    proc = cli(
        server,
        "conf t",
        "ipsec ike-policy-rule 11",
        "hostname after-error",
        "no ipsec clear sa all",
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (
        "host1(config)#ipsec ike-policy-rule 11\n"
        "                                    ^\n"
        "% Invalid input detected at '^' marker.\n"
        "% Value out of range: <1-10>\n"
        "after-error(config)#no ipsec clear sa all\n"
        "% There is no 'no' form of 'ipsec clear sa'\n"
    )
    assert server.gateway.config.hostname == "after-error", "later commands still run"


def test_control_socket_from_the_environment(server: Server) -> None:
    proc = cli(server, "show ipsec lifetime", env={"IPSECGW_CONTROL": server.path})
    assert proc.returncode == 0 and "28800 seconds" in proc.stdout


def test_no_daemon() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ipsecgw.cli", "--control", "/nonexistent/x.sock", "-c", "show"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "cannot connect" in proc.stderr
