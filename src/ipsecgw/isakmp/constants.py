"""ISAKMP/IKEv1 code points (RFC 2407, 2408, 2409, 3947, 3706).

Names follow the RFCs' own spelling with dashes turned into underscores, so
`NotifyType.INVALID_COOKIE` is RFC 2408's INVALID-COOKIE.  The codec keeps
decoded values as plain ints (a peer may send a value that has no name here);
these enums compare equal to those ints.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

#: RFC 2408 3.1: the fixed ISAKMP header is 28 octets.
HEADER_LENGTH = 28
#: RFC 2408 3.2: every payload starts with a 4-octet generic header.
GENERIC_HEADER_LENGTH = 4
#: RFC 3947 4: on UDP 4500 an IKE message is prefixed with four zero octets.
NON_ESP_MARKER = b"\x00\x00\x00\x00"
IKE_PORT = 500
NAT_T_PORT = 4500


class ExchangeType(IntEnum):
    """RFC 2408 3.1 exchange types; 32 and 33 are RFC 2409's DOI exchanges."""

    BASE = 1
    IDENTITY_PROTECTION = 2
    AUTHENTICATION_ONLY = 3
    AGGRESSIVE = 4
    INFORMATIONAL = 5
    #: draft-dukes-ike-mode-cfg-02 3.1 (ISAKMP_CFG exchanges): XAUTH and Mode Config.
    TRANSACTION = 6
    QUICK_MODE = 32
    NEW_GROUP_MODE = 33


class PayloadType(IntEnum):
    """RFC 2408 3.1 next-payload values, RFC 3947 NAT-D/NAT-OA and their drafts."""

    NONE = 0
    SA = 1
    PROPOSAL = 2
    TRANSFORM = 3
    KE = 4
    ID = 5
    CERT = 6
    CR = 7
    HASH = 8
    SIG = 9
    NONCE = 10
    NOTIFICATION = 11
    DELETE = 12
    VENDOR_ID = 13
    #: draft-dukes-ike-mode-cfg-02 3.2: the Attribute payload of a Transaction exchange.
    ATTRIBUTE = 14
    NAT_D = 20
    NAT_OA = 21
    # draft-ietf-ipsec-nat-t-ike-02/03 used private-use numbers before RFC 3947.
    NAT_D_DRAFT = 130
    NAT_OA_DRAFT = 131


class Flags(IntFlag):
    """RFC 2408 3.1 header flags."""

    ENCRYPTION = 1
    COMMIT = 2
    AUTHENTICATION_ONLY = 4


class NotifyType(IntEnum):
    """RFC 2408 3.14.1 errors, RFC 2407 4.6.3 status types, RFC 3706 DPD."""

    INVALID_PAYLOAD_TYPE = 1
    DOI_NOT_SUPPORTED = 2
    SITUATION_NOT_SUPPORTED = 3
    INVALID_COOKIE = 4
    INVALID_MAJOR_VERSION = 5
    INVALID_MINOR_VERSION = 6
    INVALID_EXCHANGE_TYPE = 7
    INVALID_FLAGS = 8
    INVALID_MESSAGE_ID = 9
    INVALID_PROTOCOL_ID = 10
    INVALID_SPI = 11
    INVALID_TRANSFORM_ID = 12
    ATTRIBUTES_NOT_SUPPORTED = 13
    NO_PROPOSAL_CHOSEN = 14
    BAD_PROPOSAL_SYNTAX = 15
    PAYLOAD_MALFORMED = 16
    INVALID_KEY_INFORMATION = 17
    INVALID_ID_INFORMATION = 18
    INVALID_CERT_ENCODING = 19
    INVALID_CERTIFICATE = 20
    CERT_TYPE_UNSUPPORTED = 21
    INVALID_CERT_AUTHORITY = 22
    INVALID_HASH_INFORMATION = 23
    AUTHENTICATION_FAILED = 24
    INVALID_SIGNATURE = 25
    ADDRESS_NOTIFICATION = 26
    NOTIFY_SA_LIFETIME = 27
    CERTIFICATE_UNAVAILABLE = 28
    UNSUPPORTED_EXCHANGE_TYPE = 29
    UNEQUAL_PAYLOAD_LENGTHS = 30
    CONNECTED = 16384
    RESPONDER_LIFETIME = 24576
    REPLAY_STATUS = 24577
    INITIAL_CONTACT = 24578
    R_U_THERE = 36136
    R_U_THERE_ACK = 36137


