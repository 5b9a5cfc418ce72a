"""The control socket at start: a live daemon's is never taken, a dead one's is
replaced (issue 13 defect 7).  Real `ipsecgw daemon` processes, memory data
plane, no IKE endpoint: no privileges needed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsecgw.cli.protocol import ControlClient, ControlError


def _daemon(tmp_path: Path, control: Path) -> subprocess.Popen[str]:
    config = tmp_path / "ipsecgw.conf"
    config.write_text("hostname first\n")
    return subprocess.Popen(
        [sys.executable, "-m", "ipsecgw", "daemon", "--config", str(config),
         "--control", str(control), "--dataplane", "memory"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _answering(control: Path, proc: subprocess.Popen[str], timeout: float = 20) -> str:
    """The daemon's prompt, once it answers on `control`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with ControlClient(str(control), timeout=5) as client:
                return client.prompt()
        except ControlError:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the daemon never answered"
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=20)[0]


@pytest.fixture
def first(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    control = tmp_path / "control.sock"
    proc = _daemon(tmp_path, control)
    try:
        assert _answering(control, proc) == "first#"
        yield proc, control
    finally:
        _stop(proc)


def test_a_second_daemon_on_a_live_control_socket_exits_and_leaves_it(
        first: tuple[subprocess.Popen[str], Path], tmp_path: Path) -> None:
    proc, control = first
    before = os.stat(control).st_ino
    second = _daemon(tmp_path, control)
    output = second.communicate(timeout=30)[0]
    assert second.returncode == 1, output
    assert f"control socket {control} is held by a running daemon" in output
    # The first daemon's socket is the same file and still answers.
    assert os.stat(control).st_ino == before
    with ControlClient(str(control), timeout=5) as client:
        assert "hostname first" in client.execute("show configuration")["output"]
    assert proc.poll() is None


def test_a_dead_daemons_control_socket_is_replaced(tmp_path: Path) -> None:
    control = tmp_path / "control.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(control))  # closed without unlinking: what kill -9 leaves
    dead.close()
    proc = _daemon(tmp_path, control)
    try:
        assert _answering(control, proc) == "first#"
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output
    assert not control.exists()  # its own socket goes with it


def test_an_exiting_daemon_leaves_a_socket_that_is_not_its_own(
        first: tuple[subprocess.Popen[str], Path]) -> None:
    proc, control = first
    # Someone (another daemon, after a stale-socket takeover) owns the path now.
    os.unlink(control)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(control))
    try:
        output = _stop(proc)
        assert proc.returncode == 0, output
        assert control.exists()
    finally:
        other.close()
