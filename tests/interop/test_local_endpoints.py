"""IKE local endpoints follow their VR's namespace and the configuration
(issue 15 item 7): an endpoint in a VR whose namespace does not exist yet
is down with the reason and opens when the namespace appears; `no ipsec
local-endpoint` leaves no socket behind."""

from __future__ import annotations

from pathlib import Path

from gwlab import IpsecgwProcess, wait_until

from ipsecgw.tools import testbed as tb

ADDRESS = "10.96.0.1"


def _ike_ports(netns: tb.Netns) -> set[int]:
    """The UDP ports bound on ADDRESS inside `netns`."""
    lines = netns.run("ss", "-Hnul").splitlines()
    return {int(local.rpartition(":")[2]) for line in lines
            if (local := line.split()[3]).startswith(ADDRESS + ":")}


def test_an_endpoint_waits_for_its_namespace_and_goes_without_a_trace(
        interop: None, tmp_path: Path) -> None:
    vr = tb.unique_name("igwl")
    with tb.Netns.create("igwh") as home:
        config = f"virtual-router {vr}\nipsec local-endpoint {ADDRESS} transport-virtual-router {vr}\n"
        with IpsecgwProcess(home, tmp_path / "gw", config) as gw:
            reason = f"no network namespace '{vr}'"
            assert wait_until(lambda: reason in gw.log(), 10), gw.log()
            shown = gw.cli("show ipsec local-endpoint")
            row = shown.splitlines()[-1].split(None, 4)
            assert row[3] == "down" and row[4].endswith(reason), shown
            with tb.Netns(vr) as transport:
                assert wait_until(lambda: _ike_ports(transport) == {500, 4500}, 10), gw.log()
                assert wait_until(lambda: gw.cli("show ipsec local-endpoint").splitlines()[-1]
                                  .split()[-1] == "up", 5)
                assert f"local endpoint {ADDRESS}:500 in VR {vr}: open now" in gw.log()
                assert gw.log().count(reason) == 2  # once per port, not once per retry
                gw.cli("configure terminal", f"virtual-router {vr}",
                       f"no ipsec local-endpoint {ADDRESS} transport-virtual-router {vr}")
                assert wait_until(lambda: _ike_ports(transport) == set(), 5)
