"""NETLINK_XFRM messages (linux/xfrm.h): the SAs and policies of the kernel's IPsec.

Only what the `xfrm` data plane needs: add, update, read and delete SAs
(NEWSA, UPDSA, GETSA, DELSA, with their lifetime counters), add and delete
policies (NEWPOLICY, DELPOLICY), and dumps to find what a previous run left.
No library covers these messages (pyroute2 creates XFRM interfaces but not
SAs or policies), so the structures are packed here with `struct`, in the
kernel's x86-64 / aarch64 layout (natural alignment, u64 aligned to 8).

Encoding is pure (`encode_*` return bytes, `decode_*` take them) so that it
is unit-tested without privileges; `XfrmSocket` sends requests and turns a
negative acknowledgement into `XfrmError` carrying the kernel's reason.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import struct
from dataclasses import dataclass

from ipsecgw.dataplane.netlink import NLM_F_ACK, NLM_F_DUMP, NetlinkSocket, attribute, attributes

NETLINK_XFRM = 6

# Message types (XFRM_MSG_BASE = 0x10)
XFRM_MSG_NEWSA = 0x10
XFRM_MSG_DELSA = 0x11
XFRM_MSG_GETSA = 0x12
XFRM_MSG_NEWPOLICY = 0x13
XFRM_MSG_DELPOLICY = 0x14
XFRM_MSG_GETPOLICY = 0x15
XFRM_MSG_UPDPOLICY = 0x19
XFRM_MSG_UPDSA = 0x1A

# Attributes (enum xfrm_attr_type_t)
XFRMA_ALG_AUTH = 1
XFRMA_ALG_CRYPT = 2
XFRMA_ENCAP = 4
XFRMA_TMPL = 5
XFRMA_ALG_AEAD = 18
XFRMA_ALG_AUTH_TRUNC = 20
XFRMA_REPLAY_ESN_VAL = 23
XFRMA_IF_ID = 31

XFRM_MODE_TUNNEL = 1
XFRM_POLICY_IN = 0
XFRM_POLICY_OUT = 1
XFRM_POLICY_FWD = 2
XFRM_POLICY_ALLOW = 0
XFRM_INF = (1 << 64) - 1  # no limit: the engine owns lifetimes and rekeys
UDP_ENCAP_ESPINUDP = 2  # RFC 3948 (linux/udp.h)
IPPROTO_ESP = 50
IPPROTO_AH = 51
PROTOCOLS = {"esp": IPPROTO_ESP, "ah": IPPROTO_AH}

# struct xfrm_selector: daddr, saddr, dport, dport_mask, sport, sport_mask,
# family, prefixlen_d, prefixlen_s, proto, (pad), ifindex, user
_SELECTOR = struct.Struct("=16s16sHHHHHBBB3xiI")
# struct xfrm_id: daddr, spi (network order), proto
_ID = struct.Struct("=16s4sB3x")
_LIFETIME_CFG = struct.Struct("=8Q")
_LIFETIME_CUR = struct.Struct("=4Q")  # bytes, packets, add_time, use_time
_STATS = struct.Struct("=3I")  # replay_window, replay, integrity_failed
# struct xfrm_usersa_info: sel, id, saddr, lft, curlft, stats, seq, reqid,
# family, mode, replay_window, flags, padding to 8
_USERSA_INFO = struct.Struct("=56s24s16s64s32s12sIIHBBB7x")
_USERSA_ID = struct.Struct("=16s4sHB1x")  # daddr, spi, family, proto
# struct xfrm_userpolicy_info: sel, lft, curlft, priority, index, dir,
# action, flags, share, padding to 8
_USERPOLICY_INFO = struct.Struct("=56s64s32sIIBBBB4x")
_USERPOLICY_ID = struct.Struct("=56sIB3x")  # sel, index, dir
# struct xfrm_user_tmpl: id, family, saddr, reqid, mode, share, optional,
# aalgos, ealgos, calgos
_USER_TMPL = struct.Struct("=24sH2x16sIBBBxIII")
_ENCAP_TMPL = struct.Struct("=HHH2x16s")  # type, sport, dport (network order), oa
_ALGO_NAME = 64
# struct xfrm_replay_state_esn: bmp_len (u32 words), oseq, seq, oseq_hi,
# seq_hi, replay_window, then the bitmap
_REPLAY_ESN = struct.Struct("=6I")
assert _SELECTOR.size == 56 and _USERSA_INFO.size == 224 and _USERPOLICY_INFO.size == 168
assert _USER_TMPL.size == 64 and _USERSA_ID.size == 24 and _USERPOLICY_ID.size == 64

# The kernel's names (crypto API) of ipsecgw's transforms, with key and ICV
# sizes in bits: RFC 2410 NULL, 2405 DES, 2451 3DES, 3602 AES-CBC, 4106 GCM.
CRYPT_ALGORITHMS = {
    "null": "ecb(cipher_null)",
    "des": "cbc(des)",
    "3des": "cbc(des3_ede)",
    "aes128": "cbc(aes)",
    "aes192": "cbc(aes)",
    "aes256": "cbc(aes)",
}
AEAD_ALGORITHMS = {"aes128gcm": "rfc4106(gcm(aes))", "aes256gcm": "rfc4106(gcm(aes))"}
AEAD_ICV_BITS = 128
# RFC 2403, 2404, 4868: truncated ICVs; AH uses the same (RFC 4302 with 2404).
AUTH_ALGORITHMS = {
    "hmac-md5-96": ("hmac(md5)", 96),
    "hmac-sha1-96": ("hmac(sha1)", 96),
    "hmac-sha256-128": ("hmac(sha256)", 128),
}


class XfrmError(OSError):
    """The kernel refused a request; `str()` carries its reason."""


# inet_pton, not `ipaddress`: parsing addresses with `ipaddress` was most of
# the CPU of installing a tunnel (the engine hands canonical addresses).
def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _address(text: str) -> bytes:
    return socket.inet_pton(_family(text), text).ljust(16, b"\0")


@functools.lru_cache(maxsize=4096)
def _network(text: str) -> tuple[int, bytes, int]:
    """(family, network address in 16 bytes, prefix length) of "a.b.c.d/len"."""
    network = ipaddress.ip_network(text, strict=False)
    family = socket.AF_INET6 if network.version == 6 else socket.AF_INET
    return family, network.network_address.packed.ljust(16, b"\0"), network.prefixlen


@dataclass(frozen=True)
class Selector:
    """Traffic selector (RFC 4301 4.4.1): source and destination networks."""

    source: str  # "10.98.1.0/24"
    destination: str

    def encode(self) -> bytes:
        _, source, source_length = _network(self.source)
        family, destination, destination_length = _network(self.destination)
        return _SELECTOR.pack(destination, source, 0, 0, 0, 0,
                              family, destination_length, source_length, 0, 0, 0)


@dataclass(frozen=True)
class Algorithm:
    """One XFRMA_ALG_* attribute: the kernel's name, the key, a length in bits
    (ICV truncation for AUTH_TRUNC, ICV for AEAD, unused for CRYPT)."""

    attribute: int
    name: str
    key: bytes
    bits: int = 0

    def encode(self) -> bytes:
        name = self.name.encode().ljust(_ALGO_NAME, b"\0")
        length = struct.pack("=I", len(self.key) * 8)
        if self.attribute == XFRMA_ALG_CRYPT:
            return attribute(self.attribute, name + length + self.key)
        return attribute(self.attribute, name + length + struct.pack("=I", self.bits) + self.key)


def algorithms(encryption: str, encryption_key: bytes, integrity: str | None,
               integrity_key: bytes, protocol: str) -> tuple[Algorithm, ...]:
    """The XFRM algorithm attributes of one direction; ValueError for a
    transform the kernel backend does not map."""
    found: list[Algorithm] = []
    if protocol == "esp":
        if encryption in AEAD_ALGORITHMS:
            if integrity is not None:
                raise ValueError("AES-GCM provides integrity; no separate integrity allowed")
            return (Algorithm(XFRMA_ALG_AEAD, AEAD_ALGORITHMS[encryption], encryption_key,
                              AEAD_ICV_BITS),)
        if encryption not in CRYPT_ALGORITHMS:
            raise ValueError(f"unsupported ESP encryption {encryption!r}")
        found.append(Algorithm(XFRMA_ALG_CRYPT, CRYPT_ALGORITHMS[encryption], encryption_key))
    elif protocol != "ah":
        raise ValueError(f"unsupported IPsec protocol {protocol!r}")
    if integrity is not None:
        if integrity not in AUTH_ALGORITHMS:
            raise ValueError(f"unsupported integrity {integrity!r}")
        name, bits = AUTH_ALGORITHMS[integrity]
        found.append(Algorithm(XFRMA_ALG_AUTH_TRUNC, name, integrity_key, bits))
    elif protocol == "ah":
        raise ValueError("AH needs an integrity algorithm")
    return tuple(found)


@dataclass(frozen=True)
class Encap:
    """RFC 3948 ESP-in-UDP: the ports of the outer UDP header."""

    source_port: int
    destination_port: int

    def encode(self) -> bytes:
        return attribute(XFRMA_ENCAP, _ENCAP_TMPL.pack(
            UDP_ENCAP_ESPINUDP,
            socket.htons(self.source_port),
            socket.htons(self.destination_port),
            bytes(16),
        ))


@dataclass(frozen=True)
class StateSpec:
    """One tunnel-mode SA (one direction) as XFRM_MSG_NEWSA carries it."""

    source: str  # outer addresses
    destination: str
    spi: bytes  # 4 bytes, network order
    protocol: str  # "esp" | "ah"
    algorithms: tuple[Algorithm, ...]
    if_id: int
    reqid: int = 0
    replay_window: int = 0  # packets; 0 on outbound SAs
    encap: Encap | None = None


def encode_state(state: StateSpec) -> bytes:
    """The body of XFRM_MSG_NEWSA / UPDSA."""
    family = _family(state.destination)
    # Windows up to 32 fit the legacy 32-bit bitmap; larger ones need the
    # ESN replay state (as strongSwan sends it), without the ESN flag.
    legacy_window = state.replay_window if state.replay_window <= 32 else 0
    body = _USERSA_INFO.pack(
        # Tunnel mode: the policies hold the selectors, the SA's own is "any".
        _SELECTOR.pack(bytes(16), bytes(16), 0, 0, 0, 0, family, 0, 0, 0, 0, 0),
        _ID.pack(_address(state.destination), state.spi, PROTOCOLS[state.protocol]),
        _address(state.source),
        _LIFETIME_CFG.pack(*(XFRM_INF,) * 4, 0, 0, 0, 0),
        bytes(_LIFETIME_CUR.size),
        bytes(_STATS.size),
        0,
        state.reqid,
        family,
        XFRM_MODE_TUNNEL,
        legacy_window,
        0,
    )
    for algorithm in state.algorithms:
        body += algorithm.encode()
    if state.encap is not None:
        body += state.encap.encode()
    if state.replay_window > 32:
        words = (state.replay_window + 31) // 32
        body += attribute(
            XFRMA_REPLAY_ESN_VAL,
            _REPLAY_ESN.pack(words, 0, 0, 0, 0, state.replay_window) + bytes(4 * words),
        )
    body += attribute(XFRMA_IF_ID, struct.pack("=I", state.if_id))
    return body


def encode_state_id(destination: str, spi: bytes, protocol: str) -> bytes:
    """The body of XFRM_MSG_DELSA / GETSA."""
    family = _family(destination)
    return _USERSA_ID.pack(_address(destination), spi, family, PROTOCOLS[protocol])


@dataclass(frozen=True)
class StateInfo:
    """What GETSA (or a dump) tells about one SA."""

    destination: str
    spi: bytes
    protocol: int
    bytes: int
    packets: int
    add_time: int
    replay: int
    integrity_failed: int
    if_id: int


def decode_state(body: bytes) -> StateInfo:
    (_, id_, _, _, current, stats, _, _, family, _, _, _) = _USERSA_INFO.unpack_from(body)
    daddr, spi, proto = _ID.unpack(id_)
    size = 4 if family == socket.AF_INET else 16
    destination = socket.inet_ntop(family, daddr[:size])
    count_bytes, packets, add_time, _ = _LIFETIME_CUR.unpack(current)
    _, replay, integrity_failed = _STATS.unpack(stats)
    if_id = 0
    for kind, value in attributes(body[_USERSA_INFO.size :]):
        if kind == XFRMA_IF_ID and len(value) >= 4:
            if_id = struct.unpack_from("=I", value)[0]
    return StateInfo(
        destination, spi, proto, count_bytes, packets, add_time,
        replay, integrity_failed, if_id,
    )


@dataclass(frozen=True)
class PolicySpec:
    """One policy bound to an XFRM interface's if_id, with its one template."""

    selector: Selector
    direction: int  # XFRM_POLICY_IN / OUT / FWD
    source: str  # the template's outer addresses (the tunnel's ends)
    destination: str
    protocol: str
    if_id: int
    reqid: int = 0
    priority: int = 0


