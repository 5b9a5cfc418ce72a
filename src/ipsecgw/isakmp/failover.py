"""Tunnel failover: `tunnel destination PRIMARY backup BACKUP` (JUNOSe).

The JUNOSe guide: a tunnel switches to its alternate destination "when DPD
detects that the current destination is unreachable or when IKE SA set up
is unsuccessful", negotiates its IPsec SAs with the new peer there, and
switches back the same way when the alternate goes ("a two-way process").

The engine keeps, per tunnel, the policy it negotiates with (its *active*
policy): the configured one while the primary is active, the configured one
with its two destinations swapped while the backup is.  Everything that
reads a tunnel's `peer_address` (the peer index, phase 1, the pre-shared key
lookup) thus follows the active destination with no other change; a second
swap goes back.  This module decides and records; the engine re-indexes the
tunnel and renegotiates (`Engine._fail_over`).
"""

from __future__ import annotations

from dataclasses import replace

from .policy import TunnelPolicy
from .tunnel_table import TunnelRuntime


def swapped(policy: TunnelPolicy) -> TunnelPolicy:
    """The policy with its active and other destination exchanged."""
    if policy.backup_address is None:
        raise ValueError(f"tunnel {policy.name} has no backup destination")
    return replace(policy, peer_address=policy.backup_address,
                   backup_address=policy.peer_address)


def active_policy(configured: TunnelPolicy, runtime: TunnelRuntime | None) -> TunnelPolicy:
    """What the tunnel negotiates with: the configured policy, swapped while
    `runtime` is on its backup (and the configuration still has one)."""
    if runtime is not None and runtime.on_backup and configured.backup_address is not None:
        return swapped(configured)
    return configured


def may_switch(runtime: TunnelRuntime) -> bool:
    """Whether a failure of the active destination moves the tunnel: it has a
    backup and it initiates (a responder-only tunnel waits for its peers)."""
    return runtime.policy.backup_address is not None and runtime.initiates


def switch(runtime: TunnelRuntime, reason: str, now: float) -> None:
    """Make the other destination active (the caller re-indexes the tunnel)."""
    runtime.policy = swapped(runtime.policy)
    runtime.on_backup = not runtime.on_backup
    runtime.switchovers += 1
    runtime.last_switchover = (now, reason)
