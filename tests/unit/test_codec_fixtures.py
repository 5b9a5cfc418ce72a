"""Real strongSwan <-> strongSwan IKEv1 datagrams (tests/fixtures/captures,
made by its regenerate.py) decode and re-encode byte-exactly; with the key
material charon logged, the protected messages decrypt and their payload
chains decode (with RFC 2409 padding) and re-encode byte-exactly too."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

try:  # cryptography >= 43 files 3DES under "decrepit"
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    TripleDES = algorithms.TripleDES  # type: ignore[attr-defined,misc]

from ipsecgw.isakmp import (
    Delete,
    ExchangeType,
    Flags,
    Hash,
    Identification,
    IdType,
    KeyExchange,
    Message,
    NatD,
    Nonce,
    Notification,
    NotifyType,
    Payload,
    ProtocolId,
    SecurityAssociation,
    VendorId,
    decode_payloads,
    encode_payloads,
)
from ipsecgw.isakmp.constants import NON_ESP_MARKER, VENDOR_ID_DPD, VENDOR_ID_NAT_T_RFC3947

CAPTURES = Path(__file__).parents[1] / "fixtures" / "captures"
SCENARIOS = sorted(p.stem for p in CAPTURES.glob("*.txt"))


@dataclass(frozen=True)
class Datagram:
    source: str
    destination: str
    data: bytes  # the bare ISAKMP message

    @property
    def from_initiator(self) -> bool:
        return self.source.startswith("10.99.0.1:")


def load(name: str, directory: Path = CAPTURES) -> list[Datagram]:
    datagrams = []
    for line in (directory / f"{name}.txt").read_text().splitlines():
        source, destination, payload = line.split()
        data = bytes.fromhex(payload)
        if source.endswith(":4500"):
            # RFC 3947 4: IKE on 4500 carries the non-ESP marker; strip it.
            assert data.startswith(NON_ESP_MARKER)
            data = data[4:]
        datagrams.append(Datagram(source, destination, data))
    return datagrams


def test_fixtures_exist() -> None:
    assert {"main_mode", "aggressive_mode_pfs", "main_mode_3des"} <= set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_datagram_round_trips(name: str) -> None:
    datagrams = load(name)
    assert len(datagrams) >= 10
    for datagram in datagrams:
        message = Message.decode(datagram.data)
        assert message.encode() == datagram.data


def _cbc_decrypt(cipher: str, key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    algorithm = TripleDES(key) if cipher == "3des" else algorithms.AES(key)
    decryptor = Cipher(algorithm, modes.CBC(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


_HASHES = {"md5": "md5", "sha1": "sha1", "sha256": "sha256"}


def decrypted_exchange(
    name: str, directory: Path = CAPTURES
) -> list[tuple[Message, tuple[Payload, ...]]]:
    """Every message with its payloads, decrypting per RFC 2409 5 and Appendix B."""
    keys = json.loads((directory / f"{name}.keys.json").read_text())
    result = []
    phase1_iv: dict[bytes, bytes] = {}
    exchange_iv: dict[tuple[bytes, int], bytes] = {}
    for datagram in load(name, directory):
        message = Message.decode(datagram.data)
        assert message.encode() == datagram.data
        if not message.flags & Flags.ENCRYPTION:
            result.append((message, message.payloads))
            continue
        assert message.encrypted_body is not None
        sa = keys[message.initiator_cookie.hex()]
        block = 8 if sa["cipher"] == "3des" else 16
        key = bytes.fromhex(sa["encryption_key"])
        ciphertext = message.encrypted_body
        assert len(ciphertext) % block == 0
        cookie = message.initiator_cookie
        if message.message_id == 0:
            # Phase 1: the IV chains from the DH-derived initial IV through
            # the last ciphertext block of each encrypted phase 1 message.
            iv = phase1_iv.get(cookie, bytes.fromhex(sa["initial_iv"]))
            phase1_iv[cookie] = ciphertext[-block:]
        else:
            # Appendix B: a new exchange starts from hash(last phase 1 block | M-ID).
            exchange = (cookie, message.message_id)
            iv = (
                exchange_iv.get(exchange)
                or hashlib.new(
                    _HASHES[sa["hash"]], phase1_iv[cookie] + message.message_id.to_bytes(4, "big")
                ).digest()[:block]
            )
            exchange_iv[exchange] = ciphertext[-block:]
        plaintext = _cbc_decrypt(sa["cipher"], key, iv, ciphertext)
        payloads = decode_payloads(message.first_payload, plaintext, allow_padding=True)
        first, body = encode_payloads(payloads)
        assert first == message.first_payload
        assert plaintext.startswith(body)
        assert len(plaintext) - len(body) < 256  # only padding remains
        result.append((message, payloads))
    return result


def kinds(payloads: tuple[Payload, ...]) -> list[type]:
    return [type(p) for p in payloads]


@pytest.mark.parametrize("name", SCENARIOS)
def test_protected_messages_decode(name: str) -> None:
    check_exchange(name, decrypted_exchange(name))


def check_exchange(name: str, exchange: list[tuple[Message, tuple[Payload, ...]]]) -> None:
    """What a strongSwan MM/AM + QM + DPD + Delete run must contain."""
    aggressive = name.startswith("aggressive")
    phase1 = [(m, p) for m, p in exchange if m.message_id == 0]
    quick = [(m, p) for m, p in exchange if m.exchange_type == ExchangeType.QUICK_MODE]
    informational = [(m, p) for m, p in exchange if m.exchange_type == ExchangeType.INFORMATIONAL]
    assert len(phase1) + len(quick) + len(informational) == len(exchange)

    if aggressive:
        assert [m.exchange_type for m, _ in phase1] == [ExchangeType.AGGRESSIVE] * 3
        first = phase1[0][1]
        assert kinds(first)[:5] == [
            SecurityAssociation,
            KeyExchange,
            Nonce,
            Identification,
            VendorId,
        ]
        assert Hash in kinds(phase1[1][1]) and Hash in kinds(phase1[2][1])
    else:
        assert [m.exchange_type for m, _ in phase1] == [ExchangeType.IDENTITY_PROTECTION] * 6
        assert kinds(phase1[2][1])[:2] == [KeyExchange, Nonce]
        assert kinds(phase1[2][1]).count(NatD) == 2
        assert kinds(phase1[4][1])[:2] == [Identification, Hash]
        assert kinds(phase1[5][1]) == [Identification, Hash]
        identity = phase1[4][1][0]
        assert isinstance(identity, Identification)
        assert identity == Identification.ipv4("10.99.0.1")
    vendor_ids = {p.data for p in phase1[0][1] if isinstance(p, VendorId)}
    assert {VENDOR_ID_DPD, VENDOR_ID_NAT_T_RFC3947} <= vendor_ids

    # Quick Mode: HASH(1) SA Ni [KE] IDci IDcr / HASH(2) SA Nr [KE] IDci IDcr / HASH(3).
    assert len(quick) == 3
    for _, payloads in quick[:2]:
        assert kinds(payloads)[:3] == [Hash, SecurityAssociation, Nonce]
        assert (KeyExchange in kinds(payloads)) == name.endswith("_pfs")
        ids = [p for p in payloads if isinstance(p, Identification)]
        assert [i.to_network() for i in ids] == [
            Identification.subnet("10.98.1.0/24").to_network(),
            Identification.subnet("10.98.2.0/24").to_network(),
        ]
        assert all(i.id_type == IdType.IPV4_ADDR_SUBNET for i in ids)
        sa = payloads[1]
        assert isinstance(sa, SecurityAssociation)
        assert sa.proposals[0].protocol_id == ProtocolId.IPSEC_ESP
        assert len(sa.proposals[0].spi) == 4
    assert kinds(quick[2][1]) == [Hash]

    # DPD (RFC 3706) and the final Deletes, all as protected Informationals.
    notifies = [p for _, ps in informational for p in ps if isinstance(p, Notification)]
    types = {n.notify_type for n in notifies}
    assert {NotifyType.R_U_THERE, NotifyType.R_U_THERE_ACK} <= types
    for notify in notifies:
        if notify.notify_type in (NotifyType.R_U_THERE, NotifyType.R_U_THERE_ACK):
            assert len(notify.spi) == 16 and len(notify.data) == 4
    deletes = [p for _, ps in informational for p in ps if isinstance(p, Delete)]
    assert {(d.protocol_id, d.spi_size) for d in deletes} == {
        (ProtocolId.IPSEC_ESP, 4),
        (ProtocolId.ISAKMP, 16),
    }
    for _, payloads in informational:
        assert isinstance(payloads[0], Hash)
