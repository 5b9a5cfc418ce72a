"""render(config) loaded back through the command tree gives the same config."""

from __future__ import annotations

import ipaddress
import string
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from ipsecgw.cli.loader import load_config_text
from ipsecgw.config.model import (
    AGGRESSIVE_MODES,
    AUTHENTICATIONS,
    DEFAULT_VR,
    DH_GROUPS,
    ENCRYPTIONS,
    HASHES,
    TRANSFORMS,
    Dpd,
    Identity,
    IkePolicyRule,
    Lifetime,
    LocalEndpoint,
    PreSharedKey,
    RunningConfig,
    TransformSet,
    TunnelInterface,
    VirtualRouter,
    VrOptions,
)
from ipsecgw.config.render import render

_ALNUM = string.ascii_letters + string.digits
names = st.builds(str.__add__, st.sampled_from(_ALNUM + "_"), st.text(_ALNUM + "_.-", max_size=15))
vr_names = names.filter(lambda n: n != DEFAULT_VR)
ipv4 = st.integers(1, 2**32 - 2).map(lambda n: str(ipaddress.IPv4Address(n)))
prefixes = st.tuples(ipv4, st.integers(0, 32)).map(
    lambda p: str(ipaddress.IPv4Network(f"{p[0]}/{p[1]}", strict=False))
)
labels = st.builds(
    lambda a, b, c: a + b + c,
    st.sampled_from(string.ascii_lowercase),
    st.text(string.ascii_lowercase + string.digits + "-", max_size=8),
    st.sampled_from(string.ascii_lowercase + string.digits),
)
fqdns = st.lists(labels, min_size=1, max_size=4).map(".".join)
users = st.text(string.ascii_lowercase + string.digits + "._%+-", min_size=1, max_size=10)
user_fqdns = st.tuples(users, fqdns).map(lambda u: f"{u[0]}@{u[1]}")
printable = st.text(
    st.characters(exclude_categories=("C", "Z"), include_characters=' "\\'), min_size=1, max_size=40
)
identities = st.one_of(
    ipv4.map(lambda v: Identity("address", v)),
    fqdns.map(lambda v: Identity("domain-name", v)),
    user_fqdns.map(lambda v: Identity("user-fqdn", v)),
    printable.map(lambda v: Identity("asn1-dn", v)),
)
lifetimes = st.builds(Lifetime, st.integers(10, 864000), st.integers(1, 2**32 - 1))
dpds = st.builds(
    Dpd,
    enabled=st.booleans(),
    idle=st.integers(1, 86400),
    silence=st.integers(1, 86400),
    retry=st.integers(1, 3600),
    retries=st.integers(1, 100),
)
options = st.builds(VrOptions, tx_invalid_cookie=st.booleans(), nat_t=st.booleans(), dpd=dpds)


@st.composite
def configs(draw: st.DrawFn) -> RunningConfig:
    config = RunningConfig(hostname=draw(names), lifetime=draw(lifetimes))
    for name in draw(st.lists(names, unique=True, max_size=3)):
        transforms = draw(
            st.lists(st.sampled_from(TRANSFORMS), min_size=1, max_size=6, unique=True)
        )
        config = config.with_transform_set(TransformSet(name, tuple(transforms)))
    for priority in draw(st.lists(st.integers(1, 10), unique=True, max_size=3)):
        rule = IkePolicyRule(
            priority,
            authentication=draw(st.sampled_from(AUTHENTICATIONS)),
            encryption=draw(st.sampled_from(ENCRYPTIONS)),
            hash=draw(st.sampled_from(HASHES)),
            group=draw(st.sampled_from(DH_GROUPS)),
            lifetime_seconds=draw(st.integers(10, 86400)),
            aggressive_mode=draw(st.sampled_from(AGGRESSIVE_MODES)),
        )
        config = config.with_ike_policy_rule(rule)
    peers = draw(st.lists(st.one_of(ipv4, fqdns, user_fqdns), unique=True, max_size=3))
    for peer in peers:
        config = config.with_pre_shared_key(PreSharedKey(peer, draw(st.none() | printable)))
    vrs = [DEFAULT_VR, *draw(st.lists(vr_names, unique=True, max_size=2))]
    for vr in vrs:
        addresses = draw(st.lists(ipv4, unique=True, max_size=2))
        endpoints = tuple(sorted(LocalEndpoint(a, draw(st.sampled_from(vrs))) for a in addresses))
        config = config.with_virtual_router(VirtualRouter(vr, draw(options), endpoints))
    set_names = [ts.name for ts in config.transform_sets]
    for name in draw(st.lists(names, unique=True, max_size=3)):
        tunnel = TunnelInterface(
            name,
            vr=draw(st.sampled_from(vrs)),
            transport_vr=draw(st.sampled_from(vrs) | vr_names),
            source=draw(st.none() | ipv4),
            destination=draw(st.none() | ipv4 | fqdns),
            transform_set=draw(st.none() | st.sampled_from(set_names)) if set_names else None,
            pfs_group=draw(st.none() | st.sampled_from(DH_GROUPS)),
            lifetime=draw(st.none() | lifetimes),
            local_identity=draw(st.none() | identities),
            peer_identity=draw(st.none() | identities),
            local_network=draw(prefixes),
            remote_network=draw(prefixes),
            mtu=draw(st.none() | st.integers(576, 9216)),
            ip_address=draw(
                st.none() | st.tuples(ipv4, st.integers(1, 32)).map(lambda a: f"{a[0]}/{a[1]}")
            ),
            responder_only=draw(st.booleans()),
            shutdown=draw(st.booleans()),
            description=draw(st.none() | printable),
        )
        config = config.with_tunnel(tunnel)
    return config


