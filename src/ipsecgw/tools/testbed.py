"""Real peers on one machine: network namespaces and strongSwan instances.

Used by the interop tests, the capture scripts, the benchmarks and the
two-site lab (``ipsecgw lab``). Everything here shells out to iproute2 and
strongSwan's binaries, needs root, and cleans up after itself: every object
is a context manager and also has an explicit ``close()``/``stop()``.

Names are unique per process so that several test runs can share a machine:
namespace names carry the pid and a counter, and links are created directly
inside their namespaces so that their short names never meet in the root
namespace.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

CHARON = "/usr/lib/ipsec/charon"
_counter = itertools.count()

# The addresses of TESTBED.md: only ever used inside namespaces made here.
SITE_A_OUTER = "10.99.0.1"
SITE_B_OUTER = "10.99.0.2"
SITE_A_INNER = "10.98.1.1"
SITE_B_INNER = "10.98.2.1"
SITE_A_NET = "10.98.1.0/24"
SITE_B_NET = "10.98.2.0/24"

# strongSwan's default plugin set for these tests (TESTBED.md): kernel-libipsec
# provides ESP in user space, since this kernel has none.
CHARON_PLUGINS = (
    "random nonce aes sha1 sha2 md5 hmac gmp openssl pem pkcs1 x509 pubkey gcm kdf "
    "curve25519 kernel-libipsec kernel-netlink socket-default updown vici"
)


def missing_tools(
    tools: Sequence[str] = ("ip", "swanctl", CHARON, "tshark", "tcpdump"),
) -> list[str]:
    """The tools from ``tools`` that this machine lacks (empty when all present)."""
    return [t for t in tools if not (os.path.exists(t) if t.startswith("/") else shutil.which(t))]


def is_root() -> bool:
    return os.geteuid() == 0


def unique_name(prefix: str) -> str:
    """A namespace name unique to this process: ``prefix`` + pid + counter."""
    return f"{prefix}{os.getpid()}x{next(_counter)}"


def run(args: Sequence[str], *, check: bool = True, timeout: float = 30) -> str:
    """Run a command, return its stdout; raise with stderr in the message on failure."""
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


class Netns:
    """A network namespace made by this process, deleted on close."""

    def __init__(self, name: str) -> None:
        self.name = name
        run(["ip", "netns", "add", name])
        self.ip("link", "set", "lo", "up")

    @classmethod
    def create(cls, prefix: str = "igw") -> Netns:
        return cls(unique_name(prefix))

    def exec_prefix(self) -> list[str]:
        """The argv prefix that runs a command inside this namespace."""
        return ["ip", "netns", "exec", self.name]

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        return run([*self.exec_prefix(), *args], check=check, timeout=timeout)

    def ip(self, *args: str, check: bool = True) -> str:
        return run(["ip", "-n", self.name, *args], check=check)

    def popen(self, args: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*self.exec_prefix(), *args], **kwargs)  # type: ignore[call-overload,no-any-return]

    def flush_xfrm(self) -> None:
        """A stale kernel policy silently blackholes traffic (TESTBED.md)."""
        self.ip("xfrm", "policy", "flush", check=False)
        self.ip("xfrm", "state", "flush", check=False)

    def close(self) -> None:
        # Processes still inside would keep it alive as a mount; kill them first.
        pids = run(["ip", "netns", "pids", self.name], check=False).split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        run(["ip", "netns", "del", self.name], check=False)

    def __enter__(self) -> Netns:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass
class TwoSites:
    """Two namespaces joined by a veth pair, each with an inner subnet on lo.

    Site A: outer 10.99.0.1/24 on ``veth-a``, inner 10.98.1.1/24 on lo.
    Site B: outer 10.99.0.2/24 on ``veth-b``, inner 10.98.2.1/24 on lo.
    """

    prefix: str = "igw"
    a: Netns = field(init=False)
    b: Netns = field(init=False)

    def __post_init__(self) -> None:
        self.a = Netns.create(self.prefix + "a")
        try:
            self.b = Netns.create(self.prefix + "b")
        except BaseException:
            self.a.close()
            raise
        try:
            run(["ip", "-n", self.a.name, "link", "add", "veth-a", "type", "veth",
                 "peer", "name", "veth-b", "netns", self.b.name])
            self.a.ip("addr", "add", f"{SITE_A_OUTER}/24", "dev", "veth-a")
            self.b.ip("addr", "add", f"{SITE_B_OUTER}/24", "dev", "veth-b")
            self.a.ip("addr", "add", f"{SITE_A_INNER}/24", "dev", "lo")
            self.b.ip("addr", "add", f"{SITE_B_INNER}/24", "dev", "lo")
            self.a.ip("link", "set", "veth-a", "up")
            self.b.ip("link", "set", "veth-b", "up")
            self.a.flush_xfrm()
            self.b.flush_xfrm()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.a.close()
        self.b.close()

    def __enter__(self) -> TwoSites:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def swanctl_conf(
    *,
    local_addr: str,
    remote_addr: str,
    local_ts: str,
    remote_ts: str,
    psk: str = "s3cr3t-test-psk",
    local_id: str | None = None,
    remote_id: str | None = None,
    proposals: str = "aes128-sha1-modp2048",
    esp_proposals: str = "aes128-sha1-modp2048",
    aggressive: bool = False,
    name: str = "gw",
    extra_conn: str = "",
    extra_child: str = "",
    extra_children: str = "",
    auth: str = "psk",
    local_extra: str = "",
    remote_extra: str = "",
    secrets: str | None = None,
) -> str:
    """A swanctl.conf for one IKEv1 connection ``name`` with child ``name``
    (``extra_children``: more children, each ``NAME { ... }``)."""
    lid = local_id or local_addr
    rid = remote_id or remote_addr
    if secrets is None:
        secrets = (
            f'secrets {{ ike-{name} {{ id-1 = {lid}\n id-2 = {rid}\n secret = "{psk}" }} }}\n'
            if auth == "psk"
            else ""
        )
    return f"""connections {{
  {name} {{
    version = 1
    aggressive = {"yes" if aggressive else "no"}
    local_addrs = {local_addr}
    remote_addrs = {remote_addr}
    proposals = {proposals}
    {extra_conn}
    local {{ auth = {auth}
            id = {lid}
            {local_extra} }}
    remote {{ auth = {auth}
             id = {rid}
             {remote_extra} }}
    children {{
      {name} {{ local_ts = {local_ts}
           remote_ts = {remote_ts}
           esp_proposals = {esp_proposals}
           {extra_child} }}
      {extra_children} }}
  }}
}}
{secrets}"""


class PeerDaemon:
    """A peer's daemon inside a namespace with a work directory of its own
    (made here and removed on close unless the caller gave one); stopped
    politely, then killed."""

    proc: subprocess.Popen[bytes] | None
    log_path: Path

    def __init__(self, workdir: str | Path | None, prefix: str) -> None:
        self.dir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=prefix))
        self._own_dir = workdir is None
        self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _ask_to_stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._ask_to_stop()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the peer vanishes without a Delete and loses all its state."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class StrongSwan(PeerDaemon):
    """A charon daemon inside a namespace, with its own private /run.

    charon hard-codes /run/charon.pid, so each instance runs in a private
    mount namespace with ``workdir/run`` bound over /run (TESTBED.md).
    """

    def __init__(
        self,
        netns: Netns,
        swanctl_conf: str,
        *,
        workdir: str | Path | None = None,
        ike_log_level: int = 2,
        charon_extra: str = "",
        files: dict[str, bytes] | None = None,
    ) -> None:
        super().__init__(workdir, "igw-swan-")
        self.netns = netns
        (self.dir / "run").mkdir(parents=True, exist_ok=True)
        (self.dir / "swanctl").mkdir(exist_ok=True)
        for sub in ("x509", "x509ca", "private", "rsa"):
            (self.dir / "swanctl" / sub).mkdir(exist_ok=True)
        for rel, data in (files or {}).items():
            (self.dir / "swanctl" / rel).write_bytes(data)
        self.log_path = self.dir / "charon.log"
        self.vici = self.dir / "charon.vici"
        self.conf = self.dir / "strongswan.conf"
        self.conf.write_text(
            f"""charon {{
  load = {CHARON_PLUGINS}
  block_threshold = 1000
  install_routes = yes
  {charon_extra}
  filelog {{ log {{ path = {self.log_path}
                  default = 1
                  ike = {ike_log_level}
                  flush_line = yes }} }}
  syslog {{ daemon {{ default = -1 }} }}
  plugins {{ vici {{ socket = unix://{self.vici} }} }}
}}
swanctl {{ socket = unix://{self.vici} }}
"""
        )
        (self.dir / "swanctl" / "swanctl.conf").write_text(swanctl_conf)

    def use_kernel_esp(self) -> StrongSwan:
        """ESP in the kernel's XFRM (kernel-netlink alone), not in charon
        (kernel-libipsec): for kernels that have ESP, such as the test VM's."""
        self.conf.write_text(self.conf.read_text().replace("kernel-libipsec ", ""))
        return self

    def start(self, timeout: float = 10) -> StrongSwan:
        if self.vici.exists():
            self.vici.unlink()
        self.netns.flush_xfrm()
        self.proc = self.netns.popen(
            [
                "unshare", "-m", "--propagation", "private", "sh", "-c",
                f"mount --bind {self.dir}/run /run && "
                f"STRONGSWAN_CONF={self.conf} exec {CHARON}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self.vici.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"charon did not start; log:\n{self.log()}")
            time.sleep(0.05)
        self.load()
        return self

    def swanctl(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        return self.netns.run(
            "env", f"STRONGSWAN_CONF={self.conf}", "swanctl", *args, check=check, timeout=timeout
        )

    def load(self) -> None:
        self.swanctl(
            "--load-all", "--noprompt", "--file", str(self.dir / "swanctl" / "swanctl.conf")
        )

    def initiate(self, ike: str = "gw", child: str = "gw", timeout: int = 20) -> str:
        return self.swanctl(
            "--initiate", "--ike", ike, "--child", child, "--timeout", str(timeout),
            timeout=timeout + 10,
        )

    def terminate(self, ike: str = "gw", timeout: int = 10) -> str:
        return self.swanctl(
            "--terminate", "--ike", ike, "--timeout", str(timeout), check=False,
            timeout=timeout + 10,
        )

    def list_sas(self) -> str:
        return self.swanctl("--list-sas")


class Capture:
    """A packet capture (pcap) inside a namespace until stopped.

    tcpdump says "listening on ..." only once its filter is attached to the
    interface, so unlike tshark's "Capturing on" that line means no packet
    sent afterwards is missed.
    """

    def __init__(self, netns: Netns, interface: str, path: str | Path,
                 capture_filter: str = "udp port 500 or udp port 4500 or esp") -> None:
        self.path = Path(path)
        self.proc = netns.popen(
            ["tcpdump", "-n", "-U", "--immediate-mode", "-i", interface, "-w", str(self.path),
             capture_filter],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), False)
        deadline = time.monotonic() + 15
        said = b""
        while b"listening on" not in said:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tcpdump did not start: {said.decode(errors='replace')}")
            try:
                said += os.read(self.proc.stderr.fileno(), 4096)
            except BlockingIOError:
                time.sleep(0.02)

    def stop(self) -> Path:
        if self.proc.poll() is None:
            time.sleep(0.3)  # let the last packets reach the file
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.path



# What the fault rules match by default: IKE and ESP as they cross the outer
# link (ISAKMP on 500; on 4500 NAT-T's IKE and UDP-encapsulated ESP; raw ESP).
IPSEC_TRAFFIC = ("udp dport { 500, 4500 }", "ip protocol esp")
# IKE alone: port 500, or port 4500 with the non-ESP marker (RFC 3948 2.2:
# four zero octets where an ESP SPI would be).
IKE_ONLY = ("udp dport 500", "udp dport 4500 @th,64,32 0")


class Faults:
    """nftables rules in one namespace that damage the IPsec traffic there.

    Rules sit in a table of their own (``ip igwfaults``): loss and blocks in
    the prerouting hook, so they see every packet arriving from the veth
    before anything else does; duplication in the output hook of the
    sending site, so that both copies cross the veth as the original would
    (the ``inet`` family has no ``dup to``). Closing deletes the table.
    Apply one in each site for a fault in both directions.
    """

    TABLE = "igwfaults"

    def __init__(self, netns: Netns) -> None:
        self.netns = netns
        self._nft(f"add table ip {self.TABLE}")
        for chain, hook in (("in", "prerouting"), ("out", "output")):
            self._nft(f"add chain ip {self.TABLE} {chain} "
                      f"{{ type filter hook {hook} priority -300 ; }}")

    def _nft(self, command: str) -> None:
        self.netns.run("nft", command)

    def _rules(self, chain: str, match: Sequence[str], action: str) -> None:
        for what in match:
            self._nft(f"add rule ip {self.TABLE} {chain} {what} {action}")

    def loss(self, percent: int, match: Sequence[str] = IPSEC_TRAFFIC) -> None:
        """Drop ``percent`` % of the arriving packets that ``match``, at random."""
        self._rules("in", match, f"numgen random mod 100 < {percent} drop")

    def drop(self, match: Sequence[str] = IPSEC_TRAFFIC) -> None:
        """Drop every arriving packet that ``match``."""
        self._rules("in", match, "drop")

    def duplicate(self, to: str, device: str, match: Sequence[str] = IPSEC_TRAFFIC) -> None:
        """Send every leaving packet to ``to`` that ``match`` twice: a copy
        goes out of ``device`` besides the original."""
        self._rules("out", [f"ip daddr {to} {m}" for m in match], f"dup to {to} device {device}")

    def clear(self) -> None:
        """Remove every rule, keep the table."""
        for chain in ("in", "out"):
            self._nft(f"flush chain ip {self.TABLE} {chain}")

    def close(self) -> None:
        self.netns.run("nft", f"delete table ip {self.TABLE}", check=False)

    def __enter__(self) -> Faults:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