class ProtocolId(IntEnum):
    """RFC 2407 4.4.1 security protocol identifiers."""

    ISAKMP = 1
    IPSEC_AH = 2
    IPSEC_ESP = 3
    IPCOMP = 4


class Doi(IntEnum):
    """RFC 2408 3.4 / RFC 2407 4.2 domains of interpretation."""

    ISAKMP = 0
    IPSEC = 1


class Situation(IntFlag):
    """RFC 2407 4.6.1 IPsec DOI situation bitmap."""

    IDENTITY_ONLY = 1
    SECRECY = 2
    INTEGRITY = 4


class IkeAttribute(IntEnum):
    """RFC 2409 Appendix A phase 1 attribute classes."""

    ENCRYPTION_ALGORITHM = 1
    HASH_ALGORITHM = 2
    AUTHENTICATION_METHOD = 3
    GROUP_DESCRIPTION = 4
    GROUP_TYPE = 5
    GROUP_PRIME = 6
    GROUP_GENERATOR_ONE = 7
    GROUP_GENERATOR_TWO = 8
    GROUP_CURVE_A = 9
    GROUP_CURVE_B = 10
    LIFE_TYPE = 11
    LIFE_DURATION = 12
    PRF = 13
    KEY_LENGTH = 14
    FIELD_SIZE = 15
    GROUP_ORDER = 16


class IpsecAttribute(IntEnum):
    """RFC 2407 4.5 phase 2 SA attributes."""

    SA_LIFE_TYPE = 1
    SA_LIFE_DURATION = 2
    GROUP_DESCRIPTION = 3
    ENCAPSULATION_MODE = 4
    AUTHENTICATION_ALGORITHM = 5
    KEY_LENGTH = 6
    KEY_ROUNDS = 7
    COMPRESS_DICTIONARY_SIZE = 8
    COMPRESS_PRIVATE_ALGORITHM = 9


class IkeEncryption(IntEnum):
    """RFC 2409 Appendix A encryption algorithms; AES from RFC 3602."""

    DES_CBC = 1
    IDEA_CBC = 2
    BLOWFISH_CBC = 3
    RC5 = 4
    TRIPLE_DES_CBC = 5
    CAST_CBC = 6
    AES_CBC = 7


class IkeHash(IntEnum):
    """RFC 2409 Appendix A hash algorithms; SHA-2 from RFC 4868."""

    MD5 = 1
    SHA = 2
    TIGER = 3
    SHA2_256 = 4
    SHA2_384 = 5
    SHA2_512 = 6


class AuthMethod(IntEnum):
    """RFC 2409 Appendix A authentication methods."""

    PRE_SHARED_KEY = 1
    DSS_SIGNATURES = 2
    RSA_SIGNATURES = 3
    RSA_ENCRYPTION = 4
    REVISED_RSA_ENCRYPTION = 5
    # draft-beaulieu-ike-xauth-02 7.2: a method "with XAUTH" (vpnc and strongSwan
    # propose XAUTHInitPreShared for a group key plus XAUTH).
    XAUTH_INIT_PRESHARED = 65001
    XAUTH_RESP_PRESHARED = 65002
    XAUTH_INIT_RSA = 65005
    XAUTH_RESP_RSA = 65006


