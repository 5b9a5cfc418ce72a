"""Global configuration commands (SPEC 3.3), in the current virtual-router context."""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from ..config.model import (
    DEFAULT_HOSTNAME,
    MAX_IKE_RULE,
    TRANSFORMS,
    Certificates,
    Dpd,
    IkePolicyRule,
    Lifetime,
    LocalEndpoint,
    PreSharedKey,
    TransformSet,
    TunnelInterface,
    VirtualRouter,
    VrOptions,
)
from .context import Context
from .settings import Place, Setting, register, text
from .tree import TREE, Args, CommandError, Mode

command = TREE.command
CONFIG = {Mode.CONFIG}

#: `ipsec lifetime` and `tunnel lifetime` share their syntax and ranges.
LIFETIME_VALUE = (
    "{seconds <seconds:10-864000> [kilobytes <kilobytes:1-4294967295>]"
    "|kilobytes <kilobytes:1-4294967295>}"
)

_Choice = TypeVar("_Choice", bound=str)


def choice(value: str, choices: tuple[_Choice, ...]) -> _Choice:
    """`value` as the member of `choices` it equals (a keyword the grammar captured)."""
    for candidate in choices:
        if candidate == value:
            return candidate
    raise CommandError(f"Unexpected value {value}")


def lifetime_from(args: Args, current: Lifetime) -> Lifetime:
    """A lifetime command: what is given replaces, what is not keeps `current`."""
    seconds = args.opt_number("seconds")
    kilobytes = args.opt_number("kilobytes")
    return Lifetime(
        seconds if seconds is not None else current.seconds,
        kilobytes if kilobytes is not None else current.kilobytes,
    )


def _vr(ctx: Context) -> VirtualRouter:
    return ctx.config.virtual_router(ctx.vr)


def _set_options(ctx: Context, options: VrOptions) -> None:
    ctx.commit(ctx.config.with_virtual_router(replace(_vr(ctx), options=options)))


ROUTER = Place(get=lambda ctx: ctx.current, put=lambda ctx, config: ctx.commit(config))

register(
    ROUTER,
    CONFIG,
    [
        Setting("hostname", "<name:HOSTNAME>", "hostname", DEFAULT_HOSTNAME, text("name"),
                "Set the router's name.", "Restore the default name."),
        Setting("ipsec lifetime", LIFETIME_VALUE, "lifetime", Lifetime(),
                lambda ctx, args: lifetime_from(args, ctx.config.lifetime),
                "Set the IPsec SA lifetime of tunnels without `tunnel lifetime`.",
                "Restore the default IPsec SA lifetime (28800 s, 102400 KB).",
                help={"lifetime": "Default IPsec SA lifetime"}),
    ],
)


@command(
    "ipsec local-endpoint <address:IPV4> [transport-virtual-router <transport:VRNAME>]",
    modes=CONFIG,
    help={"<address>": "Local address to run IKE on"},
)
def local_endpoint(ctx: Context, args: Args) -> None:
    """Listen for IKE on an address of a transport virtual router (default: this one)."""
    address = args.text("address")
    endpoint = LocalEndpoint(address, args.opt_text("transport") or ctx.vr)
    vr = _vr(ctx)
    kept = [ep for ep in vr.local_endpoints if ep.address != address]
    endpoints = tuple(sorted([*kept, endpoint]))
    ctx.commit(ctx.config.with_virtual_router(replace(vr, local_endpoints=endpoints)))


@command(
    "no ipsec local-endpoint <address:IPV4> [transport-virtual-router <transport:VRNAME>]",
    modes=CONFIG,
)
def no_local_endpoint(ctx: Context, args: Args) -> None:
    """Stop listening on a local endpoint."""
    address = args.text("address")
    vr = _vr(ctx)
    kept = tuple(ep for ep in vr.local_endpoints if ep.address != address)
    if len(kept) == len(vr.local_endpoints):
        raise CommandError(f"No local endpoint {address} in virtual router {ctx.vr}", at="address")
    gone = next(ep for ep in vr.local_endpoints if ep.address == address)
    users = [f"ipsec:{t.name}" for t in ctx.config.tunnels
             if t.source == address and t.transport_vr == gone.transport_vr]
    if users:
        # The tunnels need it (their IKE runs there): remove them, or change
        # their `tunnel source`, first.
        raise CommandError(f"Local endpoint {address} is used by {', '.join(users)}",
                           at="address")
    ctx.commit(ctx.config.with_virtual_router(replace(vr, local_endpoints=kept)))


@command("ipsec option {tx-invalid-cookie|nat-t}=option", modes=CONFIG)
def option(ctx: Context, args: Args) -> None:
    """Enable an IPsec option in this virtual router."""
    options = _vr(ctx).options
    if args.text("option") == "tx-invalid-cookie":
        _set_options(ctx, replace(options, tx_invalid_cookie=True))
    else:
        _set_options(ctx, replace(options, nat_t=True))


