"""The interactive shell on a pseudo-terminal: `?` without Enter, Tab, Ctrl-C, Ctrl-D."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator

import pytest
from test_cli_protocol import Server

from ipsecgw.cli.gateway import FakeGateway

_ANSI = re.compile(
    r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>()][0-9A-Za-z]?|\r"
)


class Terminal:
    """A child process on a pty, read until a pattern shows up (escape codes removed).

    Control characters are only sent once the prompt is back: between two
    prompts the terminal is in cooked mode, where the kernel itself acts on
    Ctrl-C and Ctrl-D, as for any line-editing program.
    """

    def __init__(self, args: list[str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
        self.proc = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.seen = ""

    def send(self, data: str) -> None:
        os.write(self.master, data.encode())

    def expect(self, pattern: str, timeout: float = 15) -> str:
        """Wait for `pattern` in what arrived since the last expect; return that text."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.seen)
            if match:
                text, self.seen = self.seen[: match.end()], self.seen[match.end() :]
                return text
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} not seen; got {self.seen!r}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 65536).decode(errors="replace")
                except OSError:  # the child closed the pty
                    chunk = ""
                if not chunk and self.proc.poll() is not None:
                    raise AssertionError(f"{pattern!r} not seen before exit; got {self.seen!r}")
                self.seen += _ANSI.sub("", chunk)

    def close(self) -> int:
        try:
            return self.proc.wait(10)
        finally:
            os.close(self.master)


@pytest.fixture
def terminal() -> Iterator[tuple[Terminal, Server]]:
    server = Server(FakeGateway())
    term = Terminal([sys.executable, "-m", "ipsecgw.cli", "--control", server.path])
    try:
        term.expect(r"host1#")
        yield term, server
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
            term.close()
        server.close()


def test_question_mark_shows_help_without_enter(terminal: tuple[Terminal, Server]) -> None:
    term, server = terminal
    term.send("show ipsec ?")
    text = term.expect(r"tunnel\s+IPsec tunnel interfaces")
    assert "ike-sa" in text and "statistics" in text
    term.expect(r"host1#show ipsec")  # the line comes back as it was
    term.send("lif\r")
    term.expect(r"IPsec SA lifetime: 28800 seconds")
    term.send("sh?")
    term.expect(r"show\s+Show running system information")
    term.expect(r"host1#sh")
    term.send("\x15")  # Ctrl-U: empty the line
    term.send("\x04")
    assert term.close() == 0


def test_question_mark_echo_hides_a_secret(terminal: tuple[Terminal, Server]) -> None:
    """The line `?` prints above its help keeps no key in the scrollback (issue 13 item 2)."""
    term, server = terminal
    term.send("conf t\r")
    term.expect(r"host1\(config\)#")
    term.send("ipsec key manual pre-share 10.0.0.2\r")
    term.expect(r"\(config-manual-key\)#")
    term.send("key Tq7secret ?")
    term.expect(r"host1\(config-manual-key\)#key <hidden>\?")
    term.expect(r"<cr>")
    term.expect(r"#key Tq7secret")  # the line comes back to be edited, as typed
    term.send("\x15")
    term.send("\x04")
    assert term.close() == 0


def test_tab_completion_and_abbreviations(terminal: tuple[Terminal, Server]) -> None:
    term, server = terminal
    term.send("conf\t")
    term.expect(r"configure")
    term.send("t\r")  # works only if Tab added the blank after "configure"
    term.expect(r"host1\(config\)#")
    term.send("ipsec transform-set ts esp-aes128-hmac-sha\r")
    term.expect(r"host1\(config\)#")
    term.send("interface tunnel ipsec:siteB\r")
    term.expect(r"host1\(config-if\)#")
    term.send("tunnel transform-set t\t")
    term.expect(r"tunnel transform-set ts")
    term.send("\r")
    term.expect(r"host1\(config-if\)#")
    term.send("sh ip tun\r")
    term.expect(r"ipsec:siteB\s+down")
    term.expect(r"host1\(config-if\)#")
    term.send("\x1a")  # Ctrl-Z: end
    term.expect(r"host1#")
    term.send("exit\r")
    assert term.close() == 0
    tunnel = server.gateway.config.tunnel("siteB")
    assert tunnel is not None and tunnel.transform_set == "ts"


def test_ctrl_c_abandons_the_line_and_errors_point_at_the_word(
    terminal: tuple[Terminal, Server],
) -> None:
    term, server = terminal
    term.send("conf t\r")
    term.expect(r"host1\(config\)#")
    term.send("hostname abandoned")
    term.send("\x03")
    term.expect(r"host1\(config\)#")
    term.send("do show ipsec lifetime\r")
    term.expect(r"IPsec SA lifetime")
    term.expect(r"host1\(config\)#")
    assert server.gateway.applied == 0 and server.gateway.config.hostname == "host1"
    term.send("end\r")
    term.send("conf t\r")
    term.expect(r"host1\(config\)#")
    term.send("ipsec ike-policy-rule 11\r")
    text = term.expect(r"Value out of range: <1-10>")
    caret_line = next(line for line in text.splitlines() if line.strip() == "^")
    assert caret_line.index("^") == len("host1(config)#ipsec ike-policy-rule ")
    term.expect(r"host1\(config\)#")
    term.send("\x04")
    assert term.close() == 0
