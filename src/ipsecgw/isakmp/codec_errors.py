"""Decode errors, each carrying the RFC 2408 3.14.1 Notify type it maps to.

The codec raises these deep inside a payload decoder; the engine catches
`DecodeError` at one boundary and decides whether to answer with
`notify_type` (it never answers an Informational exchange with a notify).
"""

from __future__ import annotations

from typing import ClassVar

from .constants import NotifyType


class DecodeError(Exception):
    """A datagram or payload chain that is not a well-formed ISAKMP message.

    `offset` is where the offending structure starts: from the start of the
    message for `Message.decode`, from the start of the body for
    `decode_payloads`.  The message text names the payload and that offset.
    """

    notify_type: ClassVar[int] = NotifyType.PAYLOAD_MALFORMED

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


class InvalidIdInformation(DecodeError):
    notify_type = NotifyType.INVALID_ID_INFORMATION
