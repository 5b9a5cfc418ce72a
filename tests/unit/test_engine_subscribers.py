"""Dynamic IPSec subscribers (issue 16): a remote-access client logs in to a
tunnel profile with Aggressive Mode (key-id group name + group key), XAUTH,
Mode Config and Quick Mode for its address/32 <-> 0.0.0.0/0."""

from __future__ import annotations

from dataclasses import replace

from engine_helpers import B_IP, NAT_IP, Nat, make_pair, rng
from subscriber_helpers import (
    GROUP,
    RULE,
    Aaa,
    Client,
    client_policy,
    engine_client,
    gateway_policy,
    login,
    profile,
    subscriber_pair,
)

from ipsecgw.isakmp import informational
from ipsecgw.isakmp.codec import Message, SecurityAssociation
from ipsecgw.isakmp.constants import AuthMethod, ConfigAttribute, ExchangeType, IkeAttribute
from ipsecgw.isakmp.engine import Engine
from ipsecgw.isakmp.events import (
    IpsecSaDeleted,
    IpsecSaEstablished,
    Phase1Deleted,
    Phase1Failed,
    SubscriberDown,
    SubscriberLoginFailed,
    SubscriberLoginRequested,
    SubscriberUp,
)
from ipsecgw.isakmp.policy import IdentityPattern
from ipsecgw.isakmp.subscribers import XAUTH_TIMEOUT


def test_full_login_xauth_mode_config_and_quick_mode() -> None:
    pair, aaa = subscriber_pair(), Aaa()
    login(pair, aaa)
    request = aaa.requests[0]
    assert (request.profile, request.identity, request.username, request.password) == \
        ("remote", GROUP, "alice", "wonderland")
    assert "wonderland" not in repr(request)
    assert pair.client.xauth_status == 1
    assert pair.client.address == "10.200.0.5"
    config = pair.client.config
    assert config is not None
    assert config.find(ConfigAttribute.INTERNAL_IP4_DNS).value == bytes([10, 1, 0, 53])
    assert config.find(ConfigAttribute.UNITY_DEF_DOMAIN).value == b"corp.example"
    assert config.find(ConfigAttribute.UNITY_SAVE_PASSWD).value == 0
    assert config.find(ConfigAttribute.UNITY_BANNER) is None  # nothing to say: left out
    up, = pair.events("b", SubscriberUp)
    assert (up.tunnel, up.address, up.username) == ("remote:1", "10.200.0.5", "alice")
    # SubscriberUp comes before the subscriber's IPsec SA, which is for its tunnel.
    sink = pair.events_b
    sa, = pair.events("b", IpsecSaEstablished)
    assert sink.index(up) < sink.index(sa)
    assert (sa.tunnel, sa.remote_network, sa.local_network) == \
        ("remote:1", "10.200.0.5/32", "0.0.0.0/0")
    assert pair.consistent()
    status, = pair.b.subscriber_status(pair.now)
    assert (status.state, status.tunnel, status.username, status.address) == \
        ("up", "remote:1", "alice", "10.200.0.5")
    assert [t.name for t in pair.b.tunnel_status(pair.now)] == ["remote:1"]
    assert pair.b.statistics()["xauth_succeeded"] == 1


def test_client_leaving_takes_the_subscriber_and_its_tunnel() -> None:
    pair, aaa = subscriber_pair(), Aaa()
    login(pair, aaa)
    vpn = replace(pair.a.policy.tunnels[0], enabled=False)  # the user disconnects
    pair.a.update_policy(replace(pair.a.policy, tunnels=(vpn,)), pair.now)
    pair.a.clear_sa(None, 1, pair.now)
    pair.pump()
    down, = pair.events("b", SubscriberDown)
    assert (down.subscriber, down.tunnel, down.address) == (1, "remote:1", "10.200.0.5")
    assert pair.b.subscriber_status(pair.now) == []
    assert pair.b.tunnel_status(pair.now) == []
    assert not pair.b._sas.children


