"""Tunnel profiles' identities, XAUTH authentication methods and the Mode Config REPLY."""

from __future__ import annotations

import pytest

from ipsecgw.isakmp.codec import (
    Attribute,
    AttributePayload,
    Identification,
    SecurityAssociation,
)
from ipsecgw.isakmp.constants import AuthMethod, CfgType, ConfigAttribute, IkeAttribute
from ipsecgw.isakmp.events import SubscriberAssignment
from ipsecgw.isakmp.identity import identification, identity_matches, payload_identity
from ipsecgw.isakmp.mode_config import reply
from ipsecgw.isakmp.policy import Identity, IdentityPattern, IkeRule, TunnelProfile
from ipsecgw.isakmp.proposals import IkeSuite, NoProposalChosen, ike_sa_payload, select_ike


def test_key_id_identity_round_trip_and_patterns() -> None:
    payload = identification(Identity("key-id", "Sales"))
    assert (payload.id_type, payload.data) == (11, b"Sales")
    assert payload_identity(payload) == Identity("key-id", "Sales")
    assert identity_matches(Identity("key-id", "Sales"), payload)
    assert not identity_matches(Identity("key-id", "sales"), payload)  # opaque: exact
    assert identity_matches(IdentityPattern("key-id", "Sal*"), payload)
    assert not identity_matches(IdentityPattern("domain-name", "*"), payload)
    fqdn = Identification.fqdn("Laptop7.Corp.Example")
    assert identity_matches(IdentityPattern("domain-name", "*.corp.example"), fqdn)
    assert not identity_matches(IdentityPattern("domain-name", "*.other.example"), fqdn)
    assert payload_identity(Identification.subnet("10.0.0.0/8")) is None


def test_profile_checks_its_settings() -> None:
    with pytest.raises(ValueError):
        TunnelProfile("p", "10.0.0.1", transforms=())
    with pytest.raises(ValueError):
        TunnelProfile("p", "10.0.0.1", max_interfaces=-1)
    with pytest.raises(ValueError):
        TunnelProfile("p", "10.0.0.1", local_networks=("10.0.0.0/33",))
    assert "group-key" not in repr(TunnelProfile("p", "10.0.0.1", psk=b"group-key"))


def _xauth_offer() -> SecurityAssociation:
    suite = IkeSuite("aes256", "sha", "pre-share", 14, 28800, xauth=True)
    return ike_sa_payload([suite])


def test_xauth_method_is_chosen_only_for_subscribers() -> None:
    """vpnc and strongSwan propose XAUTHInitPreShared (65001) for a group key + XAUTH."""
    offer = _xauth_offer()
    method = offer.proposals[0].transforms[0].attributes
    assert any(a.type == IkeAttribute.AUTHENTICATION_METHOD and
               a.as_int() == AuthMethod.XAUTH_INIT_PRESHARED for a in method)
    rules = (IkeRule(group=14, hash="sha"),)
    with pytest.raises(NoProposalChosen):
        select_ike(offer, rules, "aggressive")
    suite, transform, _ = select_ike(offer, rules, "aggressive", xauth=True)
    assert (suite.authentication, suite.xauth) == ("pre-share", True)
    assert transform is offer.proposals[0].transforms[0]


def test_mode_config_reply_answers_what_is_asked_and_known() -> None:
    profile = TunnelProfile("p", "10.0.0.1", local_networks=("10.1.0.0/16",),
                            wins=("10.1.0.137",))
    request = AttributePayload(CfgType.REQUEST, 20, tuple(
        Attribute(kind, b"", False) for kind in (
            ConfigAttribute.INTERNAL_IP4_NETMASK, ConfigAttribute.INTERNAL_IP4_NBNS,
            ConfigAttribute.UNITY_SPLIT_INCLUDE, ConfigAttribute.UNITY_PFS,
            ConfigAttribute.UNITY_BANNER, ConfigAttribute.INTERNAL_IP6_ADDRESS)))
    answer = reply(request, SubscriberAssignment("10.200.0.9", dns=("9.9.9.9",)), profile)
    assert (answer.cfg_type, answer.identifier) == (CfgType.REPLY, 20)
    kinds = [a.type for a in answer.attributes]
    assert kinds == [ConfigAttribute.INTERNAL_IP4_ADDRESS, ConfigAttribute.INTERNAL_IP4_NETMASK,
                     ConfigAttribute.INTERNAL_IP4_NBNS, ConfigAttribute.UNITY_SPLIT_INCLUDE,
                     ConfigAttribute.UNITY_PFS]
    address = answer.find(ConfigAttribute.INTERNAL_IP4_ADDRESS)
    assert address is not None and (address.tv, address.value) == (False, bytes([10, 200, 0, 9]))
    split = answer.find(ConfigAttribute.UNITY_SPLIT_INCLUDE)
    assert split is not None and split.value == bytes([10, 1, 0, 0, 255, 255, 0, 0]) + bytes(6)
    pfs = answer.find(ConfigAttribute.UNITY_PFS)
    assert pfs is not None and (pfs.tv, pfs.value) == (True, 0)


@pytest.mark.parametrize("bad", [
    {"address": "10.200.0.300"}, {"address": "2001:db8::5"}, {"address": "10.0.0.1", "dns": ("x",)},
    {"address": "10.0.0.1", "split_networks": ("10.0.0.0/40",)},
])
def test_assignment_refuses_what_mode_config_cannot_carry(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SubscriberAssignment(**bad)  # type: ignore[arg-type]
