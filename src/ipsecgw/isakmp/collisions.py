"""Two gateways that both initiate: simultaneous negotiations and INITIAL-CONTACT.

Site-to-site tunnels are usually configured to initiate at both ends, so both
gateways start a phase 1 when they come up and a Quick Mode as soon as a
phase 1 is up.  IKEv1 has no collision rule of its own (IKEv2 has one, RFC
7296 2.8.1).  Left alone, both Quick Modes complete, each gateway installs
the two IPsec SA pairs in a different order, keeps a different one as the
newest and, after the rekey grace, deletes the one the peer kept: both
renegotiate at once and the cycle repeats.

Choosing between two installed pairs afterwards is not safe: a gateway cannot
know whether the peer still holds both (INITIAL-CONTACT, a lost QM3 or an
expiry may have removed one).  So a collision is settled before anything is
installed, when a gateway receives the peer's first message of an exchange
while its own first message of the same exchange is in flight.  Both gateways
decide alike from data both have, the two first messages:

- Phase 1 (Main or Aggressive Mode, one per peer): the attempt with the
  lower initiator cookie goes on.  A gateway whose own attempt has the higher
  cookie and no answer yet forgets it and answers the peer's.  Otherwise it
  drops the peer's first message and sends its own again at once: the peer
  may have just come up and missed it, and our next retransmission could be
  30 s away.  An attempt the peer has answered never gives way; an ipsecgw
  peer answers only after giving way itself, so its own message is stale.
  One exception: when the peer sends the first message we dropped again, at
  least `RETRANSMISSION_GAP` later (a retransmission, not a copy made by the
  network), it evidently does not hear us (a NAT that changes ports, a
  filter, or loss), and ours gives way after all.
- Quick Mode (one per tunnel): the exchange with the lower initiator nonce
  (Ni, RFC 2409 5.5) goes on; the other gateway forgets its own and answers.
  Both ends of an established phase 1 hear each other, so the Quick Mode
  that goes on is only retransmitted as usual.

If the surviving attempt then fails, the gateway that gave way recovers on
its own: its responder state for the peer's attempt times out (the half-open
timeout in phase 1, the QM2 retransmissions in Quick Mode), and its tunnel,
still without an SA, negotiates again after the usual back-off.  A peer that
knows no such rule (strongSwan) keeps answering ours while retransmitting its
own; that yields the duplicate the peer tolerates, as before this rule.

A spoofed first message can make a gateway give way only while its own first
message is unanswered, and then costs at most a half-open timeout: the same
as the half-open SA such a message has always created.

INITIAL-CONTACT (RFC 2407 4.6.3.3) says "I have no state with you but this
phase 1", and the receiver deletes everything older that it has with the
sending *entity*: the SAs with the same peer address negotiated under a phase
1 with the same authenticated identity (as strongSwan does).  Many clients
behind one NAT, or a load generator's many identities at one address, share
the address and must not knock each other's SAs out.  A gateway that started
a phase 1 knowing nothing of the peer may meanwhile have negotiated with it
(the peer's own phase 1, answered while our first message was retransmitted),
so the notify is decided when the message that carries it is built (MM5, or
the Informational after Aggressive Mode): only while that phase 1 is our only
SA of any kind with the peer.  The receiver deletes only SAs strictly older
than the first message of that phase 1 (as it received it): IPsec SAs created
before it and ISAKMP SAs established before it, never one negotiated under a
phase 1 that was still in progress then.
"""

from __future__ import annotations

from .codec import Identification
from .outbox import Outbox
from .registry import PeerKey, Registry, ike_peer, peer_entity
from .sa import IkeSa, IpsecSa, P1State, QuickMode, Role

#: Phase 1 states in which our first message has had no answer.
_UNANSWERED = frozenset({P1State.MM_I1, P1State.AM_I1})
#: A dropped first message seen again this much later is the peer's retransmission
#: (ours retransmit after 2 s at the earliest, strongSwan's after 4 s).
RETRANSMISSION_GAP = 1.0


def phase1_rivals(sas: Registry, key: PeerKey) -> list[IkeSa]:
    """Our own phase 1 attempts with the peer that are still in progress."""
    return sas.initiating_of_peer(key)


def unanswered(ike: IkeSa) -> bool:
    return ike.state in _UNANSWERED


