"""Every cryptographic primitive ipsecgw uses, behind one small interface.

This is the only module that imports `cryptography` or `gmpy2` (docs/INTERNALS.md
section 2). Algorithms are named by short strings so that the rest of the engine
never touches library objects:

- hash / prf names: "md5", "sha1", "sha256", "sha384", "sha512" (IKEv1 negotiates a
  hash algorithm and uses its HMAC as the prf, RFC 2409 section 4);
- cipher names: "des", "3des", "aes128", "aes192", "aes256", all in CBC mode.

Every failure that a peer can provoke (a bad public value, a malformed ciphertext,
an unparsable certificate) raises `CryptoError` (errors.py), whose `notify_type` is
the RFC 2408 section 3.14.1 Notify message type the exchange should answer with.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import gmpy2
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo
from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, algorithms, modes

from .errors import CryptoError

try:  # cryptography >= 43 keeps 3DES among the "decrepit" algorithms
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import (  # type: ignore[attr-defined,no-redef,unused-ignore]
        TripleDES,
    )

Rng = Callable[[int], bytes]

# RFC 2408 section 3.14.1 Notify message types used by this module.
INVALID_KEY_INFORMATION = 17
PAYLOAD_MALFORMED = 16
ATTRIBUTES_NOT_SUPPORTED = 13
INVALID_CERT_ENCODING = 19
INVALID_CERTIFICATE = 20
INVALID_CERT_AUTHORITY = 22


# --- hashes and prf ------------------------------------------------------------

_HASHES: dict[str, Callable[..., hashlib._Hash]] = {
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}


def _hash_constructor(name: str) -> Callable[..., hashlib._Hash]:
    try:
        return _HASHES[name]
    except KeyError:
        raise CryptoError(
            f"unsupported hash algorithm {name!r}", ATTRIBUTES_NOT_SUPPORTED
        ) from None


def prf(name: str, key: bytes, data: bytes) -> bytes:
    """HMAC with hash `name`: the IKEv1 prf when none is negotiated (RFC 2409 section 4)."""
    return hmac.new(key, data, _hash_constructor(name)).digest()


def hash_digest(name: str, data: bytes) -> bytes:
    """The plain hash of `data`, as used for the phase 1 and per-message IVs."""
    return _hash_constructor(name)(data).digest()


def digest_size(name: str) -> int:
    return int(_hash_constructor(name)().digest_size)


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


# --- block ciphers -------------------------------------------------------------

# name -> (key size, block size); sizes in bytes.
_CIPHERS: dict[str, tuple[int, int]] = {
    "des": (8, 8),
    "3des": (24, 8),
    "aes128": (16, 16),
    "aes192": (24, 16),
    "aes256": (32, 16),
}


def _cipher_sizes(cipher: str) -> tuple[int, int]:
    try:
        return _CIPHERS[cipher]
    except KeyError:
        raise CryptoError(f"unsupported cipher {cipher!r}", ATTRIBUTES_NOT_SUPPORTED) from None


def cipher_key_size(cipher: str) -> int:
    return _cipher_sizes(cipher)[0]


def cipher_block_size(cipher: str) -> int:
    return _cipher_sizes(cipher)[1]


def _algorithm(cipher: str, key: bytes) -> CipherAlgorithm:
    key_size, _ = _cipher_sizes(cipher)
    if len(key) != key_size:
        raise CryptoError(f"{cipher} needs a {key_size}-byte key, got {len(key)} bytes")
    if cipher == "des":
        # Single DES is 3DES-EDE with three equal keys: E(k) D(k) E(k) = E(k).
        return TripleDES(key * 3)
    if cipher == "3des":
        return TripleDES(key)
    return algorithms.AES(key)


def _check_cbc_input(cipher: str, iv: bytes, data: bytes) -> None:
    block_size = cipher_block_size(cipher)
    if len(iv) != block_size:
        raise CryptoError(f"{cipher} needs a {block_size}-byte IV, got {len(iv)} bytes")
    if len(data) % block_size:
        raise CryptoError(
            f"{cipher} CBC input of {len(data)} bytes is not a multiple of the "
            f"{block_size}-byte block",
            PAYLOAD_MALFORMED,
        )


def cbc_encrypt(cipher: str, key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """CBC-encrypt `plaintext`, which must already be a whole number of blocks."""
    _check_cbc_input(cipher, iv, plaintext)
    encryptor = Cipher(_algorithm(cipher, key), modes.CBC(iv)).encryptor()
    return encryptor.update(plaintext) + encryptor.finalize()


def cbc_decrypt(cipher: str, key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    _check_cbc_input(cipher, iv, ciphertext)
    decryptor = Cipher(_algorithm(cipher, key), modes.CBC(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


# DES weak and semi-weak keys (NIST SP 800-67 section 3.3.2), parity bits cleared.
_DES_WEAK_KEYS = frozenset(
    bytes(b & 0xFE for b in bytes.fromhex(k))
    for k in (
        "0101010101010101", "fefefefefefefefe", "e0e0e0e0f1f1f1f1", "1f1f1f1f0e0e0e0e",
        "011f011f010e010e", "1f011f010e010e01", "01e001e001f101f1", "e001e001f101f101",
        "01fe01fe01fe01fe", "fe01fe01fe01fe01", "1fe01fe00ef10ef1", "e01fe01ff10ef10e",
        "1ffe1ffe0efe0efe", "fe1ffe1ffe0efe0e", "e0fee0fef1fef1fe", "fee0fee0fef1fef1",
    )
)  # fmt: skip


def is_weak_des_key(key: bytes) -> bool:
    """True for the 4 weak and 12 semi-weak DES keys (RFC 2405 section 5, RFC 2409 App. A)."""
    return len(key) == 8 and bytes(b & 0xFE for b in key) in _DES_WEAK_KEYS


def check_3des_key(key: bytes) -> None:
    """RFC 2451 section 2.3: reject keys where k1 == k2 or k2 == k3 (they reduce to DES)."""
    k1, k2, k3 = key[0:8], key[8:16], key[16:24]
    if k1 == k2 or k2 == k3:
        raise CryptoError("3DES key degenerates to single DES (k1 == k2 or k2 == k3)")


# --- Diffie-Hellman --------------------------------------------------------------

# RFC 2409 6.1/6.2 and RFC 3526 define each MODP prime as
# p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * pi) + k); generator 2.
# group -> (n, k, private exponent bits). The exponent is at least twice the group's
# security strength (NIST SP 800-57), which keeps DH fast without weakening it.
_MODP: dict[int, tuple[int, int, int]] = {
    1: (768, 149686, 160),
    2: (1024, 129093, 160),
    5: (1536, 741804, 192),
    14: (2048, 124476, 256),
    15: (3072, 1690314, 384),
    16: (4096, 240904, 512),
}


def _modp_prime(bits: int, offset: int) -> int:
    with gmpy2.context(precision=bits + 64):
        pi_part = int(gmpy2.floor(gmpy2.mul_2exp(gmpy2.const_pi(), bits - 130)))
    return int(2**bits - 2 ** (bits - 64) - 1 + 2**64 * (pi_part + offset))


@dataclass(frozen=True)
class DhKeyPair(ABC):
    """One side's ephemeral key: `public_value` is what goes in the KE payload."""

    group: DhGroup
    public_value: bytes

    @abstractmethod
    def shared_secret(self, peer_public: bytes) -> bytes:
        """g^xy for the peer's KE data; raises CryptoError if that value is invalid."""


