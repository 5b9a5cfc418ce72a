"""Shared pieces of the benchmarks: result rows, process accounting, peers.

Every benchmark module ``bench_<name>.py`` exposes ``NAME`` (the name
``bench/run`` takes on its command line) and ``run(ctx) -> list[Row]``.
A row is one line of the table and one key of ``bench/results.json``; its
``ipsecgw`` or ``strongswan`` value is None when that side could not be
measured, and ``details`` says why.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SRC = REPO / "src"

from ipsecgw.tools import testbed as tb  # noqa: E402  (bench/run puts src/ on sys.path first)
from ipsecgw.tools.lab import IpsecgwProcess  # noqa: E402

PSK = "bench-psk-not-secret"
# Inside the kernel VM (scripts/vm): ESP in the kernel, an emulated CPU.
IN_KERNEL_VM = os.environ.get("IPSECGW_IN_VM") == "1"

# The three suites of the setup-rate benchmark (issue 8): name -> (ike
# proposal, strongSwan esp_proposals, ipsecgw transform, PFS group).
SUITES: dict[str, tuple[str, str, str, int | None]] = {
    "aes128-sha1-modp2048": (
        "aes128-sha1-modp2048", "aes128-sha1", "esp-aes128-hmac-sha", None),
    "aes128-sha1-modp2048-pfs": (
        "aes128-sha1-modp2048", "aes128-sha1-modp2048", "esp-aes128-hmac-sha", 14),
    "aes256-sha256-modp2048": (
        "aes256-sha256-modp2048", "aes256-sha256", "esp-aes256-hmac-sha256", None),
}

# strongSwan at its best as a load-test responder (TESTBED.md): DoS limits
# lifted, openssl first so that DH uses short exponents, and logging at the
# level a production responder would run with (control messages only).
LOAD_PLUGINS = (
    "random nonce openssl aes sha1 sha2 md5 hmac gmp pem pkcs1 x509 pubkey gcm kdf "
    "curve25519 kernel-libipsec kernel-netlink socket-default updown vici"
)
LOAD_CHARON_EXTRA = f"""load = {LOAD_PLUGINS}
  threads = 16
  block_threshold = 100000
  cookie_threshold = 100000
  cookie_threshold_ip = 50000
  init_limit_half_open = 0
  init_limit_job_load = 0
  ikesa_table_size = 4096
  ikesa_table_segments = 16
"""


@dataclass
class Row:
    """One benchmark result: a table line and a key of results.json."""

    name: str
    unit: str
    higher_is_better: bool
    ipsecgw: float | None = None
    strongswan: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "ipsecgw": self.ipsecgw,
            "strongswan": self.strongswan,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            **self.details,
        }


@dataclass
class Context:
    """What every benchmark gets: quick mode, a scratch directory, a log."""

    quick: bool
    workdir: Path
    verbose: bool = True

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def subdir(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=name + "-", dir=self.workdir))
        return path


def error_text(exc: BaseException, limit: int = 600) -> str:
    """An exception for the results: its type and the end of its message (where
    a captured traceback keeps the actual error)."""
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def pick(results: dict[str, dict[str, Any]], side: str, key: str) -> float | None:
    """results[side][key] as a float, or None when that side has no such number."""
    value = results.get(side, {}).get(key)
    return None if value is None else float(value)


# -- process accounting -------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[11], [12] are utime, stime (proc(5) fields 14 and 15).
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def find_process(root_pid: int, name: str, timeout: float = 5) -> int:
    """The pid of the process called ``name``: ``root_pid`` or one of its descendants.

    The wrappers that put a daemon into a namespace (`ip netns exec`, `unshare`,
    `sh -c`) exec or fork on the way; this finds the daemon itself.
    """
    deadline = time.monotonic() + timeout
    while True:
        todo = [root_pid]
        while todo:
            pid = todo.pop()
            try:
                if comm(pid) == name:
                    return pid
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except FileNotFoundError:
                continue
            todo.extend(int(c) for c in children)
        if time.monotonic() > deadline:
            raise RuntimeError(f"no process {name!r} under pid {root_pid}")
        time.sleep(0.05)


class CpuMeter:
    """CPU seconds used by a set of processes between start() and stop()."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids
        self._start: dict[int, float] = {}
        self._wall = 0.0
        self.cpu: dict[int, float] = {}
        self.wall = 0.0

    def start(self) -> CpuMeter:
        self._start = {pid: cpu_seconds(pid) for pid in self.pids}
        self._wall = time.monotonic()
        return self

    def stop(self) -> CpuMeter:
        self.wall = time.monotonic() - self._wall
        self.cpu = {pid: cpu_seconds(pid) - t for pid, t in self._start.items()}
        return self


