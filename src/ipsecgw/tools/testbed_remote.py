"""Remote-access peers for the test bed: a FreeRADIUS server and vpnc clients.

Like `testbed`, everything runs inside namespaces made by the caller, in
work directories of its own, and is stopped on close. FreeRADIUS runs in
the foreground (`freeradius -f -d CONFDIR`, no systemd) on a copy of
Debian's configuration with a minimal virtual server: PAP against the
`files` module for authentication, the `detail` module for accounting.
vpnc (the Cisco-compatible IKEv1 client) runs in the foreground with a
configuration file and a script of our own that records what Mode Config
gave it and sets the address and routes on its TUN device.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .testbed import Netns, PeerDaemon

FREERADIUS = "/usr/sbin/freeradius"
FREERADIUS_CONF = Path("/etc/freeradius/3.0")
VPNC = "/usr/sbin/vpnc"


@dataclass(frozen=True)
class RadiusUser:
    """One entry of FreeRADIUS's `users` file: a password and, optionally, an
    address and an interim accounting interval (seconds) for the Access-Accept."""

    name: str
    password: str
    framed_address: str | None = None
    interim_interval: int | None = None


# A virtual server with nothing but what the gateway uses: no EAP (whose
# certificates we would have to make), PAP for XAUTH's plain password.
_SITE = """server default {
listen {
	type = auth
	ipaddr = *
	port = %(auth_port)d
}
listen {
	type = acct
	ipaddr = *
	port = %(acct_port)d
}
authorize {
	preprocess
	files
	pap
}
authenticate {
	Auth-Type PAP {
		pap
	}
}
preacct {
	preprocess
	acct_unique
}
accounting {
	detail
}
post-auth {
}
}
"""


class FreeRadius(PeerDaemon):
    """FreeRADIUS in a namespace; `detail_records()` parses its accounting log."""

    def __init__(
        self,
        netns: Netns,
        *,
        clients: Mapping[str, str],  # client address or prefix -> shared secret
        users: Sequence[RadiusUser],
        auth_port: int = 1812,
        acct_port: int = 1813,
        workdir: str | Path | None = None,
    ) -> None:
        super().__init__(workdir, "igw-radius-")
        self.netns = netns
        self.auth_port, self.acct_port = auth_port, acct_port
        self.conf = self.dir / "raddb"
        self.logdir = self.dir / "log"
        self.log_path = self.dir / "freeradius.out"
        shutil.copytree(FREERADIUS_CONF, self.conf, symlinks=True, dirs_exist_ok=True)
        (self.conf / "mods-enabled" / "eap").unlink(missing_ok=True)
        (self.conf / "sites-enabled" / "inner-tunnel").unlink(missing_ok=True)
        (self.conf / "sites-enabled" / "default").unlink(missing_ok=True)
        (self.conf / "sites-enabled" / "default").write_text(
            _SITE % {"auth_port": auth_port, "acct_port": acct_port})
        for sub in ("log", "run"):
            (self.dir / sub).mkdir(exist_ok=True)
        radiusd = (self.conf / "radiusd.conf").read_text()
        for name, value in (("raddbdir", self.conf), ("logdir", self.logdir),
                            ("run_dir", self.dir / "run")):
            radiusd = re.sub(rf"(?m)^{name} = .*$", f"{name} = {value}", radiusd)
        # Run as root inside the test's namespace: no user to switch to.
        radiusd = re.sub(r"(?m)^\s*(user|group) = freerad\s*$", "", radiusd)
        # Rejects at once: Debian's 1 s delay raced the tests' short client
        # timeouts (0.5 s, one retransmission) and made a reject look like silence.
        radiusd = re.sub(r"(?m)^(\s*)reject_delay = .*$", r"\1reject_delay = 0", radiusd)
        (self.conf / "radiusd.conf").write_text(radiusd)
        (self.conf / "clients.conf").write_text("".join(
            f"client c{n} {{\n\tipaddr = {address}\n\tsecret = {secret}\n}}\n"
            for n, (address, secret) in enumerate(clients.items())))
        lines = []
        for user in users:
            lines.append(f'{user.name} Cleartext-Password := "{user.password}"')
            replies = []
            if user.framed_address is not None:
                replies.append(f"Framed-IP-Address = {user.framed_address}")
            if user.interim_interval is not None:
                replies.append(f"Acct-Interim-Interval = {user.interim_interval}")
            lines += [f"\t{reply}," for reply in replies[:-1]] + [f"\t{r}" for r in replies[-1:]]
        (self.conf / "mods-config" / "files" / "authorize").write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 15) -> FreeRadius:
        out = self.log_path.open("wb")
        self.proc = self.netns.popen(
            [FREERADIUS, "-f", "-d", str(self.conf), "-l", "stdout"],
            stdout=out, stderr=subprocess.STDOUT,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while "Ready to process requests" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"freeradius did not start; output:\n{self.log()}")
            time.sleep(0.05)
        return self

    def detail_records(self) -> list[dict[str, str]]:
        """Every accounting record in the detail files, as attribute -> value (quotes removed)."""
        records: list[dict[str, str]] = []
        for path in sorted((self.logdir / "radacct").glob("*/detail-*")):
            for block in path.read_text(errors="replace").split("\n\n"):
                record = {}
                for line in block.splitlines()[1:]:
                    name, _, value = line.strip().partition(" = ")
                    if name:
                        record[name] = value.strip('"')
                if record:
                    records.append(record)
        return records


# vpnc calls its script with the Mode Config answers in the environment
# (INTERNAL_IP4_ADDRESS, INTERNAL_IP4_DNS, CISCO_SPLIT_INC_*, ...). Ours
# records them in a file and configures the TUN device: connect sets the
# address and a route per split network (or a default route when none),
# disconnect does nothing (vpnc removes its device).
_SCRIPT = """#!/bin/sh
# The file appears (rename) only once it is whole and the device is set up.
env | grep -E '^(reason|VPNGATEWAY|TUNDEV|INTERNAL_IP4_|CISCO_)' | sort > {env}.$reason.part
if [ "$reason" = connect ]; then
    ip link set dev "$TUNDEV" up mtu 1300
    ip addr add "$INTERNAL_IP4_ADDRESS/32" dev "$TUNDEV"
    if [ "${{CISCO_SPLIT_INC:-0}}" -gt 0 ]; then
        i=0
        while [ "$i" -lt "$CISCO_SPLIT_INC" ]; do
            eval net=\\$CISCO_SPLIT_INC_${{i}}_ADDR
            eval len=\\$CISCO_SPLIT_INC_${{i}}_MASKLEN
            ip route replace "$net/$len" dev "$TUNDEV"
            i=$((i + 1))
        done
    fi
