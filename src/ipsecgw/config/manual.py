"""Manual IPsec SAs (`tunnel manual ...`): SPIs and keys set by the administrator.

JUNOSe's manual secure interfaces: no IKE; the SPIs and keys of each
direction are configured, the transform set holds exactly one transform,
lifetimes do not apply.  Keys are hexadecimal; this module knows how long
each transform's keys are (the engine's `isakmp.proposals.phase2_suite`
says the same for negotiated SAs, tests/unit/test_manual_sa.py keeps them
equal) so that a wrong key is refused when typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: ESP cipher -> key octets (GCM: key and the 4-octet salt, RFC 4106 8.1).
_CIPHER_KEY = {"null": 0, "des": 8, "3des": 24, "aes128": 16, "aes192": 24, "aes256": 32}
_GCM_KEY = {"aes128": 20, "aes256": 36}
_MAC_KEY = {"md5": 16, "sha": 20, "sha256": 32}
_NAME = re.compile(r"^(?:esp-(?P<cipher>[a-z0-9]+)-hmac-(?P<mac>[a-z0-9]+)"
                   r"|esp-(?P<gcm>aes\d+)-gcm|ah-hmac-(?P<ah>[a-z0-9]+))$")
#: RFC 4303 2.1: SPIs 1-255 are reserved by IANA; 0 is never sent.
MIN_SPI = 256


def key_lengths(transform: str) -> tuple[int, int]:
    """(encryption key octets, authentication key octets) of a CLI transform."""
    match = _NAME.match(transform)
    if match is None:
        raise ValueError(f"unknown transform {transform!r}")
    if match["ah"]:
        return 0, _MAC_KEY[match["ah"]]
    if match["gcm"]:
        return _GCM_KEY[match["gcm"]], 0
    return _CIPHER_KEY[match["cipher"]], _MAC_KEY[match["mac"]]


@dataclass(frozen=True)
class ManualKeys:
    """One direction of a manual SA: its SPI and keys (hexadecimal, lower case)."""

    spi: int
    encryption_key: str = field(default="", repr=False)
    authentication_key: str = field(default="", repr=False)

    def check(self, transform: str) -> str | None:
        """Why these keys do not fit `transform`, or None."""
        encryption, authentication = key_lengths(transform)
        for what, key, octets in (("encryption", self.encryption_key, encryption),
                                  ("authentication", self.authentication_key, authentication)):
            if len(key) != 2 * octets:
                if not octets:
                    return f"{transform} takes no {what} key"
                return (f"{transform} needs a {octets}-byte {what} key ({2 * octets} hex "
                        f"digits), not {len(key) // 2} bytes")
        return None
