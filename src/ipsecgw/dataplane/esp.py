"""ESP in tunnel mode (RFC 4303), sans-IO: bytes in, bytes out.

One `OutboundSa` turns an inner IP packet into an ESP packet; one `InboundSa`
turns an ESP packet back into the inner IP packet or raises `EspError` with the
reason it was dropped.  Neither does I/O, reads a clock or logs.

Packet layout (RFC 4303 section 2):

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |               Security Parameters Index (SPI)                 |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                      Sequence Number                          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    IV (cipher dependent)                      |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           Payload Data: the inner IP packet (variable)        |
    +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |               |     Padding (0-255 bytes): 1, 2, 3, ...       |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                               |  Pad Length   | Next Header   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |         Integrity Check Value (ICV, variable)                 |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Speed matters (every packet of a tunnel passes through here), so the
per-packet work is a handful of C calls: the CBC cipher contexts and HMAC
key schedules are built once per SA, never per packet (building a CBC
context costs more than encrypting a 1400-byte packet with it).
"""

from __future__ import annotations

import hmac as _constant_time
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import (
    Cipher,
    CipherContext,
    algorithms,
    modes,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Shared with AH (`common`), and part of this module's API.
from ipsecgw.dataplane.common import DEFAULT_REPLAY_WINDOW as DEFAULT_REPLAY_WINDOW
from ipsecgw.dataplane.common import NEXT_HEADER_IPV4 as NEXT_HEADER_IPV4
from ipsecgw.dataplane.common import NEXT_HEADER_IPV6 as NEXT_HEADER_IPV6
from ipsecgw.dataplane.common import SEQUENCE_MAX as SEQUENCE_MAX
from ipsecgw.dataplane.common import SEQUENCE_REKEY_MARGIN as SEQUENCE_REKEY_MARGIN
from ipsecgw.dataplane.common import DropReason as DropReason
from ipsecgw.dataplane.common import (
    OutboundSequence,
    PacketDropped,
    ReplayWindow,
    tunnel_inner_refusal,
    tunnel_next_header,
)
from ipsecgw.dataplane.common import SequenceExhausted as SequenceExhausted

# RFC 4303 2.6 reserves Next Header 59 "no next header" for dummy packets.
NEXT_HEADER_DUMMY = 59

_HEADER_SIZE = 8  # SPI + sequence number
_PADDING = bytes(range(1, 256))  # RFC 4303 2.4: 1, 2, 3, ... by default


class EspError(PacketDropped):
    """An ESP packet that must be dropped; `reason` names the counter."""


class EspKeys(Protocol):
    """One direction's SA parameters; `ipsecgw.isakmp.events.SaKeys` fits."""

    @property
    def spi(self) -> bytes: ...
    @property
    def encryption(self) -> str: ...
    @property
    def encryption_key(self) -> bytes: ...
    @property
    def integrity(self) -> str | None: ...
    @property
    def integrity_key(self) -> bytes: ...


@dataclass(frozen=True)
class _Encryption:
    key_size: int  # for GCM including the 4-byte salt (RFC 4106 8.1)
    block_size: int  # alignment of the encrypted part (RFC 4303 2.4)
    iv_size: int
    aead: bool = False


ENCRYPTIONS: dict[str, _Encryption] = {
    "null": _Encryption(0, 4, 0),  # RFC 2410
    "des": _Encryption(8, 8, 8),  # RFC 2405
    "3des": _Encryption(24, 8, 8),  # RFC 2451
    "aes128": _Encryption(16, 16, 16),  # RFC 3602
    "aes192": _Encryption(24, 16, 16),
    "aes256": _Encryption(32, 16, 16),
    "aes128gcm": _Encryption(20, 4, 8, aead=True),  # RFC 4106, 16-byte ICV
    "aes256gcm": _Encryption(36, 4, 8, aead=True),
}

# name -> (hash, key size, ICV size): RFC 2403, RFC 2404, RFC 4868.
INTEGRITIES: dict[str, tuple[type[hashes.HashAlgorithm], int, int]] = {
    "hmac-md5-96": (hashes.MD5, 16, 12),
    "hmac-sha1-96": (hashes.SHA1, 20, 12),
    "hmac-sha256-128": (hashes.SHA256, 32, 16),
}

_GCM_ICV_SIZE = 16
_GCM_SALT_SIZE = 4


class _RandomPool:
    """os.urandom in bulk: one getrandom(2) call per 256 CBC packets instead of
    one each (a system call is a noticeable share of a packet's cost here)."""

    _REFILL = 4096

    def __init__(self) -> None:
        self._pool = b""
        self._offset = 0

    def __call__(self, size: int) -> bytes:
        offset = self._offset
        if offset + size > len(self._pool):
            self._pool, offset = os.urandom(max(self._REFILL, size)), 0
        self._offset = offset + size
        return self._pool[offset : offset + size]


def _block_cipher(name: str, key: bytes) -> algorithms.AES | TripleDES:
    if name.startswith("aes"):
        return algorithms.AES(key)
    # Single DES is 3DES with K1 = K2 = K3: EDE collapses to one encryption.
    return TripleDES(key * 3 if len(key) == 8 else key)


class _Transform:
    """Validated algorithms and prepared key schedules shared by both directions."""

    def __init__(self, keys: EspKeys) -> None:
        if len(keys.spi) != 4:
            raise ValueError(f"SPI must be 4 bytes, got {len(keys.spi)}")
        encryption = ENCRYPTIONS.get(keys.encryption)
        if encryption is None:
            raise ValueError(f"unsupported ESP encryption {keys.encryption!r}")
        if len(keys.encryption_key) != encryption.key_size:
            raise ValueError(
                f"{keys.encryption} needs a {encryption.key_size}-byte key, "
                f"got {len(keys.encryption_key)}"
            )
        self.spi = keys.spi
        self.block_size = encryption.block_size
        self.iv_size = encryption.iv_size
        self.aead: AESGCM | None = None
        self.salt = b""
        self.hmac: hmac.HMAC | None = None
        self.icv_size = 0
        if encryption.aead:
            if keys.integrity is not None:
                raise ValueError("AES-GCM provides integrity; no separate integrity allowed")
            self.aead = AESGCM(keys.encryption_key[:-_GCM_SALT_SIZE])
            self.salt = keys.encryption_key[-_GCM_SALT_SIZE:]
            self.icv_size = _GCM_ICV_SIZE
        elif keys.integrity is not None:
            integrity = INTEGRITIES.get(keys.integrity)
            if integrity is None:
                raise ValueError(f"unsupported ESP integrity {keys.integrity!r}")
            algorithm, key_size, self.icv_size = integrity
            if len(keys.integrity_key) != key_size:
                raise ValueError(
                    f"{keys.integrity} needs a {key_size}-byte key, got {len(keys.integrity_key)}"
                )
            self.hmac = hmac.HMAC(keys.integrity_key, algorithm())
        elif keys.encryption == "null":
            # RFC 4303 3.2: encryption and integrity must not both be NULL.
            raise ValueError("ESP with NULL encryption needs an integrity algorithm")
        self.cipher: Cipher[modes.CBC] | None = None
        if self.iv_size and self.aead is None:
            self.cipher = Cipher(
                _block_cipher(keys.encryption, keys.encryption_key),
                modes.CBC(bytes(self.block_size)),
            )

    def icv(self, signed: bytes) -> bytes:
        assert self.hmac is not None
        mac = self.hmac.copy()
        mac.update(signed)
        return mac.finalize()[: self.icv_size]


class OutboundSa(OutboundSequence):
    """The sending half of an ESP SA (RFC 4303 3.1)."""

    def __init__(
        self, keys: EspKeys, *, random_bytes: Callable[[int], bytes] | None = None
    ) -> None:
        self._t = _Transform(keys)
        random_bytes = random_bytes or _RandomPool()
        self._random_bytes = random_bytes
        # One CBC context for the SA's whole life.  Each packet is fed as
        # R || plaintext with R random: the context XORs R with the previous
        # ciphertext block and encrypts it, and that output block becomes the
        # packet's IV, unpredictable as RFC 3602 section 3 requires; the
        # remaining blocks are then exactly CBC under that IV.
        self._encryptor: CipherContext | None = (
            self._t.cipher.encryptor() if self._t.cipher is not None else None
        )
        # RFC 4106 3.1: a GCM IV must never repeat under one key.  The
        # sequence number never does on one SA; XORing it with a random mask
        # keeps that and also protects against the same keys being
        # installed twice (the sequence number would restart at 1).
        self._iv_mask = int.from_bytes(random_bytes(8), "big") if self._t.aead else 0
        self.spi = keys.spi
        self.sequence_number = 0  # the last one sent; the first packet carries 1
        self.packets = 0
        self.bytes = 0  # inner (plaintext) bytes, as kilobyte lifetimes count

    def encapsulate(self, inner: bytes) -> bytes:
        """Return the ESP packet that carries `inner` (an IPv4 or IPv6 packet)."""
        header_type = tunnel_next_header(inner)
        sequence_number = self._next_sequence_number()
        t = self._t
        pad_length = -(len(inner) + 2) % t.block_size
        plaintext = inner + _PADDING[:pad_length] + bytes((pad_length, header_type))
        header = t.spi + sequence_number.to_bytes(4, "big")
        if t.aead is not None:
            iv = (sequence_number ^ self._iv_mask).to_bytes(8, "big")
            packet = header + iv + t.aead.encrypt(t.salt + iv, plaintext, header)
        else:
            if self._encryptor is not None:
                plaintext = self._encryptor.update(self._random_bytes(t.block_size) + plaintext)
            packet = header + plaintext
            if t.hmac is not None:
                packet += t.icv(packet)
        self.sequence_number = sequence_number
        self.packets += 1
        self.bytes += len(inner)
        return packet


class InboundSa:
    """The receiving half of an ESP SA (RFC 4303 3.4)."""

    def __init__(self, keys: EspKeys, *, replay_window: int = DEFAULT_REPLAY_WINDOW) -> None:
        self._window = ReplayWindow(replay_window)
        self._t = _Transform(keys)
        t = self._t
        # Mirror of OutboundSa's trick: one CBC context, fed IV || ciphertext;
        # the first output block depends on the previous packet and is thrown
        # away, every later block is the plaintext under this packet's IV.
        self._decryptor: CipherContext | None = (
            t.cipher.decryptor() if t.cipher is not None else None
        )
        # Shortest legal packet: header, IV, one aligned block holding at
        # least Pad Length and Next Header, ICV.
        self._min_size = _HEADER_SIZE + t.iv_size + max(t.block_size, 4) + t.icv_size
        self.spi = keys.spi
        self.packets = 0
        self.bytes = 0  # inner bytes delivered

    def decapsulate(self, packet: bytes) -> bytes:
        """Return the inner IP packet, or b"" for a dummy packet (RFC 4303 2.6).

        Raises EspError when the packet must be dropped.  The SPI is not
        checked here: the caller found this SA by it.
        """
        t = self._t
        size = len(packet)
        if size < self._min_size:
            raise EspError(DropReason.MALFORMED, f"{size} bytes is too short")
        if self._decryptor is not None and (size - _HEADER_SIZE - t.icv_size) % t.block_size:
            raise EspError(DropReason.MALFORMED, "ciphertext not a multiple of the block size")
        sequence_number = int.from_bytes(packet[4:8], "big")
        refusal = self._window.refusal(sequence_number)
        if refusal is not None:
            raise EspError(DropReason.REPLAY, refusal)
        if t.aead is not None:
            iv = packet[8:16]
            try:
                plaintext = t.aead.decrypt(t.salt + iv, packet[16:], packet[:8])
            except InvalidTag:
                raise EspError(DropReason.AUTH_FAILED, "GCM tag mismatch") from None
        else:
            if t.hmac is not None:
                signed = packet[: -t.icv_size]
                if not _constant_time.compare_digest(t.icv(signed), packet[-t.icv_size :]):
                    raise EspError(DropReason.AUTH_FAILED, "ICV mismatch")
            else:
                signed = packet
            if self._decryptor is not None:
                plaintext = self._decryptor.update(signed[_HEADER_SIZE:])[t.block_size :]
            else:
                plaintext = signed[_HEADER_SIZE:]
        # RFC 4303 3.4.3: the window moves only for authenticated packets.
        self._window.accept(sequence_number)
        return self._strip_trailer(plaintext)

    def _strip_trailer(self, plaintext: bytes) -> bytes:
        pad_length = plaintext[-2]
        next_header = plaintext[-1]
        end = len(plaintext) - 2 - pad_length
        if end < 0:
            raise EspError(DropReason.PAD_ERROR, f"pad length {pad_length} exceeds the payload")
        if plaintext[end:-2] != _PADDING[:pad_length]:
            raise EspError(DropReason.PAD_ERROR, "padding is not 1, 2, 3, ...")
        if next_header == NEXT_HEADER_DUMMY:
            return b""
        inner = plaintext[:end]
        refusal = tunnel_inner_refusal(next_header, inner)
        if refusal is not None:
            raise EspError(DropReason.MALFORMED, refusal)
        self.packets += 1
        self.bytes += len(inner)
        return inner
