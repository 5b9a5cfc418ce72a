"""The README's first command: `ipsecgw lab` brings a tunnel up, pings through it
and leaves nothing behind (namespaces, processes, its work directory)."""

from __future__ import annotations

import glob
import subprocess
import sys
import tempfile

import pytest
from conftest import require_interop

from ipsecgw.tools import testbed as tb
from ipsecgw.tools import testbed_remote as tr


def namespaces() -> set[str]:
    return set(tb.run(["ip", "netns", "list"]).split())


def run_lab(*args: str) -> str:
    before = namespaces()
    workdirs = set(glob.glob(f"{tempfile.gettempdir()}/ipsecgw-lab*"))
    proc = subprocess.run([sys.executable, "-m", "ipsecgw", "lab", "--pings", "2", *args],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    left = {name for name in namespaces() - before if name.startswith("lab")}
    assert not left, f"the lab left namespaces behind: {left}"
    assert set(glob.glob(f"{tempfile.gettempdir()}/ipsecgw-lab*")) <= workdirs
    return proc.stdout


@pytest.mark.parametrize("peer", ["strongswan", "ipsecgw"])
def test_the_site_to_site_lab_pings_through_its_tunnel(peer: str) -> None:
    require_interop(("ip", "ping", "swanctl", tb.CHARON))
    out = run_lab("--peer", peer)
    assert "2 received" in out and "lab: tunnel up and traffic flowing" in out
    assert "siteB" in out  # `show ipsec tunnel` printed the tunnel


def test_the_remote_access_lab_logs_a_vpnc_subscriber_in() -> None:
    require_interop(("ip", "ping", tr.FREERADIUS, tr.VPNC))
    out = run_lab("--remote-access")
    assert "lab: subscriber logged in and traffic flowing" in out
    assert "alice" in out  # `show subscribers`
