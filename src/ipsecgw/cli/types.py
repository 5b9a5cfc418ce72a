"""Argument types of the command grammar: what a word may be, and why not.

Each type parses one word into a value (str or int) or raises `ArgError`
with a message that names what was expected; the message ends up under the
'^' marker. `placeholder` is what `?` shows for the argument (IOS style:
A.B.C.D, <1-10>, WORD) and `candidates` feeds Tab completion with names
that already exist (tunnels, transform sets, virtual routers).
"""

from __future__ import annotations

import ipaddress
import re

from ..config.masking import unmask_secret
from ..config.model import DEFAULT_VR, MAX_DESCRIPTION, TUNNEL_PREFIX, RunningConfig

Value = str | int

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_LABEL_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\Z")


class ArgError(ValueError):
    """A word is not a valid value; str(self) says what was expected."""


class ArgType:
    placeholder = "WORD"
    help = "A word"
    secret = False  # never echoed or logged (see cli.redact)

    def parse(self, text: str) -> Value:
        raise NotImplementedError

    def candidates(self, config: RunningConfig) -> list[str]:
        """Existing values worth offering on Tab (none by default)."""
        return []

    def claims(self, text: str) -> bool:
        """Whether a word that failed to parse was meant as this type (for the error)."""
        return True


def _numeric(text: str) -> bool:
    return all(c.isdigit() or c in "./" for c in text)


class IntRange(ArgType):
    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.placeholder = f"<{low}-{high}>"
        self.help = f"A number from {low} to {high}"

    def parse(self, text: str) -> Value:
        if not text.isdecimal() or not text.isascii():
            raise ArgError(f"Expected a number {self.placeholder}")
        value = int(text)
        if not self.low <= value <= self.high:
            raise ArgError(f"Value out of range: {self.placeholder}")
        return value


