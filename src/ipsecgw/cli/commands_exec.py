"""Moving between modes and virtual routers; `do`, `write memory`, `ipsec clear sa`."""

from __future__ import annotations

from ..config.model import DEFAULT_VR, VirtualRouter
from ..config.render import render
from ..status import TunnelState
from .context import Context
from .gateway import SaSelector
from .helptext import PHASE_HELP
from .tree import ALL_MODES, CONFIG_MODES, SUB_MODES, TREE, Args, CommandError, Mode

command = TREE.command
OPERATIONAL_MODES = CONFIG_MODES | {Mode.PRIV_EXEC}


@command("enable", modes={Mode.USER_EXEC})
def enable(ctx: Context, args: Args) -> None:
    """Enter privileged exec mode."""
    ctx.enter(Mode.PRIV_EXEC)


@command("disable", modes={Mode.PRIV_EXEC})
def disable(ctx: Context, args: Args) -> None:
    """Leave privileged exec mode."""
    ctx.enter(Mode.USER_EXEC)


@command("configure [terminal]", modes={Mode.PRIV_EXEC})
def configure(ctx: Context, args: Args) -> None:
    """Enter global configuration mode."""
    ctx.enter(Mode.CONFIG)


@command("exit", modes=ALL_MODES)
def exit_mode(ctx: Context, args: Args) -> None:
    """Leave the current mode (from exec mode: end the session)."""
    if ctx.mode in SUB_MODES:
        ctx.enter(Mode.CONFIG)
    elif ctx.mode == Mode.CONFIG:
        ctx.enter(Mode.PRIV_EXEC)
    else:
        ctx.closed = True


@command("end", modes=CONFIG_MODES)
def end(ctx: Context, args: Args) -> None:
    """Return to privileged exec mode."""
    ctx.enter(Mode.PRIV_EXEC)


@command("virtual-router <name:VRNAME>", modes={Mode.PRIV_EXEC, Mode.CONFIG})
def virtual_router(ctx: Context, args: Args) -> None:
    """Switch to the context of a virtual router (configuration mode creates it)."""
    name = args.text("name")
    if ctx.mode == Mode.CONFIG:
        if not ctx.config.has_virtual_router(name):
            ctx.commit(ctx.config.with_virtual_router(VirtualRouter(name)))
    elif name != DEFAULT_VR and not ctx.config.mentions_virtual_router(name):
        raise CommandError(
            f"Unknown virtual router {name} (create it in configuration mode)", at="name"
        )
    ctx.vr = name


@command("no virtual-router <name:VRNAME>", modes={Mode.CONFIG})
def no_virtual_router(ctx: Context, args: Args) -> None:
    """Remove a virtual router's configuration and its tunnel interfaces."""
    name = args.text("name")
    if name == DEFAULT_VR:
        raise CommandError("The default virtual router cannot be removed", at="name")
    if name == ctx.vr:
        raise CommandError("Leave the virtual router first (virtual-router default)", at="name")
    if not ctx.config.has_virtual_router(name):
        raise CommandError(f"Unknown virtual router {name}", at="name")
    ctx.commit(ctx.config.without_virtual_router(name))


@command("do <command:LINE>@1-", modes=CONFIG_MODES, filterable=True)
def do(ctx: Context, args: Args) -> None:
    """Run a show, clear or write command from a configuration mode."""
    ctx.run_operational(ctx, args.tokens("command"))


@command("write [memory]", modes=OPERATIONAL_MODES, operational=True)
def write_memory(ctx: Context, args: Args) -> None:
    """Save the running configuration to the startup file."""
    try:
        path = ctx.gateway.write_memory()
    except OSError as exc:
        raise CommandError(f"Cannot save the configuration: {exc.strerror or exc}") from exc
    ctx.print(f"Configuration saved to {path}")


@command(
    "copy running-configuration startup-configuration",
    modes=OPERATIONAL_MODES,
    operational=True,
)
def copy_running_startup(ctx: Context, args: Args) -> None:
    """Save the running configuration to the startup file (IOS spelling of write memory)."""
    write_memory(ctx, args)


@command(
    "write terminal",
    modes=OPERATIONAL_MODES,
    operational=True,
    filterable=True,
    help={"terminal": "Print the running configuration"},
)
def write_terminal(ctx: Context, args: Args) -> None:
    """Print the running configuration (as show configuration)."""
    ctx.print(render(ctx.config).rstrip("\n"))


@command(
    "terminal length <lines:0-512>",
    modes={Mode.USER_EXEC, Mode.PRIV_EXEC},
    operational=True,
    help={"terminal": "Terminal settings"},
)
def terminal_length(ctx: Context, args: Args) -> None:
    """Accepted for habit's sake: the CLI never pages its output."""


_STATES = "|".join(state.value for state in TunnelState)


@command(
    f"ipsec clear sa {{all|tunnel <tunnel:TUNNEL>|state {{{_STATES}}}=state}} [phase {{1|2}}=phase]",
    modes=OPERATIONAL_MODES,
    operational=True,
    help={"tunnel": "SAs of one tunnel interface", **PHASE_HELP},
)
def clear_sa(ctx: Context, args: Args) -> None:
    """Reinitialize ISAKMP/IKE (phase 1) and/or IPsec (phase 2) SAs (SPEC 1.1)."""
    vr: str | None = None if ctx.vr == DEFAULT_VR else ctx.vr
    selector: SaSelector
    if args.has("all"):
        selector = "all"
    elif (state := args.opt_text("state")) is not None:
        selector = ("state", TunnelState(state))
    else:
        name = args.text("tunnel")
        tunnel = ctx.config.tunnel(name)
        if tunnel is None:
            raise CommandError(f"Unknown tunnel interface ipsec:{name}", at="tunnel")
        selector, vr = ("tunnel", name), tunnel.transport_vr
    cleared = ctx.gateway.clear_sa(vr, selector, args.opt_number("phase"))
    ctx.print(f"{cleared} SA{'' if cleared == 1 else 's'} cleared")


@command("no ipsec clear <words:LINE>@0-", modes=OPERATIONAL_MODES, hidden=True)
def no_clear_sa(ctx: Context, args: Args) -> None:
    """`ipsec clear sa` is an action, not a setting: it has no `no` form (guide)."""
    raise CommandError("There is no 'no' form of 'ipsec clear sa'")