class GroupDescription(IntEnum):
    """RFC 2409 6 / RFC 3526 / RFC 5903 Diffie-Hellman group numbers."""

    MODP_768 = 1
    MODP_1024 = 2
    EC2N_155 = 3
    EC2N_185 = 4
    MODP_1536 = 5
    MODP_2048 = 14
    MODP_3072 = 15
    MODP_4096 = 16
    MODP_6144 = 17
    MODP_8192 = 18
    ECP_256 = 19
    ECP_384 = 20
    ECP_521 = 21


class LifeType(IntEnum):
    """RFC 2409 Appendix A / RFC 2407 4.5 life types."""

    SECONDS = 1
    KILOBYTES = 2


class IsakmpTransform(IntEnum):
    """RFC 2407 4.4.2 transform identifiers for PROTO_ISAKMP."""

    KEY_IKE = 1


class AhTransform(IntEnum):
    """RFC 2407 4.4.3 AH transform identifiers; SHA-2 from RFC 4868."""

    MD5 = 2
    SHA = 3
    DES = 4
    SHA2_256 = 5
    SHA2_384 = 6
    SHA2_512 = 7


class EspTransform(IntEnum):
    """RFC 2407 4.4.4 ESP transform identifiers; AES from RFC 3602/4106."""

    DES_IV64 = 1
    DES = 2
    TRIPLE_DES = 3
    RC5 = 4
    IDEA = 5
    CAST = 6
    BLOWFISH = 7
    THREE_IDEA = 8
    DES_IV32 = 9
    RC4 = 10
    NULL = 11
    AES_CBC = 12
    AES_CTR = 13
    AES_CCM_8 = 14
    AES_CCM_12 = 15
    AES_CCM_16 = 16
    AES_GCM_8 = 18
    AES_GCM_12 = 19
    AES_GCM_16 = 20


class IpcompTransform(IntEnum):
    """RFC 2407 4.4.5 IPCOMP transform identifiers."""

    OUI = 1
    DEFLATE = 2
    LZS = 3


class IpsecAuthAlgorithm(IntEnum):
    """RFC 2407 4.5 authentication algorithm attribute values; SHA-2 from RFC 4868."""

    HMAC_MD5 = 1
    HMAC_SHA = 2
    DES_MAC = 3
    KPDK = 4
    HMAC_SHA2_256 = 5
    HMAC_SHA2_384 = 6
    HMAC_SHA2_512 = 7


class EncapsulationMode(IntEnum):
    """RFC 2407 4.5 modes; RFC 3947 5.2 UDP modes and the draft's private values."""

    TUNNEL = 1
    TRANSPORT = 2
    UDP_TUNNEL = 3
    UDP_TRANSPORT = 4
    UDP_TUNNEL_DRAFT = 61443
    UDP_TRANSPORT_DRAFT = 61444


class IdType(IntEnum):
    """RFC 2407 4.6.2.1 identification types."""

    IPV4_ADDR = 1
    FQDN = 2
    USER_FQDN = 3
    IPV4_ADDR_SUBNET = 4
    IPV6_ADDR = 5
    IPV6_ADDR_SUBNET = 6
    IPV4_ADDR_RANGE = 7
    IPV6_ADDR_RANGE = 8
    DER_ASN1_DN = 9
    DER_ASN1_GN = 10
    KEY_ID = 11


class CertEncoding(IntEnum):
    """RFC 2408 3.9 certificate encodings."""

    NONE = 0
    PKCS7 = 1
    PGP = 2
    DNS_SIGNED_KEY = 3
    X509_SIGNATURE = 4
    X509_KEY_EXCHANGE = 5
    KERBEROS_TOKENS = 6
    CRL = 7
    ARL = 8
    SPKI = 9
    X509_ATTRIBUTE = 10