def test_wrong_password_is_refused_and_the_phase_1_deleted() -> None:
    pair, aaa = subscriber_pair(client=Client(password="guess")), Aaa()
    login(pair, aaa)
    assert pair.client.xauth_status == 0
    failed, = pair.events("b", SubscriberLoginFailed)
    assert (failed.username, failed.reason) == ("alice", "wrong password")
    assert not pair.events("b", SubscriberUp)
    assert pair.events("b", Phase1Deleted)
    assert not pair.b._sas.ike and pair.b.tunnel_status(pair.now) == []
    assert pair.b.statistics()["xauth_failed"] == 1


def test_client_that_never_answers_xauth_is_dropped_after_30_s() -> None:
    pair = subscriber_pair(client=Client(answer_xauth=False))
    pair.connect()
    assert pair.b.subscriber_status(pair.now)[0].state == "xauth"
    pair.advance(XAUTH_TIMEOUT - 10)
    assert pair.b._sas.ike and not pair.events("b", SubscriberLoginFailed)
    pair.advance(11)
    failed, = pair.events("b", SubscriberLoginFailed)
    assert "no XAUTH answer" in failed.reason
    assert not pair.b._sas.ike and pair.b.subscriber_status(pair.now) == []
    assert pair.client.xauth_requests == 4  # the REQUEST and three retransmissions


def test_reply_without_password_gets_new_requests_up_to_the_limit() -> None:
    pair = subscriber_pair(client=Client(password=None))
    pair.connect()
    assert pair.client.xauth_requests == 3
    failed, = pair.events("b", SubscriberLoginFailed)
    assert "USER_PASSWORD" in failed.reason
    assert not pair.events("b", SubscriberLoginRequested)
    assert not pair.b._sas.ike


def test_unknown_group_gets_no_phase_1() -> None:
    pair = subscriber_pair(client_engine=client_policy(group="strangers"))
    pair.connect()
    assert pair.events("b", Phase1Failed) and pair.events("a", Phase1Failed)
    assert not pair.b._sas.ike
    assert pair.b.statistics()["subscribers_refused_identity"] == 1


def test_wildcard_identity_pattern_and_wrong_group_key() -> None:
    wildcard = gateway_policy(profile(peer_identity=IdentityPattern("key-id", "remote-*")))
    pair, aaa = subscriber_pair(gateway=wildcard), Aaa()
    login(pair, aaa)
    assert pair.events("b", SubscriberUp)
    pair = subscriber_pair(client_engine=client_policy(psk=b"not the group key"))
    pair.connect()
    pair.advance(70)  # B's half-open phase 1 waits for an AM3 that never comes
    assert not pair.b._sas.ike and not pair.events("b", SubscriberLoginRequested)


def test_max_interfaces_refuses_the_next_phase_1_and_keeps_the_first() -> None:
    pair, aaa = subscriber_pair(gateway=gateway_policy(profile(max_interfaces=1))), Aaa()
    login(pair, aaa)
    before = len(pair.b._sas.ike)
    pair.connect()  # a second phase 1 for the same profile
    assert len(pair.b._sas.ike) == before
    assert pair.b.statistics()["subscribers_refused_max"] >= 1
    assert pair.b.subscriber_status(pair.now)[0].state == "up"


def test_mode_config_request_is_held_until_the_login_result() -> None:
    gateway = gateway_policy(profile(xauth=False))
    pair, aaa = subscriber_pair(gateway=gateway), Aaa(answer=False)
    pair.connect()
    request, = pair.events("b", SubscriberLoginRequested)
    assert request.username is None and request.password is None
    cookies = next(iter(pair.a._sas.ike))
    pair.client.config_id = 0
    pair.send_from_client(pair.client.request_config(pair, cookies))
    pair.pump()
    assert pair.client.config is None  # held
    aaa.answer = True
    aaa.serve(pair)
    assert pair.client.address == "10.200.0.5"
    pair.advance(5)
    assert pair.consistent()
    assert pair.events("b", SubscriberUp)


