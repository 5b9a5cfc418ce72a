"""ipsecgw.isakmp.keymat: RFC 2409 key derivation, byte-exact against the KDF vectors."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from ipsecgw.isakmp import crypto, keymat
from ipsecgw.isakmp.errors import MessageRejected

# A copy of the project's shared known-answer file (NIST ACVP / libreswan cavp).
VECTORS = Path(__file__).resolve().parents[1] / "fixtures" / "vectors" / "ikev1-kdf.txt"


def _load_vectors() -> list[tuple[str, dict[str, bytes]]]:
    sections: list[tuple[str, dict[str, bytes]]] = []
    for line in VECTORS.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            sections.append((line.strip("[]"), {}))
            continue
        name, _, value = line.partition("=")
        sections[-1][1][name.strip()] = bytes.fromhex(value.strip())
    return sections


def test_vector_file_has_both_authentication_methods() -> None:
    names = [name for name, _ in _load_vectors()]
    assert any("pre-shared key" in name for name in names)
    assert any("signature" in name for name in names)


@pytest.mark.parametrize(("section", "v"), _load_vectors(), ids=lambda x: str(x)[:30])
def test_ikev1_kdf_vectors(section: str, v: dict[str, bytes]) -> None:
    assert section.endswith("SHA-1"), f"no hash mapping for [{section}]"
    prf = "sha1"
    if "pre-shared-key" in v:
        skeyid = keymat.skeyid_psk(prf, v["pre-shared-key"], v["Ni"], v["Nr"])
    else:
        skeyid = keymat.skeyid_sig(prf, v["Ni"], v["Nr"], v["g^xy"])
    assert skeyid == v["SKEYID"]
    d, a, e = keymat.skeyid_dae(prf, skeyid, v["g^xy"], v["CKY_I"], v["CKY_R"])
    assert (d, a, e) == (v["SKEYID_d"], v["SKEYID_a"], v["SKEYID_e"])


def _hmac(name: str, key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, name).digest()


def test_encryption_key_is_skeyid_e_prefix_when_long_enough() -> None:
    skeyid_e = bytes(range(32))
    assert keymat.encryption_key("sha256", skeyid_e, 16) == skeyid_e[:16]
    assert keymat.encryption_key("sha256", skeyid_e, 32) == skeyid_e


@pytest.mark.parametrize(("prf", "key_len"), [("sha1", 24), ("md5", 24), ("md5", 32), ("sha1", 32)])
def test_encryption_key_appendix_b_expansion(prf: str, key_len: int) -> None:
    skeyid_e = hashlib.new(prf, b"skeyid_e").digest()
    k1 = _hmac(prf, skeyid_e, b"\x00")
    k2 = _hmac(prf, skeyid_e, k1)
    expected = (k1 + k2)[:key_len]
    assert keymat.encryption_key(prf, skeyid_e, key_len) == expected
    assert keymat.encryption_key(prf, skeyid_e, key_len, cipher="3des" if key_len == 24 else None)


def test_des_key_skips_weak_slices() -> None:
    weak = bytes.fromhex("fefefefefefefefe")
    skeyid_e = weak + bytes(range(1, 13))  # 20 bytes, as with SHA-1
    assert keymat.encryption_key("sha1", skeyid_e, 8, cipher="des") == bytes(range(1, 9))
    # Without the cipher name the weak key is not inspected.
    assert keymat.encryption_key("sha1", skeyid_e, 8) == weak
    # Weak slices throughout SKEYID_e: the Appendix B expansion supplies the next one.
    skeyid_e = weak * 2 + weak[:4]
    expanded = _hmac("sha1", skeyid_e, b"\x00")
    expanded += _hmac("sha1", skeyid_e, expanded)
    assert keymat.encryption_key("sha1", skeyid_e, 8, cipher="des") == expanded[16:24]


def test_3des_key_with_equal_halves_fails_negotiation() -> None:
    skeyid_e = bytes(8) + bytes(8) + bytes(range(8))
    with pytest.raises(crypto.CryptoError):
        keymat.encryption_key("sha256", skeyid_e + bytes(8), 24, cipher="3des")


def test_phase1_iv_and_message_iv() -> None:
    gxi, gxr = b"\x01" * 128, b"\x02" * 128
    assert keymat.phase1_iv("sha1", gxi, gxr, 16) == hashlib.sha1(gxi + gxr).digest()[:16]
    assert keymat.phase1_iv("md5", gxi, gxr, 8) == hashlib.md5(gxi + gxr).digest()[:8]
    last = bytes(range(16))
    assert (
        keymat.message_iv("sha256", last, 0x01020304, 16)
        == hashlib.sha256(last + b"\x01\x02\x03\x04").digest()[:16]
    )


def test_hash_i_and_hash_r_ordering() -> None:
    skeyid, cky_i, cky_r = b"K", b"I" * 8, b"R" * 8
    gxi, gxr, sai, idi, idr = b"xi", b"xr", b"SA", b"IDi", b"IDr"
    assert keymat.hash_i("sha1", skeyid, gxi, gxr, cky_i, cky_r, sai, idi) == _hmac(
        "sha1", skeyid, gxi + gxr + cky_i + cky_r + sai + idi
    )
    assert keymat.hash_r("sha1", skeyid, gxr, gxi, cky_r, cky_i, sai, idr) == _hmac(
        "sha1", skeyid, gxr + gxi + cky_r + cky_i + sai + idr
    )


def test_quick_mode_and_informational_hashes() -> None:
    a, mid, ni, nr = b"skeyid_a", 0xDEADBEEF, b"Ni", b"Nr"
    mid_b = bytes.fromhex("deadbeef")
    assert keymat.qm_hash1("sha256", a, mid, b"rest") == _hmac("sha256", a, mid_b + b"rest")
    assert keymat.qm_hash2("sha256", a, mid, ni, b"rest") == _hmac(
        "sha256", a, mid_b + ni + b"rest"
    )
    assert keymat.qm_hash3("sha256", a, mid, ni, nr) == _hmac(
        "sha256", a, b"\x00" + mid_b + ni + nr
    )
    assert keymat.info_hash("md5", a, 7, b"N") == _hmac("md5", a, b"\x00\x00\x00\x07N")


@pytest.mark.parametrize("gqm", [b"", b"\x07" * 256])
def test_ipsec_keymat_expansion(gqm: bytes) -> None:
    d, spi, ni, nr = b"skeyid_d", b"\xc0\x01\x02\x03", b"n" * 16, b"r" * 16
    seed = gqm + b"\x03" + spi + ni + nr
    k1 = _hmac("sha1", d, seed)
    k2 = _hmac("sha1", d, k1 + seed)
    k3 = _hmac("sha1", d, k2 + seed)
    # aes256 + hmac-sha1: 32 + 20 bytes, encryption key first.
    assert keymat.ipsec_keymat("sha1", d, 3, spi, ni, nr, 52, gqm) == (k1 + k2 + k3)[:52]
    assert keymat.ipsec_keymat("sha1", d, 3, spi, ni, nr, 20, gqm) == k1


@pytest.mark.parametrize("cipher", ["des", "3des", "aes128", "aes256"])
def test_body_encryption_pads_with_zeros_and_chains(cipher: str) -> None:
    block = crypto.cipher_block_size(cipher)
    key = bytes(range(crypto.cipher_key_size(cipher)))
    iv = b"\xaa" * block
    for length in (1, block - 1, block, block + 1, 3 * block):
        plaintext = bytes(range(1, length + 1))
        ciphertext, next_iv = keymat.encrypt_body(cipher, key, iv, plaintext)
        pad = block - length % block
        assert len(ciphertext) == length + pad and 1 <= pad <= block
        assert next_iv == ciphertext[-block:]
        decrypted, peer_next_iv = keymat.decrypt_body(cipher, key, iv, ciphertext)
        assert decrypted == plaintext + bytes(pad)
        assert peer_next_iv == next_iv


def test_decrypt_body_accepts_any_padding() -> None:
    key, iv = bytes(16), bytes(16)
    padded = b"payloads" + bytes(range(1, 8)) + b"\x07"  # pad-length style padding
    ciphertext = crypto.cbc_encrypt("aes128", key, iv, padded)
    assert keymat.decrypt_body("aes128", key, iv, ciphertext)[0] == padded


def test_decrypt_body_rejects_malformed_ciphertext() -> None:
    for body in (b"", bytes(15), bytes(17)):
        # Not a negotiation failure but a message to drop (errors.py).
        with pytest.raises(MessageRejected) as excinfo:
            keymat.decrypt_body("aes128", bytes(16), bytes(16), body)
        assert excinfo.value.reason == "decrypt_failed"
        assert excinfo.value.notify_type == crypto.PAYLOAD_MALFORMED


def test_iv_chain_across_a_phase1_exchange_and_quick_mode() -> None:
    """Main Mode messages 5 and 6 chain; Quick Mode starts from the last phase 1 block."""
    cipher, prf = "aes128", "sha1"
    key = bytes(range(16))
    gxi, gxr = b"\x11" * 256, b"\x22" * 256
    iv = keymat.phase1_iv(prf, gxi, gxr, 16)
    msg5, iv = keymat.encrypt_body(cipher, key, iv, b"ID|HASH_I")
    msg6, iv = keymat.encrypt_body(cipher, key, iv, b"ID|HASH_R")
    # The receiver of message 6 reaches the same IV through decryption.
    receiver_iv = keymat.phase1_iv(prf, gxi, gxr, 16)
    _, receiver_iv = keymat.decrypt_body(cipher, key, receiver_iv, msg5)
    plain6, receiver_iv = keymat.decrypt_body(cipher, key, receiver_iv, msg6)
    assert plain6.startswith(b"ID|HASH_R") and receiver_iv == iv == msg6[-16:]
    qm_iv = keymat.message_iv(prf, iv, 0x11223344, 16)
    assert qm_iv == hashlib.sha1(msg6[-16:] + bytes.fromhex("11223344")).digest()[:16]


def test_derive_phase1_bundles_everything_and_hides_secrets() -> None:
    keys = keymat.derive_phase1(
        "sha1", "3des", 24, b"S" * 20, b"g" * 128, b"I" * 8, b"R" * 8, b"xi", b"xr"
    )
    d, a, e = keymat.skeyid_dae("sha1", b"S" * 20, b"g" * 128, b"I" * 8, b"R" * 8)
    assert (keys.skeyid_d, keys.skeyid_a, keys.skeyid_e) == (d, a, e)
    assert keys.encryption_key == keymat.encryption_key("sha1", e, 24)
    assert keys.iv == hashlib.sha1(b"xixr").digest()[:8]
    assert e.hex() not in repr(keys) and "skeyid" not in repr(keys)