def encode_policy(policy: PolicySpec) -> bytes:
    """The body of XFRM_MSG_NEWPOLICY."""
    family = _family(policy.destination)
    body = _USERPOLICY_INFO.pack(
        policy.selector.encode(),
        _LIFETIME_CFG.pack(*(XFRM_INF,) * 4, 0, 0, 0, 0),
        bytes(_LIFETIME_CUR.size),
        policy.priority, 0, policy.direction, XFRM_POLICY_ALLOW, 0, 0,
    )
    template = _USER_TMPL.pack(
        _ID.pack(_address(policy.destination), bytes(4), PROTOCOLS[policy.protocol]),
        family,
        _address(policy.source),
        policy.reqid,
        XFRM_MODE_TUNNEL,
        0, 0,
        0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF,  # any algorithm: the SA fixes them
    )
    body += attribute(XFRMA_TMPL, template)
    body += attribute(XFRMA_IF_ID, struct.pack("=I", policy.if_id))
    return body


def encode_policy_id(selector: bytes, direction: int, if_id: int) -> bytes:
    """The body of XFRM_MSG_DELPOLICY (by encoded selector, direction and if_id)."""
    return _USERPOLICY_ID.pack(selector, 0, direction) + attribute(
        XFRMA_IF_ID, struct.pack("=I", if_id)
    )


