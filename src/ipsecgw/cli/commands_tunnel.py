"""Interface configuration mode: `interface tunnel ipsec:NAME` (SPEC 3.3).

Every command here sets one field of the tunnel interface, so the mode is
one table (`cli.settings`): each row registers the command and its `no`
form, and the defaults read down the fourth column.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from ..config.manual import ManualKeys
from ..config.model import (
    ANY_NETWORK,
    DH_GROUPS,
    IDENTITY_KINDS,
    MAX_DESCRIPTION,
    Identity,
    TunnelInterface,
)
from .commands_config import LIFETIME_VALUE, lifetime_from
from .context import Context
from .helptext import GROUP_HELP
from .settings import Place, Setting, const, number, register, text
from .tree import TREE, Args, CommandError, Mode

_GROUPS = "|".join(str(g) for g in DH_GROUPS)
_IDENTITY = (
    "{address <value:IPV4>|domain-name <value:FQDN>|user-fqdn <value:USER_FQDN>|asn1-dn <value:DN>}"
)
_NETWORK = "{<prefix:PREFIX>|<network:IPV4> <mask:NETMASK>}"
_RESPONDER_ONLY_HELP = {"responder-only": "Never initiate: wait for the peer to negotiate"}

TUNNEL = Place(
    get=lambda ctx: ctx.tunnel(),
    put=lambda ctx, tunnel: ctx.commit(ctx.current.with_tunnel(tunnel)),
)


_DESTINATION = "{<peer:IPV4>|<peer:FQDN>} [backup {<alternate:IPV4>|<alternate:FQDN>}]"
_DESTINATION_HELP = {"<peer>": "Remote endpoint", "backup": "Alternate destination (failover)",
                     "<alternate>": "Remote endpoint used when the other one fails"}


@TREE.command(f"tunnel destination {_DESTINATION}", modes={Mode.CONFIG_IF},
              help=_DESTINATION_HELP)
def tunnel_destination(ctx: Context, args: Args) -> None:
    """Set the remote endpoint (an address, or a domain name resolved when
    negotiating), and optionally a backup one for tunnel failover."""
    peer, backup = args.text("peer"), args.opt_text("alternate")
    if backup is not None and backup.lower() == peer.lower():
        raise CommandError("The backup destination must differ from the primary", at="alternate")
    TUNNEL.put(ctx, replace(ctx.tunnel(), destination=peer, backup_destination=backup))


@TREE.command("no tunnel destination [{<peer:IPV4>|<peer:FQDN>} [backup "
              "[{<alternate:IPV4>|<alternate:FQDN>}]]]", modes={Mode.CONFIG_IF},
              help=_DESTINATION_HELP)
def no_tunnel_destination(ctx: Context, args: Args) -> None:
    """Remove the remote endpoints (to drop only the backup: `tunnel destination A`)."""
    tunnel = ctx.tunnel()
    for name, configured in (("peer", tunnel.destination), ("alternate", tunnel.backup_destination)):
        typed = args.opt_text(name)
        if typed is not None and typed != configured:
            what = "tunnel destination" if name == "peer" else "backup destination"
            raise CommandError(f"The configured {what} is not {typed}", at=name)
    TUNNEL.put(ctx, replace(tunnel, destination=None, backup_destination=None))


_MANUAL_KEYS = (
    "[{encryption-key <ekey:HEXKEY>|masked-encryption-key <ekey:MASKEDHEX>}] "
    "[{authentication-key <akey:HEXKEY>|masked-authentication-key <akey:MASKEDHEX>}]"
)
_MANUAL_HELP = {
    "manual": "Manual SA: SPIs and keys set here, no IKE",
    "inbound": "The SA the peer sends on", "outbound": "The SA this router sends on",
    "spi": "Security Parameters Index", "<spi>": "SPI (256 and above)",
    "encryption-key": "Encryption key (ESP)", "authentication-key": "Authentication key",
    "masked-encryption-key": "Encryption key, masked", "masked-authentication-key":
    "Authentication key, masked",
}


def _with_manual(tunnel: TunnelInterface, direction: str,
                 keys: ManualKeys | None) -> TunnelInterface:
    if direction == "inbound":
        return replace(tunnel, manual_inbound=keys)
    return replace(tunnel, manual_outbound=keys)


@TREE.command(f"tunnel manual {{inbound|outbound}}=direction spi <spi:256-4294967295> "
              f"{_MANUAL_KEYS}", modes={Mode.CONFIG_IF}, help=_MANUAL_HELP)
def tunnel_manual(ctx: Context, args: Args) -> None:
    """Set a manual SA's SPI and keys for one direction (no IKE for this tunnel)."""
    tunnel = ctx.tunnel()
    transforms = ctx.config.tunnel_transforms(tunnel)
    if len(transforms) != 1:
        raise CommandError(f"A manual SA takes a transform set with exactly one transform "
                           f"(transform set {tunnel.transform_set} has {len(transforms)})")
    keys = ManualKeys(args.number("spi"), args.opt_text("ekey") or "",
                      args.opt_text("akey") or "")
    problem = keys.check(transforms[0])
    if problem is not None:
        raise CommandError(problem)
    direction = args.text("direction")
    if direction == "inbound" and any(
            t.manual_inbound is not None and t.manual_inbound.spi == keys.spi and
            t.name != tunnel.name and t.transport_vr == tunnel.transport_vr
            for t in ctx.config.tunnels):
        raise CommandError(f"Inbound SPI {keys.spi} is used by another tunnel", at="spi")
    TUNNEL.put(ctx, _with_manual(tunnel, direction, keys))