@dataclass(frozen=True)
class DhGroup(ABC):
    """A Diffie-Hellman group; `public_size` is the exact KE payload data length."""

    number: int
    public_size: int

    @abstractmethod
    def generate(self, rng: Rng = os.urandom) -> DhKeyPair:
        """A fresh key pair whose private part is drawn from `rng`."""


@dataclass(frozen=True)
class ModpKeyPair(DhKeyPair):
    group: ModpGroup
    private_exponent: int = field(repr=False)

    def shared_secret(self, peer_public: bytes) -> bytes:
        peer = self.group.validate_public(peer_public)
        secret = gmpy2.powmod(peer, self.private_exponent, self.group.prime)
        # RFC 2409 section 5: g^xy is used at the full length of the prime.
        return int(secret).to_bytes(self.group.public_size, "big")


@dataclass(frozen=True)
class ModpGroup(DhGroup):
    prime: int = field(repr=False)
    exponent_bits: int
    generator: int = 2

    def validate_public(self, peer_public: bytes) -> int:
        """The peer's value as an integer; CryptoError unless 1 < y < p-1 at full length."""
        if len(peer_public) != self.public_size:
            raise CryptoError(
                f"DH group {self.number} public value must be {self.public_size} bytes, "
                f"got {len(peer_public)}"
            )
        value = int.from_bytes(peer_public, "big")
        if not 1 < value < self.prime - 1:
            raise CryptoError(f"DH group {self.number} public value out of range (1, p-1)")
        return value

    def generate(self, rng: Rng = os.urandom) -> ModpKeyPair:
        exponent = int.from_bytes(rng(self.exponent_bits // 8), "big")
        # Force the top bit so every exponent has the full intended strength.
        exponent |= 1 << (self.exponent_bits - 1)
        public = int(gmpy2.powmod(self.generator, exponent, self.prime))
        return ModpKeyPair(
            group=self,
            public_value=public.to_bytes(self.public_size, "big"),
            private_exponent=exponent,
        )


@dataclass(frozen=True)
class EcpKeyPair(DhKeyPair):
    group: EcpGroup
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)

    def shared_secret(self, peer_public: bytes) -> bytes:
        peer = self.group.validate_public(peer_public)
        # RFC 5903 section 7: the shared secret is the x coordinate only.
        return self.private_key.exchange(ec.ECDH(), peer)


@dataclass(frozen=True)
class EcpGroup(DhGroup):
    curve: ec.EllipticCurve = field(repr=False)
    order: int = field(repr=False)

    def validate_public(self, peer_public: bytes) -> ec.EllipticCurvePublicKey:
        """RFC 5903 section 7: the KE data is x || y; the point must lie on the curve."""
        if len(peer_public) != self.public_size:
            raise CryptoError(
                f"DH group {self.number} public value must be {self.public_size} bytes, "
                f"got {len(peer_public)}"
            )
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(self.curve, b"\x04" + peer_public)
        except ValueError:
            raise CryptoError(f"DH group {self.number} public value is not on the curve") from None

    def generate(self, rng: Rng = os.urandom) -> EcpKeyPair:
        coordinate_size = self.public_size // 2
        # 64 extra random bits make the reduction mod (order - 1) practically unbiased.
        scalar = int.from_bytes(rng(coordinate_size + 8), "big") % (self.order - 1) + 1
        private_key = ec.derive_private_key(scalar, self.curve)
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return EcpKeyPair(group=self, public_value=point[1:], private_key=private_key)


def _build_groups() -> dict[int, DhGroup]:
    groups: dict[int, DhGroup] = {}
    for number, (bits, offset, exponent_bits) in _MODP.items():
        groups[number] = ModpGroup(
            number=number,
            public_size=bits // 8,
            prime=_modp_prime(bits, offset),
            exponent_bits=exponent_bits,
        )
    # RFC 5903 sections 3.1 and 3.2; orders from SEC 2 / FIPS 186-4 D.1.2.
    groups[19] = EcpGroup(
        number=19,
        public_size=64,
        curve=ec.SECP256R1(),
        order=int("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16),
    )
    groups[20] = EcpGroup(
        number=20,
        public_size=96,
        curve=ec.SECP384R1(),
        order=int(
            "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf"
            "581a0db248b0a77aecec196accc52973",
            16,
        ),
    )
    return groups


_GROUPS = _build_groups()
SUPPORTED_DH_GROUPS = tuple(sorted(_GROUPS))


def dh_group(number: int) -> DhGroup:
    try:
        return _GROUPS[number]
    except KeyError:
        raise CryptoError(
            f"unsupported Diffie-Hellman group {number}", ATTRIBUTES_NOT_SUPPORTED
        ) from None


# --- RSA signatures and certificates ----------------------------------------------


def rsa_sign(private_key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """RFC 2409 section 5.1: PKCS#1 v1.5 over the raw HASH_I/HASH_R, without DigestInfo."""
    return private_key.sign(data, padding.PKCS1v15(), NoDigestInfo())


def rsa_verify(public_key: rsa.RSAPublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data, padding.PKCS1v15(), NoDigestInfo())  # type: ignore[arg-type]
    except InvalidSignature:
        return False
    return True


def load_certificate(pem_or_der: bytes) -> x509.Certificate:
    """A certificate from PEM or DER (the CERT payload carries DER, RFC 2408 3.9)."""
    try:
        if pem_or_der.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(pem_or_der)
        return x509.load_der_x509_certificate(pem_or_der)
    except ValueError as exc:
        raise CryptoError(f"cannot parse certificate: {exc}", INVALID_CERT_ENCODING) from None


def load_private_key(pem_or_der: bytes, password: bytes | None = None) -> rsa.RSAPrivateKey:
    try:
        if pem_or_der.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(pem_or_der, password)
        else:
            key = serialization.load_der_private_key(pem_or_der, password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CryptoError(f"cannot load private key: {exc}", INVALID_KEY_INFORMATION) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CryptoError("only RSA private keys are supported", INVALID_KEY_INFORMATION)
    return key


def certificate_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def certificate_public_key(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise CryptoError("certificate does not hold an RSA public key", INVALID_CERTIFICATE)
    return key


def subject_der(cert: x509.Certificate) -> bytes:
    """The subject Name as DER: the data of an ID_DER_ASN1_DN identity (RFC 2407 4.6.2.1)."""
    return cert.subject.public_bytes()


@dataclass(frozen=True)
class SubjectAltNames:
    """subjectAltName entries usable as IKE identities (IPs as packed bytes)."""

    ip_addresses: tuple[bytes, ...] = ()
    dns_names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()


def subject_alt_names(cert: x509.Certificate) -> SubjectAltNames:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return SubjectAltNames()
    return SubjectAltNames(
        ip_addresses=tuple(
            ip.packed
            for ip in san.get_values_for_type(x509.IPAddress)
            if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
        ),
        dns_names=tuple(san.get_values_for_type(x509.DNSName)),
        emails=tuple(san.get_values_for_type(x509.RFC822Name)),
    )


def _check_validity(cert: x509.Certificate, at: datetime.datetime, what: str) -> None:
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise CryptoError(
            f"{what} {cert.subject.rfc4514_string()} is not valid at {at.isoformat()} "
            f"(valid {cert.not_valid_before_utc.isoformat()} .. "
            f"{cert.not_valid_after_utc.isoformat()})",
            INVALID_CERTIFICATE,
        )


def verify_certificate_chain(
    cert: x509.Certificate,
    ca_certs: Sequence[x509.Certificate],
    at: datetime.datetime,
) -> x509.Certificate:
    """Check that a trusted CA in `ca_certs` issued `cert` and both are valid `at`.

    Returns the issuing CA certificate; raises CryptoError otherwise. Every entry of
    `ca_certs` is a trust anchor (an intermediate CA is trusted by listing it).
    `at` is wall-clock time (certificate validity is wall time, not the engine's
    monotonic `now`; the engine adds its `wall_offset`).
    """
    when = at
    _check_validity(cert, when, "certificate")
    issuer_mismatch = True
    for ca in ca_certs:
        if ca.subject != cert.issuer:
            continue
        issuer_mismatch = False
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        _check_validity(ca, when, "CA certificate")
        return ca
    if issuer_mismatch:
        raise CryptoError(
            f"no trusted CA named {cert.issuer.rfc4514_string()}", INVALID_CERT_AUTHORITY
        )
    raise CryptoError(
        f"certificate {cert.subject.rfc4514_string()} has a bad signature from "
        f"{cert.issuer.rfc4514_string()}",
        INVALID_CERTIFICATE,
    )