# Vendor IDs.  RFC 3947 5: the NAT-T vendor ID is MD5("RFC 3947"); the
# drafts' IDs are MD5 of the draft name ("-02\n" really has a newline, and
# is what older peers send).  RFC 3706 7: DPD is a fixed 16-octet value
# whose last two octets are the major/minor version 1.0.
VENDOR_ID_NAT_T_RFC3947 = bytes.fromhex("4a131c81070358455c5728f20e95452f")
VENDOR_ID_NAT_T_DRAFT_02_N = bytes.fromhex("90cb80913ebb696e086381b5ec427b1f")
VENDOR_ID_NAT_T_DRAFT_02 = bytes.fromhex("cd60464335df21f87cfdb2fc68b6a448")
VENDOR_ID_NAT_T_DRAFT_03 = bytes.fromhex("7d9419a65310ca6f2c179d9215529d56")
VENDOR_ID_DPD = bytes.fromhex("afcad71368a1f1c96b8696fc77570100")


class CfgType(IntEnum):
    """draft-dukes-ike-mode-cfg-02 3.2: the Attribute payload's message type."""

    REQUEST = 1
    REPLY = 2
    SET = 3
    ACK = 4


class ConfigAttribute(IntEnum):
    """Attributes of an Attribute payload.

    1-15: draft-dukes-ike-mode-cfg-02 3.3 (Mode Config); 16520-16529:
    draft-beaulieu-ike-xauth-02 6 (XAUTH); 28672-28682: Cisco Unity, as
    vpnc and strongSwan's unity plugin name them (no public specification).
    """

    INTERNAL_IP4_ADDRESS = 1
    INTERNAL_IP4_NETMASK = 2
    INTERNAL_IP4_DNS = 3
    INTERNAL_IP4_NBNS = 4
    INTERNAL_ADDRESS_EXPIRY = 5
    INTERNAL_IP4_DHCP = 6
    APPLICATION_VERSION = 7
    INTERNAL_IP6_ADDRESS = 8
    INTERNAL_IP6_NETMASK = 9
    INTERNAL_IP6_DNS = 10
    INTERNAL_IP6_NBNS = 11
    INTERNAL_IP6_DHCP = 12
    INTERNAL_IP4_SUBNET = 13
    SUPPORTED_ATTRIBUTES = 14
    INTERNAL_IP6_SUBNET = 15
    XAUTH_TYPE = 16520
    XAUTH_USER_NAME = 16521
    XAUTH_USER_PASSWORD = 16522
    XAUTH_PASSCODE = 16523
    XAUTH_MESSAGE = 16524
    XAUTH_CHALLENGE = 16525
    XAUTH_DOMAIN = 16526
    XAUTH_STATUS = 16527
    XAUTH_NEXT_PIN = 16528
    XAUTH_ANSWER = 16529
    UNITY_BANNER = 28672
    UNITY_SAVE_PASSWD = 28673
    UNITY_DEF_DOMAIN = 28674
    UNITY_SPLIT_DNS = 28675
    UNITY_SPLIT_INCLUDE = 28676
    UNITY_NATT_PORT = 28677
    UNITY_LOCAL_LAN = 28678
    UNITY_PFS = 28679
    UNITY_FW_TYPE = 28680
    UNITY_BACKUP_SERVERS = 28681
    UNITY_DDNS_HOSTNAME = 28682


class XauthType(IntEnum):
    """draft-beaulieu-ike-xauth-02 6.2: XAUTH-TYPE values."""

    GENERIC = 0
    RADIUS_CHAP = 1
    OTP = 2
    S_KEY = 3


# draft-beaulieu-ike-xauth-02 / Cisco: vendor IDs a remote-access client sends.
# XAUTH: the first 8 octets of MD5("draft-ietf-ipsra-isakmp-xauth-06.txt");
# Cisco Unity: MD5("CISCO-UNITY") with its last two octets the version 1.0.
VENDOR_ID_XAUTH = bytes.fromhex("09002689dfd6b712")
VENDOR_ID_UNITY = bytes.fromhex("12f5f28c457168a9702d9fe274cc0100")
