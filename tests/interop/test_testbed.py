"""The test bed itself: two strongSwan peers bring a tunnel up and pass a ping.

If this fails, every other interop test's failure is about the machine, not
about ipsecgw.
"""

from __future__ import annotations

from gwlab import wait_until

from ipsecgw.tools import testbed as tb


def test_strongswan_pair_passes_ping(two_sites: tb.TwoSites) -> None:
    conf_a = tb.swanctl_conf(local_addr=tb.SITE_A_OUTER, remote_addr=tb.SITE_B_OUTER,
                             local_ts=tb.SITE_A_NET, remote_ts=tb.SITE_B_NET)
    conf_b = tb.swanctl_conf(local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
                             local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET)
    with tb.StrongSwan(two_sites.a, conf_a) as a, tb.StrongSwan(two_sites.b, conf_b) as b:
        a.start()
        b.start()
        assert "initiate completed successfully" in a.initiate()
        # IKEv1 Quick Mode: the initiator installs its SAs and reports success
        # when it sends the third message; the responder installs only once
        # that message is processed (RFC 2409 5.5). An ESP packet sent before
        # then is dropped by the responder, which is no loss of the tunnel.
        # Every packet sent once both ends hold the SA must arrive.
        assert wait_until(lambda: "INSTALLED, TUNNEL-in-UDP" in b.list_sas(), timeout=10)
        two_sites.a.run("ping", "-c", "2", "-W", "2", "-I", tb.SITE_A_INNER, tb.SITE_B_INNER)
        sas = b.list_sas()
        assert "2 packets" in sas
