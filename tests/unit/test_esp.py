"""ESP tunnel mode (RFC 4303): known answers, cross-checks and drop reasons."""

from __future__ import annotations

import hmac as stdlib_hmac
import os
import struct
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecgw.dataplane.esp import (
    ENCRYPTIONS,
    INTEGRITIES,
    SEQUENCE_MAX,
    DropReason,
    EspError,
    InboundSa,
    OutboundSa,
    SequenceExhausted,
)


@dataclass(frozen=True)
class Keys:
    spi: bytes
    encryption: str
    encryption_key: bytes = field(repr=False)
    integrity: str | None
    integrity_key: bytes = field(repr=False)


def keys(encryption: str, integrity: str | None, spi: bytes = b"\x11\x22\x33\x44") -> Keys:
    return Keys(
        spi,
        encryption,
        os.urandom(ENCRYPTIONS[encryption].key_size),
        integrity,
        os.urandom(INTEGRITIES[integrity][1]) if integrity else b"",
    )


def ipv4_packet(
    payload: bytes = b"ping" * 10, src: str = "10.98.1.1", dst: str = "10.98.2.1"
) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        1,
        0,
        64,
        1,
        0,
        bytes(map(int, src.split("."))),
        bytes(map(int, dst.split("."))),
    )
    return header + payload


def ipv6_packet(payload: bytes = b"ping6" * 10) -> bytes:
    return (
        struct.pack("!IHBB16s16s", 6 << 28, len(payload), 58, 64, b"\x20" * 16, b"\x21" * 16)
        + payload
    )


CBC_SUITES = [
    (encryption, integrity)
    for encryption in ("des", "3des", "aes128", "aes192", "aes256")
    for integrity in INTEGRITIES
]
ALL_SUITES = [
    *CBC_SUITES,
    ("null", "hmac-md5-96"),
    ("null", "hmac-sha1-96"),
    ("null", "hmac-sha256-128"),
    ("aes128", None),
    ("aes128gcm", None),
    ("aes256gcm", None),
]
AUTHENTICATED_SUITES = [suite for suite in ALL_SUITES if suite != ("aes128", None)]

# RFC 3602 section 4, cases 7 and 8: AES-128-CBC ESP in tunnel mode, no ICV.
RFC3602_KEY = bytes.fromhex("0123456789abcdef0123456789abcdef")
RFC3602_SPI = bytes.fromhex("00008765")
RFC3602_CASE7_ESP = bytes.fromhex(
    "0000876500000002f4e765244f6407adf13dc1380f673f37773b5241a4c44922"
    "5e4f3ce5ed611b0c237ca96cf74a93013c1b0ea1a0cf70f8e4ecaec78ac53aad"
    "7a0f022b859243c647752e94a859352b8a4d4d2decd136e5c177f132ad3fbfb2"
    "201ac9904c74ee0a109e0ca1e4dfe9d5a100b842f1c22f0d"
)
RFC3602_CASE7_INNER = bytes.fromhex(
    "45000054090400004001f988c0a87b03c0a87bc808009f76a90a0100b49c083d"
    "02a2040008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223"
    "2425262728292a2b2c2d2e2f3031323334353637"
)
RFC3602_CASE8_ESP = bytes.fromhex(
    "000087650000000585d47224b5f3dd5d2101d4ea8dffab2215b92683819596a8"
    "047232cc00f7048fe45318e11f8a0f62ede3c3fc61203bb50f980a08c9843fd3"
    "a1b06d5c07ff9639b7eb7dfb3512e5de435e7207ed971ef3d2726d9b5ef6affc"
    "6d17a0decbb13892"
)
RFC3602_CASE8_INNER = bytes.fromhex(
    "45000044090c00004001f990c0a87b03c0a87bc80800d63caa0a0200c69c083d"
    "a3de0300ffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
    "ffffffff"
)
RFC3602_KEYS = Keys(RFC3602_SPI, "aes128", RFC3602_KEY, None, b"")


