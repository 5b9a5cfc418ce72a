"""The load generator against an in-process ipsecgw responder over loopback UDP:
site-to-site tunnels, and subscribers of a tunnel profile (XAUTH, Mode Config)."""

from __future__ import annotations

import select
import socket
import threading
import time

import pytest

from ipsecgw.isakmp.engine import Engine
from ipsecgw.isakmp.events import (
    SubscriberAssignment,
    SubscriberDown,
    SubscriberLoginRequested,
    SubscriberUp,
)
from ipsecgw.isakmp.policy import (
    EnginePolicy,
    IdentityPattern,
    IkeRule,
    TunnelPolicy,
    TunnelProfile,
)
from ipsecgw.tools.loadgen import (
    LoadGenerator,
    LoadSpec,
    build_parser,
    default_transform,
    parse_proposal,
    spec_from_args,
)

PSK = b"loadgen-test-psk"
GROUP, GROUP_KEY = "loadgroup", b"group-key"
RULE = IkeRule(priority=1, encryption="aes128", hash="sha", group=14)


class Responder(threading.Thread):
    """An ipsecgw engine answering on 127.0.0.1:<ephemeral>: one tunnel for every
    /32, or (`gateway`) a tunnel profile whose logins it answers as the daemon
    would (local users `user<n>` with password `pw`, a pool)."""

    def __init__(self, policy: EnginePolicy | None = None) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        tunnel = TunnelPolicy(name="load", local_address="127.0.0.1", peer_address="127.0.0.1",
                              transforms=("esp-aes128-hmac-sha",), local_network="10.98.2.0/24",
                              remote_network="10.100.0.0/16")
        self.engine = Engine(policy or EnginePolicy(
            local_addresses=("127.0.0.1",), nat_t=False, tunnels=(tunnel,), ike_rules=(RULE,),
            preshared_keys={"127.0.0.1": PSK}))
        self.stopping = threading.Event()
        self.clear = threading.Event()
        self.pool = [f"10.200.0.{n}" for n in range(10, 30)]
        self.logins: list[SubscriberLoginRequested] = []
        self.up: list[SubscriberUp] = []
        self.down: list[SubscriberDown] = []

    def _event(self, event: object, now: float) -> None:
        if isinstance(event, SubscriberLoginRequested):
            self.logins.append(event)
            user = event.username or ""
            if user.startswith("user") and event.password == "pw":
                self.engine.subscriber_login_result(
                    event.subscriber, now, accepted=True,
                    assignment=SubscriberAssignment(self.pool.pop(0)))
            else:
                self.engine.subscriber_login_result(event.subscriber, now, accepted=False,
                                                    reason="wrong password")
        elif isinstance(event, SubscriberUp):
            self.up.append(event)
        elif isinstance(event, SubscriberDown):
            self.down.append(event)

    def run(self) -> None:
        local = ("127.0.0.1", 500)
        while not self.stopping.is_set():
            readable, _, _ = select.select([self.sock], [], [], 0.02)
            now = time.monotonic()
            if self.clear.is_set():
                self.clear.clear()
                self.engine.clear_sa(None, None, now)
            if readable:
                data, remote = self.sock.recvfrom(65535)
                self.engine.receive_datagram(data, local, remote, now)
            deadline = self.engine.get_timer()
            if deadline is not None and deadline <= now:
                self.engine.handle_timer(now)
            for datagram in self.engine.datagrams_to_send(now):
                self.sock.sendto(datagram.data, datagram.remote)
            while (event := self.engine.next_event()) is not None:
                self._event(event, now)

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
        self.sock.close()


@pytest.fixture
def responder() -> Responder:
    thread = Responder()
    thread.start()
    yield thread  # type: ignore[misc]
    thread.stop()


@pytest.fixture
def gateway() -> Responder:
    profile = TunnelProfile(name="remote", local_address="127.0.0.1",
                            peer_identity=IdentityPattern("key-id", GROUP), psk=GROUP_KEY,
                            transforms=("esp-aes128-hmac-sha",))
    thread = Responder(EnginePolicy(local_addresses=("127.0.0.1",), nat_t=False,
                                    ike_rules=(RULE,), profiles=(profile,)))
    thread.start()
    yield thread  # type: ignore[misc]
    thread.stop()


def subscriber_spec(gateway: Responder, *args: str) -> LoadSpec:
    return spec_from_args(build_parser().parse_args([
        "--target", "127.0.0.1", "--local", "127.0.0.1", "--source-port", "0",
        "--target-port", str(gateway.port), "--no-nat-t", "--proposal", "aes128-sha1-modp2048",
        "--group", GROUP, "--group-key", GROUP_KEY.decode(), *args]))


def test_subscribers_log_in_with_xauth_and_negotiate_for_their_own_address(
        gateway: Responder) -> None:
    spec = subscriber_spec(gateway, "--remote-access", "user{n}:pw", "--tunnels", "5",
                           "--concurrency", "3", "--timeout", "20")
    generator = LoadGenerator(spec)
    try:
        report = generator.establish()
        addresses = sorted(t.address or "" for t in generator.tunnels)
        generator.delete_all(linger=0.5)
    finally:
        generator.close()
    assert report["established"] == 5 and report["failures"] == {}, report
    assert report["logins_per_s"] == report["tunnels_per_s"] > 0
    assert report["addresses"] == 5
    assert addresses == [f"10.200.0.{n}" for n in range(10, 15)]
    assert sorted(e.username or "" for e in gateway.logins) == [f"user{n}" for n in range(5)]
    # Each client's Quick Mode was for the address the gateway gave it.
    assert sorted(e.address for e in gateway.up) == addresses
    # The generator's Deletes log every subscriber out.
    deadline = time.monotonic() + 5
    while len(gateway.down) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(gateway.down) == 5 and gateway.engine.subscriber_status(time.monotonic()) == []


