"""Manual SAs (`tunnel manual ...`): installed straight into the data plane.

A tunnel with manual SAs has no IKE: the engines never see it
(`translate.engine_policies` leaves it out).  `translate.manual_sas` makes
one `ManualSa` per tunnel whose two directions are configured, with an
address for its destination; `ManualSas.sync` installs what is new,
removes what went and replaces what changed.  Lifetimes do not apply (the
JUNOSe guide): the SA stays until the configuration changes.  Keys are
never logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..dataplane.base import DataPlane
from ..isakmp.events import SaKeys
from ..isakmp.policy import Address
from ..status import IpsecSaStatus, TunnelState, TunnelStatus

log = logging.getLogger("ipsecgw.daemon")


@dataclass(frozen=True)
class ManualSa:
    """One manual SA pair; has what `DataPlane.install_sa` reads (`IpsecSa`)."""

    tunnel: str
    vr: str  # transport VR
    transform: str
    peer: Address
    local: Address
    inbound: SaKeys = field(repr=False)
    outbound: SaKeys = field(repr=False)
    protocol: str
    local_network: str
    remote_network: str
    encapsulation: str = "tunnel"  # no IKE, no NAT-T: raw ESP or AH
    lifetime_seconds: int = 0  # lifetimes do not apply
    lifetime_kilobytes: int = 0
    rekey_of: bytes | None = None


class ManualSas:
    """The manual SAs installed in a data plane."""

    def __init__(self, dataplane: DataPlane) -> None:
        self._dataplane = dataplane
        self._installed: dict[str, ManualSa] = {}

    def sync(self, wanted: dict[str, ManualSa], recreated: set[str]) -> None:
        """Make the installed manual SAs `wanted` (tunnel -> SA); `recreated`:
        tunnels whose interface was made anew (they lost their SAs)."""
        for name, sa in list(self._installed.items()):
            if wanted.get(name) != sa or name in recreated:
                self._remove(sa, name not in recreated)
        for name, sa in wanted.items():
            if name in self._installed:
                continue
            try:
                self._dataplane.install_sa(sa)
            except Exception as exc:  # a refused SA must not stop the others
                log.error("tunnel ipsec:%s: data plane refused the manual SA: %s", name, exc)
                continue
            self._installed[name] = sa
            self._dataplane.set_tunnel_up(name, True)
            log.info("tunnel ipsec:%s: manual SA %s installed: in %s out %s", name,
                     sa.transform, sa.inbound.spi.hex(), sa.outbound.spi.hex())

    def _remove(self, sa: ManualSa, still_there: bool) -> None:
        del self._installed[sa.tunnel]
        if still_there:
            try:
                self._dataplane.remove_sa(sa.tunnel, sa.inbound.spi, sa.outbound.spi)
                self._dataplane.set_tunnel_up(sa.tunnel, False)
            except Exception as exc:  # the interface may be gone with its SAs
                log.debug("tunnel ipsec:%s: removing the manual SA: %s", sa.tunnel, exc)
        log.info("tunnel ipsec:%s: manual SA removed", sa.tunnel)

    def states(self) -> dict[str, tuple[str, TunnelState]]:
        """Tunnel -> (transport VR, up) of the installed manual SAs."""
        return {name: (sa.vr, TunnelState.UP) for name, sa in self._installed.items()}

    def status(self) -> list[TunnelStatus]:
        """`show ipsec tunnel` rows of the installed manual SAs (counters added by
        the caller, as for negotiated SAs)."""
        return [TunnelStatus(
            name=name, vr=sa.vr, state=TunnelState.UP, local=sa.local[0], peer=sa.peer[0],
            transform=sa.transform,
            ipsec_sas=(IpsecSaStatus(
                vr=sa.vr, tunnel=name, inbound_spi=sa.inbound.spi, outbound_spi=sa.outbound.spi,
                protocol=sa.protocol, transform=sa.transform, local_network=sa.local_network,
                remote_network=sa.remote_network, encapsulation=sa.encapsulation,
                pfs_group=None, lifetime_seconds=0, lifetime_kilobytes=0,
                remaining_seconds=0),))
            for name, sa in self._installed.items()]
