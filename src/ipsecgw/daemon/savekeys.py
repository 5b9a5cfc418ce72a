"""Wireshark key files, as strongSwan's save-keys plugin writes them.

With ``--save-keys DIR`` the daemon keeps two of Wireshark's "user access
tables" up to date in DIR: ``ikev1_decryption_table`` (initiator cookie ->
phase 1 encryption key) and ``esp_sa`` (one row per ESP SA direction). Point
tshark at them with ``-o uat:ikev1_decryption_table:...`` or by copying them
into a Wireshark profile. Entries stay after their SAs are gone (up to
MAX_ENTRIES of each kind), as with strongSwan's save-keys, so that a capture
can be decrypted afterwards. The files hold keys: they are written mode 0600
and the option is meant for debugging only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Wireshark's names for the algorithms (epan/dissectors/packet-ipsec.c).
_ESP_ENCRYPTION = {
    "null": "NULL",
    "des": "DES-CBC [RFC2405]",
    "3des": "TripleDES-CBC [RFC2451]",
    "aes128": "AES-CBC [RFC3602]",
    "aes192": "AES-CBC [RFC3602]",
    "aes256": "AES-CBC [RFC3602]",
    "aes128gcm": "AES-GCM with 16 octet ICV [RFC4106]",
    "aes256gcm": "AES-GCM with 16 octet ICV [RFC4106]",
}
_ESP_INTEGRITY = {
    None: "NULL",
    "hmac-md5-96": "HMAC-MD5-96 [RFC2403]",
    "hmac-sha1-96": "HMAC-SHA-1-96 [RFC2404]",
    "hmac-sha256-128": "HMAC-SHA-256-128 [RFC4868]",
}


MAX_ENTRIES = 10_000


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


class SaveKeys:
    """Keeps the two tables in ``directory`` in step with the live SAs."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._ike: dict[bytes, bytes] = {}
        self._esp: dict[bytes, str] = {}
        self._write()

    def ike_sa_added(self, initiator_cookie: bytes, encryption_key: bytes) -> None:
        self._ike[initiator_cookie] = encryption_key
        _trim(self._ike)
        self._write()

    def esp_sa_added(
        self,
        spi: bytes,
        source: str,
        destination: str,
        encryption: str,
        encryption_key: bytes,
        integrity: str | None,
        integrity_key: bytes,
    ) -> None:
        self._esp[spi] = ",".join(
            f'"{field}"'
            for field in (
                "IPv4",
                source,
                destination,
                "0x" + spi.hex(),
                _ESP_ENCRYPTION.get(encryption, "NULL"),
                _hex(encryption_key),
                _ESP_INTEGRITY.get(integrity, "NULL"),
                _hex(integrity_key) if integrity_key else "",
            )
        )
        _trim(self._esp)
        self._write()

    def _write(self) -> None:
        # Byte fields of a Wireshark UAT are bare hex; strings are quoted.
        ike = "".join(f"{c.hex()},{k.hex()}\n" for c, k in self._ike.items())
        esp = "".join(row + "\n" for row in self._esp.values())
        for name, text in (("ikev1_decryption_table", ike), ("esp_sa", esp)):
            path = self.directory / name
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)


def _trim(table: dict[bytes, Any]) -> None:
    """Forget the oldest entries beyond MAX_ENTRIES (dicts keep insertion order)."""
    while len(table) > MAX_ENTRIES:
        del table[next(iter(table))]
