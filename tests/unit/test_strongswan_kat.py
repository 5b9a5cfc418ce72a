"""strongSwan exchanges as known answers for ipsecgw.isakmp.keymat and crypto.

Each fixture in tests/fixtures/strongswan-kat/ (made by its regenerate.py) holds the
ISAKMP datagrams of one Main Mode PSK + Quick Mode + two Informational Deletes between
two strongSwan 5.9.8 charons, and the key material both charons logged. From the logged
Diffie-Hellman secrets and what is on the wire alone, this test derives SKEYID,
SKEYID_d/a/e, the encryption key and every IV, decrypts every encrypted message,
re-encrypts it to the same ciphertext (so our padding is byte-identical to strongSwan's),
and checks HASH_I, HASH_R, HASH(1..3), the Informational HASH and the child SA KEYMAT.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from ipsecgw.isakmp import crypto, keymat
from ipsecgw.isakmp.codec import Message, decode_payloads
from ipsecgw.isakmp.constants import ExchangeType, PayloadType

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "strongswan-kat"
SCENARIOS = sorted(p.stem for p in FIXTURES.glob("*.json"))

IKE_HASH = {
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
    "sha384": "sha384",
    "sha512": "sha512",
}
CIPHER_KEY = {
    "3des": ("3des", 24),
    "aes128": ("aes128", 16),
    "aes192": ("aes192", 24),
    "aes256": ("aes256", 32),
}
ESP_INTEGRITY_KEY = {"md5": 16, "sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
PROTO_ESP = 3

_DUMP_HEAD = re.compile(r"^\d+\[(?:IKE|CHD)\] (.+) => (\d+) bytes @ 0x[0-9a-f]+$")
_DUMP_LINE = re.compile(r"^\d+\[(?:IKE|CHD)\] +\d+: ((?:[0-9A-F]{2} ?)+)")


def parse_log(lines: list[str]) -> list[tuple[str, bytes]]:
    """(label, value) for every hex dump in a charon log excerpt, in order."""
    dumps: list[tuple[str, bytes]] = []
    label, size, hexdigits = None, 0, ""
    for line in [*lines, ""]:
        head, dump = _DUMP_HEAD.match(line), _DUMP_LINE.match(line)
        if dump and label is not None:
            hexdigits += dump.group(1).replace(" ", "")
            continue
        if label is not None:
            value = bytes.fromhex(hexdigits)
            assert len(value) == size, f"dump of {label} is {len(value)} of {size} bytes"
            dumps.append((label, value))
            label = None
        if head:
            label, size, hexdigits = head.group(1), int(head.group(2)), ""
    return dumps


def logged(dumps: list[tuple[str, bytes]], label: str) -> list[bytes]:
    return [value for name, value in dumps if name == label]


def one(dumps: list[tuple[str, bytes]], label: str) -> bytes:
    values = logged(dumps, label)
    assert len(values) == 1, f"{label!r} logged {len(values)} times"
    return values[0]


def raw_chain(first_payload: int, body: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """The payloads of a chain as (type, bytes with generic header), and where it ends."""
    payloads = []
    payload_type, pos = first_payload, 0
    while payload_type != PayloadType.NONE:
        next_payload, _, length = struct.unpack_from("!BBH", body, pos)
        payloads.append((payload_type, body[pos : pos + length]))
        payload_type, pos = next_payload, pos + length
    return payloads, pos


def body_of(payloads: list[tuple[int, bytes]], payload_type: int) -> bytes:
    """The body (after the 4-byte generic header) of the only payload of that type."""
    bodies = [raw[4:] for kind, raw in payloads if kind == payload_type]
    assert len(bodies) == 1, f"{len(bodies)} payloads of type {payload_type}"
    return bodies[0]


@dataclass
class Decrypted:
    message: Message
    payloads: list[tuple[int, bytes]]
    chain: bytes  # the payload chain without padding


class Scenario:
    def __init__(self, name: str) -> None:
        fixture = json.loads((FIXTURES / f"{name}.json").read_text())
        cipher_name, hash_name, group_name = fixture["ike_proposal"].split("-")
        self.cipher, self.key_len = CIPHER_KEY[cipher_name]
        self.prf = IKE_HASH[hash_name]
        self.block = crypto.cipher_block_size(self.cipher)
        self.group = crypto.dh_group(
            {"modp768": 1, "modp1024": 2, "modp1536": 5, "modp2048": 14, "modp3072": 15,
             "modp4096": 16, "ecp256": 19, "ecp384": 20}[group_name]
        )  # fmt: skip
        esp = fixture["esp_proposal"].split("-")
        self.esp_key_len = CIPHER_KEY[esp[0]][1] + ESP_INTEGRITY_KEY[esp[1]]
        self.pfs = len(esp) == 3
        self.psk = fixture["psk"].encode()
        self.datagrams = [(sender, bytes.fromhex(h)) for sender, _, h in fixture["datagrams"]]
        self.messages = [(sender, Message.decode(data)) for sender, data in self.datagrams]
        self.logs = {
            "i": parse_log(fixture["initiator_log"]),
            "r": parse_log(fixture["responder_log"]),
        }
        self.derive_phase1()

    def exchange(self, exchange_type: int) -> list[tuple[str, Message]]:
        return [(s, m) for s, m in self.messages if m.exchange_type == exchange_type]

    def derive_phase1(self) -> None:
        main_mode = self.exchange(ExchangeType.IDENTITY_PROTECTION)
        assert [s for s, _ in main_mode] == ["i", "r", "i", "r", "i", "r"]
        self.main_mode = [m for _, m in main_mode]
        m3 = self.main_mode[2]
        self.cky_i, self.cky_r = m3.initiator_cookie, m3.responder_cookie
        raw1, _, raw3, raw4 = (data for _, data in self.datagrams[:4])
        chain1, _ = raw_chain(*_plain(raw1))
        chain3, _ = raw_chain(*_plain(raw3))
        chain4, _ = raw_chain(*_plain(raw4))
        self.sai_b = body_of(chain1, PayloadType.SA)
        self.gxi, self.ni_b = body_of(chain3, PayloadType.KE), body_of(chain3, PayloadType.NONCE)
        self.gxr, self.nr_b = body_of(chain4, PayloadType.KE), body_of(chain4, PayloadType.NONCE)
        self.gxy = one(self.logs["i"], "shared Diffie Hellman secret")
        self.skeyid = keymat.skeyid_psk(self.prf, self.psk, self.ni_b, self.nr_b)
        self.keys = keymat.derive_phase1(
            self.prf, self.cipher, self.key_len, self.skeyid, self.gxy,
            self.cky_i, self.cky_r, self.gxi, self.gxr,
        )  # fmt: skip

    def decrypt(self, message: Message, iv: bytes) -> tuple[Decrypted, bytes]:
        """Decrypt with `iv`; check the padding and the re-encryption; return next IV."""
        assert message.encrypted_body is not None
        plaintext, next_iv = keymat.decrypt_body(
            self.cipher, self.keys.encryption_key, iv, message.encrypted_body
        )
        payloads, end = raw_chain(message.first_payload, plaintext)
        chain, padding = plaintext[:end], plaintext[end:]
        assert padding == bytes(len(padding)) and 1 <= len(padding) <= self.block
        assert decode_payloads(message.first_payload, plaintext, allow_padding=True)
        ciphertext, our_next_iv = keymat.encrypt_body(
            self.cipher, self.keys.encryption_key, iv, chain
        )
        assert (ciphertext, our_next_iv) == (message.encrypted_body, next_iv)
        return Decrypted(message, payloads, chain), next_iv

    def decrypt_exchange(
        self, messages: list[Message], iv: bytes
    ) -> tuple[list[Decrypted], list[bytes]]:
        """Decrypt a chain of messages; return them and every IV the chain went through."""
        ivs, decrypted = [iv], []
        for message in messages:
            result, iv = self.decrypt(message, iv)
            decrypted.append(result)
            ivs.append(iv)
        return decrypted, ivs


def _plain(datagram: bytes) -> tuple[int, bytes]:
    """First payload type and body of an unencrypted message, straight from the wire."""
    assert datagram[19] & 1 == 0, "expected an unencrypted message"
    return datagram[16], datagram[28:]


def _after_hash(decrypted: Decrypted) -> tuple[bytes, bytes]:
    """(HASH payload data, the chain bytes that follow it) for a phase 2 message."""
    kind, raw = decrypted.payloads[0]
    assert kind == PayloadType.HASH, "HASH must be the first payload (RFC 2409 5.5)"
    return raw[4:], decrypted.chain[len(raw) :]


@pytest.fixture(scope="module", params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return Scenario(request.param)


def test_fixtures_cover_the_required_algorithms() -> None:
    proposals = [
        json.loads((FIXTURES / f"{n}.json").read_text())["ike_proposal"] for n in SCENARIOS
    ]
    text = " ".join(proposals)
    for needed in (
        "md5",
        "sha1",
        "sha256",
        "sha384",
        "3des",
        "aes128",
        "aes256",
        "ecp256",
        "modp2048",
    ):
        assert needed in text, f"no strongSwan fixture negotiates {needed}"


def test_phase1_key_material(scenario: Scenario) -> None:
    for side in ("i", "r"):
        log = scenario.logs[side]
        assert one(log, "shared Diffie Hellman secret") == scenario.gxy
        assert one(log, "SKEYID") == scenario.skeyid
        assert one(log, "SKEYID_d") == scenario.keys.skeyid_d
        assert one(log, "SKEYID_a") == scenario.keys.skeyid_a
        assert one(log, "SKEYID_e") == scenario.keys.skeyid_e
        assert one(log, "encryption key Ka") == scenario.keys.encryption_key
        assert one(log, "initial IV") == scenario.keys.iv
    assert len(scenario.gxy) == scenario.group.public_size // (
        2 if scenario.group.number >= 19 else 1
    )


def test_fixtures_exercise_appendix_b_key_expansion() -> None:
    """3DES and AES-256 keys longer than SKEYID_e (MD5, SHA-1) need the expansion."""
    expanded = set()
    for name in SCENARIOS:
        scenario = Scenario(name)
        if len(scenario.keys.skeyid_e) < scenario.key_len:
            expanded.add(scenario.cipher)
    assert {"3des", "aes256"} <= expanded


def test_strongswan_public_values_pass_our_validation(scenario: Scenario) -> None:
    pair = scenario.group.generate()
    for public in (scenario.gxi, scenario.gxr):
        assert len(pair.shared_secret(public)) == len(scenario.gxy)


def test_main_mode_decryption_and_hash_i_hash_r(scenario: Scenario) -> None:
    m5, m6 = scenario.main_mode[4:]
    (d5, d6), ivs = scenario.decrypt_exchange([m5, m6], scenario.keys.iv)
    hash_i = keymat.hash_i(
        scenario.prf, scenario.skeyid, scenario.gxi, scenario.gxr, scenario.cky_i,
        scenario.cky_r, scenario.sai_b, body_of(d5.payloads, PayloadType.ID),
    )  # fmt: skip
    hash_r = keymat.hash_r(
        scenario.prf, scenario.skeyid, scenario.gxr, scenario.gxi, scenario.cky_r,
        scenario.cky_i, scenario.sai_b, body_of(d6.payloads, PayloadType.ID),
    )  # fmt: skip
    assert body_of(d5.payloads, PayloadType.HASH) == hash_i
    assert body_of(d6.payloads, PayloadType.HASH) == hash_r
    for side in ("i", "r"):
        assert one(scenario.logs[side], "HASH_I") == hash_i
        assert one(scenario.logs[side], "HASH_R") == hash_r
        # Each side logs the IV it moves to after each phase 1 message.
        assert logged(scenario.logs[side], "next IV for MID 0") == ivs[1:]


def _last_phase1_block(scenario: Scenario) -> bytes:
    m5, m6 = scenario.main_mode[4:]
    _, ivs = scenario.decrypt_exchange([m5, m6], scenario.keys.iv)
    return ivs[-1]


def test_quick_mode_hashes_ivs_and_keymat(scenario: Scenario) -> None:
    quick_mode = scenario.exchange(ExchangeType.QUICK_MODE)
    assert [s for s, _ in quick_mode] == ["i", "r", "i"]
    messages = [m for _, m in quick_mode]
    message_id = messages[0].message_id
    assert all(m.message_id == message_id for m in messages)
    iv = keymat.message_iv(scenario.prf, _last_phase1_block(scenario), message_id, scenario.block)
    (q1, q2, q3), ivs = scenario.decrypt_exchange(messages, iv)
    a = scenario.keys.skeyid_a

    hash1, rest1 = _after_hash(q1)
    hash2, rest2 = _after_hash(q2)
    hash3, rest3 = _after_hash(q3)
    rest1_payloads, _ = raw_chain(q1.payloads[0][1][0], rest1)
    rest2_payloads, _ = raw_chain(q2.payloads[0][1][0], rest2)
    ni_b, nr_b = (
        body_of(rest1_payloads, PayloadType.NONCE),
        body_of(rest2_payloads, PayloadType.NONCE),
    )
    assert hash1 == keymat.qm_hash1(scenario.prf, a, message_id, rest1)
    assert hash2 == keymat.qm_hash2(scenario.prf, a, message_id, ni_b, rest2)
    assert hash3 == keymat.qm_hash3(scenario.prf, a, message_id, ni_b, nr_b) and rest3 == b""
    for side in ("i", "r"):
        log = scenario.logs[side]
        assert one(log, "Hash(1)") == hash1
        assert one(log, "Hash(2)") == hash2
        assert one(log, "Hash(3)") == hash3
        assert set(logged(log, f"next IV for MID {message_id}")) <= set(ivs)
    # The initiator logs the exchange's first IV, then the IV after each message.
    assert logged(scenario.logs["i"], f"next IV for MID {message_id}") == ivs

    # KEYMAT (RFC 2409 5.5): one per direction, keyed by the SPI its receiver chose.
    spi_i = _esp_spi(body_of(rest1_payloads, PayloadType.SA))
    spi_r = _esp_spi(body_of(rest2_payloads, PayloadType.SA))
    log = scenario.logs["i"]
    gqm = one(log, "DH secret") if scenario.pfs else b""
    assert any(kind == PayloadType.KE for kind, _ in rest1_payloads) == scenario.pfs
    # strongSwan's "initiator" keys protect initiator -> responder traffic, the SA
    # whose SPI the responder chose.
    assert one(log, "initiator SA seed") == gqm + bytes([PROTO_ESP]) + spi_r + ni_b + nr_b
    d = scenario.keys.skeyid_d
    for role, spi in (("initiator", spi_r), ("responder", spi_i)):
        material = keymat.ipsec_keymat(
            scenario.prf, d, PROTO_ESP, spi, ni_b, nr_b, scenario.esp_key_len, gqm
        )
        encryption = one(log, f"encryption {role} key")
        integrity = one(log, f"integrity {role} key")
        assert material == encryption + integrity
        assert one(scenario.logs["r"], f"encryption {role} key") == encryption


def _esp_spi(sa_body: bytes) -> bytes:
    """The SPI of the first proposal of an IPsec SA payload body (RFC 2407 4.6.1)."""
    proposal = sa_body[8:]  # DOI and situation
    spi_size = proposal[6]
    return proposal[8 : 8 + spi_size]


def test_informational_deletes(scenario: Scenario) -> None:
    informational = scenario.exchange(ExchangeType.INFORMATIONAL)
    assert len(informational) == 2
    last_block = _last_phase1_block(scenario)
    hashes = []
    for _, message in informational:
        iv = keymat.message_iv(scenario.prf, last_block, message.message_id, scenario.block)
        decrypted, next_iv = scenario.decrypt(message, iv)
        info_hash, rest = _after_hash(decrypted)
        assert info_hash == keymat.info_hash(
            scenario.prf, scenario.keys.skeyid_a, message.message_id, rest
        )
        rest_payloads, _ = raw_chain(decrypted.payloads[0][1][0], rest)
        assert [kind for kind, _ in rest_payloads] == [PayloadType.DELETE]
        # A one-message exchange: the sender logs only the IV it starts from.
        assert logged(scenario.logs["i"], f"next IV for MID {message.message_id}") == [iv]
        assert next_iv == message.encrypted_body[-scenario.block :]
        hashes.append(info_hash)
    assert logged(scenario.logs["i"], "Hash") == hashes
    assert set(logged(scenario.logs["r"], "Hash")) <= set(hashes)
