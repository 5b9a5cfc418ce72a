"""Aggressive Mode (RFC 2409 5), the initiator's and the responder's steps.

::

    I -> R  AM1  SA, KE, Ni, IDii, [CR], VID*               AM_I1 / AM_R1
    R -> I  AM2  SA, KE, Nr, IDir, [CERT], HASH_R|SIG_R, [CR], NAT-D, NAT-D, VID*
    I -> R  AM3* [CERT], HASH_I|SIG_I, NAT-D, NAT-D   (encrypted, as Libreswan and Cisco)

`initiator_start` sends AM1, `responder_start` answers it; `TRANSITIONS`
names the step for AM2 and AM3.  The shared pieces are phase1.py's.
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
    natd_out,
    new_nonce_and_ke,
    peer_ke_nonce,
    plain,
    responder_choose,
    verify_peer,
)
from .proposals import check_ike_reply, ike_sa_payload
from .sa import IkeSa, P1State


def initiator_start(ctx: Phase1Context, ike: IkeSa) -> Step:
    sa = ike_sa_payload(ike.offered)
    ike.sai_b = sa.encode_body()
    ike.suite = ike.offered[0]  # all offered suites share the group (policy.py)
    ike.ni, ike.gxi = new_nonce_and_ke(ctx, ike, ike.suite.group)
    ike.local_id = ctx.local_identity(ike)
    payloads: list[Payload] = [sa, KeyExchange(ike.gxi), Nonce(ike.ni), ike.local_id,
                               *cert_request(ctx, ike), *natt.our_vendor_ids(ctx.policy.nat_t)]
    ike.suite = None
    ike.state = P1State.AM_I1
    return Step(plain(ike, ExchangeType.AGGRESSIVE, payloads), expect_reply=True)


def responder_start(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    sa = find_payload(message.payloads, SecurityAssociation, "SA")
    reply_sa = responder_choose(ctx, ike, sa, message.find_all(VendorId))
    ike.gxi, ike.ni = peer_ke_nonce(ike, message.payloads)
    ike.peer_id = find_payload(message.payloads, Identification, "ID")
    ike.nr, ike.gxr = new_nonce_and_ke(ctx, ike, ike.require_suite().group)
    if ike.require_suite().authentication == "pre-share":
        ike.psk = ctx.preshared_key(ike, ike.peer_id)
    derive_keys(ctx, ike, ike.gxi)
    ike.local_id = ctx.local_identity(ike)
    payloads: list[Payload] = [
        reply_sa, KeyExchange(ike.gxr), Nonce(ike.nr), ike.local_id,
        *auth_payloads(ctx, ike, ike.local_id), *cert_request(ctx, ike),
        *natd_out(ctx, ike), *natt.responder_vendor_ids(ike.capabilities),
    ]
    ike.state = P1State.AM_R1
    return Step(plain(ike, ExchangeType.AGGRESSIVE, payloads))


def _i2(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    sa = find_payload(message.payloads, SecurityAssociation, "SA")
    ike.suite = check_ike_reply(sa, ike.offered)
    ike.capabilities = natt.peer_capabilities(message.find_all(VendorId), ctx.policy.nat_t)
    ike.gxr, ike.nr = peer_ke_nonce(ike, message.payloads)
    ike.peer_id = find_payload(message.payloads, Identification, "ID")
    if ike.suite.authentication == "pre-share":
        ike.psk = ctx.preshared_key(ike, ike.peer_id)
    derive_keys(ctx, ike, ike.gxr)
    verify_peer(ctx, ike, message.payloads, ike.peer_id)
    check_natd(ike, message.payloads, ike.local, ike.remote)
    if ike.local_id is None:
        raise RuntimeError("aggressive mode initiator without identity")
    # NAT-D describes the addresses of the exchange so far (port 500), which is
    # what the responder compares them with.
    payloads: list[Payload] = [*auth_payloads(ctx, ike, ike.local_id), *natd_out(ctx, ike)]
    float_to_nat_t(ike)
    # Sent encrypted, as Libreswan and Cisco do (RFC 2409 shows it in the
    # clear, which leaves the first phase 2 IV ambiguous: Libreswan takes the
    # whole hash(g^xi | g^xr), strongSwan its first block). Encrypted, both
    # ends chain from its last ciphertext block; strongSwan accepts either.
    datagram, ike.iv = ike.encrypt(ExchangeType.AGGRESSIVE, 0, payloads, ike.iv)
    ike.state = P1State.ESTABLISHED
    return Step(datagram, established=True)


def _r2(ctx: Phase1Context, ike: IkeSa, message: Message) -> Step:
    payloads = message.payloads
    if message.encrypted_body is not None:
        payloads, ike.iv = ike.decrypt(message, ike.iv)
    if ike.peer_id is None:
        raise RuntimeError("aggressive mode responder without peer identity")
    check_natd(ike, payloads, ike.local, ike.remote)
    verify_peer(ctx, ike, payloads, ike.peer_id)
    ike.state = P1State.ESTABLISHED
    return Step(established=True)


TRANSITIONS: dict[P1State, Handler] = {
    P1State.AM_I1: _i2,
    P1State.AM_R1: _r2,
}
