"""The Transaction exchange (exchange type 6) that carries XAUTH and Mode Config.

draft-dukes-ike-mode-cfg-02 3.1: each message is HASH, Attribute, encrypted
under the ISAKMP SA, with

    HASH = prf(SKEYID_a, M-ID | Attribute)

(the form of an Informational's HASH(1), RFC 2409 5.7; no nonces).  A
REQUEST and its REPLY, or a SET and its ACK, share one message ID; their CBC
chain starts like an Informational's, from hash(last phase 1 block | M-ID)
(RFC 2409 Appendix B), and continues from the last ciphertext block of the
previous message with that ID (vpnc keeps the chain per message ID so;
strongSwan likewise).  `Chains` holds the next IV of each open exchange.
"""

from __future__ import annotations

import hmac

from . import keymat
from .codec import AttributePayload, DecodeError, Hash, Message
from .constants import ExchangeType
from .errors import MessageRejected
from .sa import IkeSa, chain_bytes, hashed_payloads


class Chains:
    """The CBC chain of each Transaction exchange (message ID) of one ISAKMP SA."""

    def __init__(self) -> None:
        self._next: dict[int, bytes] = {}

    def iv(self, ike: IkeSa, message_id: int) -> bytes:
        return self._next.get(message_id) or ike.exchange_iv(message_id)

    def advance(self, message_id: int, iv: bytes) -> None:
        self._next[message_id] = iv

    def forget(self, message_id: int) -> None:
        self._next.pop(message_id, None)


def seal(ike: IkeSa, chains: Chains, message_id: int, payload: AttributePayload) -> bytes:
    """The encrypted Transaction message HASH, `payload`."""
    suite, keys = ike.require_suite(), ike.require_keys()
    digest = keymat.info_hash(suite.prf, keys.skeyid_a, message_id, chain_bytes([payload]))
    datagram, next_iv = ike.encrypt(ExchangeType.TRANSACTION, message_id,
                                    [Hash(digest), payload], chains.iv(ike, message_id))
    chains.advance(message_id, next_iv)
    return datagram


def open_message(ike: IkeSa, chains: Chains, message: Message) -> AttributePayload:
    """Decrypt a Transaction message and check its HASH; its one Attribute payload.

    Raises DecodeError or MessageRejected (the message is dropped and the
    chain left as it was: a forged message does not desynchronise it).
    """
    suite, keys = ike.require_suite(), ike.require_keys()
    payloads, next_iv = ike.decrypt(message, chains.iv(ike, message.message_id))
    digest, rest = hashed_payloads(payloads)
    expected = keymat.info_hash(suite.prf, keys.skeyid_a, message.message_id, chain_bytes(rest))
    if not hmac.compare_digest(digest, expected):
        raise MessageRejected("hash_mismatch", "Transaction HASH mismatch")
    attributes = [p for p in rest if isinstance(p, AttributePayload)]
    if len(attributes) != 1:
        raise DecodeError(f"Transaction message with {len(attributes)} Attribute payloads")
    chains.advance(message.message_id, next_iv)
    return attributes[0]