# -- strongSwan ----------------------------------------------------------------

def quiet_strongswan(swan: tb.StrongSwan) -> None:
    """Log only errors: a production responder does not log every exchange."""
    text = swan.conf.read_text()
    text = re.sub(r"default = \d+", "default = 0", text)
    text = re.sub(r"ike = \d+", "ike = 0", text)
    swan.conf.write_text(text)


def charon_pid(swan: tb.StrongSwan) -> int:
    assert swan.proc is not None, "strongSwan not started"
    return find_process(swan.proc.pid, "charon")


def load_responder_conf(suite: str, *, dpd_delay: str | None = None,
                        local_addr: str = tb.SITE_B_OUTER,
                        local_ts: str = tb.SITE_B_NET) -> str:
    """swanctl.conf for charon answering any identity with one PSK (TESTBED.md)."""
    proposals, esp_proposals, _, _ = SUITES[suite]
    dpd = f"dpd_delay = {dpd_delay}" if dpd_delay else ""
    return f"""connections {{
  load {{
    version = 1
    local_addrs = {local_addr}
    remote_addrs = %any
    proposals = {proposals}
    unique = never
    rekey_time = 0
    {dpd}
    local {{ auth = psk
            id = {local_addr} }}
    remote {{ auth = psk
             id = %any }}
    children {{
      load {{ local_ts = {local_ts}
             remote_ts = 0.0.0.0/0
             esp_proposals = {esp_proposals}
             rekey_time = 0 }} }}
  }}
}}
secrets {{ ike-any {{ secret = "{PSK}" }} }}
"""


# -- ipsecgw -------------------------------------------------------------------

