"""NAT traversal in IKE (RFC 3947) and the vendor IDs we send and recognise.

NAT-D payloads carry HASH(CKY-I | CKY-R | IP | Port) with the negotiated hash
(RFC 3947 3.2): the first one is the address the sender sends *to*, the rest
the sender's own.  A receiver that cannot reproduce the first from its own
address is behind a NAT; one that cannot find its peer's source address
among the rest knows the peer is.  The draft-02/03 peers use payload type 130
and encapsulation mode 61443 instead (draft-ietf-ipsec-nat-t-ike-02 5.2).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import crypto
from .codec import NatD, VendorId
from .constants import (
    VENDOR_ID_DPD,
    VENDOR_ID_NAT_T_DRAFT_02,
    VENDOR_ID_NAT_T_DRAFT_02_N,
    VENDOR_ID_NAT_T_DRAFT_03,
    VENDOR_ID_NAT_T_RFC3947,
    EncapsulationMode,
)
from .policy import Address

_DRAFT_IDS = frozenset({VENDOR_ID_NAT_T_DRAFT_02, VENDOR_ID_NAT_T_DRAFT_02_N,
                        VENDOR_ID_NAT_T_DRAFT_03})


def our_vendor_ids(nat_t: bool) -> list[VendorId]:
    """What we announce in the first phase 1 message (and the responder's reply)."""
    ids = [VendorId(VENDOR_ID_DPD)]
    if nat_t:
        ids += [VendorId(VENDOR_ID_NAT_T_RFC3947), VendorId(VENDOR_ID_NAT_T_DRAFT_03),
                VendorId(VENDOR_ID_NAT_T_DRAFT_02_N)]
    return ids


@dataclass(frozen=True)
class PeerCapabilities:
    """What the peer's vendor IDs announced. `nat_t`: "rfc", "draft" or None."""

    nat_t: str | None
    dpd: bool


def peer_capabilities(vendor_ids: Iterable[VendorId], nat_t_enabled: bool) -> PeerCapabilities:
    ids = {vendor_id.data for vendor_id in vendor_ids}
    nat_t: str | None = None
    if nat_t_enabled:
        if VENDOR_ID_NAT_T_RFC3947 in ids:
            nat_t = "rfc"
        elif ids & _DRAFT_IDS:
            nat_t = "draft"
    return PeerCapabilities(nat_t, VENDOR_ID_DPD in ids)


def responder_vendor_ids(capabilities: PeerCapabilities) -> list[VendorId]:
    """The responder names only the NAT-T version it chose (RFC 3947 3.1)."""
    ids = [VendorId(VENDOR_ID_DPD)]
    if capabilities.nat_t == "rfc":
        ids.append(VendorId(VENDOR_ID_NAT_T_RFC3947))
    elif capabilities.nat_t == "draft":
        ids.append(VendorId(VENDOR_ID_NAT_T_DRAFT_02_N))
    return ids


def natd_hash(hash_name: str, cookies: bytes, address: Address) -> bytes:
    ip = ipaddress.ip_address(address[0]).packed
    return crypto.hash_digest(hash_name, cookies + ip + address[1].to_bytes(2, "big"))


def natd_payloads(hash_name: str, cookies: bytes, local: Address, remote: Address,
                  draft: bool) -> list[NatD]:
    """RFC 3947 3.2: the destination's hash first, then our own."""
    return [NatD(natd_hash(hash_name, cookies, remote), draft),
            NatD(natd_hash(hash_name, cookies, local), draft)]


@dataclass(frozen=True)
class NatDetection:
    local_behind_nat: bool
    peer_behind_nat: bool

    @property
    def detected(self) -> bool:
        return self.local_behind_nat or self.peer_behind_nat


def detect(hash_name: str, cookies: bytes, local: Address, remote: Address,
           received: Sequence[NatD]) -> NatDetection | None:
    """Compare the peer's NAT-D payloads with our view; None if it sent fewer than two."""
    if len(received) < 2:
        return None
    local_hash = natd_hash(hash_name, cookies, local)
    remote_hash = natd_hash(hash_name, cookies, remote)
    return NatDetection(
        local_behind_nat=received[0].data != local_hash,
        peer_behind_nat=all(natd.data != remote_hash for natd in received[1:]),
    )


def udp_encapsulation_mode(nat_t: str | None) -> int:
    return (EncapsulationMode.UDP_TUNNEL_DRAFT if nat_t == "draft"
            else EncapsulationMode.UDP_TUNNEL)
