"""Show commands of remote access (issue 16): subscribers, tunnel profiles, pools."""

from __future__ import annotations

from ..config.remote_access import TunnelProfile
from ..config.render_remote import identity_words
from .commands_show import _show
from .context import Context
from .show import duration, in_scope, table
from .tree import Args, CommandError


@_show("subscribers", help={"subscribers": "Remote-access subscribers logged in"})
def show_subscribers(ctx: Context, args: Args) -> None:
    """Subscribers: user, profile, peer, address, interface, uptime, bytes."""
    rows = [
        [s.username or "-", s.profile, s.peer, s.address or "-", s.interface,
         duration(ctx.now - s.since), str(s.inbound_bytes), str(s.outbound_bytes)]
        for s in sorted(ctx.gateway.subscribers(), key=lambda s: s.subscriber)
        if in_scope(ctx.vr, s.vr)
    ]
    if not rows:
        ctx.print("No subscribers")
        return
    ctx.print(table(["User", "Profile", "Peer", "Address", "Interface", "Uptime",
                     "Bytes in", "Bytes out"], rows))


@_show("ip local pool", help={"ip": "IP settings", "local": "Local settings",
                              "pool": "Address pools and how many addresses are lent"})
def show_local_pool(ctx: Context, args: Args) -> None:
    """Address pools: range, size, addresses lent and free."""
    pools = ctx.gateway.pool_usage()
    if not pools:
        ctx.print("No address pools")
        return
    ctx.print(table(["Pool", "First", "Last", "Size", "In use", "Free"], [
        [p.name, p.first, p.last, str(p.size), str(p.in_use), str(p.size - p.in_use)]
        for p in pools]))


def _profile_lines(profile: TunnelProfile, subscribers: int) -> list[str]:
    endpoint = (f"{profile.local_address} (transport VR {profile.transport_vr})"
                if profile.local_address else "none (accepts no clients)")
    return [
        f"Tunnel profile {profile.name}",
        f"  Local endpoint: {endpoint}",
        "  Peer identity: " + (identity_words(profile.peer_identity)
                               if profile.peer_identity else "any"),
        f"  Group key: {'configured' if profile.psk else 'none (certificates)'}",
        f"  Aggressive mode: {profile.aggressive_mode}",
        f"  XAUTH: {'required' if profile.xauth else 'none'}",
        "  Mode Config: " + ("push (sent after XAUTH)" if profile.mode_config == "push"
                             else "pull (answers the client's request)"),
        f"  Transforms: {' '.join(profile.transforms)}",
        f"  PFS: {f'group {profile.pfs_group}' if profile.pfs_group else 'none'}",
        "  Local networks: " + (", ".join(profile.local_networks) or "all (0.0.0.0/0)"),
        f"  Pool: {profile.pool or 'none'}",
        "  DNS: " + (", ".join(profile.dns) or "none")
        + "; WINS: " + (", ".join(profile.wins) or "none")
        + f"; domain: {profile.domain_suffix or 'none'}",
        f"  Subscribers: {subscribers}"
        + (f" of at most {profile.max_interfaces}" if profile.max_interfaces else ""),
        f"  Tunnel MTU: {profile.mtu}",
    ]


@_show("ipsec tunnel-profile [<name:PROFILE>]",
       help={"tunnel-profile": "Remote-access tunnel profiles"})
@_show("ipsec tunnel profile [<name:PROFILE>]",  # the same, as earlier versions spelt it
       help={"tunnel": "IPsec tunnel interfaces", "profile": "Remote-access tunnel profiles"})
def show_tunnel_profile(ctx: Context, args: Args) -> None:
    """Tunnel profiles with their settings and how many subscribers each has."""
    ra = ctx.config.remote_access
    name = args.opt_text("name")
    if name is not None and ra.profile(name) is None:
        raise CommandError(f"Unknown tunnel profile {name}", at="name")
    counts: dict[str, int] = {}
    for s in ctx.gateway.subscribers():
        counts[s.profile] = counts.get(s.profile, 0) + 1
    blocks = ["\n".join(_profile_lines(p, counts.get(p.name, 0)))
              for p in ra.profiles if name in (None, p.name)]
    ctx.print("\n\n".join(blocks) or "No tunnel profiles")