@command("no ipsec option {tx-invalid-cookie|nat-t}=option", modes=CONFIG)
def no_option(ctx: Context, args: Args) -> None:
    """Disable an IPsec option in this virtual router."""
    options = _vr(ctx).options
    if args.text("option") == "tx-invalid-cookie":
        _set_options(ctx, replace(options, tx_invalid_cookie=False))
    else:
        _set_options(ctx, replace(options, nat_t=False))


_DPD_TIMERS = ("idle", "silence", "retry", "retries")


_DPD_TIMER_SYNTAX = (
    "{idle <idle:1-86400>|silence <silence:1-86400>"
    "|retry <retry:1-3600>|retries <retries:1-100>}@0-4"
)


@command(f"ipsec option dpd {_DPD_TIMER_SYNTAX}", modes=CONFIG)
def option_dpd(ctx: Context, args: Args) -> None:
    """Enable dead peer detection; timers not given take their defaults."""
    for timer in _DPD_TIMERS:
        if len(args.texts(timer)) > 1:
            raise CommandError(f"'{timer}' given more than once", at=timer)
    default = Dpd()
    dpd = Dpd(
        enabled=True,
        idle=args.opt_number("idle") or default.idle,
        silence=args.opt_number("silence") or default.silence,
        retry=args.opt_number("retry") or default.retry,
        retries=args.opt_number("retries") or default.retries,
    )
    _set_options(ctx, replace(_vr(ctx).options, dpd=dpd))


@command(f"no ipsec option dpd {_DPD_TIMER_SYNTAX}", modes=CONFIG)
def no_option_dpd(ctx: Context, args: Args) -> None:
    """Disable dead peer detection (the timers are kept; timers typed here change nothing)."""
    options = _vr(ctx).options
    _set_options(ctx, replace(options, dpd=replace(options.dpd, enabled=False)))


@command(
    f"ipsec transform-set <name:TSNAME> {{{'|'.join(TRANSFORMS)}}}=transform@1-6",
    modes=CONFIG,
)
def transform_set(ctx: Context, args: Args) -> None:
    """Define (or redefine) a transform set: up to six transforms, first preferred."""
    transforms = args.texts("transform")
    for index, transform in enumerate(transforms):
        if transform in transforms[:index]:
            at = args.tokens("transform")[index]
            raise CommandError(f"Transform {transform} listed more than once", at=at)
    name = args.text("name")
    ctx.commit(ctx.config.with_transform_set(TransformSet(name, tuple(transforms))))


@command(
    f"no ipsec transform-set <name:TSNAME> [{{{'|'.join(TRANSFORMS)}}}=transform@1-6]",
    modes=CONFIG,
)
def no_transform_set(ctx: Context, args: Args) -> None:
    """Remove a transform set that no tunnel uses (its transforms, if given, must match)."""
    name = args.text("name")
    found = ctx.config.transform_set(name)
    if found is None:
        raise CommandError(f"Unknown transform set {name}", at="name")
    typed = tuple(args.texts("transform"))
    if typed and typed != found.transforms:
        raise CommandError(
            f"Transform set {name} is {' '.join(found.transforms)}", at=args.tokens("transform")[0]
        )
    users = ctx.config.tunnels_using_transform_set(name)
    if users:
        raise CommandError(f"Transform set {name} is in use by {', '.join(users)}", at="name")
    ctx.commit(ctx.config.without_transform_set(name))


@command(f"ipsec ike-policy-rule <rule:1-{MAX_IKE_RULE}>", modes=CONFIG)
def ike_policy_rule(ctx: Context, args: Args) -> None:
    """Create or edit an IKE (phase 1) policy rule; lower numbers are tried first."""
    rule = args.number("rule")
    if ctx.config.ike_policy_rule(rule) is None:
        ctx.commit(ctx.config.with_ike_policy_rule(IkePolicyRule(rule)))
    ctx.enter(Mode.CONFIG_IKE_POLICY, rule)


@command(f"no ipsec ike-policy-rule <rule:1-{MAX_IKE_RULE}>", modes=CONFIG)
def no_ike_policy_rule(ctx: Context, args: Args) -> None:
    """Remove an IKE policy rule."""
    rule = args.number("rule")
    if ctx.config.ike_policy_rule(rule) is None:
        raise CommandError(f"Unknown IKE policy rule {rule}", at="rule")
    ctx.commit(ctx.config.without_ike_policy_rule(rule))


@command(
    "ipsec key manual pre-share <peer:PEER>",
    modes=CONFIG,
    help={"key": "Pre-shared keys", "<peer>": "Peer address or identity"},
)
def manual_key(ctx: Context, args: Args) -> None:
    """Create or edit the pre-shared key of a peer."""
    peer = args.text("peer")
    if ctx.config.pre_shared_key(peer) is None:
        ctx.commit(ctx.config.with_pre_shared_key(PreSharedKey(peer)))
    ctx.enter(Mode.CONFIG_MANUAL_KEY, peer)


