"""RSA signature authentication with X.509 certificates, Main and Aggressive Mode."""

from __future__ import annotations

import datetime
import ipaddress
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from engine_helpers import A_IP, B_IP, Pair, make_pair, policies, rng

from ipsecgw.isakmp.codec import Message, SecurityAssociation
from ipsecgw.isakmp.engine import Engine
from ipsecgw.isakmp.events import IpsecSaEstablished, Phase1Established, Phase1Failed
from ipsecgw.isakmp.policy import EnginePolicy, Identity, IkeRule
from ipsecgw.isakmp.proposals import parse_ike_transform

NOW = datetime.datetime.now(datetime.UTC)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ipsecgw test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer: str, issuer_key, san_ip: str | None = None,
          ca: bool = False) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(days=1))
               .not_valid_after(NOW + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san_ip:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(san_ip))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki():
    ca_key, other_key, a_key, b_key = _key(), _key(), _key(), _key()
    ca = _cert("Test CA", ca_key, "Test CA", ca_key, ca=True)
    other_ca = _cert("Other CA", other_key, "Other CA", other_key, ca=True)
    return {
        "ca": ca, "other_ca": other_ca,
        "a": (_cert("gw-a", a_key, "Test CA", ca_key, san_ip=A_IP), a_key),
        "b": (_cert("gw-b", b_key, "Test CA", ca_key, san_ip=B_IP), b_key),
    }


def _rsa_policies(pki, aggressive: str = "accepted", a_ca=None, **kwargs):
    rules = (IkeRule(authentication="rsa-sig", group=19, aggressive_mode=aggressive),)
    policy_a, policy_b = policies(rules=rules, **kwargs)
    cert_a, key_a = pki["a"]
    cert_b, key_b = pki["b"]
    policy_a = EnginePolicy(**{**policy_a.__dict__, "preshared_keys": {},
                               "local_certificate": cert_a, "local_private_key": key_a,
                               "ca_certificates": (a_ca or pki["ca"],)})
    policy_b = EnginePolicy(**{**policy_b.__dict__, "preshared_keys": {},
                               "local_certificate": cert_b, "local_private_key": key_b,
                               "ca_certificates": (pki["ca"],)})
    return policy_a, policy_b


def _rsa_pair(policy_a: EnginePolicy, policy_b: EnginePolicy,
              wall: datetime.datetime | None = NOW) -> Pair:
    """A pair whose engines know the wall-clock time `wall` at their clock's 0."""
    pair = make_pair(policy_a, policy_b)
    for engine in (pair.a, pair.b):
        engine.wall_offset = None if wall is None else wall.timestamp()
    return pair


@pytest.mark.parametrize("aggressive", ["accepted", "required"])
def test_rsa_signatures_with_dn_identities(pki, aggressive: str) -> None:
    pair = _rsa_pair(*_rsa_policies(pki, aggressive))
    pair.start()
    established = pair.events("a", Phase1Established)
    assert established and established[0].exchange == (
        "aggressive" if aggressive == "required" else "main")
    assert pair.consistent()
    peer = pair.b.ike_sa_status(pair.now)[0]
    assert peer.authentication == "rsa-sig"
    assert peer.peer_identity == "CN=gw-a,O=ipsecgw test"


def test_rsa_with_address_identity_from_subject_alt_name(pki) -> None:
    pair = _rsa_pair(*_rsa_policies(
        pki, a_tunnel={"local_identity": Identity("address", A_IP),
                       "peer_identity": Identity("asn1-dn", "CN=gw-b,O=ipsecgw test")},
        b_tunnel={"peer_identity": Identity("address", A_IP)}))
    pair.start()
    assert pair.consistent()
    assert pair.b.ike_sa_status(pair.now)[0].peer_identity == A_IP


def test_rsa_rejects_certificate_from_untrusted_ca(pki) -> None:
    pair = _rsa_pair(*_rsa_policies(pki, a_ca=pki["other_ca"]))
    pair.a.handle_timer(0.0)
    pair.pump()
    failed = pair.events("a", Phase1Failed)
    assert failed and "CA" in failed[0].reason
    assert not pair.events("a", IpsecSaEstablished)


def test_rsa_rejects_identity_not_in_certificate(pki) -> None:
    pair = _rsa_pair(*_rsa_policies(
        pki, a_tunnel={"local_identity": Identity("domain-name", "not-in-cert.example")}))
    pair.a.handle_timer(0.0)
    pair.pump()
    assert "INVALID-ID-INFORMATION" in pair.events("a", Phase1Failed)[0].reason
    assert not pair.events("b", Phase1Established)


def test_rsa_checks_certificate_validity_against_the_engines_wall_clock(pki) -> None:
    """Validity is wall time: `now` + `wall_offset`, not a clock read in the engine."""
    pair = _rsa_pair(*_rsa_policies(pki), wall=NOW + datetime.timedelta(days=60))
    pair.a.handle_timer(0.0)
    pair.pump()
    failed = pair.events("b", Phase1Failed) + pair.events("a", Phase1Failed)
    assert failed and "is not valid at" in failed[0].reason
    assert not pair.events("a", IpsecSaEstablished)


def test_rsa_without_a_wall_clock_fails_phase1(pki) -> None:
    pair = _rsa_pair(*_rsa_policies(pki), wall=None)
    pair.a.handle_timer(0.0)
    pair.pump()
    failed = pair.events("b", Phase1Failed) + pair.events("a", Phase1Failed)
    assert failed and "wall-clock" in failed[0].reason
    assert not pair.events("a", Phase1Established)


KAT = Path(__file__).resolve().parents[1] / "fixtures" / "strongswan-kat"


@pytest.mark.parametrize("scenario", sorted(p.stem for p in KAT.glob("*.json")))
def test_responder_accepts_strongswan_main_mode_offer(scenario: str) -> None:
    """strongSwan 5.9.8's real first Main Mode message gets a matching answer."""
    fixture = json.loads((KAT / f"{scenario}.json").read_text())
    cipher, hash_name, group = fixture["ike_proposal"].split("-")
    hash_name = {"sha1": "sha", "md5": "md5"}.get(hash_name, hash_name)
    groups = {"modp1024": 2, "modp1536": 5, "modp2048": 14, "modp4096": 16, "ecp256": 19,
              "ecp384": 20}
    _, policy_b = policies(rules=(IkeRule(encryption=cipher, hash=hash_name,
                                          group=groups[group]),))
    engine = Engine(policy_b, rng=rng(5))
    direction, port, first = fixture["datagrams"][0]
    engine.receive_datagram(bytes.fromhex(first), (B_IP, 500), (A_IP, port), 0.0)
    replies = engine.datagrams_to_send(0.0)
    assert len(replies) == 1
    answer = Message.decode(replies[0].data)
    sa = answer.find(SecurityAssociation)
    assert sa is not None
    suite = parse_ike_transform(sa.proposals[0].transforms[0])
    assert suite is not None
    assert (suite.encryption, suite.hash, suite.group) == (cipher, hash_name, groups[group])
