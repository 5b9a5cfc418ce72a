"""One-line help for keywords, as `?` shows it.

A command may override a word's help where the same word means something
else in its context (`tunnel` the interface type vs `tunnel` the interface
sub-command); see the `help=` argument of `CommandTree.command`.
"""

from __future__ import annotations

from ..config.model import TRANSFORMS


def _transform_help(name: str) -> str:
    protocol, _, rest = name.partition("-")
    if name.endswith("-gcm"):
        return f"ESP with {rest.removesuffix('-gcm').upper()}-GCM (combined mode)"
    if protocol == "ah":
        return f"AH with HMAC-{rest.removeprefix('hmac-').upper().replace('SHA', 'SHA1', 1)}"
    cipher, _, integrity = rest.partition("-hmac-")
    mac = {"md5": "HMAC-MD5", "sha": "HMAC-SHA1", "sha256": "HMAC-SHA2-256"}[integrity]
    return f"ESP with {'no encryption' if cipher == 'null' else cipher.upper()} and {mac}"


#: `phase 1|2` of `ipsec clear sa`.
PHASE_HELP = {"1": "ISAKMP/IKE (phase 1) SAs", "2": "IPsec (phase 2) SAs"}

#: Diffie-Hellman groups (RFC 2409, 3526, 5903), for `group` and `tunnel pfs group`.
GROUP_HELP = {
    "1": "768-bit MODP group",
    "2": "1024-bit MODP group",
    "5": "1536-bit MODP group",
    "14": "2048-bit MODP group",
    "15": "3072-bit MODP group",
    "16": "4096-bit MODP group",
    "19": "256-bit random ECP group",
    "20": "384-bit random ECP group",
}

#: First words from other routers' CLIs, and the ipsecgw command they mean ("Did you mean").
FIRST_WORD_HINTS = {
    "clear": "ipsec clear sa",
    "crypto": "ipsec",
    "reload": "ipsec clear sa all",
    "running-config": "show running-configuration",
}

KEYWORD_HELP: dict[str, str] = {
    "3des": "Triple DES",
    "accepted": "Accept aggressive mode; initiate main mode",
    "address": "An IPv4 address",
    "aes128": "AES-CBC with a 128-bit key",
    "aes192": "AES-CBC with a 192-bit key",
    "aes256": "AES-CBC with a 256-bit key",
    "aggressive-mode": "Aggressive mode policy",
    "all": "All SAs",
    "asn1-dn": "An X.500 distinguished name",
    "authentication": "Authentication method",
    "clear": "Reinitialize security associations",
    "configuration": "The running configuration",
    "configure": "Enter configuration mode",
    "copy": "Copy a configuration",
    "des": "DES (56-bit)",
    "description": "Describe the interface",
    "destination": "Remote tunnel endpoint",
    "detail": "Detailed information",
    "disable": "Leave privileged mode",
    "disabled": "Tunnels that are shut down",
    "do": "Run an exec command from configuration mode",
    "domain-name": "A fully qualified domain name",
    "down": "Tunnels administratively up but without SAs",
    "dpd": "Dead peer detection (RFC 3706)",
    "enable": "Enter privileged mode",
    "encryption": "Encryption algorithm",
    "end": "Return to privileged exec mode",
    "exit": "Leave the current mode",
    "group": "Diffie-Hellman group",
    "hash": "Hash algorithm",
    "hostname": "Set the router's name",
    "idle": "Seconds without traffic from the peer before a probe",
    "ike-policy-rule": "ISAKMP/IKE (phase 1) policy rule",
    "ike-sa": "ISAKMP/IKE (phase 1) SAs",
    "interface": "Configure an interface",
    "ip": "IP settings",
    "ipsec": "IPsec configuration and operations",
    "key": "Pre-shared keys",
    "kilobytes": "Lifetime in kilobytes",
    "length": "Lines per screen (0: no paging)",
    "lifetime": "SA lifetime",
    "local-endpoint": "Local IKE endpoint",
    "local-identity": "Identity this router presents",
    "local-network": "Local protected network (phase 2 selector)",
    "manual": "Manually configured key",
    "masked-key": "Pre-shared key in masked form",
    "md5": "MD5",
    "memory": "The startup configuration file",
    "mtu": "Tunnel interface MTU",
    "nat-t": "NAT traversal (RFC 3947)",
    "negotiating": "Tunnels negotiating phase 1 or 2",
    "no": "Negate a command or restore its default",
    "none": "Refuse aggressive mode",
    "option": "Per virtual router IPsec options",
    "peer-identity": "Identity expected from the peer",
    "pfs": "Perfect forward secrecy",
    "phase": "Which SAs: 1 = ISAKMP/IKE, 2 = IPsec",
    "pre-share": "Pre-shared key",
    "remote-network": "Remote protected network (phase 2 selector)",
    "requested": "Initiate aggressive mode; rekey with main mode",
    "required": "Use aggressive mode only",
    "retries": "Probes without answer before the peer is dead",
    "retry": "Seconds between unanswered probes",
    "rsa-sig": "RSA signature with X.509 certificates",
    "running-configuration": "The running configuration",
    "sa": "Security associations",
    "seconds": "Lifetime in seconds",
    "sha": "SHA-1",
    "sha256": "SHA2-256",
    "sha384": "SHA2-384",
    "sha512": "SHA2-512",
    "show": "Show running system information",
    "shutdown": "Shut the interface down",
    "silence": "Seconds with traffic sent but none received before a probe",
    "source": "Local tunnel endpoint",
    "startup-configuration": "The startup file (as write memory)",
    "state": "SAs of tunnels in a state",
    "statistics": "IKE message counters",
    "terminal": "From the terminal",
    "transform-set": "IPsec transform set",
    "transport-virtual-router": "Virtual router that carries IKE and ESP",
    "tunnel": "Tunnel settings",
    "tx-invalid-cookie": "Send INVALID-COOKIE notifications",
    "up": "Tunnels with IPsec SAs installed",
    "user-fqdn": "A user@domain identity",
    "version": "Software version",
    "virtual-router": "Virtual router context",
    "write": "Save the running configuration",
    **{name: _transform_help(name) for name in TRANSFORMS},
}
