"""Read-only snapshots of the gateway's state, for show commands.

The engine, the data plane and the daemon each fill in their part; the CLI's
show renderers read nothing else. Keeping these plain and frozen means a show
command can never change the state it prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class TunnelState(StrEnum):
    """The states `show ipsec tunnel` prints and `ipsec clear sa state` takes."""

    UP = "up"  # phase 2 SAs installed
    NEGOTIATING = "negotiating"  # phase 1 or phase 2 in progress
    DOWN = "down"  # administratively up, no SAs
    DISABLED = "disabled"  # shutdown


@dataclass(frozen=True)
class IkeSaStatus:
    """One ISAKMP/IKE (phase 1) SA."""

    vr: str
    local: str  # local address
    remote: str  # peer address
    local_port: int
    remote_port: int
    initiator_cookie: bytes
    responder_cookie: bytes
    role: str  # "initiator" | "responder"
    state: str  # e.g. "established", "MM_SA_I", "AM_R1" ...
    exchange: str  # "main" | "aggressive"
    authentication: str  # "pre-share" | "rsa-sig"
    encryption: str  # "aes256", "3des", ...
    hash: str  # "sha256", "sha", "md5", ...
    group: int
    lifetime_seconds: int
    remaining_seconds: int  # 0 while negotiating
    nat_detected: bool = False
    tunnel: str | None = None  # the tunnel it serves, when known
    local_identity: str = ""
    peer_identity: str = ""


@dataclass(frozen=True)
class IpsecSaStatus:
    """One IPsec (phase 2) SA pair: inbound and outbound SPI of one negotiation."""

    vr: str
    tunnel: str
    inbound_spi: bytes
    outbound_spi: bytes
    protocol: str  # "esp" | "ah"
    transform: str  # CLI transform name, e.g. "esp-aes128-hmac-sha"
    local_network: str
    remote_network: str
    encapsulation: str  # "tunnel" | "udp-tunnel"
    pfs_group: int | None
    lifetime_seconds: int
    lifetime_kilobytes: int
    remaining_seconds: int
    remaining_kilobytes: int | None = None  # None: no kilobyte lifetime
    inbound_bytes: int = 0
    inbound_packets: int = 0
    outbound_bytes: int = 0
    outbound_packets: int = 0


@dataclass(frozen=True)
class DpdStatus:
    """Dead peer detection with a tunnel's peer (times as `TunnelStatus.up_since`)."""

    state: str  # "peer alive", "probing, N unanswered", "disabled", "no phase 1", ...
    last_heard: float | None = None  # the last proof of life from the peer
    last_probe: float | None = None  # the last R-U-THERE sent
    next_due: float | None = None  # the next probe (or the verdict)


@dataclass(frozen=True)
class TunnelStatus:
    """One tunnel interface as `show ipsec tunnel` prints it."""

    name: str  # without the "ipsec:" prefix
    vr: str  # transport virtual router
    state: TunnelState
    local: str
    peer: str
    transform: str  # transform in use, or the transform-set name when not up
    up_since: float | None = None  # wall-clock seconds; None when not up
    last_failure: str = ""  # reason of the last failed negotiation (cleared once up)
    last_failure_at: float | None = None  # when (as up_since)
    dpd: DpdStatus | None = None
    # Failover (`tunnel destination A backup B`): `peer` is the active destination.
    backup: str | None = None  # the other destination, when there is one
    on_backup: bool = False  # the configured backup is the active one
    switchovers: int = 0
    last_switchover: tuple[float, str] | None = None  # (when: as up_since, why)
    ike_sas: tuple[IkeSaStatus, ...] = ()
    ipsec_sas: tuple[IpsecSaStatus, ...] = ()

    def shifted(self, offset: float) -> TunnelStatus:
        """Every point in time moved by `offset` (the engine's monotonic clock
        to wall-clock time, for show commands)."""
        def at(when: float | None) -> float | None:
            return None if when is None else when + offset

        dpd = self.dpd
        if dpd is not None:
            dpd = replace(dpd, last_heard=at(dpd.last_heard), last_probe=at(dpd.last_probe),
                          next_due=at(dpd.next_due))
        switched = self.last_switchover
        if switched is not None:
            switched = (switched[0] + offset, switched[1])
        return replace(self, up_since=at(self.up_since), last_failure_at=at(self.last_failure_at),
                       dpd=dpd, last_switchover=switched)


@dataclass(frozen=True)
class VrStatistics:
    """Counters of one transport virtual router (`show ipsec statistics`)."""

    vr: str
    counters: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LocalEndpointStatus:
    """One IKE local endpoint: UDP 500 and 4500 on `address` in transport VR `vr`."""

    vr: str
    address: str
    up: bool  # both sockets open
    reason: str | None = None  # why not, while down


@dataclass(frozen=True)
class SubscriberStatus:
    """One dynamic IPSec subscriber (`show subscribers`; isakmp/subscribers.py).

    `tunnel` and `address` are None until the login is accepted; `state` is
    "xauth", "authenticating", "xauth-status", "up" or "refused"; `since`
    is the engine's monotonic time of the last state change, `uptime` the
    seconds since its phase 1 came up."""

    subscriber: int
    profile: str
    tunnel: str | None
    peer: tuple[str, int]
    identity: str
    username: str | None
    address: str | None
    state: str
    since: float
    uptime: float