@settings(max_examples=120, deadline=None)
@given(configs())
def test_render_then_load_gives_the_same_config(config: RunningConfig) -> None:
    text = render(config)
    loaded, errors = load_config_text(text)
    assert errors == [], text
    assert loaded == config, text
    assert render(loaded) == text


@settings(max_examples=50, deadline=None)
@given(configs())
def test_rendered_config_loads_without_indentation(config: RunningConfig) -> None:
    flat = "\n".join(line.strip() for line in render(config).splitlines())
    loaded, errors = load_config_text(flat)
    assert errors == []
    assert loaded == config


@settings(max_examples=50, deadline=None)
@given(configs())
def test_secrets_never_in_clear_text(config: RunningConfig) -> None:
    text = render(config)
    # The same configuration without any secret: a generated secret may
    # happen to be part of a name or keyword ("ah-hma" of ah-hmac-md5), and
    # may appear exactly as often as it does there, never more.
    keyless = config
    for key in config.pre_shared_keys:
        keyless = keyless.with_pre_shared_key(PreSharedKey(key.peer, None))
    text_without_secrets = render(keyless)
    for key in config.pre_shared_keys:
        if key.secret is not None and len(key.secret) >= 6:
            assert text.count(key.secret) <= text_without_secrets.count(key.secret), key.peer


def test_defaults_render_minimally() -> None:
    assert render(RunningConfig()) == "hostname host1\n"


def test_render_example() -> None:
    config = RunningConfig(hostname="gw").with_transform_set(
        TransformSet("ts", ("esp-aes128-hmac-sha", "esp-3des-hmac-md5"))
    )
    config = config.with_ike_policy_rule(IkePolicyRule(1, encryption="3des", hash="sha"))
    config = config.with_pre_shared_key(PreSharedKey("10.0.0.2", "s3cret"))
    default = config.virtual_router(DEFAULT_VR)
    config = config.with_virtual_router(
        replace(default, local_endpoints=(LocalEndpoint("10.0.0.1", DEFAULT_VR),))
    )
    config = config.with_virtual_router(
        VirtualRouter("vr2", VrOptions(tx_invalid_cookie=True, dpd=Dpd(idle=20)))
    )
    config = config.with_tunnel(
        TunnelInterface(
            "siteB",
            source="10.0.0.1",
            destination="10.0.0.2",
            transform_set="ts",
            pfs_group=14,
            local_identity=Identity("asn1-dn", "C=US, O=Example"),
            remote_network="10.2.0.0/24",
        )
    )
    text = render(config)
    masked = text.split("masked-key ")[1].split("\n")[0]
    assert (
        text
        == f"""hostname gw
!
ipsec transform-set ts esp-aes128-hmac-sha esp-3des-hmac-md5
!
ipsec ike-policy-rule 1
 encryption 3des
 hash sha
 exit
!
ipsec key manual pre-share 10.0.0.2
 masked-key {masked}
 exit
!
ipsec local-endpoint 10.0.0.1 transport-virtual-router default
!
interface tunnel ipsec:siteB transport-virtual-router default
 tunnel source 10.0.0.1
 tunnel destination 10.0.0.2
 tunnel transform-set ts
 tunnel pfs group 14
 tunnel local-identity asn1-dn "C=US, O=Example"
 tunnel remote-network 10.2.0.0/24
 exit
!
virtual-router vr2
ipsec option tx-invalid-cookie
ipsec option dpd idle 20
"""
    )
    assert load_config_text(text)[0] == config
