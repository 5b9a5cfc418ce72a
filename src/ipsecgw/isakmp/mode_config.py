"""Mode Config (draft-dukes-ike-mode-cfg-02), the server's side: pure functions.

Pull: a client asks with a REQUEST naming the attributes it wants (vpnc:
INTERNAL_IP4_ADDRESS/NETMASK/DNS/NBNS, APPLICATION_VERSION and the Cisco
Unity ones; strongSwan: INTERNAL_IP4_ADDRESS/DNS/NBNS, with its unity plugin
UNITY_* as well); the REPLY answers what we know and leaves out the rest
(3.3: a responder returns what it can).  Push (a profile's `mode-config
push`, for clients such as strongSwan with `pull = no` that wait for it):
we SET what a REPLY to vpnc's full REQUEST would carry, and the client
ACKs.  Traps from vpnc (vpnc.c do_config_to_env): the REPLY must carry
INTERNAL_IP4_ADDRESS, and every address attribute is a 4-octet TLV even
when its value would fit the TV form; UNITY_PFS must be TV;
UNITY_SPLIT_INCLUDE is a list of 14-octet entries (address, mask, protocol,
source port, destination port).
"""

from __future__ import annotations

import ipaddress

from .codec import Attribute, AttributePayload
from .constants import CfgType, ConfigAttribute
from .events import SubscriberAssignment
from .policy import TunnelProfile

#: What we answer APPLICATION_VERSION with.
APPLICATION_VERSION = b"ipsecgw"


def _address(kind: int, value: str) -> Attribute:
    return Attribute(kind, ipaddress.IPv4Address(value).packed, False)


def _split_include(networks: tuple[str, ...]) -> bytes:
    entries = []
    for text in networks:
        network = ipaddress.ip_network(text, strict=False)
        if network.version == 4:
            entries.append(network.network_address.packed + network.netmask.packed + bytes(6))
    return b"".join(entries)


#: What a SET pushes: a REPLY's attributes that a client may use unasked
#: (APPLICATION_VERSION answers a question, so it is not pushed).
PUSHED = frozenset({
    ConfigAttribute.INTERNAL_IP4_ADDRESS, ConfigAttribute.INTERNAL_IP4_NETMASK,
    ConfigAttribute.INTERNAL_IP4_DNS, ConfigAttribute.INTERNAL_IP4_NBNS,
    ConfigAttribute.UNITY_DEF_DOMAIN, ConfigAttribute.UNITY_SPLIT_INCLUDE,
    ConfigAttribute.UNITY_SAVE_PASSWD, ConfigAttribute.UNITY_PFS,
})


def reply(request: AttributePayload, assignment: SubscriberAssignment,
          profile: TunnelProfile) -> AttributePayload:
    """The REPLY to `request` for a subscriber given `assignment`."""
    wanted = {attribute.type for attribute in request.attributes}
    return AttributePayload(CfgType.REPLY, request.identifier,
                            _attributes(wanted, assignment, profile))


def push(identifier: int, assignment: SubscriberAssignment,
         profile: TunnelProfile) -> AttributePayload:
    """The SET that pushes a subscriber's configuration given `assignment`."""
    return AttributePayload(CfgType.SET, identifier, _attributes(PUSHED, assignment, profile))


def _attributes(wanted: set[int] | frozenset[int], assignment: SubscriberAssignment,
                profile: TunnelProfile) -> tuple[Attribute, ...]:
    """The attributes among `wanted` we have a value for (the address always)."""
    answer: list[Attribute] = [_address(ConfigAttribute.INTERNAL_IP4_ADDRESS, assignment.address)]
    if ConfigAttribute.INTERNAL_IP4_NETMASK in wanted:
        answer.append(_address(ConfigAttribute.INTERNAL_IP4_NETMASK, assignment.netmask))
    if ConfigAttribute.INTERNAL_IP4_DNS in wanted:
        answer += [_address(ConfigAttribute.INTERNAL_IP4_DNS, server)
                   for server in assignment.dns or profile.dns]
    if ConfigAttribute.INTERNAL_IP4_NBNS in wanted:
        answer += [_address(ConfigAttribute.INTERNAL_IP4_NBNS, server)
                   for server in assignment.wins or profile.wins]
    domain = assignment.domain or profile.domain_suffix
    if ConfigAttribute.UNITY_DEF_DOMAIN in wanted and domain:
        answer.append(Attribute(ConfigAttribute.UNITY_DEF_DOMAIN, domain.encode(), False))
    split = _split_include(assignment.split_networks or profile.local_networks)
    if ConfigAttribute.UNITY_SPLIT_INCLUDE in wanted and split:
        answer.append(Attribute(ConfigAttribute.UNITY_SPLIT_INCLUDE, split, False))
    if ConfigAttribute.UNITY_SAVE_PASSWD in wanted:
        answer.append(Attribute(ConfigAttribute.UNITY_SAVE_PASSWD, 0, True))
    if ConfigAttribute.UNITY_PFS in wanted:
        answer.append(Attribute(ConfigAttribute.UNITY_PFS, int(profile.pfs_group is not None),
                                True))
    if ConfigAttribute.APPLICATION_VERSION in wanted:
        answer.append(Attribute(ConfigAttribute.APPLICATION_VERSION, APPLICATION_VERSION, False))
    return tuple(answer)
