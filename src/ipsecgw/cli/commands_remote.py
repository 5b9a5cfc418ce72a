"""Remote-access configuration (issue 16): tunnel profile and RADIUS server modes,
address pools, local users and `aaa authentication xauth`.

The fields of a tunnel profile and of a RADIUS server are settings tables
(`cli.settings`); what is not one field (the local endpoint, the repeatable
`local-network`, the secrets with their masked forms) is a command here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..config.model import DH_GROUPS, TRANSFORMS
from ..config.remote_access import (
    DEFAULT_ACCOUNTING_INTERVAL,
    DEFAULT_PROFILE_MTU,
    DEFAULT_PROFILE_TRANSFORMS,
    PROFILE_AGGRESSIVE_MODES,
    PROFILE_MODE_CONFIGS,
    LocalPool,
    LocalUser,
    ProfileIdentity,
    ProfileIdentityKind,
    RadiusRole,
    RadiusServerConfig,
    RemoteAccess,
    TunnelProfile,
    XauthMethod,
)
from .commands_config import choice
from .context import Context
from .helptext import GROUP_HELP
from .settings import Place, Setting, number, register, text
from .tree import TREE, Args, CommandError, Mode
from .types import ArgError, parse_ipv4

command = TREE.command
CONFIG = {Mode.CONFIG}
PROFILE_MODE = {Mode.CONFIG_TUNNEL_PROFILE}
RADIUS_MODE = {Mode.CONFIG_RADIUS}
#: An address pool may hold at most this many addresses (a /16).
MAX_POOL_SIZE = 65536


def _ra(ctx: Context) -> RemoteAccess:
    return ctx.current.remote_access


def _commit(ctx: Context, ra: RemoteAccess) -> None:
    ctx.commit(replace(ctx.current, remote_access=ra))


def _profile(ctx: Context) -> TunnelProfile:
    assert isinstance(ctx.target, str)
    profile = _ra(ctx).profile(ctx.target)
    if profile is None:
        raise CommandError(f"Tunnel profile {ctx.target} no longer exists")
    return profile


def _radius(ctx: Context) -> RadiusServerConfig:
    assert isinstance(ctx.target, str)
    role, _, address = ctx.target.partition(" ")
    server = _ra(ctx).radius_server(choice(role, ("authentication", "accounting")), address,
                                    ctx.vr)
    if server is None:
        raise CommandError(f"RADIUS {ctx.target} server no longer exists")
    return server


PROFILE = Place(get=_profile, put=lambda ctx, p: _commit(ctx, _ra(ctx).with_profile(p)))
AAA = Place(get=_ra, put=_commit)
RADIUS = Place(get=_radius, put=lambda ctx, s: _commit(ctx, _ra(ctx).with_radius_server(s)))

# -- global commands -----------------------------------------------------------


@command("ipsec tunnel-profile <name:PROFILE>", modes=CONFIG,
         help={"tunnel-profile": "Remote-access (dynamic subscriber) tunnel profile"})
def tunnel_profile(ctx: Context, args: Args) -> None:
    """Create or edit a tunnel profile for remote-access clients."""
    name = args.text("name")
    if _ra(ctx).profile(name) is None:
        _commit(ctx, _ra(ctx).with_profile(TunnelProfile(name)))
    ctx.enter(Mode.CONFIG_TUNNEL_PROFILE, name)


@command("no ipsec tunnel-profile <name:PROFILE>", modes=CONFIG,
         help={"tunnel-profile": "Remote-access (dynamic subscriber) tunnel profile"})
def no_tunnel_profile(ctx: Context, args: Args) -> None:
    """Remove a tunnel profile (its subscribers are logged out)."""
    name = args.text("name")
    if _ra(ctx).profile(name) is None:
        raise CommandError(f"Unknown tunnel profile {name}", at="name")
    _commit(ctx, _ra(ctx).without_profile(name))


_POOL_HELP = {"local": "Local settings", "pool": "Address pool for remote-access clients",
              "<first>": "First address of the pool", "<last>": "Last address of the pool"}


@command("ip local pool <name:POOL> <first:IPV4> <last:IPV4>", modes=CONFIG, help=_POOL_HELP)
def local_pool(ctx: Context, args: Args) -> None:
    """Define (or redefine) an address pool from FIRST to LAST."""
    first, last = args.text("first"), args.text("last")
    low, high = int(ipaddress.IPv4Address(first)), int(ipaddress.IPv4Address(last))
    if low > high:
        raise CommandError(f"The first address {first} is above the last {last}", at="last")
    if high - low + 1 > MAX_POOL_SIZE:
        raise CommandError(f"A pool holds at most {MAX_POOL_SIZE} addresses", at="last")
    _commit(ctx, _ra(ctx).with_pool(LocalPool(args.text("name"), first, last)))


@command("no ip local pool <name:POOL> [<first:IPV4> <last:IPV4>]", modes=CONFIG,
         help=_POOL_HELP)
def no_local_pool(ctx: Context, args: Args) -> None:
    """Remove an address pool no profile uses (its range, if given, must match)."""
    name = args.text("name")
    pool = _ra(ctx).pool(name)
    if pool is None:
        raise CommandError(f"Unknown pool {name}", at="name")
    first = args.opt_text("first")
    if first is not None and (first, args.text("last")) != (pool.first, pool.last):
        raise CommandError(f"Pool {name} is {pool.first} {pool.last}", at="first")
    users = _ra(ctx).profiles_using_pool(name)
    if users:
        raise CommandError(f"Pool {name} is in use by tunnel profile {', '.join(users)}",
                           at="name")
    _commit(ctx, _ra(ctx).without_pool(name))


_USER_HELP = {"username": "Local user (XAUTH method local)",
              "password": "Set the user's password",
              "masked-password": "The password in masked form (as show configuration prints it)"}


@command("username <name:USERNAME> {password <secret:PASSWORD>|masked-password <secret:MASKED>}",
         modes=CONFIG, help=_USER_HELP)
def username(ctx: Context, args: Args) -> None:
    """Add a local user or change its password (shown and saved only masked)."""
    _commit(ctx, _ra(ctx).with_user(LocalUser(args.text("name"), args.text("secret"))))


@command("no username <name:USERNAME> [password <secret:PASSWORD>|masked-password "
         "<secret:MASKED>]", modes=CONFIG, help=_USER_HELP)
def no_username(ctx: Context, args: Args) -> None:
    """Remove a local user (a password, if given, must be the configured one)."""
    name = args.text("name")
    user = _ra(ctx).user(name)
    if user is None:
        raise CommandError(f"Unknown user {name}", at="name")
    typed = args.opt_text("secret")
    if typed is not None and typed != user.password:
        raise CommandError("Not the configured password", at="secret")
    _commit(ctx, _ra(ctx).without_user(name))


_RADIUS_HELP = {"radius": "RADIUS servers", "authentication": "Authentication (XAUTH) server",
                "accounting": "Accounting server", "server": "A server, by address"}


@command("radius {authentication|accounting}=role server <address:IPV4>", modes=CONFIG,
         help=_RADIUS_HELP)
def radius_server(ctx: Context, args: Args) -> None:
    """Create or edit a RADIUS server, reached from the current VR (servers are
    asked in the order they were created)."""
    role: RadiusRole = choice(args.text("role"), ("authentication", "accounting"))
    address = args.text("address")
    if _ra(ctx).radius_server(role, address, ctx.vr) is None:
        _commit(ctx, _ra(ctx).with_radius_server(RadiusServerConfig(role, address, vr=ctx.vr)))
    ctx.enter(Mode.CONFIG_RADIUS, f"{role} {address}")


@command("no radius {authentication|accounting}=role server <address:IPV4>", modes=CONFIG,
         help=_RADIUS_HELP)
def no_radius_server(ctx: Context, args: Args) -> None:
    """Remove a RADIUS server (of the current VR)."""
    role: RadiusRole = choice(args.text("role"), ("authentication", "accounting"))
    address = args.text("address")
    if _ra(ctx).radius_server(role, address, ctx.vr) is None:
        raise CommandError(f"No RADIUS {role} server {address} in virtual router {ctx.vr}",
                           at="address")
    _commit(ctx, _ra(ctx).without_radius_server(role, address, ctx.vr))


_AAA_HELP = {"aaa": "Authentication, authorization and accounting",
             "authentication": "Authentication methods",
             "xauth": "How XAUTH users are checked (in order; the next only if one is unavailable)",
             "radius": "The RADIUS authentication servers", "local": "The local users"}


@command("aaa authentication xauth {radius|local}=method@1-2", modes=CONFIG, help=_AAA_HELP)
def aaa_xauth(ctx: Context, args: Args) -> None:
    """Set the XAUTH methods; the second is tried only when the first cannot answer."""
    methods: list[XauthMethod] = [choice(m, ("radius", "local")) for m in args.texts("method")]
    if len(set(methods)) != len(methods):
        raise CommandError(f"Method {methods[0]} listed twice", at=args.tokens("method")[1])
    _commit(ctx, replace(_ra(ctx), xauth_methods=tuple(methods)))


@command("no aaa authentication xauth [{radius|local}=method@1-2]", modes=CONFIG,
         help=_AAA_HELP)
def no_aaa_xauth(ctx: Context, args: Args) -> None:
    """Restore the default XAUTH method (local)."""
    typed = tuple(args.texts("method"))
    if typed and typed != _ra(ctx).xauth_methods:
        raise CommandError(f"The configured methods are {' '.join(_ra(ctx).xauth_methods)}",
                           at=args.tokens("method")[0])
    _commit(ctx, replace(_ra(ctx), xauth_methods=RemoteAccess().xauth_methods))


register(AAA, CONFIG, [
    Setting("aaa user accounting interval", "<minutes:10-1440>", "accounting_interval",
            DEFAULT_ACCOUNTING_INTERVAL, number("minutes"),
            "Send each subscriber's RADIUS Interim-Update this often (unless its "
            "Access-Accept names an Acct-Interim-Interval).",
            f"Send Interim-Updates every {DEFAULT_ACCOUNTING_INTERVAL} minutes (the default).",
            help={"aaa": "Authentication, authorization and accounting",
                  "user": "Subscriber (user) settings", "accounting": "RADIUS accounting",
                  "interval": "Time between Interim-Updates of a subscriber",
                  "<minutes>": "Minutes between Interim-Updates"}),
])

# -- secrets with a masked form (the profile's group key, a RADIUS server's key) -----


def _secret_commands(place: Place, field: str, word: str, modes: set[Mode], what: str) -> None:
    def put(ctx: Context, secret: str | None) -> None:
        place.put(ctx, replace(place.get(ctx), **{field: secret}))

    def set_key(ctx: Context, args: Args) -> None:
        put(ctx, args.text("secret"))

    def no_key(ctx: Context, args: Args) -> None:
        typed = args.opt_text("secret")
        if typed is not None and typed != getattr(place.get(ctx), field):
            raise CommandError("Not the configured key", at="secret")  # never echo either
        put(ctx, None)

    set_key.__doc__ = f"Set the {what} (shown and saved only masked)."
    no_key.__doc__ = f"Remove the {what} (a key given must be the configured one)."
    command(f"{word} <secret:SECRET>", modes=modes, help={word: f"Set the {what}"})(set_key)
    command("masked-key <secret:MASKED>", modes=modes,
            help={"masked-key": f"Set the {what} from its masked form"})(set_key)
    command(f"no {{{word} [<secret:SECRET>]|masked-key [<secret:MASKED>]}}", modes=modes,
            help={word: f"Remove the {what}", "masked-key": f"Remove the {what}"})(no_key)


_secret_commands(PROFILE, "psk", "pre-share", PROFILE_MODE, "group pre-shared key")
_secret_commands(RADIUS, "key", "key", RADIUS_MODE, "shared secret of the server")

register(RADIUS, RADIUS_MODE, [
    Setting("udp-port", "<port:1-65535>", "udp_port", None, number("port"),
            "Set the server's UDP port.", "Use the standard port (1812, accounting 1813).",
            help={"udp-port": "UDP port of the server"}),
    Setting("timeout", "<seconds:1-60>", "timeout", 3, number("seconds"),
            "Seconds to wait for an answer before sending again.",
            "Wait 3 seconds (the default).", help={"timeout": "Seconds to wait for an answer"}),
    Setting("retransmit", "<count:0-10>", "retransmit", 3, number("count"),
            "How many times to send again before asking the next server.",
            "Send again 3 times (the default).",
            help={"retransmit": "Times to send again before the next server"}),
])

# -- tunnel profile mode ---------------------------------------------------------

_ID_KINDS: dict[str, ProfileIdentityKind] = {
    "key-id": "key-id", "domain-name": "domain-name", "user-fqdn": "user-fqdn",
    "address": "address", "distinguished-name": "asn1-dn",
}


def _identity_syntax(value: str) -> str:
    return (f"{{key-id <value:{value}>|domain-name <value:{value}>|user-fqdn <value:{value}>"
            f"|ip address <value:{value}>|distinguished-name <value:{value}>}}")


_ID_HELP = {"key-id": "Key identifier (ID_KEY_ID): the group name of Cisco-style clients",
            "domain-name": "Fully qualified domain name", "user-fqdn": "user@domain",
            "ip": "An IPv4 address", "address": "An IPv4 address",
            "distinguished-name": "X.500 distinguished name (certificates)"}


def _identity_reader(wildcards: bool) -> Callable[[Context, Args], ProfileIdentity]:
    def read(ctx: Context, args: Args) -> ProfileIdentity:
        kind = next(k for word, k in _ID_KINDS.items() if args.has(word))
        value = args.text("value")
        if "*" in value and not wildcards:
            raise CommandError("The local identity cannot hold a '*' wildcard", at="value")
        if kind == "address" and "*" not in value:
            try:
                value = str(parse_ipv4(value))
            except ArgError as exc:
                raise CommandError(str(exc), at="value") from exc
        return ProfileIdentity(kind, value)

    return read


def _transforms(ctx: Context, args: Args) -> tuple[str, ...]:
    transforms = args.texts("transform")
    for index, transform in enumerate(transforms):
        if transform in transforms[:index]:
            raise CommandError(f"Transform {transform} listed more than once",
                               at=args.tokens("transform")[index])
    return tuple(transforms)


def _pool(ctx: Context, args: Args) -> str:
    name = args.text("name")
    if _ra(ctx).pool(name) is None:
        raise CommandError(f"Unknown pool {name} (define it with ip local pool)", at="name")
    return name


def _one_of(name: str, choices: tuple[Any, ...]) -> Callable[[Context, Args], object]:
    return lambda ctx, args: choice(args.text(name), choices)


_GROUPS = "|".join(str(g) for g in DH_GROUPS)
_ORDER_HELP = {"primary": "The server asked first", "secondary": "The server asked second"}
_TRANSFORMS = "|".join(TRANSFORMS)

register(PROFILE, PROFILE_MODE, [
    Setting("ike peer-identity", _identity_syntax("PATTERN"), "peer_identity", None,
            _identity_reader(True),
            "Accept clients whose phase 1 identity matches ('*' matches any characters).",
            "Accept any identity.",
            help={"ike": "Phase 1 settings", "peer-identity": "Identity clients must have",
                  **_ID_HELP}),
    Setting("ike local-identity", _identity_syntax("IDTEXT"), "local_identity", None,
            _identity_reader(False), "Set the identity this router sends in phase 1.",
            "Send the local endpoint address as identity.",
            help={"ike": "Phase 1 settings", "local-identity": "Identity this router sends",
                  **_ID_HELP}),
    Setting("aggressive-mode", f"{{{'|'.join(PROFILE_AGGRESSIVE_MODES)}}}=policy",
            "aggressive_mode", "accepted", _one_of("policy", PROFILE_AGGRESSIVE_MODES),
            "Accept Aggressive Mode (accepted), require it, or refuse it (none).",
            "Accept Main and Aggressive Mode (the default)."),
    Setting("transform", f"{{{_TRANSFORMS}}}=transform@1-6", "transforms",
            DEFAULT_PROFILE_TRANSFORMS, _transforms,
            "Set the phase 2 transforms, first preferred (up to six).",
            f"Use the default transform ({DEFAULT_PROFILE_TRANSFORMS[0]}).",
            help={"transform": "Phase 2 transforms of subscribers (up to six)"}),
    Setting("pfs group", f"{{{_GROUPS}}}=group", "pfs_group", None, number("group"),
            "Use perfect forward secrecy with this Diffie-Hellman group.",
            "Negotiate phase 2 without PFS.", help={"pfs": "Perfect forward secrecy",
                                                     **GROUP_HELP}),
    Setting("lifetime seconds", "<seconds:10-864000>", "lifetime_seconds", None,
            number("seconds"), "Set the IPsec SA lifetime in seconds.",
            "Use the global ipsec lifetime.", help={"lifetime": "IPsec SA lifetime"}),
    Setting("lifetime kilobytes", "<kilobytes:1-4294967295>", "lifetime_kilobytes", None,
            number("kilobytes"), "Set the IPsec SA lifetime in kilobytes.",
            "Use the global ipsec lifetime.", help={"lifetime": "IPsec SA lifetime"}),
    Setting("ip pool", "<name:POOL>", "pool", None, _pool,
            "Lend client addresses from this pool (unless RADIUS gives one).",
            "Lend no addresses from a pool.",
            help={"ip": "IP settings of subscribers", "pool": "Address pool"}),
    Setting("dns primary", "<address:IPV4>", "dns_primary", None, text("address"),
            "Give clients this DNS server first.", "Give no primary DNS server.",
            help={"dns": "DNS servers given to clients", **_ORDER_HELP}),
    Setting("dns secondary", "<address:IPV4>", "dns_secondary", None, text("address"),
            "Give clients this DNS server second.", "Give no secondary DNS server.",
            help={"dns": "DNS servers given to clients", **_ORDER_HELP}),
    Setting("wins primary", "<address:IPV4>", "wins_primary", None, text("address"),
            "Give clients this WINS (NBNS) server first.", "Give no primary WINS server.",
            help={"wins": "WINS (NetBIOS name) servers given to clients", **_ORDER_HELP}),
    Setting("wins secondary", "<address:IPV4>", "wins_secondary", None, text("address"),
            "Give clients this WINS (NBNS) server second.", "Give no secondary WINS server.",
            help={"wins": "WINS (NetBIOS name) servers given to clients", **_ORDER_HELP}),
    Setting("domain-suffix", "<name:FQDN>", "domain_suffix", None, text("name"),
            "Give clients this default DNS domain.", "Give no default domain.",
            help={"domain-suffix": "Default DNS domain given to clients"}),
    Setting("xauth", "{required|none}=xauth", "xauth", True,
            lambda ctx, args: args.text("xauth") == "required",
            "Require XAUTH user authentication (required, the default) or not (none).",
            "Require XAUTH (the default).",
            help={"xauth": "XAUTH user authentication (RADIUS or local users)",
                  "required": "Clients must log in with a user name and password",
                  "none": "The group key alone admits a client"}),
    Setting("mode-config", f"{{{'|'.join(PROFILE_MODE_CONFIGS)}}}=how", "mode_config", "pull",
            _one_of("how", PROFILE_MODE_CONFIGS),
            "Give clients their address when they ask (pull) or push it after XAUTH (push).",
            "Answer the clients' Mode Config requests (pull, the default).",
            help={"mode-config": "How clients get their address and servers (Mode Config)",
                  "pull": "Answer the client's request (vpnc; strongSwan by default)",
                  "push": "Send it after XAUTH (clients that wait for it: strongSwan "
                          "with pull = no)"}),
    Setting("max-interfaces", "<count:1-100000>", "max_interfaces", 0, number("count"),
            "Accept at most this many subscribers at once.", "Accept any number.",
            help={"max-interfaces": "Most subscribers of this profile at once"}),
    Setting("tunnel mtu", "<mtu:576-9216>", "mtu", DEFAULT_PROFILE_MTU, number("mtu"),
            "Set the MTU of the subscribers' tunnel interfaces.",
            f"Use an MTU of {DEFAULT_PROFILE_MTU} (the default).",
            help={"tunnel": "Subscriber tunnel interface settings"}),
])

_ENDPOINT_HELP = {"local-endpoint": "Where clients connect (a local address)",
                  "<address>": "Local address clients connect to"}


@command("local-endpoint <address:IPV4> [transport-virtual-router <transport:VRNAME>]",
         modes=PROFILE_MODE, help=_ENDPOINT_HELP)
def profile_local_endpoint(ctx: Context, args: Args) -> None:
    """Accept clients on this address, in this transport VR (default: the current VR)."""
    PROFILE.put(ctx, replace(_profile(ctx), local_address=args.text("address"),
                             transport_vr=args.opt_text("transport") or ctx.vr))


@command("no local-endpoint [<address:IPV4> [transport-virtual-router <transport:VRNAME>]]",
         modes=PROFILE_MODE, help=_ENDPOINT_HELP)
def no_profile_local_endpoint(ctx: Context, args: Args) -> None:
    """Accept no clients (an address, if given, must be the configured one)."""
    profile = _profile(ctx)
    typed = args.opt_text("address")
    if typed is not None and typed != profile.local_address:
        raise CommandError(f"The configured local-endpoint is not {typed}", at="address")
    PROFILE.put(ctx, replace(profile, local_address=None,
                             transport_vr=TunnelProfile(profile.name).transport_vr))


_NETWORK_HELP = {"local-network": "A network clients reach through the tunnel (split tunnel)"}


@command("local-network <prefix:PREFIX>", modes=PROFILE_MODE, help=_NETWORK_HELP)
def profile_local_network(ctx: Context, args: Args) -> None:
    """Add a network for clients to reach (repeat for several; none: all traffic)."""
    profile = _profile(ctx)
    prefix = args.text("prefix")
    if prefix not in profile.local_networks:
        PROFILE.put(ctx, replace(profile, local_networks=(*profile.local_networks, prefix)))


@command("no local-network [<prefix:PREFIX>]", modes=PROFILE_MODE, help=_NETWORK_HELP)
def no_profile_local_network(ctx: Context, args: Args) -> None:
    """Remove one local network, or all of them (clients then send all traffic)."""
    profile = _profile(ctx)
    prefix = args.opt_text("prefix")
    if prefix is None:
        kept: tuple[str, ...] = ()
    elif prefix not in profile.local_networks:
        raise CommandError(f"No local-network {prefix} in this profile", at="prefix")
    else:
        kept = tuple(n for n in profile.local_networks if n != prefix)
    PROFILE.put(ctx, replace(profile, local_networks=kept))

