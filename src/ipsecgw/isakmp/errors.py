"""Negotiation errors that carry their wire meaning (RFC 2408 3.14.1 Notify types).

They are raised deep inside an exchange step and caught at exactly one
boundary, the engine's dispatcher, which ends the negotiation with `reason`
and decides whether `notify_type` may be sent back (never in answer to an
Informational exchange).
"""

from __future__ import annotations

from .constants import NotifyType


class NegotiationError(Exception):
    """An exchange cannot go on; `notify_type` is what the peer should be told."""

    def __init__(self, notify_type: int, reason: str) -> None:
        super().__init__(reason)
        self.notify_type = notify_type
        self.reason = reason


class NoProposalChosen(NegotiationError):
    def __init__(self, reason: str) -> None:
        super().__init__(NotifyType.NO_PROPOSAL_CHOSEN, reason)


class AuthenticationFailed(NegotiationError):
    def __init__(self, reason: str) -> None:
        super().__init__(NotifyType.AUTHENTICATION_FAILED, reason)


class InvalidIdInformation(NegotiationError):
    def __init__(self, reason: str) -> None:
        super().__init__(NotifyType.INVALID_ID_INFORMATION, reason)


class PayloadMissing(NegotiationError):
    def __init__(self, reason: str) -> None:
        super().__init__(NotifyType.PAYLOAD_MALFORMED, reason)


class MessageRejected(Exception):
    """A message that fails its integrity check or does not fit the exchange.

    It is dropped and counted under `reason` (a statistics key suffix); the
    exchange it claims to belong to goes on as if it had never arrived.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