def test_a_refused_login_is_reported_under_its_reason(gateway: Responder) -> None:
    spec = subscriber_spec(gateway, "--remote-access", "user{n}:guess", "--tunnels", "1",
                           "--timeout", "2")
    generator = LoadGenerator(spec)
    try:
        report = generator.establish()
    finally:
        generator.close()
    assert report["established"] == 0 and report["addresses"] == 0
    assert report["failures"]["XAUTH refused by the gateway"] >= 1, report
    assert report["failures"]["timeout"] == 1
    assert gateway.up == []


def test_subscriber_options_are_checked() -> None:
    def parse(*args: str) -> LoadSpec:
        return spec_from_args(build_parser().parse_args(["--target", "192.0.2.1", *args]))

    spec = parse("--group", "g", "--group-key", "k", "--remote-access", "u{n}:p")
    assert spec.subscriber and spec.rule.aggressive_mode == "required"
    assert spec.identity(3).kind == "key-id" and spec.identity(3).value == "g"
    assert spec.credentials(3) is not None and spec.credentials(3).username == "u3"
    assert spec.psk == b"k" and "'p'" not in repr(spec)
    no_xauth = parse("--group", "g", "--group-key", "k")
    assert no_xauth.credentials(0) is not None and no_xauth.credentials(0).username is None
    with pytest.raises(ValueError, match="needs --group"):
        parse("--psk", "k", "--remote-access", "u:p")
    with pytest.raises(ValueError, match="both are needed"):
        parse("--group", "g", "--group-key", "k", "--remote-access", "u")
    with pytest.raises(ValueError, match="only {n}"):
        parse("--group", "g", "--group-key", "k", "--remote-access", "u{x}:p")


def test_every_tunnel_gets_its_own_phase_1_and_ipsec_sa(responder: Responder) -> None:
    rule = parse_proposal("aes128-sha1-modp2048")
    spec = LoadSpec(target="127.0.0.1", tunnels=6, concurrency=2, rule=rule,
                    transform=default_transform(rule), psk=PSK, local_address="127.0.0.1",
                    source_port=0, target_port=responder.port, nat_t=False,
                    remote_network="10.98.2.0/24", timeout=20)
    generator = LoadGenerator(spec)
    try:
        report = generator.establish()
        generator.delete_all(linger=0.5)
    finally:
        generator.close()
    assert report["established"] == 6, report
    assert report["failed"] == 0 and report["failures"] == {}
    assert report["tunnels_per_s"] > 0
    assert report["setup_ms"]["max"] >= report["setup_ms"]["p50"] > 0
    statistics = responder.engine.statistics()
    # One phase 1 per tunnel: distinct identities, nothing reused.
    assert statistics["phase1_established"] == 6
    assert statistics["phase2_established"] == 6


def test_hold_counts_tunnels_renewed_after_the_mark(responder: Responder) -> None:
    rule = parse_proposal("aes128-sha1-modp2048")
    spec = LoadSpec(target="127.0.0.1", tunnels=3, concurrency=3, rule=rule,
                    transform=default_transform(rule), psk=PSK, local_address="127.0.0.1",
                    source_port=0, target_port=responder.port, nat_t=False,
                    remote_network="10.98.2.0/24", timeout=20)
    statuses: list[dict[str, object]] = []
    generator = LoadGenerator(spec, status=statuses.append)
    try:
        assert generator.establish()["established"] == 3
        generator.hold(0.3)
        assert statuses[-1]["up"] == 3 and statuses[-1]["renewed"] == 0
        generator.request_mark()
        generator.hold(0.3)
        assert generator.status()["mark"] is not None and generator.status()["renewed"] == 0
        # The gateway deletes everything; the generator's tunnels come back.
        responder.clear.set()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and generator.status()["renewed"] < 3:
            generator.hold(0.2)
    finally:
        generator.close()
    final = generator.status()
    assert final["mark"] is not None
    assert final["renewed"] == 3 and final["up"] == 3, final


def test_proposals_are_parsed_strongswan_style() -> None:
    rule = parse_proposal("aes256-sha256-modp2048")
    assert (rule.encryption, rule.hash, rule.group) == ("aes256", "sha256", 14)
    assert default_transform(rule) == "esp-aes256-hmac-sha256"
    assert default_transform(parse_proposal("3des-md5-modp1024")) == "esp-3des-hmac-md5"
    assert parse_proposal("aes128-sha1-ecp256").group == 19
    with pytest.raises(ValueError, match="ENCRYPTION-HASH-GROUP"):
        parse_proposal("aes128-sha1")
    with pytest.raises(ValueError):
        parse_proposal("chacha-sha1-modp2048")


def test_identities_and_selectors_are_distinct_per_tunnel() -> None:
    rule = parse_proposal("aes128-sha1-modp2048")
    spec = LoadSpec(target="192.0.2.1", tunnels=3, concurrency=1, rule=rule,
                    transform="esp-aes128-hmac-sha", psk=b"x")
    assert spec.identity(7).value == "load7@loadgen.test"
    assert spec.local_network(0) == "10.100.0.0/32"
    assert spec.local_network(300) == "10.100.1.44/32"
