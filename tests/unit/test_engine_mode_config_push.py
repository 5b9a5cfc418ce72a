"""Mode Config push (issue 16): a profile with `mode_config="push"` SETs the
subscriber's configuration once XAUTH is over, for clients that wait for it
(strongSwan with `pull = no`), and takes the client's ACK. Pull stays the
default, and a client that pulls anyway is answered."""

from __future__ import annotations

import ipaddress

from subscriber_helpers import Aaa, Client, gateway_policy, login, profile, subscriber_pair

from ipsecgw.isakmp import mode_config
from ipsecgw.isakmp.constants import CfgType, ConfigAttribute
from ipsecgw.isakmp.events import (
    IpsecSaEstablished,
    SubscriberAssignment,
    SubscriberDown,
    SubscriberUp,
)

PUSH = profile(mode_config="push", local_networks=("10.1.0.0/16",), wins=("10.1.0.54",))


def test_push_after_xauth_gives_the_client_its_address_and_takes_its_ack() -> None:
    pair, aaa = subscriber_pair(gateway=gateway_policy(PUSH), client=Client(pull=False)), Aaa()
    login(pair, aaa)
    client = pair.client
    assert client.xauth_status == 1 and client.config_sets == 1
    assert client.config_id == 0  # it never asked
    assert client.address == "10.200.0.5"
    config = client.config
    assert config is not None and config.cfg_type == CfgType.SET
    assert config.find(ConfigAttribute.INTERNAL_IP4_NETMASK).value == bytes([255] * 4)
    assert config.find(ConfigAttribute.INTERNAL_IP4_DNS).value == bytes([10, 1, 0, 53])
    assert config.find(ConfigAttribute.INTERNAL_IP4_NBNS).value == bytes([10, 1, 0, 54])
    assert config.find(ConfigAttribute.UNITY_DEF_DOMAIN).value == b"corp.example"
    assert config.find(ConfigAttribute.UNITY_SPLIT_INCLUDE).value == \
        bytes([10, 1, 0, 0, 255, 255, 0, 0]) + bytes(6)
    assert config.find(ConfigAttribute.APPLICATION_VERSION) is None  # answers a question only
    assert pair.consistent()
    sa, = pair.events("b", IpsecSaEstablished)
    assert (sa.tunnel, sa.remote_network) == ("remote:1", "10.200.0.5/32")
    status, = pair.b.subscriber_status(pair.now)
    assert status.state == "up"
    pair.advance(60)
    assert client.config_sets == 1  # ACKed: never sent again


def test_pull_stays_the_default_and_pushes_nothing() -> None:
    """A client that waits for a push gets nothing from a pull profile."""
    pair, aaa = subscriber_pair(client=Client(pull=False)), Aaa()
    login(pair, aaa)
    assert pair.client.xauth_status == 1
    assert pair.client.config_sets == 0 and pair.client.config is None
    assert not pair.events("b", IpsecSaEstablished)


def test_push_without_xauth_follows_the_login_result() -> None:
    gateway = gateway_policy(profile(mode_config="push", xauth=False))
    pair, aaa = subscriber_pair(gateway=gateway, client=Client(pull=False)), Aaa()
    login(pair, aaa)
    assert pair.client.xauth_requests == 0 and pair.client.config_sets == 1
    assert pair.client.address == "10.200.0.5" and pair.consistent()


def test_a_client_that_pulls_anyway_is_answered_and_not_pushed_to_again() -> None:
    """vpnc pulls whatever the gateway does: its REQUEST gets the REPLY, and
    the SET that it does not ACK is not repeated."""
    client = Client(pull=True, ack_config=False)
    pair, aaa = subscriber_pair(gateway=gateway_policy(PUSH), client=client), Aaa()
    login(pair, aaa)
    assert client.config is not None and client.config.cfg_type == CfgType.REPLY
    assert client.address == "10.200.0.5" and pair.consistent()
    pair.advance(60)
    assert client.config_sets <= 1
    assert [s.state for s in pair.b.subscriber_status(pair.now)] == ["up"]
    assert pair.b.statistics()["mode_config_unanswered"] == 0


def test_an_unanswered_push_ends_the_login() -> None:
    client = Client(pull=False, ack_config=False)
    pair, aaa = subscriber_pair(gateway=gateway_policy(PUSH), client=client), Aaa()
    login(pair, aaa)
    assert [s.state for s in pair.b.subscriber_status(pair.now)] == ["mode-config"]
    pair.advance(60)
    assert client.config_sets == 4  # the SET and three retransmissions
    down, = pair.events("b", SubscriberDown)
    assert down.address == "10.200.0.5" and "Mode Config SET" in down.reason
    assert pair.events("b", SubscriberUp)  # the login itself was accepted
    assert pair.b.subscriber_status(pair.now) == [] and not pair.b._sas.ike
    assert pair.b.statistics()["mode_config_unanswered"] == 1


def test_pushed_attributes_have_the_forms_clients_read() -> None:
    """Addresses as 4-octet TLVs, UNITY_PFS and UNITY_SAVE_PASSWD as TVs (as in
    a REPLY: vpnc's traps, mode_config.py)."""
    pushed = mode_config.push(7, SubscriberAssignment("10.200.0.9", dns=("10.2.0.1",)),
                              profile(pfs_group=14))
    assert pushed.cfg_type == CfgType.SET and pushed.identifier == 7
    forms = {ConfigAttribute(a.type).name: (a.tv, a.value) for a in pushed.attributes}
    assert forms["INTERNAL_IP4_ADDRESS"] == \
        (False, ipaddress.IPv4Address("10.200.0.9").packed)
    assert forms["INTERNAL_IP4_DNS"] == (False, ipaddress.IPv4Address("10.2.0.1").packed)
    assert forms["UNITY_PFS"] == (True, 1) and forms["UNITY_SAVE_PASSWD"] == (True, 0)
    assert "INTERNAL_IP4_NBNS" not in forms  # no WINS server: left out
