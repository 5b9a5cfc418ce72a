"""tshark agrees with the codec: messages ipsecgw encodes, written to a pcap,
are dissected with no malformed-packet or warning expert info, and with the
same field values the codec put there."""

from __future__ import annotations

import datetime
import ipaddress
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
from payload_factories import main_mode_first_message, phase1_sa, quick_mode_sa  # noqa: E402

from ipsecgw.isakmp import (  # noqa: E402
    Attribute,
    Certificate,
    CertificateRequest,
    Delete,
    ExchangeType,
    Flags,
    Hash,
    Identification,
    IdType,
    KeyExchange,
    Message,
    NatD,
    NatOA,
    Nonce,
    Notification,
    NotifyType,
    Payload,
    PayloadType,
    Proposal,
    ProtocolId,
    SecurityAssociation,
    Signature,
    Transform,
    VendorId,
    encode_attributes,
)
from ipsecgw.isakmp import constants as c  # noqa: E402

ICKY, RCKY = bytes.fromhex("0123456789abcdef"), bytes.fromhex("fedcba9876543210")


def _certificate_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ipsecgw codec test")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _messages() -> list[tuple[Message, int]]:
    """(message, UDP port): every payload type, both attribute forms, both ports."""
    dn = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "peer")]).public_bytes()
    esp_ah = SecurityAssociation(
        proposals=(
            Proposal(
                1,
                ProtocolId.IPSEC_ESP,
                b"\xc0\x01\x02\x03",
                (
                    Transform(
                        1,
                        c.EspTransform.AES_CBC,
                        (
                            Attribute.make(c.IpsecAttribute.KEY_LENGTH, 256),
                            Attribute.make(c.IpsecAttribute.AUTHENTICATION_ALGORITHM, 5),
                            Attribute.make(
                                c.IpsecAttribute.ENCAPSULATION_MODE, c.EncapsulationMode.UDP_TUNNEL
                            ),
                            Attribute.make(c.IpsecAttribute.GROUP_DESCRIPTION, 14),
                        ),
                    ),
                    Transform(2, c.EspTransform.TRIPLE_DES, (Attribute.make(5, 1),)),
                ),
            ),
            Proposal(
                2, ProtocolId.IPSEC_AH, b"\xc0\x01\x02\x04", (Transform(1, c.AhTransform.SHA),)
            ),
        )
    )
    spis = ICKY + RCKY
    return [
        (main_mode_first_message(4, (c.VENDOR_ID_DPD, c.VENDOR_ID_NAT_T_RFC3947)), 500),
        (
            Message(
                ICKY,
                RCKY,
                ExchangeType.IDENTITY_PROTECTION,
                payloads=(
                    KeyExchange(bytes(range(256))),
                    Nonce(b"N" * 32),
                    NatD(b"d" * 20),
                    NatD(b"e" * 20),
                ),
            ),
            500,
        ),
        (
            Message(
                ICKY,
                RCKY,
                ExchangeType.AGGRESSIVE,
                payloads=(
                    phase1_sa(2),
                    KeyExchange(b"k" * 128),
                    Nonce(b"n" * 16),
                    Identification.fqdn("gw.example.net"),
                    CertificateRequest(c.CertEncoding.X509_SIGNATURE),
                    VendorId(c.VENDOR_ID_NAT_T_DRAFT_02_N),
                ),
            ),
            500,
        ),
        (
            Message(
                ICKY,
                RCKY,
                ExchangeType.IDENTITY_PROTECTION,
                payloads=(
                    Identification.der_asn1_dn(dn),
                    Certificate(c.CertEncoding.X509_SIGNATURE, _certificate_der()),
                    Signature(b"S" * 64),
                    Notification(1, ProtocolId.ISAKMP, NotifyType.INITIAL_CONTACT, spis),
                ),
            ),
            4500,
        ),
        (
            Message(
                ICKY,
                RCKY,
                ExchangeType.QUICK_MODE,
                message_id=0x11223344,
                payloads=(
                    Hash(b"h" * 20),
                    quick_mode_sa(),
                    Nonce(b"n" * 20),
                    Identification.subnet("10.98.1.0/24"),
                    Identification.address_range(
                        "10.98.2.1", "10.98.2.99", protocol_id=17, port=4500
                    ),
                    NatOA.address("192.0.2.44"),
                ),
            ),
            4500,
        ),
        (
            Message(
                ICKY,
                RCKY,
                ExchangeType.QUICK_MODE,
                message_id=0x11223345,
                payloads=(
                    Hash(b"h" * 32),
                    esp_ah,
                    Nonce(b"m" * 20),
                    Identification.ipv6("2001:db8::1"),
                    Identification.subnet("2001:db8:1::/48"),
                    NatOA.address("2001:db8::99"),
                ),
            ),
            4500,
        ),
        (
            Message(
                ICKY,
                RCKY,
                ExchangeType.INFORMATIONAL,
                message_id=7,
                payloads=(
                    Hash(b"h" * 20),
                    Notification(
                        1, ProtocolId.ISAKMP, NotifyType.R_U_THERE, spis, b"\x00\x00\x00\x2a"
                    ),
                ),
            ),
            4500,
        ),
        (
            Message(
                ICKY,
                RCKY,
                ExchangeType.INFORMATIONAL,
                message_id=8,
                payloads=(
                    Hash(b"h" * 20),
                    Notification(
                        1, ProtocolId.ISAKMP, NotifyType.R_U_THERE_ACK, spis, b"\x00\x00\x00\x2a"
                    ),
                    Notification(
                        1,
                        ProtocolId.IPSEC_ESP,
                        NotifyType.RESPONDER_LIFETIME,
                        b"\xc0\x01\x02\x03",
                        encode_attributes([Attribute.make(1, 1), Attribute.make(2, 600)]),
                    ),
                    Delete(1, ProtocolId.IPSEC_ESP, 4, (b"\xc0\x01\x02\x03", b"\xc0\x01\x02\x04")),
                    Delete(1, ProtocolId.ISAKMP, 16, (spis,)),
                ),
            ),
            500,
        ),
        (
            Message(
                ICKY,
                RCKY,
                ExchangeType.INFORMATIONAL,
                payloads=(Notification(0, ProtocolId.ISAKMP, NotifyType.INVALID_COOKIE, spis),),
            ),
            500,
        ),
        (
            Message(
                ICKY,
                RCKY,
                ExchangeType.QUICK_MODE,
                Flags.ENCRYPTION | Flags.COMMIT,
                0x0BADCAFE,
                encrypted_body=bytes(range(48)),
                first_payload=PayloadType.HASH,
            ),
            4500,
        ),
    ]


