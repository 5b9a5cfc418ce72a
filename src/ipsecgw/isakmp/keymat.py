"""IKEv1 key material: pure functions of bytes (RFC 2409 sections 5 and 5.5, Appendix B).

Every function takes the negotiated hash algorithm's name as `prf` ("md5", "sha1",
"sha256", "sha384", "sha512"); IKEv1 uses its HMAC as the prf and the plain hash for
IVs (RFC 2409 section 4 and Appendix B). Message IDs are the integers of the ISAKMP
header and enter hashes as 4 bytes in network order.

Encryption (RFC 2408 section 3.1, RFC 2409 Appendix B): the body after the header is
CBC-encrypted. The phase 1 IV is hash(g^xi | g^xr); after that every message, in
either direction, chains from the last ciphertext block of the one before. A Quick
Mode or Informational exchange starts from hash(last phase 1 CBC block | M-ID), then
chains the same way within that exchange. `encrypt_body` and `decrypt_body` return
that next IV with the result so that the caller only stores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ipsecgw.isakmp import crypto
from ipsecgw.isakmp.errors import MessageRejected


def _mid(message_id: int) -> bytes:
    return message_id.to_bytes(4, "big")


def skeyid_psk(prf: str, psk: bytes, ni_b: bytes, nr_b: bytes) -> bytes:
    """RFC 2409 section 5: SKEYID = prf(pre-shared-key, Ni_b | Nr_b)."""
    return crypto.prf(prf, psk, ni_b + nr_b)


def skeyid_sig(prf: str, ni_b: bytes, nr_b: bytes, gxy: bytes) -> bytes:
    """RFC 2409 section 5: SKEYID = prf(Ni_b | Nr_b, g^xy) for signature authentication."""
    return crypto.prf(prf, ni_b + nr_b, gxy)


def skeyid_dae(
    prf: str, skeyid: bytes, gxy: bytes, cky_i: bytes, cky_r: bytes
) -> tuple[bytes, bytes, bytes]:
    """RFC 2409 section 5: (SKEYID_d, SKEYID_a, SKEYID_e), each chained into the next."""
    tail = gxy + cky_i + cky_r
    skeyid_d = crypto.prf(prf, skeyid, tail + b"\x00")
    skeyid_a = crypto.prf(prf, skeyid, skeyid_d + tail + b"\x01")
    skeyid_e = crypto.prf(prf, skeyid, skeyid_a + tail + b"\x02")
    return skeyid_d, skeyid_a, skeyid_e


def _expand(prf: str, skeyid_e: bytes, length: int) -> bytes:
    """RFC 2409 Appendix B: Ka = K1 | K2 | ..., K1 = prf(SKEYID_e, 0), Kn = prf(SKEYID_e, Kn-1)."""
    block = b"\x00"
    material = b""
    while len(material) < length:
        block = crypto.prf(prf, skeyid_e, block)
        material += block
    return material


def _key_material(prf: str, skeyid_e: bytes, length: int) -> bytes:
    """SKEYID_e when it is long enough, else its Appendix B expansion."""
    return skeyid_e if len(skeyid_e) >= length else _expand(prf, skeyid_e, length)


def encryption_key(prf: str, skeyid_e: bytes, key_len: int, *, cipher: str | None = None) -> bytes:
    """The phase 1 cipher key: SKEYID_e itself, or its Appendix B expansion when short.

    With `cipher="des"`, RFC 2409 Appendix B takes the first 8 bytes of the key material
    that are not a weak or semi-weak DES key: a weak 8-byte slice is skipped for the
    next one, extending the expansion as needed. With `cipher="3des"`, a key whose
    k1 == k2 or k2 == k3 raises CryptoError (RFC 2451 section 2.3), which fails the
    negotiation. Both events have a probability of about 2^-52.
    """
    if cipher == "des":
        offset = 0
        while True:
            key = _key_material(prf, skeyid_e, offset + key_len)[offset : offset + key_len]
            if not crypto.is_weak_des_key(key):
                return key
            offset += key_len
    key = _key_material(prf, skeyid_e, key_len)[:key_len]
    if cipher == "3des":
        crypto.check_3des_key(key)
    return key


def phase1_iv(prf: str, gxi: bytes, gxr: bytes, block_size: int) -> bytes:
    """RFC 2409 Appendix B: the first phase 1 IV is hash(g^xi | g^xr), truncated."""
    return crypto.hash_digest(prf, gxi + gxr)[:block_size]


def message_iv(prf: str, last_block: bytes, message_id: int, block_size: int) -> bytes:
    """RFC 2409 Appendix B: a new exchange's IV is hash(last phase 1 CBC block | M-ID).

    `last_block` is the last ciphertext block of the final phase 1 message (the IV
    that phase 1 chaining ended on), whichever side sent it.
    """
    return crypto.hash_digest(prf, last_block + _mid(message_id))[:block_size]


def hash_i(
    prf: str,
    skeyid: bytes,
    gxi: bytes,
    gxr: bytes,
    cky_i: bytes,
    cky_r: bytes,
    sai_b: bytes,
    idii_b: bytes,
) -> bytes:
    """RFC 2409 section 5: HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b).

    SAi_b is the initiator's SA payload body (without the generic header); IDii_b is
    the ID payload body (from the ID type on).
    """
    return crypto.prf(prf, skeyid, gxi + gxr + cky_i + cky_r + sai_b + idii_b)


def hash_r(
    prf: str,
    skeyid: bytes,
    gxr: bytes,
    gxi: bytes,
    cky_r: bytes,
    cky_i: bytes,
    sai_b: bytes,
    idir_b: bytes,
) -> bytes:
    """RFC 2409 section 5: HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)."""
    return crypto.prf(prf, skeyid, gxr + gxi + cky_r + cky_i + sai_b + idir_b)


def qm_hash1(prf: str, skeyid_a: bytes, message_id: int, payload_bytes: bytes) -> bytes:
    """RFC 2409 section 5.5: HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [| KE] [| IDci | IDcr]).

    `payload_bytes` is the message after the HASH payload, generic headers included.
    """
    return crypto.prf(prf, skeyid_a, _mid(message_id) + payload_bytes)


def qm_hash2(
    prf: str, skeyid_a: bytes, message_id: int, ni_b: bytes, payload_bytes: bytes
) -> bytes:
    """RFC 2409 section 5.5: HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [| KE] [| IDs])."""
    return crypto.prf(prf, skeyid_a, _mid(message_id) + ni_b + payload_bytes)


def qm_hash3(prf: str, skeyid_a: bytes, message_id: int, ni_b: bytes, nr_b: bytes) -> bytes:
    """RFC 2409 section 5.5: HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)."""
    return crypto.prf(prf, skeyid_a, b"\x00" + _mid(message_id) + ni_b + nr_b)


def info_hash(prf: str, skeyid_a: bytes, message_id: int, payload_bytes: bytes) -> bytes:
    """RFC 2409 section 5.7: HASH(1) = prf(SKEYID_a, M-ID | N/D) for Informational."""
    return crypto.prf(prf, skeyid_a, _mid(message_id) + payload_bytes)


def ipsec_keymat(
    prf: str,
    skeyid_d: bytes,
    protocol: int,
    spi: bytes,
    ni_b: bytes,
    nr_b: bytes,
    length: int,
    gqm: bytes = b"",
) -> bytes:
    """RFC 2409 section 5.5: KEYMAT for one direction of one IPsec SA.

    KEYMAT = K1 | K2 | ..., K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b),
    Kn = prf(SKEYID_d, Kn-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b). `gqm` is the
    Quick Mode DH secret with PFS, empty without. `spi` is the SPI of the receiving
    side of that SA. The encryption key comes first, the authentication key after it.
    """
    seed = gqm + bytes([protocol]) + spi + ni_b + nr_b
    block = b""
    material = b""
    while len(material) < length:
        block = crypto.prf(prf, skeyid_d, block + seed)
        material += block
    return material[:length]


def encrypt_body(cipher: str, key: bytes, iv: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    """CBC-encrypt a message body; returns (ciphertext, IV for the next message).

    The body is padded with 1 to block-size zero bytes, as strongSwan does: RFC 2408
    section 3.5 lets padding follow the last payload, whose own length delimits the
    payload chain, so a receiver ignores the padding whatever its content.
    """
    block_size = crypto.cipher_block_size(cipher)
    padded = plaintext + bytes(block_size - len(plaintext) % block_size)
    ciphertext = crypto.cbc_encrypt(cipher, key, iv, padded)
    return ciphertext, ciphertext[-block_size:]


def decrypt_body(cipher: str, key: bytes, iv: bytes, ciphertext: bytes) -> tuple[bytes, bytes]:
    """CBC-decrypt a message body; returns (plaintext with any padding, next IV).

    The padding is left in place: the payload chain ends where its lengths say, and
    `codec.decode_payloads(..., allow_padding=True)` skips what follows. A body
    that is empty or not whole blocks does not decrypt: `MessageRejected`.
    """
    block_size = crypto.cipher_block_size(cipher)
    if not ciphertext or len(ciphertext) % block_size:
        raise MessageRejected("decrypt_failed",
                              f"encrypted body of {len(ciphertext)} octets is not whole "
                              f"{block_size}-octet blocks")
    plaintext = crypto.cbc_decrypt(cipher, key, iv, ciphertext)
    return plaintext, ciphertext[-block_size:]


@dataclass(frozen=True)
class Phase1Keys:
    """All phase 1 key material of one ISAKMP SA (RFC 2409 section 5)."""

    skeyid: bytes = field(repr=False)
    skeyid_d: bytes = field(repr=False)
    skeyid_a: bytes = field(repr=False)
    skeyid_e: bytes = field(repr=False)
    encryption_key: bytes = field(repr=False)
    iv: bytes = field(repr=False)


def derive_phase1(
    prf: str,
    cipher: str,
    key_len: int,
    skeyid: bytes,
    gxy: bytes,
    cky_i: bytes,
    cky_r: bytes,
    gxi: bytes,
    gxr: bytes,
) -> Phase1Keys:
    """Everything that follows SKEYID: SKEYID_d/a/e, the cipher key and the first IV.

    `key_len` is the cipher key length in bytes (the Key Length attribute for AES).
    """
    skeyid_d, skeyid_a, skeyid_e = skeyid_dae(prf, skeyid, gxy, cky_i, cky_r)
    return Phase1Keys(
        skeyid=skeyid,
        skeyid_d=skeyid_d,
        skeyid_a=skeyid_a,
        skeyid_e=skeyid_e,
        encryption_key=encryption_key(prf, skeyid_e, key_len, cipher=cipher),
        iv=phase1_iv(prf, gxi, gxr, crypto.cipher_block_size(cipher)),
    )
