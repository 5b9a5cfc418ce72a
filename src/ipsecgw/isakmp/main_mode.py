"""Main Mode (RFC 2409 5), the initiator's and the responder's steps.

::

    I -> R  MM1  SA, VID*                                   MM_I1 / MM_R1
    R -> I  MM2  SA, VID*
    I -> R  MM3  KE, Ni, [CR], NAT-D, NAT-D                 MM_I2 / MM_R2
    R -> I  MM4  KE, Nr, [CR], NAT-D, NAT-D
    I -> R  MM5* IDii, [CERT], HASH_I|SIG_I, [N(INITIAL-CONTACT)]   MM_I3
    R -> I  MM6* IDir, [CERT], HASH_R|SIG_R

`initiator_start` sends MM1, `responder_start` answers it; `TRANSITIONS`
names the step for each later message.  The shared pieces are phase1.py's.
"""

from __future__ import annotations

from . import natt
from .codec import (
    Identification,
    KeyExchange,
    Message,
    Nonce,
    Payload,
    SecurityAssociation,
    VendorId,
)
from .constants import ExchangeType
from .phase1 import (
    Handler,
    Phase1Context,
    Step,
    auth_payloads,
    cert_request,
    check_natd,
    derive_keys,
    find_payload,
    float_to_nat_t,
    has_initial_contact,
    initial_contact_payloads,
    natd_out,
    new_nonce_and_ke,
    peer_ke_nonce,
    plain,
    responder_choose,
    verify_peer,
)
from .proposals import check_ike_reply, ike_sa_payload
from .sa import IkeSa, P1State

# --- Main Mode --------------------------------------------------------------------


def initiator_start(ctx: Phase1Context, ike: IkeSa) -> Step:
    sa = ike_sa_payload(ike.offered)
    ike.sai_b = sa.encode_body()
    ike.state = P1State.MM_I1
    payloads: list[Payload] = [sa, *natt.our_vendor_ids(ctx.policy.nat_t)]
    return Step(plain(ike, ExchangeType.IDENTITY_PROTECTION, payloads), expect_reply=True)


def responder_start(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    sa = find_payload(message.payloads, SecurityAssociation, "SA")
    reply_sa = responder_choose(ctx, ike, sa, message.find_all(VendorId))
    ike.state = P1State.MM_R1
    payloads: list[Payload] = [reply_sa, *natt.responder_vendor_ids(ike.capabilities)]
    return Step(plain(ike, ExchangeType.IDENTITY_PROTECTION, payloads))


def _i2(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    sa = find_payload(message.payloads, SecurityAssociation, "SA")
    ike.suite = check_ike_reply(sa, ike.offered)
    ike.capabilities = natt.peer_capabilities(message.find_all(VendorId), ctx.policy.nat_t)
    ike.ni, ike.gxi = new_nonce_and_ke(ctx, ike, ike.suite.group)
    payloads: list[Payload] = [KeyExchange(ike.gxi), Nonce(ike.ni), *cert_request(ctx, ike),
                               *natd_out(ctx, ike)]
    ike.state = P1State.MM_I2
    return Step(plain(ike, ExchangeType.IDENTITY_PROTECTION, payloads), expect_reply=True)


def _r2(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    ike.gxi, ike.ni = peer_ke_nonce(ike, message.payloads)
    ike.nr, ike.gxr = new_nonce_and_ke(ctx, ike, ike.require_suite().group)
    check_natd(ike, message.payloads, ike.local, ike.remote)
    if ike.require_suite().authentication == "pre-share":
        ike.psk = ctx.preshared_key(ike, None)
    derive_keys(ctx, ike, ike.gxi)
    payloads: list[Payload] = [KeyExchange(ike.gxr), Nonce(ike.nr), *cert_request(ctx, ike),
                               *natd_out(ctx, ike)]
    ike.state = P1State.MM_R2
    return Step(plain(ike, ExchangeType.IDENTITY_PROTECTION, payloads), expect_reply=True)


def _i3(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    ike.gxr, ike.nr = peer_ke_nonce(ike, message.payloads)
    check_natd(ike, message.payloads, ike.local, ike.remote)
    if ike.require_suite().authentication == "pre-share":
        ike.psk = ctx.preshared_key(ike, None)
    derive_keys(ctx, ike, ike.gxr)
    float_to_nat_t(ike)
    ike.local_id = ctx.local_identity(ike)
    payloads: list[Payload] = [ike.local_id, *auth_payloads(ctx, ike, ike.local_id),
                               *initial_contact_payloads(ike)]
    datagram, ike.iv = ike.encrypt(ExchangeType.IDENTITY_PROTECTION, 0, payloads, ike.iv)
    ike.state = P1State.MM_I3
    return Step(datagram, expect_reply=True)


def _r3(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    payloads, ike.iv = ike.decrypt(message, ike.iv)
    ike.peer_id = find_payload(payloads, Identification, "ID")
    verify_peer(ctx, ike, payloads, ike.peer_id)
    ike.local_id = ctx.local_identity(ike)
    reply: list[Payload] = [ike.local_id, *auth_payloads(ctx, ike, ike.local_id)]
    datagram, ike.iv = ike.encrypt(ExchangeType.IDENTITY_PROTECTION, 0, reply, ike.iv)
    ike.state = P1State.ESTABLISHED
    return Step(datagram, established=True, initial_contact=has_initial_contact(payloads))


def _i4(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    payloads, ike.iv = ike.decrypt(message, ike.iv)
    ike.peer_id = find_payload(payloads, Identification, "ID")
    verify_peer(ctx, ike, payloads, ike.peer_id)
    ike.state = P1State.ESTABLISHED
    return Step(established=True, initial_contact=has_initial_contact(payloads))


TRANSITIONS: dict[P1State, Handler] = {
    P1State.MM_I1: _i2,
    P1State.MM_I2: _i3,
    P1State.MM_I3: _i4,
    P1State.MM_R1: _r2,
    P1State.MM_R2: _r3,
}

#: States whose expected message is encrypted.
ENCRYPTED_STATES = frozenset({P1State.MM_I3, P1State.MM_R2})