# --------------------------------------------------------------- pcap writing


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _frame(payload: bytes, port: int) -> bytes:
    """Ethernet + IPv4 + UDP around an ISAKMP message (RFC 3947 4 marker on 4500)."""
    if port == c.NAT_T_PORT:
        payload = c.NON_ESP_MARKER + payload
    udp = struct.pack("!HHHH", port, port, 8 + len(payload), 0) + payload  # no UDP checksum
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        1,
        0,
        64,
        17,
        0,
        bytes([192, 0, 2, 1]),
        bytes([192, 0, 2, 2]),
    )
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    ethernet = bytes.fromhex("0200000000020200000000010800")
    return ethernet + ip + udp


def write_pcap(path: Path, datagrams: list[tuple[bytes, int]]) -> None:
    """Classic libpcap: global header, then a record header per Ethernet frame."""
    parts = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for index, (payload, port) in enumerate(datagrams):
        frame = _frame(payload, port)
        parts.append(struct.pack("<IIII", 1_700_000_000 + index, 0, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(parts))


# ------------------------------------------------------- expected field values


def _hex(data: bytes) -> str:
    return data.hex()


def _flatten(payloads: tuple[Payload, ...]) -> list[tuple[int, int, int]]:
    """(payload type, next payload, payload length) in tshark's tree order."""
    rows = []
    for index, payload in enumerate(payloads):
        following = payloads[index + 1].payload_type if index + 1 < len(payloads) else 0
        rows.append((payload.payload_type, following, 4 + len(payload.encode_body())))
        if isinstance(payload, SecurityAssociation):
            for p_index, proposal in enumerate(payload.proposals):
                last_p = p_index == len(payload.proposals) - 1
                rows.append((2, 0 if last_p else 2, 4 + len(proposal.encode_body())))
                for t_index, transform in enumerate(proposal.transforms):
                    last_t = t_index == len(proposal.transforms) - 1
                    rows.append((3, 0 if last_t else 3, 4 + len(transform.encode_body())))
    return rows


def _attribute_value(attribute: Attribute) -> str:
    if isinstance(attribute.value, int):
        return f"{attribute.value:04x}"
    return attribute.value.hex()


def expected_fields(message: Message, data: bytes) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {
        "isakmp.ispi": [_hex(message.initiator_cookie)],
        "isakmp.rspi": [_hex(message.responder_cookie)],
        "isakmp.exchangetype": [str(message.exchange_type)],
        "isakmp.flags": [f"0x{message.flags:02x}"],
        "isakmp.messageid": [f"0x{message.message_id:08x}"],
        "isakmp.length": [str(len(data))],
        "isakmp.mjver": ["0x01"],
        "isakmp.mnver": ["0x00"],
    }

    def add(name: str, value: str) -> None:
        fields.setdefault(name, []).append(value)

    if message.encrypted_body is not None:
        fields["isakmp.nextpayload"] = [str(message.first_payload)]
        return fields
    rows = _flatten(message.payloads)
    fields["isakmp.typepayload"] = [str(t) for t, _, _ in rows]
    first = str(message.payloads[0].payload_type) if message.payloads else "0"
    fields["isakmp.nextpayload"] = [first] + [str(n) for _, n, _ in rows]
    fields["isakmp.payloadlength"] = [str(length) for _, _, length in rows]
    for payload in message.payloads:
        if isinstance(payload, SecurityAssociation):
            add("isakmp.sa.doi", str(payload.doi))
            for proposal in payload.proposals:
                add("isakmp.prop.number", str(proposal.number))
                add("isakmp.prop.protoid", str(proposal.protocol_id))
                add("isakmp.prop.transforms", str(len(proposal.transforms)))
                if proposal.spi:
                    add("isakmp.spi", _hex(proposal.spi))
                family = "ike" if proposal.protocol_id == ProtocolId.ISAKMP else "ipsec"
                for transform in proposal.transforms:
                    add("isakmp.trans.number", str(transform.number))
                    add("isakmp.trans.id", str(transform.transform_id))
                    for attribute in transform.attributes:
                        add(f"isakmp.{family}.attr.type", str(attribute.type))
                        add(f"isakmp.{family}.attr.value", _attribute_value(attribute))
        elif isinstance(payload, KeyExchange):
            add("isakmp.key_exchange.data", _hex(payload.data))
        elif isinstance(payload, Nonce):
            add("isakmp.nonce", _hex(payload.data))
        elif isinstance(payload, Hash):
            add("isakmp.hash", _hex(payload.data))
        elif isinstance(payload, Signature):
            add("isakmp.sig", _hex(payload.data))
        elif isinstance(payload, VendorId):
            add("isakmp.vid_bytes", _hex(payload.data))
        elif isinstance(payload, NatD):
            add("isakmp.ike.nat_hash", _hex(payload.data))
        elif isinstance(payload, NatOA):
            add("isakmp.id.type", str(payload.id_type))
            family = "ipv4" if payload.id_type == IdType.IPV4_ADDR else "ipv6"
            add(
                f"isakmp.ike.nat_original_address_{family}", str(ipaddress.ip_address(payload.data))
            )
        elif isinstance(payload, Certificate):
            add("isakmp.cert.encoding", str(payload.encoding))
        elif isinstance(payload, CertificateRequest):
            add("isakmp.certreq.type", str(payload.encoding))
        elif isinstance(payload, Identification):
            add("isakmp.id.type", str(payload.id_type))
            add("isakmp.id.protoid", str(payload.protocol_id))
            add("isakmp.id.port", str(payload.port))
            if payload.id_type == IdType.FQDN:
                add("isakmp.id.data.fqdn", payload.data.decode())
            elif payload.id_type == IdType.IPV4_ADDR_RANGE:
                first_address, last_address = payload.to_address_range() or ("", "")
                add("isakmp.id.data.ipv4_range_start", str(first_address))
                add("isakmp.id.data.ipv4_range_end", str(last_address))
        elif isinstance(payload, Notification):
            add("isakmp.notify.doi", str(payload.doi))
            add("isakmp.notify.protoid", str(payload.protocol_id))
            add("isakmp.notify.msgtype", str(payload.notify_type))
            if payload.spi:
                add("isakmp.spi", _hex(payload.spi))
            if payload.notify_type == NotifyType.R_U_THERE:
                add(
                    "isakmp.notify.data.dpd.are_you_there", str(int.from_bytes(payload.data, "big"))
                )
            if payload.notify_type == NotifyType.R_U_THERE_ACK:
                add(
                    "isakmp.notify.data.dpd.are_you_there_ack",
                    str(int.from_bytes(payload.data, "big")),
                )
        elif isinstance(payload, Delete):
            add("isakmp.delete.doi", str(payload.doi))
            add("isakmp.delete.protoid", str(payload.protocol_id))
            add("isakmp.spinum", str(len(payload.spis)))
            for spi in payload.spis:
                add("isakmp.delete.spi", _hex(spi))
    return fields


FIELDS = sorted(
    {
        "isakmp.ispi",
        "isakmp.rspi",
        "isakmp.exchangetype",
        "isakmp.flags",
        "isakmp.messageid",
        "isakmp.length",
        "isakmp.mjver",
        "isakmp.mnver",
        "isakmp.typepayload",
        "isakmp.nextpayload",
        "isakmp.payloadlength",
        "isakmp.sa.doi",
        "isakmp.prop.number",
        "isakmp.prop.protoid",
        "isakmp.prop.transforms",
        "isakmp.spi",
        "isakmp.trans.number",
        "isakmp.trans.id",
        "isakmp.ike.attr.type",
        "isakmp.ike.attr.value",
        "isakmp.ipsec.attr.type",
        "isakmp.ipsec.attr.value",
        "isakmp.key_exchange.data",
        "isakmp.nonce",
        "isakmp.hash",
        "isakmp.sig",
        "isakmp.vid_bytes",
        "isakmp.ike.nat_hash",
        "isakmp.ike.nat_original_address_ipv4",
        "isakmp.ike.nat_original_address_ipv6",
        "isakmp.cert.encoding",
        "isakmp.certreq.type",
        "isakmp.id.type",
        "isakmp.id.protoid",
        "isakmp.id.port",
        "isakmp.id.data.fqdn",
        "isakmp.id.data.ipv4_range_start",
        "isakmp.id.data.ipv4_range_end",
        "isakmp.notify.doi",
        "isakmp.notify.protoid",
        "isakmp.notify.msgtype",
        "isakmp.notify.data.dpd.are_you_there",
        "isakmp.notify.data.dpd.are_you_there_ack",
        "isakmp.delete.doi",
        "isakmp.delete.protoid",
        "isakmp.spinum",
        "isakmp.delete.spi",
    }
)
PROBLEMS = ["_ws.malformed", "_ws.expert.severity", "_ws.expert.message"]
# Wireshark expert severities (epan/proto.h): chat 0x200000, note 0x400000,
# warn 0x600000, error 0x800000.
_WARNING = 0x600000


def run_tshark(path: Path, fields: list[str]) -> list[list[str]]:
    args = [
        "tshark",
        "-n",
        "-r",
        str(path),
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
        "-E",
        "separator=\t",
    ]
    for name in fields:
        args += ["-e", name]
    output = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in output.splitlines()]