def python_env() -> dict[str, str]:
    """Environment for child Pythons: the package from this checkout first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def site_config(*, encryption: str = "aes128", hash_: str = "sha", group: int = 14,
                transforms: str = "esp-aes128-hmac-sha", pfs: int | None = None,
                extra_global: str = "") -> str:
    """ipsecgw at site A with one tunnel to site B (TESTBED.md addresses)."""
    lines = [
        "hostname benchA",
        f"ipsec local-endpoint {tb.SITE_A_OUTER} transport-virtual-router default",
        "ipsec ike-policy-rule 1",
        " authentication pre-share",
        f" encryption {encryption}",
        f" hash {hash_}",
        f" group {group}",
        " exit",
        f"ipsec key manual pre-share {tb.SITE_B_OUTER}",
        f" key {PSK}",
        " exit",
        f"ipsec transform-set ts {transforms}",
        *extra_global.strip().splitlines(),
        "interface tunnel ipsec:siteB transport-virtual-router default",
        f" tunnel source {tb.SITE_A_OUTER}",
        f" tunnel destination {tb.SITE_B_OUTER}",
        " tunnel transform-set ts",
        f" tunnel local-network {tb.SITE_A_NET}",
        f" tunnel remote-network {tb.SITE_B_NET}",
        *([f" tunnel pfs group {pfs}"] if pfs else []),
        " exit",
    ]
    return "\n".join(lines) + "\n"


TUNNEL_STATES = ("up", "negotiating", "down", "disabled")


class Ipsecgw(IpsecgwProcess):
    """The lab's daemon wrapper, run from this checkout's package at a quiet
    log level, with the polling the benchmarks need."""

    def __init__(self, netns: tb.Netns, workdir: Path, config: str, *,
                 dataplane: str = "userspace", log_level: str = "warning",
                 start_timeout: float | None = None) -> None:
        if start_timeout is None:  # Python starts slowly on the VM's emulated CPU
            start_timeout = 90 if IN_KERNEL_VM else 20
        super().__init__(netns, workdir, config, log_level=log_level, dataplane=dataplane,
                         python=python(), env=python_env(), start_timeout=start_timeout)

    def cli(self, *commands: str, check: bool = True, timeout: float = 60) -> str:
        return super().cli(*commands, check=check, timeout=timeout)

    def tunnel_states(self) -> dict[str, str] | None:
        """Tunnel name -> state, from `show ipsec tunnel`; None while the daemon is too
        busy to answer within 30 s (a poller just asks again)."""
        states: dict[str, str] = {}
        try:
            out = self.cli("show ipsec tunnel", check=False, timeout=30)
        except subprocess.TimeoutExpired:
            return None
        for line in out.splitlines():
            words = line.split()
            if len(words) >= 2 and words[1] in TUNNEL_STATES:
                states[words[0].removeprefix("ipsec:")] = words[1]
        return states

    def count_up(self) -> int | None:
        """Tunnels up (`show ipsec tunnel summary`: cheap with thousands of
        tunnels), or None when the daemon did not answer in time."""
        try:
            out = self.cli("show ipsec tunnel summary", check=False, timeout=30)
        except subprocess.TimeoutExpired:
            return None
        for line in out.splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "up":
                return int(words[1])
        return None

    def all_up(self, count: int) -> bool:
        return (self.count_up() or 0) >= count

    def statistics(self) -> dict[str, int]:
        """`show ipsec statistics` as label -> value (one VR)."""
        out: dict[str, int] = {}
        try:
            text = self.cli("show ipsec statistics", check=False, timeout=30)
        except subprocess.TimeoutExpired:
            return out
        for line in text.splitlines():
            match = re.match(r"\s+(\S.*?)\s+(\d+)$", line)
            if match:
                out[match.group(1)] = int(match.group(2))
        return out


@contextmanager
def two_sites() -> Iterator[tb.TwoSites]:
    sites = tb.TwoSites("bn")
    try:
        yield sites
    finally:
        sites.close()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` that is a JSON object."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


# -- the gateway under test initiating many tunnels ------------------------------
#
# tunnels-held, clear-all and cookie-flood run the gateway under test in site A
# as the initiator of N tunnels, each to its own address of one strongSwan
# responder in site B (10.97.0.0/16 on veth-b). Distinct peers, because both
# ipsecgw and JUNOSe share one ISAKMP SA among the tunnels to the same peer;
# this way each tunnel owns its phase 1 and its IPsec SA pair, on either
# gateway. Tunnel n joins 10.100.0.0+n/32 (on A's lo) to 10.101.0.0+n/32 (on
# B's lo): kernel-libipsec routes each CHILD_SA's remote selector into its TUN
# with a source address from the local selector, so both must be distinct
# per tunnel and really configured, or charon refuses the policy.

PEER_BASE = "10.97.0.1"
LOCAL_NET_BASE = "10.100.0.0"
REMOTE_NET_BASE = "10.101.0.0"


def peer_address(n: int) -> str:
    return str(ipaddress.IPv4Address(PEER_BASE) + n)


def local_network(n: int) -> str:
    return f"{ipaddress.IPv4Address(LOCAL_NET_BASE) + n}/32"


def remote_network(n: int) -> str:
    return f"{ipaddress.IPv4Address(REMOTE_NET_BASE) + n}/32"


def _ip_batch(netns: tb.Netns, commands: list[str]) -> None:
    subprocess.run(["ip", "-n", netns.name, "-batch", "-"], input="".join(commands), text=True,
                   check=True, capture_output=True)


def add_peer_addresses(sites: tb.TwoSites, count: int) -> None:
    """B gets `count` peer addresses, both sides their per-tunnel inner addresses."""
    _ip_batch(sites.b, [f"addr add {peer_address(n)}/16 dev veth-b\n" for n in range(count)]
              + [f"addr add {remote_network(n)} dev lo\n" for n in range(count)])
    _ip_batch(sites.a, [f"addr add {local_network(n)} dev lo\n" for n in range(count)])
    # A reaches the peers through B: one neighbour entry, not N.
    sites.a.ip("route", "add", "10.97.0.0/16", "via", tb.SITE_B_OUTER)


def many_peers_responder_conf(suite: str, *, dpd_delay: str | None = None) -> str:
    """charon in B answering on every peer address (its load-test settings)."""
    conf = load_responder_conf(suite, dpd_delay=dpd_delay, local_ts=REMOTE_NET_BASE + "/16")
    return conf.replace(f"local_addrs = {tb.SITE_B_OUTER}", "local_addrs = %any").replace(
        f"id = {tb.SITE_B_OUTER}", "id = %any")


def strongswan_initiator_conf(suite: str, count: int, *, dpd_delay: str = "30s",
                              extra_conn: str = "", extra_child: str = "") -> str:
    """charon in A with `count` connections, one per peer address, all started at load."""
    proposals, esp_proposals, _, _ = SUITES[suite]
    conns = []
    for n in range(count):
        conns.append(f"""  t{n} {{
    version = 1
    local_addrs = {tb.SITE_A_OUTER}
    remote_addrs = {peer_address(n)}
    proposals = {proposals}
    dpd_delay = {dpd_delay}
    {extra_conn}
    local {{ auth = psk }}
    remote {{ auth = psk }}
    children {{ t{n} {{ local_ts = {local_network(n)}
                   remote_ts = {remote_network(n)}
                   esp_proposals = {esp_proposals}
                   start_action = start
                   {extra_child} }} }}
  }}
