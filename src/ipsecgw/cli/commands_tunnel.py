"""Interface configuration mode: `interface tunnel ipsec:NAME` (SPEC 3.3)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..config.model import ANY_NETWORK, DH_GROUPS, IDENTITY_KINDS, Identity
from .commands_config import LIFETIME_SYNTAX, lifetime_from
from .context import Context
from .helptext import GROUP_HELP
from .tree import TREE, Args, CommandError, Mode

command = TREE.command
IF = {Mode.CONFIG_IF}
_GROUPS = "|".join(str(g) for g in DH_GROUPS)
_IDENTITY = (
    "{address <value:IPV4>|domain-name <value:FQDN>|user-fqdn <value:USER_FQDN>|asn1-dn <value:DN>}"
)


def _edit(ctx: Context, **changes: Any) -> None:
    ctx.commit(ctx.current.with_tunnel(replace(ctx.tunnel(), **changes)))


def _identity(args: Args) -> Identity:
    kind = next(k for k in IDENTITY_KINDS if args.has(k))
    return Identity(kind, args.text("value"))


@command(
    "tunnel source <address:IPV4>", modes=IF, help={"<address>": "Local address of the tunnel"}
)
def source(ctx: Context, args: Args) -> None:
    """Set the local endpoint address."""
    _edit(ctx, source=args.text("address"))


@command("no tunnel source", modes=IF)
def no_source(ctx: Context, args: Args) -> None:
    """Remove the local endpoint address."""
    _edit(ctx, source=None)


@command(
    "tunnel destination {<peer:IPV4>|<peer:FQDN>}", modes=IF, help={"<peer>": "Remote endpoint"}
)
def destination(ctx: Context, args: Args) -> None:
    """Set the remote endpoint: an address, or a domain name resolved when negotiating."""
    _edit(ctx, destination=args.text("peer"))


@command("no tunnel destination", modes=IF)
def no_destination(ctx: Context, args: Args) -> None:
    """Remove the remote endpoint."""
    _edit(ctx, destination=None)


@command("tunnel transform-set <name:TSNAME>", modes=IF)
def tunnel_transform_set(ctx: Context, args: Args) -> None:
    """Use a transform set for phase 2."""
    name = args.text("name")
    if ctx.config.transform_set(name) is None:
        raise CommandError(f"Unknown transform set {name}", at="name")
    _edit(ctx, transform_set=name)


@command("no tunnel transform-set", modes=IF)
def no_tunnel_transform_set(ctx: Context, args: Args) -> None:
    """Use the default transform (esp-aes256-hmac-sha256)."""
    _edit(ctx, transform_set=None)


@command(f"tunnel pfs group {{{_GROUPS}}}=group", modes=IF, help=GROUP_HELP)
def pfs(ctx: Context, args: Args) -> None:
    """Use perfect forward secrecy with this Diffie-Hellman group."""
    _edit(ctx, pfs_group=args.number("group"))


@command("no tunnel pfs [group]", modes=IF)
def no_pfs(ctx: Context, args: Args) -> None:
    """Negotiate phase 2 without PFS."""
    _edit(ctx, pfs_group=None)


@command(
    f"tunnel {LIFETIME_SYNTAX}", modes=IF, help={"lifetime": "IPsec SA lifetime of this tunnel"}
)
def tunnel_lifetime(ctx: Context, args: Args) -> None:
    """Override `ipsec lifetime` for this tunnel; what is not given keeps its value."""
    tunnel = ctx.tunnel()
    _edit(ctx, lifetime=lifetime_from(args, ctx.config.tunnel_lifetime(tunnel)))


@command("no tunnel lifetime", modes=IF)
def no_tunnel_lifetime(ctx: Context, args: Args) -> None:
    """Use the global `ipsec lifetime`."""
    _edit(ctx, lifetime=None)


@command(f"tunnel local-identity {_IDENTITY}", modes=IF)
def local_identity(ctx: Context, args: Args) -> None:
    """Set the identity this router sends in phase 1 (default: its address)."""
    _edit(ctx, local_identity=_identity(args))


@command("no tunnel local-identity", modes=IF)
def no_local_identity(ctx: Context, args: Args) -> None:
    """Send the tunnel source address as identity."""
    _edit(ctx, local_identity=None)


@command(f"tunnel peer-identity {_IDENTITY}", modes=IF)
def peer_identity(ctx: Context, args: Args) -> None:
    """Require this identity from the peer (default: its address)."""
    _edit(ctx, peer_identity=_identity(args))


@command("no tunnel peer-identity", modes=IF)
def no_peer_identity(ctx: Context, args: Args) -> None:
    """Expect the tunnel destination address as the peer's identity."""
    _edit(ctx, peer_identity=None)


