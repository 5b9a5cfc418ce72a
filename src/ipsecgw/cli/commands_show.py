"""Show commands (SPEC 3.4): usable from every mode, `do` optional.

They follow the virtual-router context: in the default VR they cover the
whole router, in another VR only what belongs to it (`show.in_scope`).
`show ipsec option` shows every VR's options in the default VR's context,
the current VR's in another's.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import __version__
from ..config.model import DEFAULT_VR
from ..config.render import render, render_tunnel
from ..status import TunnelState
from . import show
from .context import Context
from .tree import ALL_MODES, CONFIG_MODES, TREE, Args, CommandError, Handler, Mode

SHOW_HELP = {"ipsec": "IPsec status and settings"}


def _show(
    syntax: str, *, modes: frozenset[Mode] = ALL_MODES, help: dict[str, str] | None = None
) -> Callable[[Handler], Handler]:
    return TREE.command(
        f"show {syntax}",
        modes=modes,
        operational=True,
        filterable=True,
        help={**SHOW_HELP, **(help or {})},
    )


_STATES = "|".join(state.value for state in TunnelState)
_ONE_TUNNEL = {"tunnel": "Only the SAs of one tunnel interface"}


@_show(
    f"ipsec tunnel [<tunnel:TUNNEL>|state {{{_STATES}}}=state] [detail]",
    help={"tunnel": "IPsec tunnel interfaces", "state": "Only tunnels in a state"},
)
def show_tunnel(ctx: Context, args: Args) -> None:
    """Tunnel interfaces: state, peer, transform, uptime (`detail`: SAs and counters)."""
    statuses = {s.name: s for s in ctx.gateway.tunnels()}
    for tunnel in ctx.config.tunnels:
        statuses.setdefault(tunnel.name, show.config_status(tunnel))
    name = args.opt_text("tunnel")
    if name is not None:
        if name not in statuses:
            raise CommandError(f"Unknown tunnel interface ipsec:{name}", at="tunnel")
        selected = [statuses[name]]
    else:
        selected = [s for _, s in sorted(statuses.items()) if show.in_scope(ctx.vr, s.vr)]
    if (state := args.opt_text("state")) is not None:
        selected = [s for s in selected if s.state.value == state]
    if args.has("detail"):
        text = "\n\n".join(show.tunnel_detail(s, ctx.config, ctx.now) for s in selected)
        ctx.print(text or "No IPsec tunnels")
    else:
        ctx.print(show.tunnels(selected, ctx.now))


@_show("ipsec tunnel summary", help={"summary": "How many tunnels are in each state"})
def show_tunnel_summary(ctx: Context, args: Args) -> None:
    """How many tunnel interfaces are up, negotiating, down or disabled."""
    states = ctx.gateway.tunnel_states()
    counts: dict[TunnelState, int] = dict.fromkeys(TunnelState, 0)
    for tunnel in ctx.config.tunnels:
        if tunnel.name in states:
            vr, state = states[tunnel.name]
        else:
            status = show.config_status(tunnel)
            vr, state = status.vr, status.state
        if show.in_scope(ctx.vr, vr):
            counts[state] += 1
    ctx.print(show.tunnel_summary(counts))


def _sa_filter(ctx: Context, args: Args) -> Callable[[str, str | None], bool]:
    """Which SAs to show: one named tunnel's (from any context), or the context's."""
    name = args.opt_text("tunnel")
    if name is None:
        return lambda vr, tunnel: show.in_scope(ctx.vr, vr)
    if ctx.config.tunnel(name) is None:
        raise CommandError(f"Unknown tunnel interface ipsec:{name}", at="tunnel")
    return lambda vr, tunnel: tunnel == name


@_show("ipsec ike-sa [tunnel <tunnel:TUNNEL>]", help=_ONE_TUNNEL)
def show_ike_sa(ctx: Context, args: Args) -> None:
    """ISAKMP/IKE (phase 1) SAs, all or one tunnel's."""
    wanted = _sa_filter(ctx, args)
    ctx.print(show.ike_sas([sa for sa in ctx.gateway.ike_sas() if wanted(sa.vr, sa.tunnel)]))


