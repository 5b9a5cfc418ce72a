"""Show renderers: status snapshots and configuration in, aligned text out.

Pure functions, so the output can be tested without a gateway. Tables put
the name first and the state second (`show ipsec tunnel`: scripts look for
"up" in the second column). SPIs and cookies are hex; secrets never appear.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config.model import DEFAULT_VR, RunningConfig, TunnelInterface, VirtualRouter, VrOptions
from ..status import (
    DpdStatus,
    IkeSaStatus,
    IpsecSaStatus,
    LocalEndpointStatus,
    TunnelState,
    TunnelStatus,
    VrStatistics,
)

#: `show ipsec statistics` labels for the counters the engine reports, in
#: display order; other counters follow with their key as label.
COUNTER_LABELS: dict[str, str] = {
    "messages_received": "Messages received",
    "messages_sent": "Messages sent",
    "retransmits": "Retransmissions",
    "phase1_established": "Phase 1 SAs established",
    "phase1_failed": "Phase 1 negotiations failed",
    "phase2_established": "Phase 2 SAs established",
    "phase2_failed": "Phase 2 negotiations failed",
    "phase1_collisions": "Phase 1 collisions settled",
    "phase2_collisions": "Phase 2 collisions settled",
    "invalid_cookie_sent": "Invalid cookies sent",
    "invalid_cookie_suppressed": "Invalid cookies suppressed",
    "invalid_cookie_received": "Invalid cookies received",
    "unknown_cookie": "Unknown cookie pairs",
    "dpd_sent": "DPD R-U-THERE sent",
    "dpd_ack_received": "DPD R-U-THERE-ACK received",
    "peers_dead": "DPD peers dead",
    "dropped_malformed": "Dropped, malformed",
    "dropped_decrypt_failed": "Dropped, decryption failed",
    "dropped_hash_mismatch": "Dropped, hash mismatch",
    "dropped_unexpected": "Dropped, unexpected",
    "dropped_duplicate": "Dropped, duplicate",
    "dropped_half_open_limit": "Dropped, half-open limit",
    "dropped_unprotected": "Dropped, unprotected",
    "dropped_internal_error": "Dropped, internal error",
    "esp_auth_failed": "ESP dropped, authentication failed",
    "esp_replay": "ESP dropped, replayed",
    "esp_unknown_spi": "ESP dropped, unknown SPI",
    "esp_malformed": "ESP dropped, malformed",
    "esp_pad_error": "ESP dropped, bad padding",
    "esp_policy": "ESP dropped, outside the selectors",
    "esp_no_sa": "ESP not sent, no SA",
    "esp_io_errors": "ESP I/O errors",
    "dropped_unknown_peer": "Dropped, unknown peer (no tunnel or profile)",
    "xauth_succeeded": "XAUTH exchanges succeeded",
    "xauth_failed": "XAUTH exchanges failed",
    "subscribers_refused_max": "Subscribers refused, max-interfaces",
    "subscribers_refused_identity": "Subscribers refused, no profile for the identity",
    "mode_config_unanswered": "Mode Config pushes unanswered",
    "aaa_logins_accepted": "AAA logins accepted",
    "aaa_logins_refused": "AAA logins refused",
    "radius_timeouts": "RADIUS timeouts",
    "subscriber_logins_refused": "Subscriber logins refused",
    "subscribers_up": "Subscribers up",
}


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines
    )


def duration(seconds: float) -> str:
    """0:05:12, or 3d 04:05:06."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02}:{secs:02}" if not days else f"{hours:02}:{minutes:02}:{secs:02}"
    return f"{days}d {clock}" if days else clock


def spi(value: bytes) -> str:
    return "0x" + value.hex()


def cookies(sa: IkeSaStatus) -> str:
    return f"{sa.initiator_cookie.hex()}:{sa.responder_cookie.hex()}"