def test_profile_address_accepts_first_messages_from_anyone_but_no_tunnel_address() -> None:
    pair = subscriber_pair()
    engine = pair.b
    assert engine._may_accept(B_IP, "198.51.100.7")
    assert not engine._may_accept("10.99.0.9", "198.51.100.7")


def test_two_subscribers_behind_one_address_each_with_its_own_tunnel() -> None:
    """A second client of the same group from the same address (a NAT) logs in
    beside the first; its INITIAL-CONTACT does not remove the first (same group
    identity), and it cannot take over the first one's tunnel."""
    pair, aaa = subscriber_pair(), Aaa(users={"alice": "wonderland", "bob": "builder"})
    login(pair, aaa)
    pair.a = Engine(client_policy(), rng=rng(77))  # another client, same address
    pair.client = Client(username="bob", password="builder")
    login(pair, aaa)
    states = {(s.username, s.tunnel, s.address, s.state)
              for s in pair.b.subscriber_status(pair.now)}
    assert states == {("alice", "remote:1", "10.200.0.5", "up"),
                      ("bob", "remote:2", "10.200.0.6", "up")}
    assert {sa.tunnel for sa in pair.events("b", IpsecSaEstablished)} == \
        {"remote:1", "remote:2"}
    assert not pair.events("b", SubscriberDown)
    shown = {t.name: [ike.tunnel for ike in t.ike_sas] for t in pair.b.tunnel_status(pair.now)}
    assert shown == {"remote:1": ["remote:1"], "remote:2": ["remote:2"]}
    assert sorted(ike.tunnel or "" for ike in pair.b.ike_sa_status(pair.now)) == \
        ["remote:1", "remote:2"]
    # Bob asks for Alice's address: refused, Alice's tunnel keeps its one SA.
    vpn = replace(pair.a.policy.tunnels[0], local_network="10.200.0.5/32")
    pair.a.update_policy(replace(pair.a.policy, tunnels=(vpn,)), pair.now)
    pair.advance(5)
    assert [sa.tunnel for sa in pair.events("b", IpsecSaEstablished)].count("remote:1") == 1
    assert pair.b.statistics()["phase2_failed"] >= 1


def test_subscriber_phase_1_expiry_ends_the_subscriber_without_a_renewal_to_the_client() -> None:
    """The gateway never initiates towards a subscriber (it is no tunnel's peer):
    not even the responder-only phase 1 renewal of configured tunnels."""
    short = gateway_policy(ike_rules=(replace(RULE, lifetime_seconds=600),))
    pair, aaa = subscriber_pair(gateway=short), Aaa()
    login(pair, aaa)
    first_messages = len([d for direction, d in pair.wire if direction == "ba"
                          and d.data[8:16] == bytes(8)])
    pair.advance(700)
    assert first_messages == len([d for direction, d in pair.wire if direction == "ba"
                                  and d.data[8:16] == bytes(8)])
    down, = pair.events("b", SubscriberDown)
    assert down.reason == "expired"
    assert pair.b.tunnel_status(pair.now) == [] and not pair.b._sas.children


def test_clear_sa_of_a_subscriber_tunnel_logs_out_that_subscriber_only() -> None:
    pair, aaa = subscriber_pair(), Aaa(users={"alice": "wonderland", "bob": "builder"})
    login(pair, aaa)
    pair.a = Engine(client_policy(), rng=rng(78))
    pair.client = Client(username="bob", password="builder")
    login(pair, aaa)
    assert pair.b.clear_sa(["remote:1"], None, pair.now) == 2  # its IPsec SA and phase 1
    pair.pump()
    down, = pair.events("b", SubscriberDown)
    assert (down.tunnel, down.reason) == ("remote:1", "cleared")
    assert [s.username for s in pair.b.subscriber_status(pair.now)] == ["bob"]
    assert [t.name for t in pair.b.tunnel_status(pair.now)] == ["remote:2"]