def aes_ecb_decrypt_block(key: bytes, block: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    return decryptor.update(block) + decryptor.finalize()


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


# Known answers


def test_rfc3602_case7_and_case8_decapsulate() -> None:
    sa = InboundSa(RFC3602_KEYS)
    assert sa.decapsulate(RFC3602_CASE7_ESP) == RFC3602_CASE7_INNER
    assert sa.decapsulate(RFC3602_CASE8_ESP) == RFC3602_CASE8_INNER
    assert (sa.packets, sa.bytes) == (2, len(RFC3602_CASE7_INNER) + len(RFC3602_CASE8_INNER))


def test_rfc3602_case7_and_case8_encapsulate_byte_exact() -> None:
    """The chained-context IV construction reproduces the RFC's packets exactly.

    OutboundSa feeds R || plaintext through one CBC context whose chaining
    value is the previous packet's last ciphertext block (zero before the
    first packet); the IV sent is E(R xor chain), so R = D(IV) xor chain
    makes it the RFC's IV.
    """
    wanted = {"iv": RFC3602_CASE7_ESP[8:24], "chain": bytes(16)}

    def random_bytes(size: int) -> bytes:
        assert size == 16
        return xor(aes_ecb_decrypt_block(RFC3602_KEY, wanted["iv"]), wanted["chain"])

    sa = OutboundSa(RFC3602_KEYS, random_bytes=random_bytes)
    sa.sequence_number = 1  # the RFC's case 7 packet carries sequence number 2
    assert sa.encapsulate(RFC3602_CASE7_INNER) == RFC3602_CASE7_ESP

    wanted["iv"], wanted["chain"] = RFC3602_CASE8_ESP[8:24], RFC3602_CASE7_ESP[-16:]
    sa.sequence_number = 4
    assert sa.encapsulate(RFC3602_CASE8_INNER) == RFC3602_CASE8_ESP


# Round trips and independent cross-checks


@pytest.mark.parametrize(("encryption", "integrity"), ALL_SUITES)
@pytest.mark.parametrize("inner", [ipv4_packet(), ipv6_packet(), ipv4_packet(b"x" * 1380)])
def test_round_trip(encryption: str, integrity: str | None, inner: bytes) -> None:
    k = keys(encryption, integrity)
    outbound, inbound = OutboundSa(k), InboundSa(k)
    for expected_sequence in (1, 2, 3):
        packet = outbound.encapsulate(inner)
        assert packet[:4] == k.spi
        assert int.from_bytes(packet[4:8], "big") == expected_sequence
        assert inner not in packet or encryption == "null"
        assert inbound.decapsulate(packet) == inner
    assert (outbound.packets, outbound.bytes) == (3, 3 * len(inner))
    assert (inbound.packets, inbound.bytes) == (3, 3 * len(inner))


def _check_trailer(plaintext: bytes, inner: bytes, next_header: int, alignment: int) -> None:
    pad_length = plaintext[-2]
    assert plaintext[-1] == next_header
    assert plaintext[: len(inner)] == inner
    assert plaintext[len(inner) : -2] == bytes(range(1, pad_length + 1))
    assert len(plaintext) % alignment == 0
    assert pad_length < alignment  # minimal padding


@pytest.mark.parametrize(("encryption", "integrity"), CBC_SUITES)
def test_cbc_hmac_cross_check(encryption: str, integrity: str) -> None:
    """Decrypt and verify what OutboundSa sends with fresh, independent primitives."""
    k = keys(encryption, integrity)
    sa = OutboundSa(k)
    digest, _, icv_size = INTEGRITIES[integrity]
    block = ENCRYPTIONS[encryption].block_size
    algorithm = (
        algorithms.AES(k.encryption_key)
        if encryption.startswith("aes")
        else TripleDES(k.encryption_key * (3 if encryption == "des" else 1))
    )
    for inner in (ipv4_packet(), ipv6_packet(), ipv4_packet(b"z" * 999)):
        packet = sa.encapsulate(inner)
        signed, icv = packet[:-icv_size], packet[-icv_size:]
        expected = stdlib_hmac.new(k.integrity_key, signed, digest.name).digest()[:icv_size]
        assert icv == expected
        iv, ciphertext = signed[8 : 8 + block], signed[8 + block :]
        decryptor = Cipher(algorithm, modes.CBC(iv)).decryptor()
        plaintext = decryptor.update(ciphertext) + decryptor.finalize()
        _check_trailer(plaintext, inner, 41 if inner[0] >> 4 == 6 else 4, block)


def test_cbc_ivs_differ_between_packets() -> None:
    sa = OutboundSa(keys("aes128", "hmac-sha1-96"))
    ivs = {sa.encapsulate(ipv4_packet())[8:24] for _ in range(50)}
    assert len(ivs) == 50


@pytest.mark.parametrize("encryption", ["aes128gcm", "aes256gcm"])
def test_gcm_cross_check(encryption: str) -> None:
    """RFC 4106 has no vectors: open OutboundSa's packets with AESGCM directly."""
    k = keys(encryption, None)
    sa = OutboundSa(k)
    aead, salt = AESGCM(k.encryption_key[:-4]), k.encryption_key[-4:]
    ivs: list[int] = []
    for sequence in (1, 2):
        inner = ipv4_packet(bytes([sequence]) * 77)
        packet = sa.encapsulate(inner)
        header, iv = packet[:8], packet[8:16]
        assert header == k.spi + sequence.to_bytes(4, "big")
        # Unique per packet (RFC 4106 3.1): the sequence number under a fixed mask.
        ivs.append(int.from_bytes(iv, "big") ^ sequence)
        plaintext = aead.decrypt(salt + iv, packet[16:], header)  # AAD = SPI || seq (RFC 4106 5)
        _check_trailer(plaintext, inner, 4, 4)
        assert len(packet) == 8 + 8 + len(plaintext) + 16
    assert ivs[0] == ivs[1]


def test_gcm_ivs_differ_between_installs_of_the_same_keys() -> None:
    k = keys("aes256gcm", None)
    first, second = (
        OutboundSa(k).encapsulate(ipv4_packet()),
        OutboundSa(k).encapsulate(ipv4_packet()),
    )
    assert first[4:8] == second[4:8] == b"\x00\x00\x00\x01"
    assert first[8:16] != second[8:16]


def test_null_encryption_is_plaintext_with_icv() -> None:
    k = keys("null", "hmac-sha256-128")
    inner = ipv4_packet(b"abc")
    packet = OutboundSa(k).encapsulate(inner)
    _check_trailer(packet[8:-16], inner, 4, 4)
    assert packet[-16:] == stdlib_hmac.new(k.integrity_key, packet[:-16], "sha256").digest()[:16]


# Anti-replay window (RFC 4303 3.4.3)


def _packets(k: Keys, count: int) -> list[bytes]:
    sa = OutboundSa(k)
    return [sa.encapsulate(ipv4_packet(i.to_bytes(2, "big"))) for i in range(count)]


def test_replayed_packet_is_dropped() -> None:
    k = keys("aes128", "hmac-sha1-96")
    first = _packets(k, 1)[0]
    sa = InboundSa(k)
    sa.decapsulate(first)
    with pytest.raises(EspError) as error:
        sa.decapsulate(first)
    assert error.value.reason is DropReason.REPLAY
    assert sa.packets == 1


def test_window_accepts_reordering_and_drops_too_old() -> None:
    k = keys("aes128gcm", None)
    packets = _packets(k, 200)  # sequence numbers 1..200
    sa = InboundSa(k, replay_window=64)
    sa.decapsulate(packets[99])  # 100
    for index in (98, 60, 36, 150, 99 + 1):  # 99, 61, 37 inside; 151; 101
        sa.decapsulate(packets[index])
    # highest is now 151: 151 - 64 = 87 is the first sequence number outside
    for index in (86, 36, 0):  # 87, 37 (was accepted, now left of window), 1
        with pytest.raises(EspError) as error:
            sa.decapsulate(packets[index])
        assert error.value.reason is DropReason.REPLAY
    sa.decapsulate(packets[87])  # 88: the oldest still inside
    for index in (87, 98, 150):
        with pytest.raises(EspError):
            sa.decapsulate(packets[index])


def test_large_window() -> None:
    k = keys("aes128gcm", None)
    packets = _packets(k, 1100)
    sa = InboundSa(k, replay_window=1024)
    sa.decapsulate(packets[1099])
    sa.decapsulate(packets[1099 - 1023])
    with pytest.raises(EspError):
        sa.decapsulate(packets[1099 - 1024])


def test_window_moves_only_after_authentication() -> None:
    k = keys("aes128", "hmac-sha256-128")
    packets = _packets(k, 3)
    sa = InboundSa(k)
    forged = bytearray(packets[0])
    forged[4:8] = (10_000).to_bytes(4, "big")  # far ahead; ICV now wrong
    with pytest.raises(EspError) as error:
        sa.decapsulate(bytes(forged))
    assert error.value.reason is DropReason.AUTH_FAILED
    assert sa.decapsulate(packets[0]) == ipv4_packet((0).to_bytes(2, "big"))


def test_sequence_number_zero_is_rejected() -> None:
    k = keys("null", "hmac-sha1-96")
    packet = bytearray(_packets(k, 1)[0])
    packet[4:8] = bytes(4)
    with pytest.raises(EspError) as error:
        InboundSa(k).decapsulate(bytes(packet))
    assert error.value.reason is DropReason.REPLAY


def test_window_below_32_is_refused() -> None:
    with pytest.raises(ValueError):
        InboundSa(keys("aes128gcm", None), replay_window=16)


# Drop reasons


@pytest.mark.parametrize(("encryption", "integrity"), AUTHENTICATED_SUITES)
def test_any_flipped_bit_fails_authentication(encryption: str, integrity: str | None) -> None:
    k = keys(encryption, integrity)
    packet = OutboundSa(k).encapsulate(ipv4_packet())
    for position in (5, 9, len(packet) // 2, len(packet) - 1):
        tampered = bytearray(packet)
        tampered[position] ^= 0x01
        with pytest.raises(EspError) as error:
            InboundSa(k).decapsulate(bytes(tampered))
        assert error.value.reason is DropReason.AUTH_FAILED


def test_wrong_key_fails_authentication() -> None:
    sender, receiver = keys("aes256", "hmac-sha1-96"), keys("aes256", "hmac-sha1-96")
    with pytest.raises(EspError) as error:
        InboundSa(receiver).decapsulate(OutboundSa(sender).encapsulate(ipv4_packet()))
    assert error.value.reason is DropReason.AUTH_FAILED


@pytest.mark.parametrize(("encryption", "integrity"), ALL_SUITES)
def test_truncated_packets_are_malformed_or_unauthentic(
    encryption: str, integrity: str | None
) -> None:
    k = keys(encryption, integrity)
    packet = OutboundSa(k).encapsulate(ipv4_packet())
    for size in (0, 3, 8, 12, 20, 30, len(packet) - 1):
        sa = InboundSa(k)
        try:
            sa.decapsulate(packet[:size])
        except EspError as error:
            assert error.reason in (
                DropReason.MALFORMED,
                DropReason.AUTH_FAILED,
                DropReason.PAD_ERROR,
            )
        else:
            pytest.fail(f"truncated to {size} bytes accepted")
        assert sa.packets == 0


def test_short_packet_is_malformed() -> None:
    k = keys("aes128", "hmac-sha1-96")
    with pytest.raises(EspError) as error:
        InboundSa(k).decapsulate(k.spi + b"\x00\x00\x00\x01" + bytes(20))
    assert error.value.reason is DropReason.MALFORMED


def test_misaligned_cbc_is_malformed() -> None:
    k = keys("aes128", "hmac-sha1-96")
    packet = OutboundSa(k).encapsulate(ipv4_packet())
    with pytest.raises(EspError) as error:
        InboundSa(k).decapsulate(packet[:-13] + packet[-12:])  # one byte short
    assert error.value.reason is DropReason.MALFORMED


def _seal_cbc(k: Keys, sequence: int, plaintext: bytes) -> bytes:
    """A hand-built AES-CBC + HMAC-SHA1-96 packet with the trailer the test chooses."""
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(k.encryption_key), modes.CBC(iv)).encryptor()
    signed = (
        k.spi
        + sequence.to_bytes(4, "big")
        + iv
        + encryptor.update(plaintext)
        + encryptor.finalize()
    )
    return signed + stdlib_hmac.new(k.integrity_key, signed, "sha1").digest()[:12]


def _padded(inner: bytes, padding: bytes, next_header: int) -> bytes:
    return inner + padding + bytes((len(padding), next_header))


def test_hand_built_packet_is_accepted() -> None:
    k = keys("aes128", "hmac-sha1-96")
    inner = ipv4_packet(b"0123456789")  # 30 bytes + 2 -> 32
    assert InboundSa(k).decapsulate(_seal_cbc(k, 1, _padded(inner, b"", 4))) == inner
    # Padding beyond the minimum is legal (RFC 4303 2.4: up to 255 bytes).
    long_padding = bytes(range(1, 17))
    assert InboundSa(k).decapsulate(_seal_cbc(k, 1, _padded(inner, long_padding, 4))) == inner


@pytest.mark.parametrize(
    "plaintext",
    [
        _padded(ipv4_packet(b"0123456789")[:-2], b"\x00\x00", 4),  # padding bytes not 1, 2
        _padded(ipv4_packet(b"0123456789")[:-2], b"\x02\x01", 4),  # reversed
        ipv4_packet(b"0123456789") + b"\xff\x04",  # pad length beyond the payload
    ],
)
def test_bad_padding(plaintext: bytes) -> None:
    k = keys("aes128", "hmac-sha1-96")
    sa = InboundSa(k)
    with pytest.raises(EspError) as error:
        sa.decapsulate(_seal_cbc(k, 1, plaintext))
    assert error.value.reason is DropReason.PAD_ERROR
    assert sa.packets == 0


@pytest.mark.parametrize(
    ("inner", "next_header"),
    [
        (ipv4_packet(b"0123456789"), 17),  # UDP: transport mode, not ours
        (ipv4_packet(b"0123456789"), 41),  # IPv6 next header on an IPv4 packet
        (b"\x60" + ipv4_packet(b"0123456789")[1:], 4),  # IPv4 next header on IPv6
    ],
)
def test_bad_next_header(inner: bytes, next_header: int) -> None:
    k = keys("aes128", "hmac-sha1-96")
    with pytest.raises(EspError) as error:
        InboundSa(k).decapsulate(_seal_cbc(k, 1, _padded(inner, b"", next_header)))
    assert error.value.reason is DropReason.MALFORMED


def test_dummy_packet_is_discarded_silently() -> None:
    k = keys("aes128", "hmac-sha1-96")
    sa = InboundSa(k)
    assert sa.decapsulate(_seal_cbc(k, 1, bytes(14) + b"\x00\x3b")) == b""
    assert sa.packets == 0
    with pytest.raises(EspError):
        sa.decapsulate(_seal_cbc(k, 1, bytes(14) + b"\x00\x3b"))  # still replay-protected


def test_not_an_ip_packet_is_refused_on_output() -> None:
    with pytest.raises(ValueError):
        OutboundSa(keys("aes128gcm", None)).encapsulate(b"\x00" * 40)


# Sequence numbers (RFC 4303 3.3.3)


def test_sequence_numbers_never_cycle() -> None:
    k = keys("aes128gcm", None)
    sa = OutboundSa(k)
    assert not sa.rekey_needed
    sa.sequence_number = SEQUENCE_MAX - 1
    assert sa.rekey_needed
    packet = sa.encapsulate(ipv4_packet())
    assert packet[4:8] == b"\xff\xff\xff\xff"
    with pytest.raises(SequenceExhausted):
        sa.encapsulate(ipv4_packet())
    assert sa.sequence_number == SEQUENCE_MAX
    assert sa.packets == 1


# Parameter validation


@pytest.mark.parametrize(
    "bad",
    [
        Keys(b"\x01\x02\x03\x04", "aes128", bytes(15), "hmac-sha1-96", bytes(20)),
        Keys(b"\x01\x02\x03\x04", "aes128", bytes(16), "hmac-sha1-96", bytes(16)),
        Keys(b"\x01\x02\x03\x04", "aes128gcm", bytes(16), None, b""),  # salt missing
        Keys(b"\x01\x02\x03\x04", "aes128gcm", bytes(20), "hmac-sha1-96", bytes(20)),
        Keys(b"\x01\x02\x03\x04", "null", b"", None, b""),  # RFC 4303 3.2
        Keys(b"\x01\x02\x03\x04", "blowfish", bytes(16), "hmac-sha1-96", bytes(20)),
        Keys(b"\x01\x02\x03\x04", "aes128", bytes(16), "hmac-sha512-256", bytes(64)),
        Keys(b"\x01\x02\x03", "aes128", bytes(16), "hmac-sha1-96", bytes(20)),
    ],
)
def test_invalid_parameters(bad: Keys) -> None:
    with pytest.raises(ValueError):
        OutboundSa(bad)
    with pytest.raises(ValueError):
        InboundSa(bad)


def test_keys_stay_out_of_errors() -> None:
    secret = bytes.fromhex("deadbeef" * 4)
    with pytest.raises(ValueError) as error:
        OutboundSa(Keys(b"\x01\x02\x03\x04", "aes256", secret, "hmac-sha1-96", bytes(20)))
    assert "deadbeef" not in str(error.value)


# Hostile input never escapes as anything but EspError


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(ALL_SUITES))
def test_garbage_raises_only_esp_error(data: bytes, suite: tuple[str, str | None]) -> None:
    k = keys(*suite)
    sa = InboundSa(k)
    try:
        sa.decapsulate(k.spi + data)
    except EspError:
        pass
    else:
        assert suite == ("aes128", None)  # only unauthenticated ESP can accept noise
    assert sa.packets <= 1


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=1500), st.sampled_from(ALL_SUITES))
def test_round_trip_any_payload(payload: bytes, suite: tuple[str, str | None]) -> None:
    k = keys(*suite)
    inner = ipv4_packet(payload)
    assert InboundSa(k).decapsulate(OutboundSa(k).encapsulate(inner)) == inner


def test_cbc_ivs_are_fresh_across_pool_refills() -> None:
    """The IV source draws os.urandom in bulk; across several refills every
    packet's IV is still different and every packet decrypts."""
    outbound, inbound = OutboundSa(RFC3602_KEYS), InboundSa(RFC3602_KEYS)
    ivs = set()
    for n in range(600):  # 600 x 16 octets: more than two 4096-octet refills
        packet = outbound.encapsulate(b"\x45" + bytes(39) + n.to_bytes(4, "big"))
        ivs.add(packet[8:24])
        assert inbound.decapsulate(packet).endswith(n.to_bytes(4, "big"))
    assert len(ivs) == 600