def config_status(tunnel: TunnelInterface) -> TunnelStatus:
    """What is known of a tunnel that the gateway reports nothing about (yet)."""
    return TunnelStatus(
        name=tunnel.name,
        vr=tunnel.transport_vr,
        state=TunnelState.DISABLED if tunnel.shutdown else TunnelState.DOWN,
        local=tunnel.source or "",
        peer=tunnel.destination or "",
        backup=tunnel.backup_destination,
        transform=tunnel.transform_set or "",
    )


def _uptime(status: TunnelStatus, now: float) -> str:
    if status.state != TunnelState.UP or status.up_since is None:
        return "-"
    return duration(now - status.up_since)


def tunnels(statuses: Sequence[TunnelStatus], now: float) -> str:
    if not statuses:
        return "No IPsec tunnels"
    several_vrs = len({s.vr for s in statuses}) > 1
    headers = ["Tunnel", "State", "Local", "Peer", "Transform", "Uptime"]
    rows = []
    for s in statuses:
        row = [
            "ipsec:" + s.name,
            s.state.value,
            s.local or "-",
            s.peer or "-",
            s.transform or "-",
            _uptime(s, now),
        ]
        rows.append([*row, s.vr] if several_vrs else row)
    return table([*headers, "Transport VR"] if several_vrs else headers, rows)


def tunnel_summary(counts: dict[TunnelState, int]) -> str:
    width = max(len(str(n)) for n in [*counts.values(), 0])
    lines = [f"IPsec tunnels: {sum(counts.values())}"]
    lines += [f"  {state.value:<12} {n:>{width}}" for state, n in counts.items()]
    return "\n".join(lines)


def tunnel_detail(status: TunnelStatus, config: RunningConfig, now: float) -> str:
    lines = [
        f"Tunnel ipsec:{status.name} is {status.state.value}, transport virtual router {status.vr}"
    ]
    where = f"  Local {status.local or '-'}, peer {status.peer or '-'}"
    if status.state == TunnelState.UP and status.up_since is not None:
        where += f", up for {duration(now - status.up_since)}"
    lines.append(where)
    if status.backup is not None:
        lines += _destinations(status, now)
    tunnel = config.tunnel(status.name)
    if tunnel is not None and tunnel.description is not None:
        lines.insert(1, f"  Description: {tunnel.description}")
    if tunnel is not None:
        offered = " ".join(config.tunnel_transforms(tunnel))
        pfs = f"PFS group {tunnel.pfs_group}" if tunnel.pfs_group else "no PFS"
        if tunnel.manual:
            offers = f"  Manual SA {offered}, no IKE"
        elif tunnel.transform_set is None:
            offers = "  Offers nothing until it has a transform set"
        else:
            offers = f"  Offers {offered} (transform set {tunnel.transform_set}), {pfs}"
        life = config.tunnel_lifetime(tunnel)
        origin = "tunnel lifetime" if tunnel.lifetime is not None else "ipsec lifetime"
        lines += [
            f"  Interface in virtual router {tunnel.vr}, IKE and ESP in virtual router"
            f" {status.vr}",
            offers,
            f"  Local network {tunnel.local_network}, remote network {tunnel.remote_network}",
            "  Lifetime: none (manual SA)" if tunnel.manual else
            f"  Lifetime {life.seconds} seconds, {life.kilobytes} kilobytes ({origin})",
        ]
    if tunnel is not None and config.missing(tunnel):
        lines.append("  Incomplete, not negotiating: no " + ", no ".join(config.missing(tunnel)))
    if status.dpd is not None:
        lines.append(_dpd_detail(status.dpd, now))
    if status.last_failure:
        when = "" if status.last_failure_at is None else \
            f" ({duration(now - status.last_failure_at)} ago)"
        lines.append(f"  Last failure: {status.last_failure}{when}")
    for ike in status.ike_sas:
        lines += ["", *_ike_detail(ike)]
    for sa in status.ipsec_sas:
        lines += ["", *_ipsec_detail(sa)]
    if not status.ike_sas and not status.ipsec_sas:
        lines += ["", "  No SAs"]
    return "\n".join(lines)