def test_main_mode_where_one_profile_owns_the_address() -> None:
    """strongSwan's road warrior uses Main Mode with its address as identity."""
    gateway = gateway_policy(profile(peer_identity=None))
    client = replace(client_policy(), ike_rules=(RULE,))
    vpn = replace(client.tunnels[0], local_identity=None)
    pair, aaa = subscriber_pair(gateway=gateway,
                                client_engine=replace(client, tunnels=(vpn,))), Aaa()
    login(pair, aaa)
    assert pair.events("b", SubscriberUp) and pair.consistent()
    assert pair.b.subscriber_status(pair.now)[0].identity == "10.99.0.1"
    # Two profiles on the address: Main Mode cannot choose the key.
    two = gateway_policy(profile(peer_identity=None), profile(name="other", peer_identity=None))
    pair = subscriber_pair(gateway=two, client_engine=replace(client, tunnels=(vpn,)))
    pair.connect()
    assert not pair.b._sas.ike and pair.b.statistics()["subscribers_refused_identity"] == 1


def test_client_rekeys_its_sa_on_the_subscriber_tunnel() -> None:
    pair, aaa = subscriber_pair(gateway=gateway_policy(profile(lifetime_seconds=600))), Aaa()
    login(pair, aaa)
    first, = pair.events("b", IpsecSaEstablished)
    pair.advance(590)
    established = pair.events("b", IpsecSaEstablished)
    assert len(established) == 2
    assert (established[1].tunnel, established[1].rekey_of) == ("remote:1", first.inbound.spi)
    assert pair.consistent() and not pair.events("b", SubscriberDown)


def test_dead_client_ends_its_subscriber() -> None:
    pair, aaa = subscriber_pair(), Aaa()
    login(pair, aaa)
    pair.stop("a")
    pair.advance(300)
    down, = pair.events("b", SubscriberDown)
    assert down.reason == "dead peer"
    assert pair.b.subscriber_status(pair.now) == [] and pair.b.tunnel_status(pair.now) == []


def test_repeated_mode_config_request_gets_the_same_reply() -> None:
    """A client whose REPLY was lost repeats its REQUEST: the reply cache answers."""
    pair, aaa = subscriber_pair(), Aaa()
    login(pair, aaa)
    requests = [d for direction, d in pair.wire if direction == "ab"
                and Message.decode_header(d.data).message_id == pair.client.config_id]
    replies_before = [d.data for direction, d in pair.wire if direction == "ba"
                      and Message.decode_header(d.data).message_id == pair.client.config_id]
    assert len(requests) == 1 and len(replies_before) == 1
    retransmits = pair.b.statistics()["retransmits"]
    pair.b.receive_datagram(requests[0].data, (B_IP, 500), requests[0].local, pair.now)
    again = pair.b.datagrams_to_send(pair.now)
    assert [d.data for d in again] == replies_before
    assert pair.b.statistics()["retransmits"] == retransmits + 1


def test_engine_as_remote_access_client_logs_in_and_negotiates_for_its_address() -> None:
    pair, aaa = make_pair(engine_client(), gateway_policy()), Aaa()
    pair.start()
    aaa.serve(pair)
    pair.advance(5)
    assert pair.consistent()
    ours, = pair.events("a", IpsecSaEstablished)
    assert (ours.tunnel, ours.local_network, ours.remote_network) == \
        ("vpn", "10.200.0.5/32", "0.0.0.0/0")
    assert pair.events("b", SubscriberUp)[0].username == "alice"
    assert "wonderland" not in repr(pair.a.policy)
    pair.advance(3000)  # rekeys keep the address
    assert pair.consistent() and len(pair.events("b", SubscriberUp)) == 1