""")
    return "connections {\n" + "".join(conns) + "}\n" + \
        f'secrets {{ ike-any {{ secret = "{PSK}" }} }}\n'


# charon under test as an initiator: like the responder (DoS limits off,
# openssl DH).
INITIATOR_CHARON_EXTRA = LOAD_CHARON_EXTRA


def ipsecgw_initiator_config(suite: str, count: int, *, dpd_idle: int = 30,
                             extra_global: str = "", extra_tunnel: str = "") -> str:
    """ipsecgw in A with `count` tunnel interfaces, one per peer address."""
    _, _, transform, pfs = SUITES[suite]
    encryption, hash_ = ("aes256", "sha256") if "sha256" in suite else ("aes128", "sha")
    lines = [
        "hostname bench",
        f"ipsec local-endpoint {tb.SITE_A_OUTER} transport-virtual-router default",
        "ipsec ike-policy-rule 1",
        " authentication pre-share",
        f" encryption {encryption}",
        f" hash {hash_}",
        " group 14",
        " exit",
        "ipsec key manual pre-share 0.0.0.0",
        f" key {PSK}",
        " exit",
        f"ipsec transform-set ts {transform}",
        f"ipsec option dpd idle {dpd_idle}",
        *extra_global.strip().splitlines(),
    ]
    for n in range(count):
        lines += [
            f"interface tunnel ipsec:t{n} transport-virtual-router default",
            f" tunnel source {tb.SITE_A_OUTER}",
            f" tunnel destination {peer_address(n)}",
            " tunnel transform-set ts",
            f" tunnel local-network {local_network(n)}",
            f" tunnel remote-network {remote_network(n)}",
            *([f" tunnel pfs group {pfs}"] if pfs else []),
            *[" " + line for line in extra_tunnel.strip().splitlines()],
            " exit",
        ]
    return "\n".join(lines) + "\n"


def swan_stats(swan: tb.StrongSwan) -> tuple[int, int]:
    """(IKE SAs total, half-open) from `swanctl --stats`."""
    out = swan.swanctl("--stats", check=False)
    match = re.search(r"IKE_SAs:\s*(\d+) total,\s*(\d+) half-open", out)
    if not match:
        return (0, 0)
    return (int(match.group(1)), int(match.group(2)))


def swan_child_count(swan: tb.StrongSwan) -> int:
    """Installed CHILD_SAs, from `swanctl --list-sas`."""
    return swan.swanctl("--list-sas", check=False, timeout=120).count("INSTALLED")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


_IKE_LINE = re.compile(r"^\S+: #(\d+), (\w+), IKEv1")


def swan_established(swan: tb.StrongSwan) -> dict[int, bool]:
    """IKE SA unique id -> "established with an installed CHILD_SA", from --list-sas.

    charon numbers IKE SAs in creation order, so ids above a mark are SAs
    negotiated after it.
    """
    sas: dict[int, bool] = {}
    current: int | None = None
    for line in swan.swanctl("--list-sas", check=False, timeout=120).splitlines():
        match = _IKE_LINE.match(line)
        if match:
            current = int(match.group(1))
            sas[current] = False
            if match.group(2) != "ESTABLISHED":
                current = None
        elif current is not None and "INSTALLED" in line:
            sas[current] = True
    return sas