def test_tshark_dissects_what_the_codec_encodes(interop: None, tmp_path: Path) -> None:
    cases = _messages()
    encoded = [(message.encode(), port) for message, port in cases]
    for data, _ in encoded:
        assert Message.decode(data).encode() == data
    pcap = tmp_path / "codec.pcap"
    write_pcap(pcap, encoded)

    rows = run_tshark(pcap, FIELDS + PROBLEMS)
    assert len(rows) == len(cases)
    for index, ((message, _), (data, _), row) in enumerate(zip(cases, encoded, rows, strict=True)):
        values = dict(zip(FIELDS + PROBLEMS, row, strict=True))
        problems = [
            message_text
            for severity, message_text in zip(
                values["_ws.expert.severity"].split("|"),
                values["_ws.expert.message"].split("|"),
                strict=False,
            )
            if severity and int(severity, 0) >= _WARNING
        ]
        assert not values["_ws.malformed"], f"packet {index + 1}: tshark says malformed"
        assert not problems, f"packet {index + 1}: tshark expert info {problems}"
        expected = expected_fields(message, data)
        got = {name: values[name].split("|") if values[name] else [] for name in FIELDS}
        for name in FIELDS:
            assert got[name] == expected.get(name, []), (index + 1, name)


def test_tshark_sees_the_non_esp_marker(interop: None, tmp_path: Path) -> None:
    """On 4500 tshark must see IKE (not ESP) only because of the marker we add."""
    pcap = tmp_path / "nat_t.pcap"
    message = main_mode_first_message(1)
    write_pcap(pcap, [(message.encode(), 4500)])
    (row,) = run_tshark(pcap, ["udp.dstport", "isakmp.ispi", "esp.spi"])
    assert row == ["4500", message.initiator_cookie.hex(), ""]


@pytest.mark.parametrize("transforms", [1, 8, 32])
def test_tshark_counts_transforms(interop: None, tmp_path: Path, transforms: int) -> None:
    pcap = tmp_path / "sa.pcap"
    message = main_mode_first_message(transforms)
    write_pcap(pcap, [(message.encode(), 500)])
    (row,) = run_tshark(pcap, ["isakmp.prop.transforms", "isakmp.trans.number", "_ws.malformed"])
    assert row[0] == str(transforms)
    assert row[1].split("|") == [str(i + 1) for i in range(transforms)]
    assert row[2] == ""


def test_the_malformed_check_can_fail(interop: None, tmp_path: Path) -> None:
    """The same check flags a datagram whose SA payload length runs past the end."""
    pcap = tmp_path / "broken.pcap"
    data = main_mode_first_message(2).encode()
    write_pcap(pcap, [(data[:30] + b"\xff\xff" + data[32:], 500)])
    (row,) = run_tshark(pcap, PROBLEMS)
    assert row[0] and int(row[1].split("|")[0], 0) >= _WARNING