def test_engine_client_without_xauth_and_with_a_refused_password() -> None:
    pair, aaa = make_pair(engine_client(None, None),
                          gateway_policy(profile(xauth=False))), Aaa()
    pair.start()
    aaa.serve(pair)
    pair.advance(5)
    assert pair.consistent()
    pair, aaa = make_pair(engine_client(password="guess"), gateway_policy()), Aaa()
    pair.start()
    aaa.serve(pair)
    pair.advance(5)
    assert not pair.events("a", IpsecSaEstablished)
    assert pair.events("b", SubscriberLoginFailed)
    assert "XAUTH refused" in pair.a.tunnel_status(pair.now)[0].last_failure


def test_engine_client_proposes_the_xauth_method_when_it_has_a_user_name() -> None:
    pair = make_pair(engine_client(), gateway_policy())
    pair.a.handle_timer(pair.now)
    first, = pair.a.datagrams_to_send(pair.now)
    transforms = Message.decode(first.data).find(SecurityAssociation).proposals[0].transforms
    methods = {a.as_int() for t in transforms for a in t.attributes
               if a.type == IkeAttribute.AUTHENTICATION_METHOD}
    assert methods == {AuthMethod.XAUTH_INIT_PRESHARED}


def test_delete_of_a_subscriber_sa_goes_under_its_own_phase_1() -> None:
    """Behind one NAT address the newest phase 1 is another client's: a Delete
    sent under it would leave the owner using an SA that is gone."""
    pair, aaa = subscriber_pair(), Aaa(users={"alice": "wonderland", "bob": "builder"})
    login(pair, aaa)
    alice_ike = next(iter(pair.a._sas.ike))
    pair.a = Engine(client_policy(), rng=rng(79))
    pair.client = Client(username="bob", password="builder")
    login(pair, aaa)
    sent = len(pair.wire)
    assert pair.b.clear_sa(["remote:1"], 2, pair.now) == 1
    pair.pump()
    deletes = [d for direction, d in pair.wire[sent:] if direction == "ba"
               and Message.decode_header(d.data).exchange_type == ExchangeType.INFORMATIONAL]
    assert deletes and all(d.data[:16] == alice_ike for d in deletes)


def test_a_client_cannot_delete_another_clients_sas_behind_the_same_address() -> None:
    """Alice and Bob behind one NAT (same address, their own ports): a Delete
    that Bob sends for Alice's phase 1 and IPsec SA is ignored."""
    pair, aaa = subscriber_pair(), Aaa(users={"alice": "wonderland", "bob": "builder"})
    pair.nat = Nat(next_port=41000)
    login(pair, aaa)
    alice = pair.b._subscribers.get(1)
    assert alice is not None
    alice_spi = pair.events("a", IpsecSaEstablished)[0].outbound.spi  # B's inbound SPI
    pair.a = Engine(client_policy(), rng=rng(80))
    pair.client = Client(username="bob", password="builder")
    pair.nat = Nat(next_port=42000)
    login(pair, aaa)
    peers = {s.peer for s in pair.b.subscriber_status(pair.now)}
    assert len(peers) == 2 and {address for address, _ in peers} == {NAT_IP}
    bob_ike = next(iter(pair.a._sas.ike.values()))
    deletes = informational.protect(bob_ike, [
        informational.delete_ike(alice.ike),
        informational.delete_ipsec("esp", (alice_spi,))], rng(5))
    pair.send_from_client(deletes)
    pair.pump()
    assert {s.username for s in pair.b.subscriber_status(pair.now)} == {"alice", "bob"}
    assert "remote:1" in {c.tunnel for c in pair.b._sas.children.values()}


def test_configuration_change_leaves_logged_in_subscribers_alone() -> None:
    pair, aaa = subscriber_pair(), Aaa()
    login(pair, aaa)
    policy = pair.b.policy
    pair.b.update_policy(replace(policy, profiles=(replace(policy.profiles[0], max_interfaces=5),)),
                         pair.now)
    pair.pump()
    assert [t.name for t in pair.b.tunnel_status(pair.now)] == ["remote:1"]
    assert pair.consistent() and not pair.events("b", SubscriberDown)
    assert not pair.events("b", IpsecSaDeleted)
