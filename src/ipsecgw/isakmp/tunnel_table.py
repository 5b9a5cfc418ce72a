"""The configured tunnels and what the engine tracks per tunnel, with their indexes.

The SAs live in the `Registry` (registry.py); the tunnels live here, keyed by
name and indexed by peer (local address, peer address) and by the exact
selectors a peer's Quick Mode usually proposes, so that neither a message nor
a timer scans thousands of tunnels.  A dynamic subscriber's tunnel is
responder-only and belongs to one phase 1, so it stays out of the by-peer
index: thousands of subscribers behind one NAT address would otherwise make
every per-peer walk (re-arming, back-off, profile choice) visit them all.  Only this class changes the tables, so
the indexes cannot drift from them.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from .policy import TunnelPolicy
from .registry import PeerKey, ike_peer, unindex
from .sa import IkeSa


@dataclass(eq=False)
class TunnelRuntime:
    """What the engine tracks per tunnel beyond its configuration."""

    policy: TunnelPolicy
    subscriber: bool = False  # a dynamic subscriber's tunnel (not in `TunnelTable.of_peer`)
    failures: int = 0
    next_attempt_at: float = 0.0
    last_failure: str = ""  # cleared once the tunnel is up again
    last_failure_at: float | None = None
    up_since: float | None = None
    rekey_of: bytes | None = None  # inbound SPI of an SA waiting for its successor
    refusals: int = 0  # SAs the data plane refused in a row (Engine.sa_install_failed)
    refused_until: float = 0.0  # the peer's Quick Mode is refused until then
    inbound_bytes: int = 0
    outbound_bytes: int = 0
    # Failover (failover.py): `policy` has the destinations swapped while on the backup.
    on_backup: bool = False
    switchovers: int = 0
    last_switchover: tuple[float, str] | None = None  # (when, why)

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def peer_key(self) -> PeerKey:
        return (self.policy.local_address, self.policy.peer_address)

    @property
    def selectors(self) -> tuple[str, str]:
        """(remote, local) network as a peer's Quick Mode names them (normalised)."""
        return (_normalised(self.policy.remote_network), _normalised(self.policy.local_network))

    @property
    def initiates(self) -> bool:
        """Whether the engine negotiates and rekeys for this tunnel (not responder-only)."""
        return self.policy.enabled and self.policy.initiate

    def failed(self, reason: str, now: float) -> None:
        self.last_failure, self.last_failure_at = reason, now

    def installed(self, now: float) -> None:
        self.last_failure, self.last_failure_at = "", None
        self.failures = 0
        self.next_attempt_at = 0.0
        self.rekey_of = None
        if self.up_since is None:
            self.up_since = now

    def reset(self) -> None:
        """Forget the back-off, data plane refusals and a pending rekey (a
        configuration change, `clear sa`)."""
        self.failures, self.next_attempt_at, self.rekey_of = 0, 0.0, None
        self.refusals, self.refused_until = 0, 0.0


class TunnelTable:
    def __init__(self) -> None:
        self._by_name: dict[str, TunnelRuntime] = {}
        self._by_peer: dict[PeerKey, dict[str, TunnelRuntime]] = {}
        # (peer, remote network, local network) -> tunnels
        self._by_selectors: dict[tuple[PeerKey, str, str], dict[str, TunnelRuntime]] = {}
        # local address -> enabled tunnels there that know their peer by identity
        self._by_identity: dict[str, dict[str, TunnelRuntime]] = {}

    def __iter__(self) -> Iterator[TunnelRuntime]:
        """In configuration order."""
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> set[str]:
        return set(self._by_name)

    def get(self, name: str | None) -> TunnelRuntime | None:
        return self._by_name.get(name) if name is not None else None

    def current(self, runtime: TunnelRuntime) -> bool:
        """Whether `runtime` is still the table's entry for its name."""
        return self._by_name.get(runtime.name) is runtime

    def add(self, runtime: TunnelRuntime) -> None:
        name = runtime.name
        self._by_name[name] = runtime
        if not runtime.subscriber:
            self._by_peer.setdefault(runtime.peer_key, {})[name] = runtime
        self._by_selectors.setdefault((runtime.peer_key, *runtime.selectors), {})[name] = runtime
        if runtime.policy.enabled and runtime.policy.peer_identity is not None:
            self._by_identity.setdefault(runtime.policy.local_address, {})[name] = runtime

    def remove(self, runtime: TunnelRuntime) -> None:
        name = runtime.name
        del self._by_name[name]
        unindex(self._by_peer, runtime.peer_key, name)
        unindex(self._by_selectors, (runtime.peer_key, *runtime.selectors), name)
        unindex(self._by_identity, runtime.policy.local_address, name)

    def of_peer(self, key: PeerKey) -> list[TunnelRuntime]:
        """The configured tunnels for the peer (subscribers' tunnels are not)."""
        return list(self._by_peer.get(key, {}).values())

    def configured_for(self, key: PeerKey) -> bool:
        """Whether an enabled configured tunnel names the peer (subscribers'
        tunnels at its address are not looked at)."""
        return any(runtime.policy.enabled for runtime in self._by_peer.get(key, {}).values())

    def selecting(self, key: PeerKey, remote_network: str,
                  local_network: str) -> list[TunnelRuntime]:
        """The peer's tunnels configured with exactly these selectors."""
        return list(self._by_selectors.get((key, remote_network, local_network), {}).values())

    def by_identity_on(self) -> dict[str, dict[str, TunnelRuntime]]:
        """Local address -> the enabled tunnels there that know their peer by
        identity (a peer behind a NAT or with a dynamic address may use any
        address)."""
        return self._by_identity

    def serving(self, ike: IkeSa) -> TunnelPolicy | None:
        """The tunnel an SA serves: the one it was initiated for, else by peer address."""
        runtime = self.get(ike.tunnel)
        if runtime is not None:
            return runtime.policy
        for runtime in self._by_peer.get(ike_peer(ike), {}).values():
            return runtime.policy
        return None


@functools.lru_cache(maxsize=8192)
def network_contains(outer: str, inner: str) -> bool:
    """Whether prefix `inner` lies within `outer` (cached: called per Quick Mode)."""
    a = ipaddress.ip_network(outer, strict=False)
    b = ipaddress.ip_network(inner, strict=False)
    return a.version == b.version and b.subnet_of(a)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=8192)
def _normalised(network: str) -> str:
    return str(ipaddress.ip_network(network, strict=False))
