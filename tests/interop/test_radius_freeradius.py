"""The AAA package against a real FreeRADIUS (issue 16): XAUTH credentials are
checked by the server, its Framed-IP-Address comes back, accounting Start and
Stop land in its detail log with the counters, and a server that is down or
has another secret times out, after which `radius local` falls back to the
local users and `radius` alone refuses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from conftest import require_interop

from ipsecgw.aaa.authenticator import AuthSettings, authenticate
from ipsecgw.aaa.radius import AccountingRecord, RadiusClient, RadiusServer, RadiusTimeout
from ipsecgw.tools import testbed as tb
from ipsecgw.tools import testbed_remote as tr

SECRET = "s3cret-radius"
USERS = [tr.RadiusUser("alice", "wonderland", "10.200.0.77", interim_interval=900),
         tr.RadiusUser("bob", "builder")]


@pytest.fixture
def radius() -> Iterator[tuple[tb.TwoSites, tr.FreeRadius]]:
    """FreeRADIUS in site B; the gateway's RADIUS client speaks from site A."""
    require_interop(("ip", tr.FREERADIUS))
    with tb.TwoSites("igwr") as sites, tr.FreeRadius(
        sites.b, clients={tb.SITE_A_OUTER: SECRET}, users=USERS
    ) as server:
        server.start()
        yield sites, server


def _servers(port: int, secret: str = SECRET, timeout: float = 0.5,
             retransmit: int = 1) -> tuple[RadiusServer, ...]:
    return (RadiusServer(tb.SITE_B_OUTER, secret.encode(), port, timeout, retransmit),)


def test_access_accept_reject_and_framed_address(
        radius: tuple[tb.TwoSites, tr.FreeRadius]) -> None:
    sites, _ = radius
    client = RadiusClient(vr=sites.a.name)

    async def run() -> None:
        alice = await client.authenticate(_servers(1812), "alice", "wonderland",
                                          calling_station="192.0.2.9:4500")
        assert alice.accepted and alice.framed_address == "10.200.0.77"
        assert alice.interim_interval == 900  # Acct-Interim-Interval (aaa user accounting)
        bob = await client.authenticate(_servers(1812), "bob", "builder")
        assert bob.accepted and bob.framed_address is None and bob.interim_interval is None
        wrong = await client.authenticate(_servers(1812), "alice", "Wonderland")
        assert not wrong.accepted
        # A password longer than one 16-octet block of RFC 2865 5.2's hiding.
        long = await client.authenticate(_servers(1812), "alice", "wonderland" * 4)
        assert not long.accepted

    asyncio.run(run())
    assert client.timeouts == 0


def test_accounting_start_interim_stop_in_the_detail_log(
        radius: tuple[tb.TwoSites, tr.FreeRadius]) -> None:
    sites, server = radius
    client = RadiusClient(vr=sites.a.name)
    base = AccountingRecord("start", "igw-42", "alice", "10.200.0.77",
                            calling_station="192.0.2.9:4500")

    async def run() -> None:
        await client.account(_servers(1813), base)
        await client.account(_servers(1813), AccountingRecord(
            "interim", "igw-42", "alice", "10.200.0.77", input_octets=100, output_octets=200,
            input_packets=1, output_packets=2, session_time=1))
        await client.account(_servers(1813), AccountingRecord(
            "stop", "igw-42", "alice", "10.200.0.77", input_octets=5 * 2**32 + 1234,
            output_octets=5678, input_packets=12, output_packets=34, session_time=7,
            terminate_cause="user-request"))

    asyncio.run(run())
    deadline = time.monotonic() + 5
    while len(records := server.detail_records()) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [r["Acct-Status-Type"] for r in records] == ["Start", "Interim-Update", "Stop"]
    assert all(r["Acct-Session-Id"] == "igw-42" and r["User-Name"] == "alice"
               and r["Framed-IP-Address"] == "10.200.0.77" for r in records)
    stop = records[-1]
    assert stop["Acct-Input-Octets"] == "1234" and stop["Acct-Input-Gigawords"] == "5"
    assert stop["Acct-Output-Octets"] == "5678"
    assert stop["Acct-Input-Packets"] == "12" and stop["Acct-Output-Packets"] == "34"
    assert stop["Acct-Terminate-Cause"] == "User-Request"
    assert records[0]["Calling-Station-Id"] == "192.0.2.9:4500"


def test_a_server_that_is_down_times_out_then_local_fallback_or_refusal(
        radius: tuple[tb.TwoSites, tr.FreeRadius]) -> None:
    sites, server = radius
    client = RadiusClient(vr=sites.a.name)
    local_users = {"carol": "local-pw", "alice": "old-local-pw"}
    both = AuthSettings(("radius", "local"), _servers(1812, timeout=0.3), local_users)
    # FreeRADIUS sends a reject after a second (its reject_delay).
    patient = AuthSettings(("radius", "local"), _servers(1812, timeout=2), local_users)
    radius_only = AuthSettings(("radius",), _servers(1812, timeout=0.3), local_users)

    async def run() -> None:
        # Server up: RADIUS's answer is final, even a reject (no local fallback).
        up = await authenticate(client, patient, "alice", "old-local-pw")
        assert not up.accepted and up.method == "radius"
        server.stop()
        started = time.monotonic()
        with pytest.raises(RadiusTimeout):
            await client.authenticate(_servers(1812, timeout=0.3, retransmit=2), "a", "b")
        # 3 tries of 0.3 s each, then give up.
        assert 0.85 < time.monotonic() - started < 3
        fallback = await authenticate(client, both, "carol", "local-pw")
        assert fallback.accepted and fallback.method == "local"
        wrong = await authenticate(client, both, "carol", "nope")
        assert not wrong.accepted and wrong.method == "local"
        refused = await authenticate(client, radius_only, "carol", "local-pw")
        assert not refused.accepted and refused.method is None
        assert "no RADIUS server answered" in refused.reason

    asyncio.run(run())
    assert client.timeouts == 4


def test_the_next_server_is_asked_when_the_first_is_silent_and_a_wrong_secret_is_silence(
        radius: tuple[tb.TwoSites, tr.FreeRadius]) -> None:
    sites, _ = radius
    client = RadiusClient(vr=sites.a.name)
    # Nothing listens on 1912; the second server is the real one.
    servers = (*_servers(1912, timeout=0.2, retransmit=0), *_servers(1812))

    async def run() -> None:
        reply = await client.authenticate(servers, "alice", "wonderland")
        assert reply.accepted and reply.framed_address == "10.200.0.77"
        # FreeRADIUS drops a request whose Message-Authenticator does not
        # verify under its secret: to us that is a silent server.
        with pytest.raises(RadiusTimeout):
            await client.authenticate(_servers(1812, secret="other", timeout=0.3), "alice",
                                      "wonderland")

    asyncio.run(run())