@TREE.command("no tunnel manual [{inbound|outbound}=direction [spi [<spi:256-4294967295> "
              f"{_MANUAL_KEYS}]]]", modes={Mode.CONFIG_IF}, help=_MANUAL_HELP)
def no_tunnel_manual(ctx: Context, args: Args) -> None:
    """Remove a direction's manual SA, or both (the tunnel negotiates with IKE again)."""
    tunnel = ctx.tunnel()
    direction = args.opt_text("direction")
    if direction is None:
        TUNNEL.put(ctx, replace(tunnel, manual_inbound=None, manual_outbound=None))
        return
    configured = tunnel.manual_inbound if direction == "inbound" else tunnel.manual_outbound
    spi = args.opt_number("spi")
    if spi is not None and (configured is None or configured.spi != spi):
        raise CommandError(f"The configured {direction} SPI is not {spi}", at="spi")
    for name, key in (("ekey", "encryption_key"), ("akey", "authentication_key")):
        typed = args.opt_text(name)
        if typed is not None and (configured is None or getattr(configured, key) != typed):
            raise CommandError("Not the configured key", at=name)
    TUNNEL.put(ctx, _with_manual(tunnel, direction, None))


def _identity(ctx: Context, args: Args) -> Identity:
    kind = next(k for k in IDENTITY_KINDS if args.has(k))
    return Identity(kind, args.text("value"))


def _transform_set(ctx: Context, args: Args) -> str:
    name = args.text("name")
    if ctx.config.transform_set(name) is None:
        raise CommandError(f"Unknown transform set {name}", at="name")
    return name


def _lifetime(ctx: Context, args: Args) -> object:
    """What is not given keeps its value (`ipsec lifetime`'s when the tunnel has none)."""
    return lifetime_from(args, ctx.config.tunnel_lifetime(ctx.tunnel()))


def _network(ctx: Context, args: Args) -> str:
    """A.B.C.D/M or A.B.C.D M.M.M.M (as `ip address` takes it), host bits cleared."""
    address = args.opt_text("network")
    if address is None:
        return args.text("prefix")
    return str(ipaddress.IPv4Network(f"{address}/{args.number('mask')}", strict=False))