def _dpd_detail(dpd: DpdStatus, now: float) -> str:
    def ago(when: float | None) -> str:
        return "never" if when is None else f"{duration(now - when)} ago"

    line = f"  DPD: {dpd.state}"
    if dpd.last_heard is not None:
        line += f"; last heard from {ago(dpd.last_heard)}, last probe {ago(dpd.last_probe)}"
    if dpd.next_due is not None:
        line += f", next in {duration(dpd.next_due - now)}"
    return line


def _destinations(status: TunnelStatus, now: float) -> list[str]:
    """Tunnel failover: which destination is active, and the last switch."""
    primary, backup = (status.backup, status.peer) if status.on_backup else \
        (status.peer, status.backup)
    active = "backup" if status.on_backup else "primary"
    lines = [f"  Destinations: primary {primary}, backup {backup}; active: {active} "
             f"({status.peer})",
             f"  Switchovers: {status.switchovers}"]
    if status.last_switchover is not None:
        when, why = status.last_switchover
        lines[-1] += f", last {duration(now - when)} ago: {why}"
    return lines


def _ike_detail(sa: IkeSaStatus) -> list[str]:
    remaining = f", {sa.remaining_seconds} s remaining" if sa.remaining_seconds else ""
    return [
        f"  ISAKMP/IKE SA {cookies(sa)}",
        f"    {sa.exchange} mode, {sa.role}, {sa.state}",
        f"    {sa.authentication} {sa.encryption} {sa.hash} group {sa.group}",
        f"    {sa.local}:{sa.local_port} -> {sa.remote}:{sa.remote_port}"
        f"{', NAT detected' if sa.nat_detected else ''}",
        f"    lifetime {sa.lifetime_seconds} s{remaining}",
    ]


def _ipsec_detail(sa: IpsecSaStatus) -> list[str]:
    pfs = f"PFS group {sa.pfs_group}" if sa.pfs_group else "no PFS"
    remaining_kb = "" if sa.remaining_kilobytes is None else f" / {sa.remaining_kilobytes} KB"
    return [
        f"  IPsec SA inbound SPI {spi(sa.inbound_spi)}, outbound SPI {spi(sa.outbound_spi)}",
        f"    {sa.transform}, {sa.encapsulation}, {pfs}",
        f"    {sa.local_network} <-> {sa.remote_network}",
        f"    lifetime {sa.lifetime_seconds} s / {sa.lifetime_kilobytes} KB, "
        f"{sa.remaining_seconds} s{remaining_kb} remaining",
        f"    inbound {sa.inbound_packets} packets {sa.inbound_bytes} bytes,"
        f" outbound {sa.outbound_packets} packets {sa.outbound_bytes} bytes",
    ]


def ike_sas(sas: Sequence[IkeSaStatus]) -> str:
    if not sas:
        return "No ISAKMP/IKE SAs"
    rows = [
        [
            f"ipsec:{sa.tunnel}" if sa.tunnel else "-",
            sa.state,
            f"{sa.local}:{sa.local_port}",
            f"{sa.remote}:{sa.remote_port}",
            cookies(sa),
            sa.role,
            sa.exchange,
            str(sa.remaining_seconds) if sa.remaining_seconds else "-",
            sa.vr,
        ]
        for sa in sas
    ]
    headers = [
        "Tunnel",
        "State",
        "Local",
        "Remote",
        "Cookies (initiator:responder)",
        "Role",
        "Mode",
        "Remaining",
        "VR",
    ]
    return table(headers, rows)


