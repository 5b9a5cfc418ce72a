"""Quick Mode (RFC 2409 5.5): IPsec SA negotiation under an ISAKMP SA.

::

    I -> R  QM1*  HASH(1), SA, Ni, [KE], IDci, IDcr               QM_I1
    R -> I  QM2*  HASH(2), SA, Nr, [KE], IDci, IDcr, [N(RESPONDER-LIFETIME)]   QM_R1
    I -> R  QM3*  HASH(3)

The responder retransmits QM2 until QM3 arrives (the initiator answers a
repeated QM2 with its cached QM3).  Selectors are always sent, as strongSwan
does: ID_IPV4_ADDR_SUBNET (or ID_IPV4_ADDR for a /32) of the tunnel's local and
remote networks.  The commit bit (RFC 2409 5.5) is ignored.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from . import crypto, keymat, natt
from .codec import (
    DecodeError,
    Hash,
    Identification,
    KeyExchange,
    Message,
    Nonce,
    Notification,
    Payload,
    SecurityAssociation,
    decode_attributes,
    encode_attributes,
)
from .constants import Doi, EncapsulationMode, ExchangeType, LifeType, NotifyType
from .errors import InvalidIdInformation, MessageRejected, NegotiationError, PayloadMissing
from .events import SaKeys
from .policy import EnginePolicy, TunnelPolicy
from .proposals import (
    Phase2Choice,
    Phase2Offer,
    Phase2Suite,
    check_phase2_reply,
    echo_phase2,
    lifetime_attributes,
    parse_lifetime_attributes,
    phase2_sa_payload,
    phase2_suite,
    select_phase2,
)
from .sa import IkeSa, QmState, QuickMode, Role, chain_bytes, hashed_payloads

NONCE_LENGTH = 32


class QuickModeContext(Protocol):
    policy: EnginePolicy

    def random(self, size: int) -> bytes: ...

    def allocate_spi(self) -> bytes: ...

    def responder_tunnel(self, ike: IkeSa, initiator_network: str,
                         responder_network: str) -> TunnelPolicy | None: ...


@dataclass(frozen=True)
class Negotiated:
    """A finished Quick Mode: everything needed to install the SA pair."""

    tunnel: str
    inbound: SaKeys
    outbound: SaKeys
    suite: Phase2Suite
    encapsulation: str
    local_network: str
    remote_network: str
    pfs_group: int | None
    lifetime_seconds: int
    lifetime_kilobytes: int
    rekey_of: bytes | None


def _selector(network: str) -> Identification:
    parsed = ipaddress.ip_network(network, strict=False)
    if parsed.prefixlen == parsed.max_prefixlen:
        return Identification.address(parsed.network_address)
    return Identification.subnet(parsed)


def _network(payload: Identification) -> str:
    network = payload.to_network()
    if network is None:
        raise InvalidIdInformation("selector is not a single address prefix")
    return str(network)


def _find(payloads: tuple[Payload, ...], kind: type[Payload], what: str) -> Payload:
    for payload in payloads:
        if isinstance(payload, kind):
            return payload
    raise PayloadMissing(f"{what} payload missing")


def _decrypt_checked(ike: IkeSa, qm_iv: bytes, message: Message) -> tuple[
        bytes, tuple[Payload, ...], tuple[Payload, ...], bytes]:
    """(HASH data, all payloads, payloads after HASH, next IV)."""
    payloads, next_iv = ike.decrypt(message, qm_iv)
    hash_data, rest = hashed_payloads(payloads)
    return hash_data, payloads, rest, next_iv


def _encrypt(ike: IkeSa, qm: QuickMode, payloads: list[Payload]) -> bytes:
    datagram, qm.iv = ike.encrypt(ExchangeType.QUICK_MODE, qm.message_id, payloads, qm.iv)
    return datagram


def _encapsulation_mode(ike: IkeSa) -> int:
    if ike.nat_detected:
        return natt.udp_encapsulation_mode(ike.capabilities.nat_t)
    return EncapsulationMode.TUNNEL


def _shared(dh: crypto.DhKeyPair, payloads: tuple[Payload, ...]) -> bytes:
    ke = _find(payloads, KeyExchange, "KE")
    assert isinstance(ke, KeyExchange)
    return dh.shared_secret(ke.data)


def start(ctx: QuickModeContext, ike: IkeSa, tunnel: TunnelPolicy, now: float,
          rekey_of: bytes | None) -> tuple[QuickMode, bytes]:
    """Initiator: build QM1 for `tunnel`."""
    suite, keys = ike.require_suite(), ike.require_keys()
    message_id = 0
    while message_id == 0 or message_id in ike.quick_modes:
        message_id = int.from_bytes(ctx.random(4), "big")
    qm = QuickMode(message_id, Role.INITIATOR, QmState.QM_I1, tunnel.name, now,
                   ike.exchange_iv(message_id), rekey_of=rekey_of)
    suites = tuple(phase2_suite(name) for name in tunnel.transforms)
    if ike.nat_detected:
        # AH authenticates the outer addresses a NAT rewrites, and RFC 3948
        # defines UDP encapsulation for ESP only: offer the ESP transforms.
        suites = tuple(s for s in suites if s.protocol == "esp")
        if not suites:
            raise NegotiationError(
                NotifyType.NO_PROPOSAL_CHOSEN,
                f"tunnel {tunnel.name}: a NAT lies between the peers and its transform set "
                "has AH only (AH cannot cross a NAT)")
    qm.inbound_spi = ctx.allocate_spi()
    qm.ni = ctx.random(NONCE_LENGTH)
    qm.offer = Phase2Offer(
        suites, qm.inbound_spi, tunnel.pfs_group, tunnel.lifetime_seconds,
        tunnel.lifetime_kilobytes, _encapsulation_mode(ike))
    qm.local_network, qm.remote_network = tunnel.local_network, tunnel.remote_network
    rest: list[Payload] = [phase2_sa_payload(qm.offer), Nonce(qm.ni)]
    if tunnel.pfs_group is not None:
        qm.dh = crypto.dh_group(tunnel.pfs_group).generate(ctx.random)
        rest.append(KeyExchange(qm.dh.public_value))
    rest += [_selector(tunnel.local_network), _selector(tunnel.remote_network)]
    hash1 = keymat.qm_hash1(suite.prf, keys.skeyid_a, message_id, chain_bytes(rest))
    ike.quick_modes[message_id] = qm
    return qm, _encrypt(ike, qm, [Hash(hash1), *rest])


def _lifetimes_from(tunnel: TunnelPolicy, choice: Phase2Choice) -> tuple[int, int, bool]:
    """The lesser of proposed and configured lifetimes; True if ours was smaller."""
    seconds = min(choice.lifetime_seconds, tunnel.lifetime_seconds)
    proposed_kb = choice.lifetime_kilobytes
    ours_kb = tunnel.lifetime_kilobytes
    kilobytes = min(proposed_kb, ours_kb) if proposed_kb and ours_kb else (proposed_kb or ours_kb)
    return seconds, kilobytes, (seconds, kilobytes) != (choice.lifetime_seconds, proposed_kb)


def responder_start(ctx: QuickModeContext, ike: IkeSa, message: Message,
                    now: float) -> tuple[QuickMode, bytes]:
    """Responder: check QM1, choose, and build QM2."""
    suite, keys = ike.require_suite(), ike.require_keys()
    iv = ike.exchange_iv(message.message_id)
    hash1, payloads, rest, next_iv = _decrypt_checked(ike, iv, message)
    if not hmac.compare_digest(hash1, keymat.qm_hash1(suite.prf, keys.skeyid_a,
                                                      message.message_id, chain_bytes(rest))):
        raise MessageRejected("hash_mismatch", "Quick Mode HASH(1) mismatch")
    sa = _find(rest, SecurityAssociation, "SA")
    nonce = _find(rest, Nonce, "Nonce")
    assert isinstance(sa, SecurityAssociation) and isinstance(nonce, Nonce)
    ids = [p for p in rest if isinstance(p, Identification)]
    if len(ids) not in (0, 2):
        raise InvalidIdInformation("Quick Mode needs both or neither ID payloads")
    if ids:
        initiator_network, responder_network = _network(ids[0]), _network(ids[1])
    else:  # RFC 2409 5.5: no IDs means the phase 1 addresses
        initiator_network, responder_network = f"{ike.remote[0]}/32", f"{ike.local[0]}/32"
    qm = QuickMode(message.message_id, Role.RESPONDER, QmState.QM_R1, "", now, next_iv)
    tunnel = ctx.responder_tunnel(ike, initiator_network, responder_network)
    if tunnel is None:
        raise InvalidIdInformation(
            f"no tunnel for {initiator_network} <-> {responder_network} with {ike.remote[0]}")
    qm.tunnel = tunnel.name
    qm.local_network, qm.remote_network = responder_network, initiator_network
    choice = select_phase2(sa, [phase2_suite(name) for name in tunnel.transforms],
                           tunnel.pfs_group)
    seconds, kilobytes, shortened = _lifetimes_from(tunnel, choice)
    qm.choice = Phase2Choice(choice.suite, choice.peer_spi, choice.proposal_number,
                             choice.transform, choice.encapsulation_mode, choice.pfs_group,
                             seconds, kilobytes)
    qm.ni = nonce.data
    qm.nr = ctx.random(NONCE_LENGTH)
    qm.inbound_spi = ctx.allocate_spi()
    reply: list[Payload] = [echo_phase2(choice, qm.inbound_spi), Nonce(qm.nr)]
    if choice.pfs_group is not None:
        qm.dh = crypto.dh_group(choice.pfs_group).generate(ctx.random)
        qm.gqm = _shared(qm.dh, rest)
        reply.append(KeyExchange(qm.dh.public_value))
    reply += ids
    if shortened:
        # RFC 2407 4.6.3.1: tell the initiator the lifetime we will use.
        reply.append(Notification(Doi.IPSEC, choice.suite.protocol_id,
                                  NotifyType.RESPONDER_LIFETIME, qm.inbound_spi,
                                  encode_attributes(lifetime_attributes(seconds, kilobytes))))
    hash2 = keymat.qm_hash2(suite.prf, keys.skeyid_a, qm.message_id, qm.ni, chain_bytes(reply))
    ike.quick_modes[qm.message_id] = qm
    return qm, _encrypt(ike, qm, [Hash(hash2), *reply])


def _keys(ike: IkeSa, qm: QuickMode, suite: Phase2Suite, spi: bytes) -> SaKeys:
    prf, skeyid_d = ike.require_suite().prf, ike.require_keys().skeyid_d
    material = keymat.ipsec_keymat(prf, skeyid_d, suite.protocol_id, spi, qm.ni, qm.nr,
                                   suite.keymat_length, qm.gqm)
    split = suite.encryption_key_length
    return SaKeys(spi, suite.encryption, material[:split], suite.integrity, material[split:])


def _negotiated(ike: IkeSa, qm: QuickMode) -> Negotiated:
    if qm.choice is None:
        raise RuntimeError("Quick Mode finished without a choice")
    choice = qm.choice
    udp = choice.encapsulation_mode != EncapsulationMode.TUNNEL
    return Negotiated(
        tunnel=qm.tunnel,
        inbound=_keys(ike, qm, choice.suite, qm.inbound_spi),
        outbound=_keys(ike, qm, choice.suite, choice.peer_spi),
        suite=choice.suite,
        encapsulation="udp-tunnel" if udp else "tunnel",
        local_network=qm.local_network,
        remote_network=qm.remote_network,
        pfs_group=choice.pfs_group,
        lifetime_seconds=choice.lifetime_seconds,
        lifetime_kilobytes=choice.lifetime_kilobytes,
        rekey_of=qm.rekey_of,
    )


def _initiator_finish(ctx: QuickModeContext, ike: IkeSa, qm: QuickMode,
                      message: Message) -> tuple[bytes | None, Negotiated | None]:
    suite, keys = ike.require_suite(), ike.require_keys()
    hash2, _payloads, rest, next_iv = _decrypt_checked(ike, qm.iv, message)
    if not hmac.compare_digest(hash2, keymat.qm_hash2(suite.prf, keys.skeyid_a, qm.message_id,
                                                      qm.ni, chain_bytes(rest))):
        raise MessageRejected("hash_mismatch", "Quick Mode HASH(2) mismatch")
    qm.iv = next_iv
    if qm.offer is None:
        raise RuntimeError("initiator Quick Mode without an offer")
    sa = _find(rest, SecurityAssociation, "SA")
    nonce = _find(rest, Nonce, "Nonce")
    assert isinstance(sa, SecurityAssociation) and isinstance(nonce, Nonce)
    choice = check_phase2_reply(sa, qm.offer)
    seconds, kilobytes = qm.offer.lifetime_seconds, qm.offer.lifetime_kilobytes
    for notify in rest:
        if isinstance(notify, Notification) and \
                notify.notify_type == NotifyType.RESPONDER_LIFETIME:
            try:
                lifetimes = parse_lifetime_attributes(decode_attributes(notify.data))
            except DecodeError:
                continue
            seconds = min(seconds, lifetimes.get(LifeType.SECONDS, seconds))
            if LifeType.KILOBYTES in lifetimes:
                kilobytes = min(kilobytes or lifetimes[LifeType.KILOBYTES],
                                lifetimes[LifeType.KILOBYTES])
    qm.choice = Phase2Choice(choice.suite, choice.peer_spi, choice.proposal_number,
                             choice.transform, choice.encapsulation_mode, choice.pfs_group,
                             seconds, kilobytes)
    qm.nr = nonce.data
    if qm.dh is not None:
        qm.gqm = _shared(qm.dh, rest)
    hash3 = keymat.qm_hash3(suite.prf, keys.skeyid_a, qm.message_id, qm.ni, qm.nr)
    return _encrypt(ike, qm, [Hash(hash3)]), _negotiated(ike, qm)


def _responder_finish(ctx: QuickModeContext, ike: IkeSa, qm: QuickMode,
                      message: Message) -> tuple[bytes | None, Negotiated | None]:
    suite, keys = ike.require_suite(), ike.require_keys()
    hash3, _payloads, _rest, next_iv = _decrypt_checked(ike, qm.iv, message)
    if not hmac.compare_digest(hash3, keymat.qm_hash3(suite.prf, keys.skeyid_a, qm.message_id,
                                                      qm.ni, qm.nr)):
        raise MessageRejected("hash_mismatch", "Quick Mode HASH(3) mismatch")
    qm.iv = next_iv
    return None, _negotiated(ike, qm)


Handler = Callable[[QuickModeContext, IkeSa, QuickMode, Message],
                   tuple[bytes | None, Negotiated | None]]
#: The step that consumes the next message of a Quick Mode in each state.
TRANSITIONS: dict[QmState, Handler] = {
    QmState.QM_I1: _initiator_finish,
    QmState.QM_R1: _responder_finish,
}