def phase1_gives_way(ours: IkeSa, their_cookie_i: bytes, now: float) -> bool:
    """Whether our attempt yields to the peer's first message with `their_cookie_i`."""
    if not unanswered(ours):
        return False
    dropped_at = ours.rivals_dropped.get(their_cookie_i)
    return ours.cookie_i > their_cookie_i or (
        dropped_at is not None and now - dropped_at >= RETRANSMISSION_GAP)


def quick_mode_rivals(sas: Registry, tunnel: str) -> list[tuple[QuickMode, IkeSa]]:
    """Our own Quick Modes for the tunnel still waiting for QM2 (an initiator's
    Quick Mode ends when QM2 arrives)."""
    return [(qm, ike) for qm, ike in sas.quick_modes_of_tunnel(tunnel)
            if qm.role is Role.INITIATOR]


def quick_mode_gives_way(ours: QuickMode, theirs: QuickMode) -> bool:
    """Whether our Quick Mode yields to the peer's (`theirs.ni` is the peer's Ni)."""
    return ours.ni > theirs.ni


def may_claim_initial_contact(sas: Registry, ike: IkeSa) -> bool:
    """Whether `ike` is our only SA of any kind with its peer (see the docstring)."""
    key = ike_peer(ike)
    count = sas.ike_count(key)
    return not sas.has_children(key) and (count == 0 or (count == 1 and sas.first_ike(key) is ike))


def same_entity(one: Identification | None, other: Identification | None) -> bool:
    """Whether two phase 1 ID payloads name the same peer (protocol and port aside;
    names compare without regard to case)."""
    return peer_entity(one) == peer_entity(other)


def initial_contact_victims(sas: Registry, ike: IkeSa) -> tuple[list[IpsecSa], list[IkeSa]]:
    """The SAs an INITIAL-CONTACT carried by `ike` removes: those with its peer's
    address and identity, older than its first message (looked up by entity: one
    address may carry thousands of identities)."""
    key, entity = ike_peer(ike), peer_entity(ike.peer_id)
    first_message = ike.created_at
    children = [child for child in sas.children_of_entity(key, entity)
                if child.created_at < first_message]
    phase1s = [other for other in sas.ike_of_entity(key, entity)
               if other is not ike and other.established_at is not None
               and other.established_at < first_message]
    return children, phase1s


def settle_phase1(sas: Registry, theirs: IkeSa, now: float,
                  outbox: Outbox) -> tuple[bool, list[IkeSa]]:
    """The peer's first message `theirs` while our own phase 1 with it is in
    progress: (whether ours goes on and the peer's message is to be dropped,
    our attempts that give way and are to be forgotten)."""
    going_on, giving_way = [], []
    for ours in phase1_rivals(sas, ike_peer(theirs)):
        outbox.count("phase1_collisions")
        if phase1_gives_way(ours, theirs.cookie_i, now):
            ours.log.info("phase 1 collision with %s: giving way to %s", ours.remote[0],
                          theirs.cookie_label)
            giving_way.append(ours)
            continue
        going_on.append(ours)
        ours.log.info("phase 1 collision with %s: going on, dropping %s", ours.remote[0],
                      theirs.cookie_label)
        ours.rivals_dropped.setdefault(theirs.cookie_i, now)
        if unanswered(ours) and ours.flight is not None:
            outbox.count("retransmits")
            outbox.send(ours.flight.datagram, ours.flight.local, ours.flight.remote)
    return bool(going_on), giving_way


def settle_quick_mode(sas: Registry, theirs: QuickMode,
                      outbox: Outbox) -> tuple[bool, list[tuple[QuickMode, IkeSa]]]:
    """The peer's QM1 (`theirs`, not yet started) while our own Quick Mode for the
    tunnel waits for QM2: (whether ours goes on and the peer's QM1 is to be
    dropped, our Quick Modes that give way and are to be ended)."""
    going_on, giving_way = [], []
    for ours, ike in quick_mode_rivals(sas, theirs.tunnel):
        outbox.count("phase2_collisions")
        if quick_mode_gives_way(ours, theirs):
            ike.log.info("Quick Mode collision for tunnel %s: giving way to %08x",
                         theirs.tunnel, theirs.message_id)
            giving_way.append((ours, ike))
            continue
        going_on.append(ours)
        ike.log.info("Quick Mode collision for tunnel %s: going on, dropping %08x",
                     theirs.tunnel, theirs.message_id)
    return bool(going_on), giving_way
