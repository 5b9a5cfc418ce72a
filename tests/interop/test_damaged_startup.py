"""A damaged startup file, against strongSwan (issue 13 items 2-5, fault suite).

The daemon starts from a file that holds, before a valid site
configuration: a Latin-1 byte, a 50,000-character line, a bad
mode-entering line whose indented block ends with `exit`, a top-level
`exit`, refused secrets (unterminated quote, bad masked key), and a last
line without its newline. It must come up, bring the tunnel up with
strongSwan and carry a ping, having logged each bad line by number, no
secret, and never the long line. A file over the size limit stops the
daemon at start with a message that names the limit.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from gwlab import PSK, ping_ok, site_config, wait_until

from ipsecgw.cli.loader import MAX_FILE_SIZE
from ipsecgw.tools import testbed as tb

DAMAGE = b"\n".join(
    [
        b"! caf\xe9",  # 1: Latin-1
        b"hostname " + b"x" * 50_000,  # 2: a huge line
        b"interface tunnel ipsec:bad name",  # 3: a refused mode line ...
        b" tunnel destination 10.99.0.8",  # 4: ... its block
        b" exit",  # 5
        b"exit",  # 6: never leaves configuration mode
        b"ipsec key manual pre-share 10.99.0.99",  # 7
        b' key "Tq7unterminated',  # 8
        b" masked-key Tq7NotMasked",  # 9
        b" exit",  # 10
    ]
)


def strongswan_b() -> str:
    return tb.swanctl_conf(local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
                           local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=PSK)


class Daemon:
    """`ipsecgw daemon` in a namespace, from a startup file written as bytes."""

    def __init__(self, netns: tb.Netns, workdir: Path, data: bytes) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "ipsecgw.conf"
        self.config.write_bytes(data)
        self.control = workdir / "control.sock"
        self.log_path = workdir / "ipsecgw.log"
        with open(self.log_path, "wb") as log:
            self.proc = netns.popen(
                [sys.executable, "-m", "ipsecgw", "daemon", "--config", str(self.config),
                 "--control", str(self.control)],
                stdout=log, stderr=subprocess.STDOUT,
            )

    def started(self, timeout: float = 15) -> bool:
        deadline = time.monotonic() + timeout
        while not self.control.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def cli(self, *commands: str) -> str:
        args = [sys.executable, "-m", "ipsecgw", "cli", "--control", str(self.control)]
        for command in commands:
            args += ["-c", command]
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def test_a_damaged_startup_file_still_brings_the_tunnel_up(
    two_sites: tb.TwoSites, tmp_path: Path
) -> None:
    data = DAMAGE + b"\n" + site_config().rstrip("\n").encode()
    assert not data.endswith(b"\n")
    with tb.StrongSwan(two_sites.b, strongswan_b(), workdir=tmp_path / "swan") as swan:
        swan.start()
        gw = Daemon(two_sites.a, tmp_path / "gw", data)
        try:
            assert gw.started(), gw.log()

            def up() -> bool:
                shown = gw.cli("show ipsec tunnel ipsec:siteB").split()
                return "up" in shown

            assert wait_until(up, timeout=30), gw.log()
            assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
            assert gw.cli("show configuration | include ^hostname") == "hostname siteA\n"
        finally:
            gw.stop()
    log = gw.log()
    for number in (1, 2, 3, 4, 5, 8, 9):
        assert f"ipsecgw.conf:{number}: " in log, (number, log)
    assert "ipsecgw.conf:6:" not in log and "ipsecgw.conf:10:" not in log
    assert "Tq7" not in log, "no refused secret in the log"
    assert "x" * 100 not in log and len(log) < 20_000, "the long line is not copied"


def test_a_startup_file_over_the_limit_stops_the_daemon_with_a_message(
    two_sites: tb.TwoSites, tmp_path: Path
) -> None:
    workdir = tmp_path / "big"
    workdir.mkdir()
    big = workdir / "ipsecgw.conf"
    with big.open("wb") as file:
        file.write(site_config().encode())
        file.truncate(MAX_FILE_SIZE + 1)
    gw = Daemon(two_sites.a, workdir, big.read_bytes())
    try:
        assert gw.proc.wait(30) == 1
    finally:
        gw.stop()
    assert f"larger than {MAX_FILE_SIZE} bytes, the limit of a startup file" in gw.log()
    assert not gw.control.exists()
