"""Tunnel failover (`tunnel destination A backup B`): three engines, one clock.

A's tunnel has B as its primary and C as its backup destination; B and C
carry the same remote network.  A peer that stops answering (`down`) is
found dead by DPD or fails phase 1, and A moves to the other one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from engine_helpers import A_IP, B_IP, PSK, rng, tunnel

from ipsecgw.isakmp.engine import Engine
from ipsecgw.isakmp.events import Event, IpsecSaEstablished
from ipsecgw.isakmp.policy import DpdPolicy, EnginePolicy, IkeRule
from ipsecgw.status import TunnelState

C_IP = "10.99.0.3"
RULES = (IkeRule(group=19),)
FAST_DPD = DpdPolicy(idle=10, silence=10, retry=2, retries=3)


def gateway(address: str) -> Engine:
    """B or C: the same remote network, never initiating (as a hub's spokes)."""
    policy = EnginePolicy(vr=address, local_addresses=(address,), ike_rules=RULES,
                          preshared_keys={A_IP: PSK}, dpd=FAST_DPD,
                          tunnels=(tunnel("gw", address, A_IP, initiate=False),))
    return Engine(policy, rng=rng(hash(address) & 0xFFFF))


@dataclass
class Mesh:
    engines: dict[str, Engine]
    now: float = 0.0
    down: set[str] = field(default_factory=set)
    events: dict[str, list[Event]] = field(default_factory=dict)

    def pump(self) -> None:
        for _ in range(50):
            moved = False
            for ip, engine in self.engines.items():
                for d in engine.datagrams_to_send(self.now):
                    moved = True
                    if ip in self.down or d.remote[0] in self.down:
                        continue
                    self.engines[d.remote[0]].receive_datagram(d.data, d.remote, d.local,
                                                               self.now)
                while (event := engine.next_event()) is not None:
                    self.events.setdefault(ip, []).append(event)
            if not moved:
                return

    def advance(self, seconds: float, step: float = 0.25) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            for ip, engine in self.engines.items():
                if ip not in self.down:
                    engine.handle_timer(self.now)
            self.pump()

    def status(self) -> tuple[TunnelState, str, int]:
        s = self.engines[A_IP].tunnel_status(self.now)[0]
        return s.state, s.peer, s.switchovers

    def up_with(self, ip: str) -> bool:
        """A's newest SA is one that `ip` installed the mirror of."""
        ours = [e for e in self.events[A_IP] if isinstance(e, IpsecSaEstablished)]
        theirs = [e for e in self.events.get(ip, []) if isinstance(e, IpsecSaEstablished)]
        return bool(ours) and ours[-1].peer[0] == ip and \
            any(t.inbound == ours[-1].outbound for t in theirs)


def mesh(*, down: set[str] | None = None, **a_tunnel: object) -> Mesh:
    """A, B and C started together (`down`: not answering from the start)."""
    settings = {"backup_address": C_IP, **a_tunnel}
    policy = EnginePolicy(vr="a", local_addresses=(A_IP,), ike_rules=RULES,
                          preshared_keys={B_IP: PSK, C_IP: PSK}, dpd=FAST_DPD,
                          tunnels=(tunnel("gw", A_IP, B_IP, **settings),))
    m = Mesh({A_IP: Engine(policy, rng=rng(1)), B_IP: gateway(B_IP), C_IP: gateway(C_IP)},
             down=set(down or ()))
    m.advance(1)
    return m


def test_dpd_moves_the_tunnel_to_the_backup_and_back() -> None:
    m = mesh()
    assert m.status() == (TunnelState.UP, B_IP, 0) and m.up_with(B_IP)
    m.down.add(B_IP)
    m.advance(40)  # idle 10 s, then 3 probes 2 s apart, then a back-off of at most 1 s
    assert m.status() == (TunnelState.UP, C_IP, 1) and m.up_with(C_IP)
    status = m.engines[A_IP].tunnel_status(m.now)[0]
    assert status.on_backup and status.backup == B_IP
    assert status.last_switchover is not None and "dead peer" in status.last_switchover[1]
    # Two-way: the backup dies while the primary is back.
    m.down = {C_IP}
    m.engines[B_IP] = gateway(B_IP)  # B restarted: no state left
    m.advance(40)
    assert m.status() == (TunnelState.UP, B_IP, 2) and m.up_with(B_IP)
    assert not m.engines[A_IP].tunnel_status(m.now)[0].on_backup


def test_failed_phase1_to_the_primary_moves_to_the_backup() -> None:
    m = mesh(down={B_IP})
    m.advance(28)
    assert m.status() == (TunnelState.NEGOTIATING, B_IP, 0)  # retransmitting to B
    m.advance(5)  # the exchange is abandoned after 30 s
    assert m.status() == (TunnelState.UP, C_IP, 1) and m.up_with(C_IP)


def test_both_destinations_down_alternate_no_faster_than_retries() -> None:
    m = mesh()
    m.down = {B_IP, C_IP}
    m.advance(300)
    state, _, switchovers = m.status()
    assert state != TunnelState.UP
    # Each destination gets its full 30 s phase 1 attempt before the other.
    assert 5 <= switchovers <= 300 // 30 + 2


def test_configuration_change_keeps_the_active_destination() -> None:
    m = mesh()
    m.down.add(B_IP)
    m.advance(40)
    assert m.status()[:2] == (TunnelState.UP, C_IP)
    a = m.engines[A_IP]
    inbound = {sa.inbound_spi for sa in a.tunnel_status(m.now)[0].ipsec_sas}
    # Something else changes: the tunnel stays on its backup with its SA.
    a.update_policy(replace(a.policy, tx_invalid_cookie=True), m.now)
    m.pump()
    assert m.status() == (TunnelState.UP, C_IP, 1)
    assert {sa.inbound_spi for sa in a.tunnel_status(m.now)[0].ipsec_sas} == inbound
    # The backup is removed from the configuration: back to the primary.
    m.down.clear()
    t = replace(a.policy.tunnels[0], peer_address=B_IP, backup_address=None)
    a.update_policy(replace(a.policy, tunnels=(t,)), m.now)
    m.advance(5)
    assert m.status()[:2] == (TunnelState.UP, B_IP)
    assert not a.tunnel_status(m.now)[0].on_backup


def test_a_tunnel_without_backup_stays_with_its_destination() -> None:
    m = mesh(backup_address=None)
    m.down.add(B_IP)
    m.advance(60)
    state, peer, switchovers = m.status()
    assert peer == B_IP and switchovers == 0 and state != TunnelState.UP