@_show("ipsec sa [tunnel <tunnel:TUNNEL>]", help=_ONE_TUNNEL)
def show_sa(ctx: Context, args: Args) -> None:
    """IPsec (phase 2) SAs, all or one tunnel's."""
    wanted = _sa_filter(ctx, args)
    ctx.print(show.ipsec_sas([sa for sa in ctx.gateway.ipsec_sas() if wanted(sa.vr, sa.tunnel)]))


@_show("ipsec option")
def show_option(ctx: Context, args: Args) -> None:
    """IPsec options per virtual router (in a VR's context: that VR's)."""
    config = ctx.config
    if ctx.vr == DEFAULT_VR:
        names = {vr.name for vr in config.virtual_routers} | set(config.transport_vrs())
        vrs = sorted(names, key=lambda name: (name != DEFAULT_VR, name))
    else:
        vrs = [ctx.vr]
    ctx.print("\n".join(show.options(vr, config.options(vr)) for vr in vrs))


@_show("ipsec transform-set")
def show_transform_set(ctx: Context, args: Args) -> None:
    """Transform sets."""
    ctx.print(show.transform_sets(ctx.config))


@_show("ipsec ike-policy-rule")
def show_ike_policy_rule(ctx: Context, args: Args) -> None:
    """IKE (phase 1) policy rules."""
    ctx.print(show.ike_policy_rules(ctx.config))


@_show("ipsec local-endpoint")
def show_local_endpoint(ctx: Context, args: Args) -> None:
    """Local IKE endpoints."""
    vrs = [
        vr
        for vr in ctx.config.virtual_routers
        if show.in_scope(ctx.vr, vr.name)
        or any(show.in_scope(ctx.vr, ep.transport_vr) for ep in vr.local_endpoints)
    ]
    ctx.print(show.local_endpoints(vrs, ctx.gateway.local_endpoint_status()))


@_show("ipsec lifetime")
def show_lifetime(ctx: Context, args: Args) -> None:
    """Default IPsec SA lifetime."""
    ctx.print(show.lifetime(ctx.config))


@_show(
    "ipsec statistics [virtual-router <vr:VRNAME>]",
    help={"virtual-router": "Only this virtual router's counters"},
)
def show_statistics(ctx: Context, args: Args) -> None:
    """IKE message, invalid cookie and DPD counters per virtual router (or of one)."""
    name = args.opt_text("vr")
    if name is not None and not ctx.config.mentions_virtual_router(name):
        raise CommandError(f"Unknown virtual router {name}", at="vr")
    stats = [
        s
        for s in ctx.gateway.statistics()
        if (s.vr == name if name is not None else show.in_scope(ctx.vr, s.vr))
    ]
    ctx.print(show.statistics(stats))


@_show(
    "{configuration|running-configuration} [interface tunnel <tunnel:TUNNEL>]",
    modes=CONFIG_MODES | {Mode.PRIV_EXEC},
    help={"interface": "One interface's configuration", "tunnel": "IPsec tunnel interface"},
)
def show_configuration(ctx: Context, args: Args) -> None:
    """The running configuration (pre-shared keys masked), or one tunnel interface's."""
    name = args.opt_text("tunnel")
    if name is None:
        ctx.print(render(ctx.config).rstrip("\n"))
        return
    tunnel = ctx.config.tunnel(name)
    if tunnel is None:
        raise CommandError(f"Unknown tunnel interface ipsec:{name}", at="tunnel")
    ctx.print(render_tunnel(tunnel).rstrip("\n"))


@_show("version", help={"version": "Software version"})
def show_version(ctx: Context, args: Args) -> None:
    """The ipsecgw version and the router's name."""
    ctx.print(f"ipsecgw {__version__}, IKEv1/IPsec gateway\nHostname: {ctx.config.hostname}\n"
              f"Data plane: {ctx.gateway.data_plane}")
