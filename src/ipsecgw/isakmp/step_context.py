"""What the exchange steps may ask of the engine, and nothing else.

`StepContext` is the `phase1.Phase1Context` and `quick_mode.QuickModeContext`
the engine passes to main_mode.py, aggressive_mode.py and quick_mode.py:
random bytes, the keys, identities and credentials configured for a peer,
an SPI of our own, the tunnel a peer's Quick Mode is for, and wall-clock
time for certificates.  It reads the engine's tunnel table and SPI set but
changes neither (bar reserving the SPI it hands out).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from . import crypto
from .codec import Identification
from .errors import AuthenticationFailed, CryptoError
from .identity import identification, identity_matches, identity_string
from .phase1 import Credentials
from .policy import EnginePolicy, Identity, IdentityPattern, TunnelPolicy
from .registry import ike_peer
from .sa import IkeSa
from .subscribers import Subscriber
from .tunnel_table import TunnelRuntime, TunnelTable, network_contains

_LOG = logging.getLogger("ipsecgw.ike")


class StepContext:
    def __init__(self, policy: EnginePolicy, tunnels: TunnelTable, spis: set[bytes],
                 rng: Callable[[int], bytes], clock: Callable[[], float],
                 subscriber_of: Callable[[str], Subscriber | None]) -> None:
        self.policy = policy
        self._tunnels = tunnels
        # The subscriber a dynamic tunnel belongs to (subscribers.py), if any.
        self._subscriber_of = subscriber_of
        self._spis = spis
        self._rng = rng
        self._clock = clock  # the `now` of the engine's current input
        #: See `Engine.wall_offset`.
        self.wall_offset: float | None = None
        self._credentials: Credentials | None = None
        self._credentials_loaded = False

    def set_policy(self, policy: EnginePolicy) -> None:
        self.policy = policy
        self._credentials_loaded = False

    def random(self, size: int) -> bytes:
        return self._rng(size)

    def preshared_key(self, ike: IkeSa, peer_id: Identification | None) -> bytes | None:
        if ike.profile is not None:
            return ike.profile.psk  # the group key
        keys = self.policy.preshared_keys
        tunnel = self._tunnels.serving(ike)
        candidates: list[str] = []
        if tunnel is not None:
            candidates.append(tunnel.peer_address)
            if tunnel.peer_identity is not None:
                candidates.append(tunnel.peer_identity.value)
        if peer_id is not None:
            candidates.append(identity_string(peer_id))
        candidates += [ike.remote[0], "0.0.0.0"]
        for candidate in candidates:
            if candidate in keys:
                return keys[candidate]
        return None

    def local_identity(self, ike: IkeSa) -> Identification:
        if ike.profile is not None and ike.profile.local_identity is not None:
            return identification(ike.profile.local_identity)
        tunnel = None if ike.profile is not None else self._tunnels.serving(ike)
        if tunnel is not None and tunnel.local_identity is not None:
            return identification(tunnel.local_identity)
        credentials = self.credentials()
        if ike.suite is not None and ike.suite.authentication == "rsa-sig" and credentials:
            return Identification.der_asn1_dn(crypto.subject_der(credentials.certificate))
        return Identification.address(ike.local[0])

    def expected_peer_identity(self, ike: IkeSa) -> Identity | IdentityPattern | None:
        if ike.profile is not None:
            return ike.profile.peer_identity
        tunnel = self._tunnels.serving(ike)
        return tunnel.peer_identity if tunnel is not None else None

    def credentials(self) -> Credentials | None:
        if not self._credentials_loaded:
            self._credentials_loaded = True
            self._credentials = _load_credentials(self.policy)
        return self._credentials

    def wall_clock(self) -> datetime.datetime:
        if self.wall_offset is None:
            raise AuthenticationFailed("no wall-clock time to check certificates against")
        return datetime.datetime.fromtimestamp(self._clock() + self.wall_offset, datetime.UTC)

    def allocate_spi(self) -> bytes:
        while True:
            spi = self._rng(4)
            if int.from_bytes(spi, "big") >= 256 and spi not in self._spis:
                self._spis.add(spi)
                return spi

    def responder_tunnel(self, ike: IkeSa, initiator_network: str,
                         responder_network: str) -> TunnelPolicy | None:
        """The enabled tunnel a peer's Quick Mode is for: one configured for the
        peer's address (an index lookup), else one configured for its phase 1
        identity (a peer behind a NAT or with a dynamic address; only then are
        all tunnels scanned).  A tunnel whose SA the data plane has just
        refused selects nothing until its back-off ends (`sa_install_failed`)."""
        def selects(runtime: TunnelRuntime) -> bool:
            tunnel = runtime.policy
            owner = self._subscriber_of(tunnel.name)
            if owner is not None and owner.ike.cookies != ike.cookies:
                return False  # another subscriber's tunnel (behind the same NAT)
            return tunnel.enabled and runtime.refused_until <= self._clock() and \
                network_contains(tunnel.remote_network, initiator_network) and \
                network_contains(tunnel.local_network, responder_network)

        key = ike_peer(ike)
        # A subscriber's tunnel is not among `of_peer`'s: its phase 1 names it.
        own = self._tunnels.get(ike.tunnel)
        for runtime in self._tunnels.selecting(key, initiator_network, responder_network) + \
                self._tunnels.of_peer(key) + ([own] if own is not None and own.subscriber else []):
            if selects(runtime):
                return runtime.policy
        if ike.peer_id is None:
            return None
        for runtime in self._tunnels:
            tunnel = runtime.policy
            if tunnel.peer_identity is not None and tunnel.local_address == ike.local[0] and \
                    tunnel.peer_address != ike.remote[0] and \
                    identity_matches(tunnel.peer_identity, ike.peer_id) and selects(runtime):
                return tunnel
        return None


def _load_credentials(policy: EnginePolicy) -> Credentials | None:
    if policy.local_certificate is None or policy.local_private_key is None:
        return None
    try:
        certificate = policy.local_certificate
        if isinstance(certificate, bytes):
            certificate = crypto.load_certificate(certificate)
        key = policy.local_private_key
        if isinstance(key, bytes):
            key = crypto.load_private_key(key)
        cas = tuple(crypto.load_certificate(ca) if isinstance(ca, bytes) else ca
                    for ca in policy.ca_certificates)
    except CryptoError as exc:
        _LOG.error("cannot load the local certificate or key: %s", exc)
        return None
    return Credentials(certificate, key, cas)
