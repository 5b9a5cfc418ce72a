"""`masked-key`: how pre-shared keys appear in `show configuration` and saved files.

This is obfuscation, not encryption, like the "type 7" passwords of other
routers: the key XORed with a fixed keystream, base64-encoded. Anyone with
this source can read the secret back (the gateway must, to use it), so the
startup file is written mode 0600. What it buys: a key is not readable over
the shoulder or from a pasted configuration without deliberate effort.

Layout before base64: version byte 1, the XORed UTF-8 secret, then the first
two bytes of SHA-256 over the secret, so a mistyped masked key is refused
instead of silently becoming a different key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

_VERSION = 1
_CHECK_LEN = 2
_KEYSTREAM_LABEL = b"ipsecgw masked-key v1"


def _keystream(length: int) -> bytes:
    blocks = []
    for counter in range((length + 31) // 32):
        blocks.append(hashlib.sha256(_KEYSTREAM_LABEL + counter.to_bytes(4, "big")).digest())
    return b"".join(blocks)[:length]


def _xor(data: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, _keystream(len(data)), strict=True))


def mask_secret(secret: str) -> str:
    """The `masked-key` form of `secret`."""
    plain = secret.encode("utf-8")
    check = hashlib.sha256(plain).digest()[:_CHECK_LEN]
    return base64.b64encode(bytes([_VERSION]) + _xor(plain) + check).decode("ascii")


def unmask_secret(masked: str) -> str:
    """The secret behind a `masked-key`; ValueError if it is not one."""
    try:
        raw = base64.b64decode(masked.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not a masked key (bad base64)") from exc
    if len(raw) < 1 + _CHECK_LEN or raw[0] != _VERSION:
        raise ValueError("not a masked key")
    plain = _xor(raw[1:-_CHECK_LEN])
    if hashlib.sha256(plain).digest()[:_CHECK_LEN] != raw[-_CHECK_LEN:]:
        raise ValueError("masked key is corrupt (checksum mismatch)")
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("masked key is corrupt") from exc