@dataclass(frozen=True)
class PolicyInfo:
    """A dumped policy: enough to delete it again."""

    selector_bytes: bytes
    direction: int
    if_id: int


def decode_policy(body: bytes) -> PolicyInfo:
    selector, _, _, _, _, direction, _, _, _ = _USERPOLICY_INFO.unpack_from(body)
    if_id = 0
    for kind, value in attributes(body[_USERPOLICY_INFO.size :]):
        if kind == XFRMA_IF_ID and len(value) >= 4:
            if_id = struct.unpack_from("=I", value)[0]
    return PolicyInfo(selector, direction, if_id)


class XfrmSocket:
    """A NETLINK_XFRM socket in the network namespace current when created.

    Requests are answered synchronously within microseconds, so they are
    made from the event loop (as `rtnl.Rtnl` does for links and routes).
    """

    def __init__(self) -> None:
        self._netlink = NetlinkSocket(NETLINK_XFRM, XfrmError)

    def close(self) -> None:
        self._netlink.close()

    def request(self, kind: int, body: bytes, *, dump: bool = False) -> list[bytes]:
        """Send one request; the answers' bodies; XfrmError on a NACK."""
        return [payload for _, payload in
                self._netlink.request(kind, NLM_F_DUMP if dump else NLM_F_ACK, body)]

    def batch(self, requests: list[tuple[int, bytes]]) -> list[OSError | None]:
        """Several requests in one datagram (`NetlinkSocket.batch`): installing
        a tunnel's SAs and policies is dominated by the round trips."""
        return self._netlink.batch(requests)

    def add_state(self, state: StateSpec, *, update: bool = False) -> None:
        self.request(XFRM_MSG_UPDSA if update else XFRM_MSG_NEWSA, encode_state(state))

    def delete_state(self, destination: str, spi: bytes, protocol: str) -> None:
        self.request(XFRM_MSG_DELSA, encode_state_id(destination, spi, protocol))

    def get_state(self, destination: str, spi: bytes, protocol: str) -> StateInfo:
        (body,) = self.request(XFRM_MSG_GETSA, encode_state_id(destination, spi, protocol))
        return decode_state(body)

    def states(self) -> list[StateInfo]:
        return [decode_state(body) for body in self.request(XFRM_MSG_GETSA, b"", dump=True)]

    def add_policy(self, policy: PolicySpec, *, update: bool = False) -> None:
        """NEWPOLICY, or UPDPOLICY (add or replace) with `update`."""
        self.request(XFRM_MSG_UPDPOLICY if update else XFRM_MSG_NEWPOLICY,
                     encode_policy(policy))

    def delete_policy(self, selector: Selector, direction: int, if_id: int) -> None:
        self.request(XFRM_MSG_DELPOLICY, encode_policy_id(selector.encode(), direction, if_id))

    def policies(self) -> list[PolicyInfo]:
        return [decode_policy(body)
                for body in self.request(XFRM_MSG_GETPOLICY, b"", dump=True)]

    def delete_dumped_policy(self, policy: PolicyInfo) -> None:
        self.request(XFRM_MSG_DELPOLICY,
                     encode_policy_id(policy.selector_bytes, policy.direction, policy.if_id))
