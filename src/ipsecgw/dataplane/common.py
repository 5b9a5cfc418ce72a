"""What ESP (`esp`) and AH (`ah`) share: drop reasons, sequence numbers and
the anti-replay window.

RFC 4303 (ESP) and RFC 4302 (AH) define sequence numbers and the receive
window in the same words (ESP 3.3.3 / 3.4.3, AH 3.3.2 / 3.4.3), so both
transforms count and refuse packets the same way here.
"""

from __future__ import annotations

from enum import StrEnum

# Next Header values for tunnel mode (IANA protocol numbers), in the ESP
# trailer and in the AH header alike.
NEXT_HEADER_IPV4 = 4
NEXT_HEADER_IPV6 = 41

# Sequence numbers are 32 bits and must never cycle on one SA (RFC 4303
# 3.3.3, RFC 4302 3.3.2): the sender stops at 2**32 - 1.  `rekey_needed`
# turns true this many packets earlier so that a new SA can be negotiated
# in time.
SEQUENCE_MAX = 0xFFFFFFFF
SEQUENCE_REKEY_MARGIN = 1 << 24

DEFAULT_REPLAY_WINDOW = 64


class DropReason(StrEnum):
    """Why an ESP or AH packet was dropped; the names are the counters' names."""

    AUTH_FAILED = "auth_failed"  # ICV mismatch (RFC 4303 3.4.4, RFC 4302 3.4.4)
    REPLAY = "replay"  # duplicate or left of the window (RFC 4303 3.4.3)
    UNKNOWN_SPI = "unknown_spi"  # no SA for the SPI (RFC 4303 3.4.2)
    MALFORMED = "malformed"  # too short, misaligned, bad next header
    PAD_ERROR = "pad_error"  # padding not 1, 2, 3, ... (RFC 4303 2.4)
    POLICY = "policy"  # addresses outside the SA's selectors (RFC 4301 5.2)


class PacketDropped(Exception):
    """A packet that must be dropped; `reason` names the counter."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class SequenceExhausted(Exception):
    """The outbound SA has sent 2**32 - 1 packets; it needs replacing."""


def tunnel_next_header(inner: bytes) -> int:
    """Tunnel mode's Next Header for an inner packet: IPv4 (4) or IPv6 (41)."""
    version = inner[0] >> 4 if inner else 0
    if version == 4:
        return NEXT_HEADER_IPV4
    if version == 6:
        return NEXT_HEADER_IPV6
    raise ValueError(f"not an IP packet (version {version})")


def tunnel_inner_refusal(header_type: int, inner: bytes) -> str | None:
    """Why `inner` is not what Next Header `header_type` announces in tunnel
    mode (an IPv4 packet under 4, IPv6 under 41); None when it is."""
    version = inner[0] >> 4 if inner else 0
    if (header_type, version) in ((NEXT_HEADER_IPV4, 4), (NEXT_HEADER_IPV6, 6)):
        return None
    return f"next header {header_type} with IP version {version} in tunnel mode"


class OutboundSequence:
    """The sequence number of a sending SA, ESP's or AH's (RFC 4303 3.3.3,
    RFC 4302 3.3.2): it starts at 1 and never cycles on one SA."""

    spi: bytes
    sequence_number: int  # the last one sent; the first packet carries 1

    @property
    def rekey_needed(self) -> bool:
        """True when the sequence number is close to exhausting."""
        return self.sequence_number >= SEQUENCE_MAX - SEQUENCE_REKEY_MARGIN

    def _next_sequence_number(self) -> int:
        if self.sequence_number >= SEQUENCE_MAX:
            raise SequenceExhausted(f"SPI {self.spi.hex()} sent {SEQUENCE_MAX} packets")
        return self.sequence_number + 1


class ReplayWindow:
    """The receiver's sliding window (RFC 4303 3.4.3, RFC 4302 3.4.3).

    `refusal` runs before the ICV check (cheap rejection of duplicates),
    `accept` only after it: the window moves for authenticated packets only.
    """

    __slots__ = ("_size", "_mask", "_highest", "_seen")

    def __init__(self, size: int) -> None:
        if size < 32:
            raise ValueError("RFC 4303 3.4.3: the replay window is at least 32 packets")
        self._size = size
        self._mask = (1 << size) - 1
        self._highest = 0  # highest authenticated sequence number
        self._seen = 0  # bit i set: highest - i was received

    def refusal(self, sequence_number: int) -> str | None:
        """Why `sequence_number` must be dropped as a replay; None if it may pass."""
        if sequence_number == 0:
            return "sequence number 0 is never sent"
        if sequence_number > self._highest:
            return None
        offset = self._highest - sequence_number
        if offset >= self._size:
            return f"sequence number {sequence_number} left of window"
        if (self._seen >> offset) & 1:
            return f"sequence number {sequence_number} seen before"
        return None

    def accept(self, sequence_number: int) -> None:
        """Record an authenticated packet."""
        if sequence_number > self._highest:
            shift = sequence_number - self._highest
            self._seen = ((self._seen << shift) | 1) & self._mask
            self._highest = sequence_number
        else:
            self._seen |= 1 << (self._highest - sequence_number)