def parse_ipv4(text: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError as exc:
        raise ArgError(f'Invalid IPv4 address "{text}"') from exc


class Ipv4Address(ArgType):
    placeholder = "A.B.C.D"
    help = "IPv4 address"

    def claims(self, text: str) -> bool:
        return _numeric(text) and "/" not in text  # A.B.C.D/M is a prefix's

    def parse(self, text: str) -> Value:
        return str(parse_ipv4(text))


class Ipv4Prefix(ArgType):
    """A network; host bits are cleared (10.1.2.3/24 is 10.1.2.0/24)."""

    placeholder = "A.B.C.D/M"
    help = "IPv4 prefix"

    def parse(self, text: str) -> Value:
        address, slash, length = text.partition("/")
        parse_ipv4(address)
        if slash and length.isdecimal() and int(length) > 32:
            raise ArgError(f"Prefix length {int(length)} is over 32 (expected A.B.C.D/M)")
        if not slash or not length.isdecimal():
            raise ArgError(f'Invalid prefix "{text}" (expected A.B.C.D/M, M 0-32)')
        return str(ipaddress.IPv4Network(f"{address}/{int(length)}", strict=False))


class InterfaceAddress(ArgType):
    """An address with its prefix length, host bits kept (ip address 10.0.0.1/30)."""

    placeholder = "A.B.C.D/M"
    help = "IPv4 address and prefix length"

    def parse(self, text: str) -> Value:
        address, slash, length = text.partition("/")
        parse_ipv4(address)
        if slash and length.isdecimal() and int(length) > 32:
            raise ArgError(f"Prefix length {int(length)} is over 32 (expected A.B.C.D/M)")
        if not slash or not length.isdecimal() or int(length) == 0:
            raise ArgError(f'Invalid address "{text}" (expected A.B.C.D/M, M 1-32)')
        return f"{ipaddress.IPv4Address(address)}/{int(length)}"


class Netmask(ArgType):
    placeholder = "M.M.M.M"
    help = "Network mask"

    def parse(self, text: str) -> Value:
        """The prefix length of a contiguous mask (255.255.255.0 -> 24)."""
        bits = int(parse_ipv4(text))
        length = bin(bits).count("1")
        if bits != (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF:
            raise ArgError(f'Invalid network mask "{text}"')
        return length


def check_fqdn(text: str) -> str:
    labels = text.split(".")
    if (
        len(text) > 253
        or not all(_LABEL_RE.match(label) for label in labels)
        or all(label.isdecimal() for label in labels)
    ):
        raise ArgError(f'Invalid domain name "{text}"')
    return text


class Fqdn(ArgType):
    placeholder = "FQDN"
    help = "Fully qualified domain name"

    def claims(self, text: str) -> bool:
        return not _numeric(text)

    def parse(self, text: str) -> Value:
        return check_fqdn(text)


class UserFqdn(ArgType):
    placeholder = "USER@FQDN"
    help = "User name at a domain name"

    def parse(self, text: str) -> Value:
        user, at, domain = text.rpartition("@")
        if not at or not user or any(c.isspace() or not c.isprintable() for c in user):
            raise ArgError(f'Invalid user@domain "{text}"')
        check_fqdn(domain)
        return text


class Name(ArgType):
    """A name of something configured: letters, digits, '_', '.', '-'."""

    def __init__(self, what: str, max_length: int = 32) -> None:
        self.what, self.max_length = what, max_length
        self.placeholder = "NAME"
        self.help = f"{what[0].upper()}{what[1:]} name"

    def parse(self, text: str) -> Value:
        if not _NAME_RE.match(text):
            raise ArgError(f"Invalid {self.what} name \"{text}\" (letters, digits, '_', '.', '-')")
        if len(text) > self.max_length:
            raise ArgError(f"{self.help} longer than {self.max_length} characters")
        return text


class TransformSetName(Name):
    def __init__(self) -> None:
        super().__init__("transform set")

    def candidates(self, config: RunningConfig) -> list[str]:
        return [ts.name for ts in config.transform_sets]


class VrName(Name):
    def __init__(self) -> None:
        super().__init__("virtual router")

    def candidates(self, config: RunningConfig) -> list[str]:
        names = [vr.name for vr in config.virtual_routers]
        return names if DEFAULT_VR in names else [DEFAULT_VR, *names]


class ProfileName(Name):
    def __init__(self) -> None:
        super().__init__("tunnel profile")

    def candidates(self, config: RunningConfig) -> list[str]:
        return [p.name for p in config.remote_access.profiles]


class PoolName(Name):
    def __init__(self) -> None:
        super().__init__("pool")

    def candidates(self, config: RunningConfig) -> list[str]:
        return [p.name for p in config.remote_access.pools]


class Hostname(ArgType):
    placeholder = "NAME"
    help = "Host name (shown in the prompt)"

    def parse(self, text: str) -> Value:
        if not _NAME_RE.match(text) or len(text) > 63:
            raise ArgError(f'Invalid host name "{text}"')
        return text


class TunnelName(ArgType):
    """`ipsec:NAME`; the value is NAME."""

    placeholder = "ipsec:NAME"
    help = "IPsec tunnel interface"

    def parse(self, text: str) -> Value:
        prefix, name = text[: len(TUNNEL_PREFIX)], text[len(TUNNEL_PREFIX) :]
        if prefix.lower() != TUNNEL_PREFIX:
            raise ArgError(f'Tunnel interfaces are named ipsec:NAME, not "{text}"')
        if not _NAME_RE.match(name):
            raise ArgError(f"Invalid tunnel name \"{name}\" (letters, digits, '_', '.', '-')")
        if len(name) > 32:
            raise ArgError(f"Tunnel name longer than 32 characters ({len(name)})")
        return name

    def candidates(self, config: RunningConfig) -> list[str]:
        return [t.interface_name for t in config.tunnels]


class PeerName(ArgType):
    """The peer of a manual pre-shared key: an address or an identity."""

    placeholder = "PEER"
    help = "Peer address, domain name or user@domain"

    def parse(self, text: str) -> Value:
        if text.replace(".", "").isdecimal():
            return str(parse_ipv4(text))
        if "@" in text:
            return UserFqdn().parse(text)
        return check_fqdn(text)

    def candidates(self, config: RunningConfig) -> list[str]:
        return [key.peer for key in config.pre_shared_keys]


class Text(ArgType):
    """Free text: one word, or a "quoted string" when it has blanks."""

    def __init__(
        self, placeholder: str, help: str, max_length: int, *, secret: bool = False
    ) -> None:
        self.placeholder, self.help, self.max_length = placeholder, help, max_length
        self.secret = secret

    def parse(self, text: str) -> Value:
        if not text:
            raise ArgError("Empty value")
        if len(text) > self.max_length:
            raise ArgError(f"Longer than {self.max_length} characters")
        if not text.isprintable():
            raise ArgError("Only printable characters are allowed")
        return text


class MaskedKey(ArgType):
    """A `masked-key` as `show configuration` prints it; the value is the secret."""

    placeholder = "MASKED"
    help = "Pre-shared key in masked form (as show configuration prints it)"
    secret = True  # reversible: as secret as the key itself

    def parse(self, text: str) -> Value:
        try:
            secret = unmask_secret(text)
        except ValueError as exc:
            raise ArgError(f"Invalid masked key: {exc}") from exc
        if not secret:
            raise ArgError("Invalid masked key: the key is empty")
        return secret


class HexKey(ArgType):
    """A key in hexadecimal (`tunnel manual`), with or without 0x; the value is
    the lower-case hex digits."""

    placeholder = "HEX"
    help = "Key in hexadecimal"
    secret = True

    def parse(self, text: str) -> Value:
        digits = text[2:] if text.lower().startswith("0x") else text
        if not digits or len(digits) % 2 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise ArgError("Expected a key in hexadecimal, an even number of digits")
        if len(digits) > 128:
            raise ArgError("A key is at most 64 bytes (128 hex digits)")
        return digits.lower()


class MaskedHexKey(MaskedKey):
    """A manual SA key in the masked form `show configuration` prints."""

    help = "Key in masked form (as show configuration prints it)"

    def parse(self, text: str) -> Value:
        secret = super().parse(text)
        assert isinstance(secret, str)
        return HexKey().parse(secret)


class Line(ArgType):
    """Any word: the rest of a line, handed on as it was typed."""

    placeholder = "LINE"
    help = "Command"

    def parse(self, text: str) -> Value:
        return text


#: The argument types syntax strings name as <arg:TYPE>.
TYPES: dict[str, ArgType] = {
    "IPV4": Ipv4Address(),
    "PREFIX": Ipv4Prefix(),
    "IFADDR": InterfaceAddress(),
    "NETMASK": Netmask(),
    "FQDN": Fqdn(),
    "USER_FQDN": UserFqdn(),
    "HOSTNAME": Hostname(),
    "TSNAME": TransformSetName(),
    "VRNAME": VrName(),
    "TUNNEL": TunnelName(),
    "PEER": PeerName(),
    "DN": Text("DN", 'Distinguished name, e.g. "C=US, O=Example, CN=gw1"', 512),
    "SECRET": Text("SECRET", "Pre-shared key (quote it if it has blanks)", 256, secret=True),
    "PATH": Text("PATH", "File name (PEM); quote it if it has blanks", 1024),
    "DESCRIPTION": Text("TEXT", "Free text describing the interface", MAX_DESCRIPTION),
    "MASKED": MaskedKey(),
    "HEXKEY": HexKey(),
    "MASKEDHEX": MaskedHexKey(),
    "LINE": Line(),
    # Remote access (issue 16)
    "PROFILE": ProfileName(),
    "POOL": PoolName(),
    "USERNAME": Text("NAME", "User name", 64),
    "PATTERN": Text("PATTERN", "Identity; '*' matches any characters", 255),
    "IDTEXT": Text("NAME", "Identity", 255),
    "PASSWORD": Text("PASSWORD", "Password (quote it if it has blanks)", 128, secret=True),
}