def ipsec_sas(sas: Sequence[IpsecSaStatus]) -> str:
    if not sas:
        return "No IPsec SAs"
    rows = [
        [
            f"ipsec:{sa.tunnel}",
            spi(sa.inbound_spi),
            spi(sa.outbound_spi),
            sa.transform,
            sa.encapsulation,
            str(sa.remaining_seconds),
            str(sa.inbound_bytes),
            str(sa.outbound_bytes),
        ]
        for sa in sas
    ]
    headers = [
        "Tunnel",
        "Inbound SPI",
        "Outbound SPI",
        "Transform",
        "Encapsulation",
        "Remaining",
        "In bytes",
        "Out bytes",
    ]
    return table(headers, rows)


def options(vr: str, opts: VrOptions) -> str:
    def state(on: bool) -> str:
        return "enabled" if on else "disabled"

    dpd = opts.dpd
    timers = (
        f"idle {dpd.idle} s, silence {dpd.silence} s, retry {dpd.retry} s, retries {dpd.retries}"
    )
    return "\n".join(
        [
            f"Virtual router {vr}",
            f"  tx-invalid-cookie  {state(opts.tx_invalid_cookie)}",
            f"  nat-t              {state(opts.nat_t)}",
            f"  dpd                {state(dpd.enabled)} ({timers})",
        ]
    )


def transform_sets(config: RunningConfig) -> str:
    if not config.transform_sets:
        return "No transform sets (tunnels without one offer esp-aes256-hmac-sha256)"
    rows = [[ts.name, " ".join(ts.transforms)] for ts in config.transform_sets]
    return table(["Transform set", "Transforms (in priority order)"], rows)


def ike_policy_rules(config: RunningConfig) -> str:
    if not config.ike_policy_rules:
        return "No IKE policy rules (the default proposal is pre-share aes256 sha256 group 14, 28800 s)"
    rows = [
        [
            str(r.priority),
            r.authentication,
            r.encryption,
            r.hash,
            str(r.group),
            str(r.lifetime_seconds),
            r.aggressive_mode,
        ]
        for r in config.ike_policy_rules
    ]
    headers = [
        "Rule",
        "Authentication",
        "Encryption",
        "Hash",
        "Group",
        "Lifetime",
        "Aggressive mode",
    ]
    return table(headers, rows)


def local_endpoints(vrs: Sequence[VirtualRouter],
                    running: Sequence[LocalEndpointStatus]) -> str:
    """The configured endpoints, each up or down with the daemon's reason
    (`GatewayRuntime.local_endpoint_status`); one the daemon does not run
    (yet) is "-"."""
    states = {(s.vr, s.address): s for s in running}

    def state(vr: str, address: str) -> list[str]:
        found = states.get((vr, address))
        if found is None:
            return ["-", ""]
        return ["up", ""] if found.up else ["down", found.reason or ""]

    rows = [[ep.address, ep.transport_vr, vr.name, *state(ep.transport_vr, ep.address)]
            for vr in vrs for ep in vr.local_endpoints]
    if not rows:
        return "No local endpoints"
    return table(["Address", "Transport virtual router", "Configured in", "State", "Reason"],
                 rows)


def lifetime(config: RunningConfig) -> str:
    life = config.lifetime
    return f"IPsec SA lifetime: {life.seconds} seconds, {life.kilobytes} kilobytes"


def statistics(stats: Sequence[VrStatistics]) -> str:
    if not stats:
        return "No statistics"
    blocks = []
    for vr in stats:
        known = [k for k in COUNTER_LABELS if k in vr.counters]
        others = sorted(k for k in vr.counters if k not in COUNTER_LABELS)
        items = [(COUNTER_LABELS[k], vr.counters[k]) for k in known]
        items += [(k.replace("_", " ").capitalize(), vr.counters[k]) for k in others]
        width = max((len(label) for label, _ in items), default=0)
        lines = [f"Virtual router {vr.vr}"]
        lines += [f"  {label.ljust(width)}  {value:>10}" for label, value in items]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def in_scope(context_vr: str, vr: str) -> bool:
    """The default virtual router sees the whole router; another sees itself."""
    return context_vr == DEFAULT_VR or vr == context_vr