fi
mv {env}.$reason.part {env}.$reason
exit 0
"""


class Vpnc(PeerDaemon):
    """vpnc (Cisco-style IKEv1 remote access: Aggressive Mode, XAUTH, Mode Config)."""

    def __init__(
        self,
        netns: Netns,
        *,
        gateway: str,
        group: str,
        group_key: str,
        username: str,
        password: str,
        ike_dh_group: str = "dh2",
        natt_mode: str = "natt",  # vpnc's --natt-mode: natt, none, force-natt, cisco-udp
        workdir: str | Path | None = None,
    ) -> None:
        super().__init__(workdir, "igw-vpnc-")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.netns = netns
        self.log_path = self.dir / "vpnc.log"
        self.env_file = self.dir / "modecfg"
        script = self.dir / "vpnc-script"
        script.write_text(_SCRIPT.format(env=self.env_file))
        script.chmod(0o755)
        self.conf = self.dir / "vpnc.conf"
        # Secrets go through the file only, never on a command line (ps).
        self.conf.write_text(
            f"IPSec gateway {gateway}\nIPSec ID {group}\nIPSec secret {group_key}\n"
            f"Xauth username {username}\nXauth password {password}\n"
            f"IKE DH Group {ike_dh_group}\nNAT Traversal Mode {natt_mode}\n"
            f"Script {script}\nInterface name {self.tundev}\n"
            f"Pidfile {self.dir / 'vpnc.pid'}\nDebug 1\n")
        self.conf.chmod(0o600)

    @property
    def tundev(self) -> str:
        """vpnc's TUN device: `ping -I` it to send through this client's tunnel
        when several vpnc share a namespace (the last one's routes win)."""
        return f"tun-{self.dir.name[-6:]}"

    def start(self) -> Vpnc:
        out = self.log_path.open("wb")
        self.proc = self.netns.popen(
            [VPNC, "--no-detach", "--non-inter", "--local-port", "0", str(self.conf)],
            stdout=out, stderr=subprocess.STDOUT,
        )
        out.close()
        return self

    def wait_connected(self, timeout: float = 30) -> dict[str, str]:
        """What Mode Config gave vpnc (its script's environment at connect)."""
        done = Path(f"{self.env_file}.connect")
        deadline = time.monotonic() + timeout
        while not done.exists():
            assert self.proc is not None
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vpnc did not connect; output:\n{self.log()}")
            time.sleep(0.1)
        return dict(line.split("=", 1) for line in done.read_text().splitlines() if "=" in line)

    def wait_exit(self, timeout: float = 30) -> int:
        """vpnc's exit status (it exits when the gateway refuses it)."""
        assert self.proc is not None
        return self.proc.wait(timeout)