@command("no ipsec key manual pre-share <peer:PEER>", modes=CONFIG, help={"key": "Pre-shared keys"})
def no_manual_key(ctx: Context, args: Args) -> None:
    """Remove the pre-shared key of a peer."""
    peer = args.text("peer")
    if ctx.config.pre_shared_key(peer) is None:
        raise CommandError(f"No pre-shared key for {peer}", at="peer")
    ctx.commit(ctx.config.without_pre_shared_key(peer))


@command(
    "ipsec certificate local <certificate:PATH> private-key <key:PATH>",
    modes=CONFIG,
    help={
        "certificate": "Certificates for RSA-signature authentication",
        "local": "This router's certificate and private key",
        "<certificate>": "Certificate file (PEM)",
        "private-key": "The certificate's private key",
        "<key>": "RSA private key file (PEM)",
    },
)
def certificate_local(ctx: Context, args: Args) -> None:
    """Set this router's certificate and private key (rsa-sig rules)."""
    certificates = replace(ctx.config.certificates, local_certificate=args.text("certificate"),
                           private_key=args.text("key"))
    ctx.commit(replace(ctx.config, certificates=certificates))


@command("no ipsec certificate local [<certificate:PATH> private-key <key:PATH>]", modes=CONFIG,
         help={"certificate": "Certificates for RSA-signature authentication",
               "local": "This router's certificate and private key",
               "private-key": "The certificate's private key"})
def no_certificate_local(ctx: Context, args: Args) -> None:
    """Remove this router's certificate and private key (the files, if given, must match)."""
    current = ctx.config.certificates
    typed = (args.opt_text("certificate"), args.opt_text("key"))
    if typed[0] is not None and typed != (current.local_certificate, current.private_key):
        raise CommandError("Not the configured certificate and private key", at="certificate")
    certificates = replace(current, local_certificate=None, private_key=None)
    ctx.commit(replace(ctx.config, certificates=certificates))


@command(
    "ipsec certificate ca <certificate:PATH>",
    modes=CONFIG,
    help={"certificate": "Certificates for RSA-signature authentication",
          "ca": "A trusted certification authority", "<certificate>": "CA certificate (PEM)"},
)
def certificate_ca(ctx: Context, args: Args) -> None:
    """Trust a certification authority for peers' certificates."""
    path = args.text("certificate")
    current = ctx.config.certificates
    if path not in current.ca_certificates:
        cas = (*current.ca_certificates, path)
        ctx.commit(replace(ctx.config, certificates=replace(current, ca_certificates=cas)))


@command("no ipsec certificate ca <certificate:PATH>", modes=CONFIG,
         help={"certificate": "Certificates for RSA-signature authentication",
               "ca": "A trusted certification authority", "<certificate>": "CA certificate (PEM)"})
def no_certificate_ca(ctx: Context, args: Args) -> None:
    """Stop trusting a certification authority."""
    path = args.text("certificate")
    current = ctx.config.certificates
    if path not in current.ca_certificates:
        raise CommandError(f"No CA certificate {path}", at="certificate")
    cas = tuple(p for p in current.ca_certificates if p != path)
    ctx.commit(replace(ctx.config, certificates=Certificates(
        current.local_certificate, current.private_key, cas)))


@command(
    "interface tunnel <tunnel:TUNNEL> [transport-virtual-router <transport:VRNAME>]",
    modes=CONFIG,
    help={"tunnel": "Tunnel interface"},
)
def interface_tunnel(ctx: Context, args: Args) -> None:
    """Create or edit an IPsec tunnel interface in this virtual router."""
    name = args.text("tunnel")
    transport = args.opt_text("transport")
    tunnel = ctx.config.tunnel(name)
    if tunnel is None:
        tunnel = TunnelInterface(name, vr=ctx.vr, transport_vr=transport or ctx.vr)
    elif tunnel.vr != ctx.vr:
        raise CommandError(
            f"Interface ipsec:{name} exists in virtual router {tunnel.vr}", at="tunnel"
        )
    elif transport is not None:
        tunnel = replace(tunnel, transport_vr=transport)
    ctx.commit(ctx.config.with_tunnel(tunnel))
    ctx.enter(Mode.CONFIG_IF, name)


@command(
    "no interface tunnel <tunnel:TUNNEL> [transport-virtual-router <transport:VRNAME>]",
    modes=CONFIG,
    help={"tunnel": "Tunnel interface"},
)
def no_interface_tunnel(ctx: Context, args: Args) -> None:
    """Remove a tunnel interface (its SAs are deleted); a transport VR, if given, must match."""
    name = args.text("tunnel")
    tunnel = ctx.config.tunnel(name)
    if tunnel is None:
        raise CommandError(f"Unknown tunnel interface ipsec:{name}", at="tunnel")
    transport = args.opt_text("transport")
    if transport is not None and transport != tunnel.transport_vr:
        raise CommandError(
            f"Interface ipsec:{name} has transport virtual router {tunnel.transport_vr}",
            at="transport",
        )
    ctx.commit(ctx.config.without_tunnel(name))