@command("tunnel local-network <prefix:PREFIX>", modes=IF)
def local_network(ctx: Context, args: Args) -> None:
    """Set the local network protected by the tunnel (phase 2 selector)."""
    _edit(ctx, local_network=args.text("prefix"))


@command("no tunnel local-network", modes=IF)
def no_local_network(ctx: Context, args: Args) -> None:
    """Protect any local address (0.0.0.0/0)."""
    _edit(ctx, local_network=ANY_NETWORK)


@command("tunnel remote-network <prefix:PREFIX>", modes=IF)
def remote_network(ctx: Context, args: Args) -> None:
    """Set the remote network (phase 2 selector, routed into the tunnel while up)."""
    _edit(ctx, remote_network=args.text("prefix"))


@command("no tunnel remote-network", modes=IF)
def no_remote_network(ctx: Context, args: Args) -> None:
    """Protect any remote address (0.0.0.0/0)."""
    _edit(ctx, remote_network=ANY_NETWORK)


@command("tunnel mtu <mtu:576-9216>", modes=IF)
def mtu(ctx: Context, args: Args) -> None:
    """Set the MTU of the tunnel interface."""
    _edit(ctx, mtu=args.number("mtu"))


@command("no tunnel mtu", modes=IF)
def no_mtu(ctx: Context, args: Args) -> None:
    """Let the gateway choose the MTU."""
    _edit(ctx, mtu=None)


@command(
    "ip address {<address:IFADDR>|<host:IPV4> <mask:NETMASK>}",
    modes=IF,
    help={"ip": "Interface IP settings", "address": "Set the interface address"},
)
def ip_address(ctx: Context, args: Args) -> None:
    """Set the tunnel interface's address (A.B.C.D/M or A.B.C.D M.M.M.M)."""
    host = args.opt_text("host")
    address = f"{host}/{args.number('mask')}" if host is not None else args.text("address")
    if address.endswith("/0"):
        raise CommandError("A network mask of 0.0.0.0 is not an interface address", at="mask")
    _edit(ctx, ip_address=address)


@command("no ip address", modes=IF, help={"ip": "Interface IP settings"})
def no_ip_address(ctx: Context, args: Args) -> None:
    """Remove the interface address."""
    _edit(ctx, ip_address=None)


@command(
    "tunnel responder-only",
    modes=IF,
    help={"responder-only": "Never initiate: wait for the peer to negotiate"},
)
def responder_only(ctx: Context, args: Args) -> None:
    """Only answer the peer: no initiation, no rekey of our own (the peer's job)."""
    _edit(ctx, responder_only=True)


@command("no tunnel responder-only", modes=IF,
         help={"responder-only": "Never initiate: wait for the peer to negotiate"})
def no_responder_only(ctx: Context, args: Args) -> None:
    """Initiate and keep the tunnel up (the default)."""
    _edit(ctx, responder_only=False)


@command("shutdown", modes=IF)
def shutdown(ctx: Context, args: Args) -> None:
    """Shut the tunnel down: its SAs are deleted (with Delete payloads)."""
    _edit(ctx, shutdown=True)


@command("no shutdown", modes=IF, help={"shutdown": "Bring the interface up"})
def no_shutdown(ctx: Context, args: Args) -> None:
    """Bring the tunnel up: the router negotiates its SAs and keeps them up."""
    _edit(ctx, shutdown=False)
