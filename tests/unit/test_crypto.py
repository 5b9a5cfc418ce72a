"""ipsecgw.isakmp.crypto: primitives, DH groups and their validation, RSA, certificates."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import itertools

import gmpy2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ipsecgw.isakmp import crypto
from ipsecgw.isakmp.errors import CryptoError

# --- hashes, prf, ciphers ---------------------------------------------------------


@pytest.mark.parametrize("name", ["md5", "sha1", "sha256", "sha384", "sha512"])
def test_prf_is_hmac_and_hash_is_plain_digest(name: str) -> None:
    assert crypto.prf(name, b"key", b"data") == hmac.new(b"key", b"data", name).digest()
    assert crypto.hash_digest(name, b"data") == hashlib.new(name, b"data").digest()
    assert crypto.digest_size(name) == hashlib.new(name).digest_size


def test_rfc4231_hmac_sha256_case_2() -> None:
    assert crypto.prf("sha256", b"Jefe", b"what do ya want for nothing?") == bytes.fromhex(
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_unknown_algorithm_names_raise_crypto_error() -> None:
    with pytest.raises(CryptoError):
        crypto.prf("sha3", b"k", b"d")
    with pytest.raises(CryptoError):
        crypto.cipher_key_size("blowfish")
    with pytest.raises(CryptoError):
        crypto.dh_group(22)


@pytest.mark.parametrize(
    ("cipher", "key_size", "block_size"),
    [("des", 8, 8), ("3des", 24, 8), ("aes128", 16, 16), ("aes192", 24, 16), ("aes256", 32, 16)],
)
def test_cipher_sizes_and_round_trip(cipher: str, key_size: int, block_size: int) -> None:
    assert crypto.cipher_key_size(cipher) == key_size
    assert crypto.cipher_block_size(cipher) == block_size
    key = bytes(range(1, key_size + 1))
    iv = bytes(range(100, 100 + block_size))
    plaintext = bytes(range(3 * block_size))
    ciphertext = crypto.cbc_encrypt(cipher, key, iv, plaintext)
    assert len(ciphertext) == len(plaintext) and ciphertext != plaintext
    assert crypto.cbc_decrypt(cipher, key, iv, ciphertext) == plaintext


def test_aes128_cbc_sp800_38a_f21() -> None:
    ciphertext = crypto.cbc_encrypt(
        "aes128",
        bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"),
        bytes.fromhex("000102030405060708090a0b0c0d0e0f"),
        bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"),
    )
    assert ciphertext == bytes.fromhex(
        "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
    )


def test_single_des_cbc_fips81_example() -> None:
    ciphertext = crypto.cbc_encrypt(
        "des",
        bytes.fromhex("0123456789abcdef"),
        bytes.fromhex("1234567890abcdef"),
        b"Now is the time for all ",
    )
    assert ciphertext == bytes.fromhex("e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6")


def test_cbc_rejects_partial_blocks_and_bad_sizes() -> None:
    with pytest.raises(CryptoError) as excinfo:
        crypto.cbc_decrypt("aes128", bytes(16), bytes(16), bytes(17))
    assert excinfo.value.notify_type == crypto.PAYLOAD_MALFORMED
    with pytest.raises(CryptoError):
        crypto.cbc_encrypt("aes128", bytes(15), bytes(16), bytes(16))
    with pytest.raises(CryptoError):
        crypto.cbc_encrypt("3des", bytes(24), bytes(16), bytes(16))


def test_des_weak_and_semi_weak_keys_regardless_of_parity() -> None:
    assert crypto.is_weak_des_key(bytes.fromhex("0101010101010101"))
    assert crypto.is_weak_des_key(bytes.fromhex("0000000000000000"))  # same key, even parity
    assert crypto.is_weak_des_key(bytes.fromhex("e01fe01ff10ef10e"))  # semi-weak
    assert crypto.is_weak_des_key(bytes.fromhex("e11fe11ff00ef00f"))  # same, other parity
    assert not crypto.is_weak_des_key(bytes.fromhex("0123456789abcdef"))


def test_3des_degenerate_keys() -> None:
    k1, k2 = bytes(range(8)), bytes(range(8, 16))
    crypto.check_3des_key(k1 + k2 + k1)  # k1 == k3 is two-key 3DES, allowed
    for key in (k1 + k1 + k2, k1 + k2 + k2):
        with pytest.raises(CryptoError):
            crypto.check_3des_key(key)


# --- Diffie-Hellman ---------------------------------------------------------------

# SHA-256 prefixes of each MODP prime, checked against strongSwan's built-in groups.
MODP_PRIME_SHA256 = {
    1: "b52ba6a3026520a6c49d37e458760180",
    2: "3f35a3f5f6c4376a744acad409bb22f8",
    5: "64fcc83ec403930bf18393dbc883ccaa",
    14: "d66436f79bbd6b2e38c0ffbd079be904",
    15: "48cf8b092fbce4359d9871abf74f98e2",
    16: "4ee95187682bcb230ad26a95205f6920",
}
MODP_SIZES = {1: 96, 2: 128, 5: 192, 14: 256, 15: 384, 16: 512}


@pytest.mark.parametrize("number", sorted(MODP_SIZES))
def test_modp_primes_are_the_rfc_safe_primes(number: int) -> None:
    group = crypto.dh_group(number)
    assert isinstance(group, crypto.ModpGroup)
    assert group.public_size == MODP_SIZES[number]
    prime_bytes = group.prime.to_bytes(group.public_size, "big")
    assert prime_bytes.startswith(bytes.fromhex("ffffffffffffffffc90fdaa22168c234"))
    assert prime_bytes.endswith(b"\xff" * 8)
    assert hashlib.sha256(prime_bytes).hexdigest()[:32] == MODP_PRIME_SHA256[number]
    assert gmpy2.is_prime(group.prime) and gmpy2.is_prime((group.prime - 1) // 2)
    assert group.generator == 2


def test_modp_exponent_is_at_least_twice_the_security_strength() -> None:
    strength = {1: 80, 2: 80, 5: 96, 14: 112, 15: 128, 16: 152}
    for number, bits in strength.items():
        group = crypto.dh_group(number)
        assert isinstance(group, crypto.ModpGroup)
        assert group.exponent_bits >= 2 * bits or group.exponent_bits >= 160


@pytest.mark.parametrize("number", [1, 2, 5, 14, 15, 16, 19, 20])
def test_dh_agreement(number: int) -> None:
    group = crypto.dh_group(number)
    assert group.number == number
    alice, bob = group.generate(), group.generate()
    assert len(alice.public_value) == group.public_size
    secret = alice.shared_secret(bob.public_value)
    assert secret == bob.shared_secret(alice.public_value)
    expected = group.public_size // 2 if number in (19, 20) else group.public_size
    assert len(secret) == expected


def test_modp_known_answer_with_deterministic_rng() -> None:
    group = crypto.dh_group(14)
    assert isinstance(group, crypto.ModpGroup)
    pair = group.generate(rng=lambda n: bytes(n))  # exponent is just the forced top bit
    assert pair.public_value == pow(2, 2**255, group.prime).to_bytes(256, "big")
    peer = (5).to_bytes(256, "big")
    assert pair.shared_secret(peer) == pow(5, 2**255, group.prime).to_bytes(256, "big")


def test_modp_shared_secret_is_left_padded_to_the_prime_size() -> None:
    group = crypto.dh_group(2)
    assert isinstance(group, crypto.ModpGroup)
    pair = crypto.ModpKeyPair(
        group=group, public_value=(2).to_bytes(128, "big"), private_exponent=1
    )
    assert pair.shared_secret((2).to_bytes(128, "big")) == (2).to_bytes(128, "big")
    assert "private_exponent" not in repr(group.generate())


@pytest.mark.parametrize("number", [1, 2, 5, 14, 15, 16])
def test_modp_rejects_bad_peer_values(number: int) -> None:
    group = crypto.dh_group(number)
    assert isinstance(group, crypto.ModpGroup)
    pair = group.generate()
    size = group.public_size
    bad = [
        bytes(size),
        (1).to_bytes(size, "big"),
        (group.prime - 1).to_bytes(size, "big"),
        group.prime.to_bytes(size, "big"),
        b"\xff" * size,
        b"\x05" * (size - 1),
        b"\x05" * (size + 1),
        b"",
    ]
    for value in bad:
        with pytest.raises(CryptoError) as excinfo:
            pair.shared_secret(value)
        assert excinfo.value.notify_type == crypto.INVALID_KEY_INFORMATION
        assert f"group {number}" in str(excinfo.value)


@pytest.mark.parametrize("number", [19, 20])
def test_ecp_rejects_bad_peer_values(number: int) -> None:
    group = crypto.dh_group(number)
    pair = group.generate()
    good = group.generate().public_value
    half = group.public_size // 2
    off_curve = good[:half] + bytes([good[half] ^ 1]) + good[half + 1 :]
    for value in (bytes(group.public_size), off_curve, good[:-1], good + b"\x00", b""):
        with pytest.raises(CryptoError) as excinfo:
            pair.shared_secret(value)
        assert excinfo.value.notify_type == crypto.INVALID_KEY_INFORMATION


@pytest.mark.parametrize("number", [19, 20])
def test_ecp_public_value_is_x_and_y_and_secret_is_x(number: int) -> None:
    group = crypto.dh_group(number)
    assert isinstance(group, crypto.EcpGroup)
    pair = group.generate(rng=lambda n: b"\x01" * n)
    half = group.public_size // 2
    point = ec.EllipticCurvePublicKey.from_encoded_point(group.curve, b"\x04" + pair.public_value)
    numbers = point.public_numbers()
    assert pair.public_value == numbers.x.to_bytes(half, "big") + numbers.y.to_bytes(half, "big")
    peer = group.generate()
    shared_point = ec.derive_private_key(
        pair.private_key.private_numbers().private_value, group.curve
    ).exchange(
        ec.ECDH(),
        ec.EllipticCurvePublicKey.from_encoded_point(group.curve, b"\x04" + peer.public_value),
    )
    assert pair.shared_secret(peer.public_value) == shared_point
    # The order constant is right: n is rejected as a private scalar, n - 1 accepted.
    with pytest.raises(ValueError):
        ec.derive_private_key(group.order, group.curve)
    ec.derive_private_key(group.order - 1, group.curve)


def test_ecp_generate_covers_rng_extremes() -> None:
    group = crypto.dh_group(19)
    for fill in (b"\x00", b"\xff"):
        pair = group.generate(rng=lambda n, fill=fill: fill * n)
        assert len(pair.public_value) == 64


# --- RSA and certificates ----------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_rsa_signature_has_no_digest_info(rsa_key: rsa.RSAPrivateKey) -> None:
    data = hashlib.sha1(b"HASH_I input").digest()
    signature = crypto.rsa_sign(rsa_key, data)
    public = rsa_key.public_key()
    assert crypto.rsa_verify(public, signature, data)
    assert not crypto.rsa_verify(public, signature, data[:-1] + b"\x00")
    assert not crypto.rsa_verify(public, b"\x00" + signature[1:], data)
    # RFC 2409 5.1: the encoded block is 00 01 FF..FF 00 || HASH, no ASN.1 DigestInfo.
    numbers = public.public_numbers()
    block = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(256, "big")
    assert block == b"\x00\x01" + b"\xff" * (256 - 3 - len(data)) + b"\x00" + data


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CH"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ipsecgw test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


NOW = datetime.datetime(2025, 6, 1, tzinfo=datetime.UTC)
_serials = itertools.count(1)


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: str,
    issuer_key: rsa.RSAPrivateKey,
    *,
    days: tuple[int, int] = (-10, 365),
    san: list[x509.GeneralName] | None = None,
    ca: bool = False,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(next(_serials))
        .not_valid_before(NOW + datetime.timedelta(days=days[0]))
        .not_valid_after(NOW + datetime.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(rsa_key: rsa.RSAPrivateKey) -> dict[str, object]:
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _certificate("Test CA", ca_key, "Test CA", ca_key, ca=True)
    impostor_ca = _certificate("Test CA", other_key, "Test CA", other_key, ca=True)
    san: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("10.99.0.2")),
        x509.IPAddress(ipaddress.ip_address("2001:db8::2")),
        x509.DNSName("gw.example.net"),
        x509.RFC822Name("vpn@example.net"),
    ]
    leaf = _certificate("gw", rsa_key, "Test CA", ca_key, san=san)
    expired = _certificate("old", rsa_key, "Test CA", ca_key, days=(-400, -1))
    return {
        "ca": ca,
        "impostor_ca": impostor_ca,
        "leaf": leaf,
        "expired": expired,
        "ca_key": ca_key,
    }


def test_load_certificate_pem_and_der(pki: dict[str, object]) -> None:
    leaf = pki["leaf"]
    assert isinstance(leaf, x509.Certificate)
    der = crypto.certificate_der(leaf)
    pem = leaf.public_bytes(serialization.Encoding.PEM)
    assert crypto.load_certificate(der) == leaf
    assert crypto.load_certificate(pem) == leaf
    with pytest.raises(CryptoError) as excinfo:
        crypto.load_certificate(der[:-5])
    assert excinfo.value.notify_type == crypto.INVALID_CERT_ENCODING


def test_load_private_key(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    der = rsa_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    for blob in (pem, der):
        loaded = crypto.load_private_key(blob)
        assert loaded.private_numbers() == rsa_key.private_numbers()
    with pytest.raises(CryptoError):
        crypto.load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(CryptoError):
        crypto.load_private_key(ec_pem)


def test_subject_der_and_alt_names(pki: dict[str, object], rsa_key: rsa.RSAPrivateKey) -> None:
    leaf, ca = pki["leaf"], pki["ca"]
    assert isinstance(leaf, x509.Certificate) and isinstance(ca, x509.Certificate)
    assert crypto.subject_der(leaf) == _name("gw").public_bytes()
    assert crypto.subject_der(leaf).startswith(b"\x30")
    names = crypto.subject_alt_names(leaf)
    assert names.ip_addresses == (bytes([10, 99, 0, 2]), ipaddress.ip_address("2001:db8::2").packed)
    assert names.dns_names == ("gw.example.net",)
    assert names.emails == ("vpn@example.net",)
    assert crypto.subject_alt_names(ca) == crypto.SubjectAltNames()
    assert (
        crypto.certificate_public_key(leaf).public_numbers()
        == rsa_key.public_key().public_numbers()
    )


def test_verify_certificate_chain(pki: dict[str, object]) -> None:
    leaf, ca, impostor, expired = pki["leaf"], pki["ca"], pki["impostor_ca"], pki["expired"]
    assert isinstance(leaf, x509.Certificate) and isinstance(ca, x509.Certificate)
    assert isinstance(impostor, x509.Certificate) and isinstance(expired, x509.Certificate)
    assert crypto.verify_certificate_chain(leaf, [impostor, ca], at=NOW) == ca
    with pytest.raises(CryptoError) as excinfo:
        crypto.verify_certificate_chain(leaf, [impostor], at=NOW)
    assert excinfo.value.notify_type == crypto.INVALID_CERTIFICATE
    with pytest.raises(CryptoError) as excinfo:
        crypto.verify_certificate_chain(leaf, [], at=NOW)
    assert excinfo.value.notify_type == crypto.INVALID_CERT_AUTHORITY
    with pytest.raises(CryptoError, match="not valid"):
        crypto.verify_certificate_chain(expired, [ca], at=NOW)
    with pytest.raises(CryptoError, match="not valid"):
        crypto.verify_certificate_chain(leaf, [ca], at=NOW + datetime.timedelta(days=400))
