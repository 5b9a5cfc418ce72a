"""The engine's one exception family; each error carries its wire meaning.

`IsakmpError.notify_type` is the RFC 2408 3.14.1 Notify type that names what
went wrong.  The exchange steps, the codec and crypto.py raise; the engine
catches at exactly one boundary per message kind and maps by branch, once:

- `NegotiationError` (and `CryptoError`, a failed key exchange, key or
  certificate check): the exchange cannot go on; it ends with `reason` and,
  where allowed, `notify_type` goes back to the peer (never in answer to an
  Informational exchange);
- `DecodeError` (not a well-formed message) and `MessageRejected` (fails its
  integrity check, does not decrypt, or does not fit the exchange): the
  message is dropped and counted (`dropped_<reason>`); the exchange it claims
  to belong to goes on as if it had never arrived.
"""

from __future__ import annotations

from .constants import NotifyType


class IsakmpError(Exception):
    """Something about a message or a negotiation is wrong."""

    notify_type: int = NotifyType.PAYLOAD_MALFORMED


# --- ending a negotiation -----------------------------------------------------------


class NegotiationError(IsakmpError):
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


class CryptoError(NegotiationError):
    """A cryptographic operation failed (crypto.py): an invalid public value, an
    unusable key, a certificate that does not verify."""

    def __init__(self, message: str,
                 notify_type: int = NotifyType.INVALID_KEY_INFORMATION) -> None:
        super().__init__(notify_type, message)


# --- dropping a message ---------------------------------------------------------------


class MessageRejected(IsakmpError):
    """A message that fails its integrity check, does not decrypt or does not fit
    the exchange; counted under `reason` (a statistics key suffix)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


class DecodeError(IsakmpError):
    """A datagram or payload chain that is not a well-formed ISAKMP message.

    `offset` is where the offending structure starts: from the start of the
    message for `Message.decode`, from the start of the body for
    `decode_payloads`.  The message text names the payload and that offset.
    The subclasses name the Notify type of each kind of damage.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class PayloadMalformed(DecodeError):
    notify_type = NotifyType.PAYLOAD_MALFORMED


class InvalidPayloadType(DecodeError):
    notify_type = NotifyType.INVALID_PAYLOAD_TYPE


class DoiNotSupported(DecodeError):
    notify_type = NotifyType.DOI_NOT_SUPPORTED


class SituationNotSupported(DecodeError):
    notify_type = NotifyType.SITUATION_NOT_SUPPORTED


class InvalidMajorVersion(DecodeError):
    notify_type = NotifyType.INVALID_MAJOR_VERSION


class InvalidMinorVersion(DecodeError):
    notify_type = NotifyType.INVALID_MINOR_VERSION


class InvalidExchangeType(DecodeError):
    notify_type = NotifyType.INVALID_EXCHANGE_TYPE


class InvalidFlags(DecodeError):
    notify_type = NotifyType.INVALID_FLAGS


class InvalidMessageId(DecodeError):
    notify_type = NotifyType.INVALID_MESSAGE_ID


class InvalidSpi(DecodeError):
    notify_type = NotifyType.INVALID_SPI


class BadProposalSyntax(DecodeError):
    notify_type = NotifyType.BAD_PROPOSAL_SYNTAX


class MalformedIdentification(DecodeError):
    """An ID payload whose data does not fit its ID type."""

    notify_type = NotifyType.INVALID_ID_INFORMATION
