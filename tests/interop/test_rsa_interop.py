"""RSA signatures with X.509 certificates against strongSwan, both roles.

A throw-away CA signs one certificate per site; identities are the
certificates' subject DNs (ID_DER_ASN1_DN), as strongSwan uses by default.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from gwlab import IpsecgwProcess, ping_ok, site_config, wait_until

from ipsecgw.tools import testbed as tb


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ipsecgw test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def make_pki() -> dict[str, bytes]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (x509.CertificateBuilder().subject_name(_name("ipsecgw test CA"))
          .issuer_name(_name("ipsecgw test CA")).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    out = {"ca.pem": ca.public_bytes(serialization.Encoding.PEM)}
    for site, address in (("siteA", tb.SITE_A_OUTER), ("siteB", tb.SITE_B_OUTER)):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (x509.CertificateBuilder().subject_name(_name(site)).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.IPv4Address(address))]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        out[f"{site}.pem"] = cert.public_bytes(serialization.Encoding.PEM)
        out[f"{site}.key"] = _pem_key(key)
    return out


@pytest.mark.parametrize("role", ["initiator", "responder"])
def test_rsa_signatures_main_mode(two_sites: tb.TwoSites, tmp_path: Path, role: str) -> None:
    pki = make_pki()
    for name, data in pki.items():
        (tmp_path / name).write_bytes(data)
    conf = tb.swanctl_conf(
        local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
        local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, auth="pubkey",
        local_id='"O=ipsecgw test, CN=siteB"', remote_id='"O=ipsecgw test, CN=siteA"',
        local_extra="certs = siteB.pem", proposals="aes256-sha256-modp2048",
    )
    files = {"x509ca/ca.pem": pki["ca.pem"], "x509/siteB.pem": pki["siteB.pem"],
             "private/siteB.key": pki["siteB.key"]}
    rsa_rule = f"""
        ipsec certificate local {tmp_path / 'siteA.pem'} private-key {tmp_path / 'siteA.key'}
        ipsec certificate ca {tmp_path / 'ca.pem'}
        ipsec ike-policy-rule 2
         authentication rsa-sig
         encryption aes256
         hash sha256
         group 14
         exit
        """
    config = site_config(extra_global=rsa_rule, responder_only=role == "responder",
                         encryption="aes256", hash_="sha256")
    # Rule 1 (pre-share) would win as initiator; drop it so rsa-sig is offered alone.
    config = config.replace(" authentication pre-share\n", " authentication rsa-sig\n", 1)
    with tb.StrongSwan(two_sites.b, conf, workdir=tmp_path / "swan", files=files) as swan:
        swan.start()
        gw = IpsecgwProcess(two_sites.a, tmp_path / "gw", config)
        try:
            if role == "responder":
                assert "initiate completed successfully" in swan.initiate()
                assert wait_until(lambda: "up" in gw.cli("show ipsec tunnel").split())
            else:
                assert gw.wait_tunnel_up("siteB"), gw.log() + swan.log()[-3000:]
            assert ping_ok(two_sites.a, tb.SITE_A_INNER, tb.SITE_B_INNER)
            sas = swan.list_sas()
            assert "remote 'O=ipsecgw test, CN=siteA'" in sas, sas
            assert ("authentication of 'O=ipsecgw test, CN=siteA' with RSA_EMSA_PKCS1_NULL "
                    "successful") in swan.log()
            detail = gw.cli("show ipsec tunnel ipsec:siteB detail")
            assert "rsa-sig aes256 sha256 group 14" in detail, detail
        finally:
            gw.stop()
