"""subscriber-logins: remote-access logins per second with the gateway as the subscribers' server.

The load generator in site A is N remote-access clients (`--group`,
`--remote-access`: Aggressive Mode with the group name as key-id and the group
key, XAUTH, a Mode Config pull, Quick Mode for the address given <->
0.0.0.0/0), C at a time, aimed once at ipsecgw and once at charon in site B,
each freshly started and configured as the same kind of gateway:

- ipsecgw: one `ipsec tunnel-profile` (group key-id, group key, a pool),
  XAUTH against local users (`aaa authentication xauth local`, one
  `username` per client); each subscriber gets its interface and host route
  in the user-space data plane, as in production.
- strongSwan: one IKEv1 connection, `aggressive = yes`, `remote-1 { auth =
  psk, id = keyid:GROUP }`, `remote-2 { auth = xauth }` (xauth-generic,
  one shared XAUTH secret), `pools` of virtual IPs, `unique = never`; its
  load-test settings otherwise (bench_common.LOAD_CHARON_EXTRA).

The rate is logins completed (IPsec SA up) / (last - first message); the
target's CPU seconds over the run divided by the logins is the cost of one.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import bench_common as bc
from bench_common import Context, Row
from bench_setup_rate import loadgen_command, measure

from ipsecgw.tools import testbed as tb

NAME = "subscriber-logins"
GROUP, GROUP_KEY, PASSWORD = "benchgroup", "bench-group-key", "bench-password"
POOL = ("10.200.0.1", "10.200.15.254")  # 10.200.0.0/20: enough for any run
PROPOSAL, ESP = "aes128-sha1-modp2048", "esp-aes128-hmac-sha"


def ipsecgw_config(users: int) -> str:
    lines = [
        "hostname bench",
        "ipsec ike-policy-rule 1",
        " authentication pre-share",
        " encryption aes128",
        " hash sha",
        " group 14",
        " exit",
        f"ip local pool benchpool {POOL[0]} {POOL[1]}",
        *(f"username user{n} password {PASSWORD}" for n in range(users)),
        "aaa authentication xauth local",
        "ipsec tunnel-profile remote",
        f" local-endpoint {tb.SITE_B_OUTER} transport-virtual-router default",
        f" ike peer-identity key-id {GROUP}",
        f" pre-share {GROUP_KEY}",
        f" transform {ESP}",
        " ip pool benchpool",
        " exit",
    ]
    return "\n".join(lines) + "\n"


def strongswan_conf() -> str:
    return f"""connections {{
  rw {{
    version = 1
    aggressive = yes
    local_addrs = {tb.SITE_B_OUTER}
    proposals = {PROPOSAL}
    pools = benchpool
    unique = never
    rekey_time = 0
    local {{ auth = psk
            id = {tb.SITE_B_OUTER} }}
    remote-1 {{ auth = psk
               id = keyid:{GROUP} }}
    remote-2 {{ auth = xauth }}
    children {{
      rw {{ local_ts = 0.0.0.0/0
           esp_proposals = aes128-sha1
           rekey_time = 0 }} }}
  }}
}}
pools {{ benchpool {{ addrs = 10.200.0.0/20 }} }}
secrets {{
  ike-group {{ id = keyid:{GROUP}
              secret = "{GROUP_KEY}" }}
  xauth-any {{ secret = "{PASSWORD}" }}
}}
"""


def loadgen_args(logins: int, concurrency: int) -> list[str]:
    return loadgen_command(
        logins, concurrency, "--proposal", PROPOSAL, "--esp", ESP, "--group", GROUP,
        "--group-key", GROUP_KEY, "--remote-access", f"user{{n}}:{PASSWORD}")


def strongswan_target(ctx: Context, logins: int, concurrency: int) -> dict[str, Any]:
    # charon refuses to answer Aggressive Mode with a PSK unless told otherwise
    # (the hash it sends can be attacked offline); a group gateway needs it.
    extra = bc.LOAD_CHARON_EXTRA.replace(bc.LOAD_PLUGINS, bc.LOAD_PLUGINS + " xauth-generic") \
        + "  i_dont_care_about_security_and_use_aggressive_mode_psk = yes\n"
    with bc.two_sites() as sites:
        swan = tb.StrongSwan(sites.b, strongswan_conf(), charon_extra=extra,
                             workdir=ctx.subdir("swan"))
        with swan:
            bc.quiet_strongswan(swan)
            swan.start()
            return measure(ctx, sites, bc.charon_pid(swan), loadgen_args(logins, concurrency),
                           logins)


def ipsecgw_target(ctx: Context, logins: int, concurrency: int) -> dict[str, Any]:
    with bc.two_sites() as sites, bc.Ipsecgw(sites.b, ctx.subdir("ipsecgw"),
                                             ipsecgw_config(logins)) as gw:
        result = measure(ctx, sites, gw.pid, loadgen_args(logins, concurrency), logins)
        result["statistics"] = gw.cli("show ipsec statistics", check=False)[-2000:]
        # The generator's Deletes log every subscriber out; removing their TUN
        # devices is the kernel's slow part (one netdev unregister each), so
        # the daemon is stopped only once it has (how long: a detail).
        started = time.monotonic()
        drained = bc.wait_until(lambda: _subscribers(gw) == 0, timeout=60 + logins / 20,
                                interval=1)
        result["logout_s"] = round(time.monotonic() - started, 1) if drained else None
        return result


def _subscribers(gw: bc.Ipsecgw) -> int | None:
    """Subscribers listed by the daemon (None while it is too busy to answer)."""
    try:
        out = gw.cli("show subscribers", check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return None
    return sum(1 for row in out.splitlines()[2:] if row.strip())


def run(ctx: Context) -> list[Row]:
    logins = 500 if ctx.quick else 2000
    concurrency = 50
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for side, fn in (("strongswan", strongswan_target), ("ipsecgw", ipsecgw_target)):
        ctx.log(f"{logins} subscriber logins at {side}, {concurrency} in flight")
        try:
            results[side] = r = fn(ctx, logins, concurrency)
            ctx.log(f"  {r['tunnels_per_s']} logins/s, {r['cpu_ms_per_tunnel']} ms CPU per "
                    f"login, {r['loadgen']['established']} logged in with "
                    f"{r['loadgen']['addresses']} addresses, failures "
                    f"{r['loadgen']['failures'] or 'none'}")
        except Exception as exc:  # one side failing must not hide the other's numbers
            errors[side] = bc.error_text(exc)
            ctx.log(f"  FAILED: {errors[side]}")
    common = {"logins": logins, "concurrency": concurrency, "proposal": PROPOSAL,
              "initiator": "python -m ipsecgw.tools.loadgen --group --remote-access (site A)"}
    return [
        Row(NAME, "logins/s", True, bc.pick(results, "ipsecgw", "tunnels_per_s"),
            bc.pick(results, "strongswan", "tunnels_per_s"),
            {**common, **{f"{side}_detail": r for side, r in results.items()},
             **{f"{side}_error": e for side, e in errors.items()}}),
        Row(f"{NAME}/cpu", "ms CPU/login", False,
            bc.pick(results, "ipsecgw", "cpu_ms_per_tunnel"),
            bc.pick(results, "strongswan", "cpu_ms_per_tunnel"),
            {**common, "what": "target's CPU time during the run / logins completed"}),
    ]
