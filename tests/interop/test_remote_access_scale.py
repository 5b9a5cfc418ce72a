"""Many subscribers behind one NAT address (issue 16): the load generator as 50
remote-access clients in a home network that site B masquerades, all logging
in at once to one ipsecgw tunnel profile (local users, a pool).

Every client comes from the NAT's one address (and, sharing the generator's
socket, one NAT mapping): the gateway tells them apart by their phase 1
alone. Each must get its own pool address and be listed by `show
subscribers`; once they delete their SAs the gateway must hold nothing:
no subscriber, the pool free, no subscriber interface.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from conftest import require_interop
from gwlab import IpsecgwProcess, behind_nat, wait_until

from ipsecgw.tools import testbed as tb

CLIENTS = 50
GROUP, GROUP_KEY, PASSWORD = "scalegroup", "scale-group-k3y", "pw-scale"
POOL = ("10.200.1.1", "10.200.1.100")


def gateway_config() -> str:
    users = "".join(f"username user{n} password {PASSWORD}\n" for n in range(CLIENTS))
    return f"""\
hostname scalegw
ipsec ike-policy-rule 1
 encryption aes128
 hash sha
 group 2
 exit
ip local pool scalepool {POOL[0]} {POOL[1]}
{users}aaa authentication xauth local
ipsec tunnel-profile remote
 local-endpoint {tb.SITE_A_OUTER} transport-virtual-router default
 ike peer-identity key-id {GROUP}
 pre-share {GROUP_KEY}
 transform esp-aes128-hmac-sha
 ip pool scalepool
 exit
"""


def subscriber_rows(gateway: IpsecgwProcess) -> list[list[str]]:
    """`show subscribers` rows (user, profile, peer, address, interface, ...)."""
    return [row.split() for row in gateway.cli("show subscribers").splitlines()[2:]
            if row.strip()]


def test_fifty_subscribers_behind_one_nat_address(tmp_path: Path) -> None:
    require_interop(("ip", "nft"))
    with tb.TwoSites("igwrs") as sites, behind_nat(sites.b, "igwrh") as home, \
            IpsecgwProcess(sites.a, tmp_path / "gw", gateway_config(),
                           log_level="warning") as gateway:
        log = tmp_path / "loadgen.log"
        with open(log, "w") as stderr:
            load = home.popen(
                [sys.executable, "-m", "ipsecgw.tools.loadgen", "--target", tb.SITE_A_OUTER,
                 "--tunnels", str(CLIENTS), "--concurrency", str(CLIENTS),
                 "--proposal", "aes128-sha1-modp1024", "--group", GROUP,
                 "--group-key", GROUP_KEY, "--remote-access", f"user{{n}}:{PASSWORD}",
                 "--timeout", "25", "--hold", "inf", "--json"],
                stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            assert load.stdout is not None
            line = load.stdout.readline()
            assert line.startswith('{"report"'), log.read_text()[-3000:]
            report = json.loads(line)["report"]
            assert report["established"] == CLIENTS, (report, gateway.log()[-3000:])
            assert report["addresses"] == CLIENTS and report["failures"] == {}, report
            rows = subscriber_rows(gateway)
            assert sorted(row[0] for row in rows) == sorted(f"user{n}" for n in range(CLIENTS))
            # All from the NAT's address, each with its own pool address and interface.
            assert {row[2].split(":")[0] for row in rows} == {tb.SITE_B_OUTER}
            assert len({row[3] for row in rows}) == CLIENTS
            assert len({row[4] for row in rows}) == CLIENTS
            pool = gateway.cli("show ip local pool").splitlines()[2].split()
            assert pool[0] == "scalepool" and pool[4] == str(CLIENTS), pool
        finally:
            load.send_signal(signal.SIGTERM)  # the generator deletes its SAs and exits
            load.wait(30)
        assert wait_until(lambda: subscriber_rows(gateway) == [], timeout=15), \
            subscriber_rows(gateway)
        pool = gateway.cli("show ip local pool").splitlines()[2].split()
        assert pool[4] == "0", pool
        assert "ipss" not in sites.a.run("ip", "-o", "link", "show")
        assert "remote:" not in gateway.cli("show ipsec tunnel")