def _description(ctx: Context, args: Args) -> str:
    """The words as typed, one blank between them (a quoted text keeps its own)."""
    text = " ".join(args.texts("text"))
    if len(text) > MAX_DESCRIPTION:
        raise CommandError(f"A description is at most {MAX_DESCRIPTION} characters", at="text")
    return text


def _ip_address(ctx: Context, args: Args) -> str:
    """A.B.C.D/M or A.B.C.D M.M.M.M, host bits kept."""
    host = args.opt_text("host")
    address = f"{host}/{args.number('mask')}" if host is not None else args.text("address")
    if address.endswith("/0"):
        raise CommandError("A network mask of 0.0.0.0 is not an interface address", at="mask")
    return address


register(
    TUNNEL,
    {Mode.CONFIG_IF},
    [
        Setting("tunnel source", "<address:IPV4>", "source", None, text("address"),
                "Set the local endpoint address.",
                help={"<address>": "Local address of the tunnel"}),
        Setting("tunnel transform-set", "<name:TSNAME>", "transform_set", None, _transform_set,
                "Use a transform set for phase 2.",
                "Use the default transform (esp-aes256-hmac-sha256)."),
        Setting("tunnel pfs", f"group {{{_GROUPS}}}=group", "pfs_group", None, number("group"),
                "Use perfect forward secrecy with this Diffie-Hellman group.",
                "Negotiate phase 2 without PFS.", help=GROUP_HELP),
        Setting("tunnel lifetime", LIFETIME_VALUE, "lifetime", None, _lifetime,
                "Override `ipsec lifetime` for this tunnel; what is not given keeps its value.",
                "Use the global `ipsec lifetime`.",
                help={"lifetime": "IPsec SA lifetime of this tunnel"}),
        Setting("tunnel local-identity", _IDENTITY, "local_identity", None, _identity,
                "Set the identity this router sends in phase 1 (default: its address).",
                "Send the tunnel source address as identity."),
        Setting("tunnel peer-identity", _IDENTITY, "peer_identity", None, _identity,
                "Require this identity from the peer (default: its address).",
                "Expect the tunnel destination address as the peer's identity."),
        Setting("tunnel local-network", _NETWORK, "local_network", ANY_NETWORK, _network,
                "Set the local network protected by the tunnel (phase 2 selector).",
                "Protect any local address (0.0.0.0/0)."),
        Setting("tunnel remote-network", _NETWORK, "remote_network", ANY_NETWORK, _network,
                "Set the remote network (phase 2 selector, routed into the tunnel while up).",
                "Protect any remote address (0.0.0.0/0)."),
        Setting("tunnel mtu", "<mtu:576-9216>", "mtu", None, number("mtu"),
                "Set the MTU of the tunnel interface.", "Let the gateway choose the MTU."),
        Setting("ip address", "{<address:IFADDR>|<host:IPV4> <mask:NETMASK>}", "ip_address",
                None, _ip_address,
                "Set the tunnel interface's address (A.B.C.D/M or A.B.C.D M.M.M.M).",
                "Remove the interface address.",
                help={"ip": "Interface IP settings", "address": "Set the interface address"},
                no_help={"address": "An IPv4 address"}),
        Setting("tunnel responder-only", "", "responder_only", False, const(True),
                "Only answer the peer: no initiation, no rekey of our own (the peer's job).",
                "Initiate and keep the tunnel up (the default).", help=_RESPONDER_ONLY_HELP),
        Setting("description", "<text:DESCRIPTION>@1-", "description", None, _description,
                "Describe the interface (free text, shown by show configuration).",
                "Remove the description."),
        Setting("shutdown", "", "shutdown", False, const(True),
                "Shut the tunnel down: its SAs are deleted (with Delete payloads).",
                "Bring the tunnel up: the router negotiates its SAs and keeps them up.",
                no_help={"shutdown": "Bring the interface up"}),
    ],
)
