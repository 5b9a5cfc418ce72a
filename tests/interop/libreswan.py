"""Libreswan's pluto as an interop peer, fetched from Debian without installing it.

Debian's libreswan package conflicts with the strongSwan packages that the
other interop tests need (TESTBED.md), so it is never installed: ``apt-get
download`` fetches the .deb into a cache directory, ``dpkg -x`` unpacks it
there, and the runner starts the unpacked pluto. The few shared libraries
that pluto needs and the machine lacks (libldns3 and libevent-pthreads on
this project's machines) and NSS's certutil (libnss3-tools, for pluto's
certificate database) are fetched and unpacked beside it the same way. The
system is left as it was.

Pluto execs ``/usr/libexec/ipsec/addconn`` at startup (a path compiled in),
so each pluto runs in its own mount namespace where the unpacked
``usr/libexec`` is bound over ``/usr/libexec``. Its run directory, control
socket, NSS database, secrets and log live in a private work directory.

This kernel has no ESP (TESTBED.md), and pluto can only use the kernel's:
phase 1 completes, but pluto cannot install the IPsec SAs of a Quick Mode.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ipsecgw.tools import testbed as tb

CACHE_DIR = Path(os.environ.get("IPSECGW_LIBRESWAN_CACHE", "/var/cache/ipsecgw-test/libreswan"))
PACKAGE = "libreswan"
LIB_DIR = "usr/lib/x86_64-linux-gnu"
_STAMP = ".unpacked"


class Unavailable(RuntimeError):
    """Libreswan cannot be fetched or run on this machine; the message says why."""


@dataclass(frozen=True)
class Install:
    """An unpacked libreswan (plus the libraries it lacks) under ``root``."""

    root: Path

    @property
    def libexec(self) -> Path:
        return self.root / "usr/libexec/ipsec"

    @property
    def pluto(self) -> Path:
        return self.libexec / "pluto"

    @property
    def whack(self) -> Path:
        return self.libexec / "whack"

    @property
    def addconn(self) -> Path:
        return self.libexec / "addconn"

    @property
    def certutil(self) -> Path:
        unpacked = self.root / "usr/bin/certutil"
        return unpacked if unpacked.exists() else Path(shutil.which("certutil") or unpacked)

    def env(self) -> dict[str, str]:
        """The environment the unpacked binaries run in: the unpacked libraries first."""
        libs = str(self.root / LIB_DIR)
        old = os.environ.get("LD_LIBRARY_PATH")
        return {**os.environ, "LD_LIBRARY_PATH": f"{libs}:{old}" if old else libs}

    def tools(self) -> tuple[str, ...]:
        return tuple(str(p) for p in (self.pluto, self.whack, self.addconn, self.certutil))

    def version(self) -> str:
        return (self.root / "VERSION").read_text().strip()


def _run(args: list[str], *, cwd: Path | None = None, timeout: float = 120,
         env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    if proc.returncode != 0:
        raise Unavailable(f"{' '.join(args)} failed ({proc.returncode}): "
                          f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc.stdout


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One fetch at a time per cache directory: test runs may share the machine."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _deb(debs: Path, package: str) -> Path | None:
    found = sorted(debs.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def _download(debs: Path, packages: list[str]) -> None:
    """``apt-get download`` into ``debs``; refresh the package lists once if apt knows none."""
    wanted = [p for p in packages if _deb(debs, p) is None]
    if not wanted:
        return
    if os.geteuid() != 0:
        raise Unavailable(f"not root: cannot apt-get download {' '.join(wanted)}")
    # As root apt would hand the download to the _apt user, who cannot write
    # into a root-owned cache; keep it as root (the warning it prints otherwise).
    args = ["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", *wanted]
    try:
        _run(args, cwd=debs)
    except Unavailable as first:
        try:
            _run(["apt-get", "-q", "update"], timeout=300)
            _run(args, cwd=debs)
        except Unavailable as second:
            raise Unavailable(f"{first}; then {second}") from None


def _installed(package: str) -> bool:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                          capture_output=True, text=True)
    return proc.returncode == 0 and proc.stdout.endswith(" installed")


def _missing_libraries(deb: Path) -> list[str]:
    """The shared-library packages among the .deb's Depends that are not installed."""
    depends = _run(["dpkg-deb", "-f", str(deb), "Depends"])
    missing = []
    for clause in depends.split(","):
        first = clause.split("|")[0].strip()
        name = re.split(r"[\s(:]", first, maxsplit=1)[0]
        if name.startswith("lib") and not name.endswith("-tools") and not _installed(name):
            missing.append(name)
    return missing


def _unresolved(install: Install) -> list[str]:
    """Shared objects that the unpacked binaries cannot find (``ldd`` "not found")."""
    unresolved: set[str] = set()
    for binary in (install.pluto, install.whack, install.addconn, install.certutil):
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True,
                             env=install.env()).stdout
        unresolved.update(m.group(1) for m in re.finditer(r"(\S+) => not found", out))
    return sorted(unresolved)


def install(cache_dir: Path = CACHE_DIR) -> Install:
    """Fetch and unpack libreswan into ``cache_dir`` unless already there; check it runs.

    Raises Unavailable, saying why, when it cannot be fetched (no network,
    not root, no such package) or its binaries would not run.
    """
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise Unavailable("apt-get/dpkg-deb missing: libreswan comes from Debian's archive")
    root = cache_dir / "root"
    with _locked(cache_dir):
        if not (root / _STAMP).exists():
            debs = cache_dir / "debs"
            debs.mkdir(exist_ok=True)
            _download(debs, [PACKAGE])
            main = _deb(debs, PACKAGE)
            assert main is not None
            extra = _missing_libraries(main)
            if shutil.which("certutil") is None:
                extra.append("libnss3-tools")
            _download(debs, extra)
            staging = Path(tempfile.mkdtemp(prefix="root.", dir=cache_dir))
            try:
                for package in [PACKAGE, *extra]:
                    deb = _deb(debs, package)
                    assert deb is not None
                    _run(["dpkg-deb", "-x", str(deb), str(staging)])
                version = _run(["dpkg-deb", "-f", str(main), "Version"]).strip()
                (staging / "VERSION").write_text(version + "\n")
                (staging / _STAMP).write_text(" ".join([PACKAGE, *extra]) + "\n")
                shutil.rmtree(root, ignore_errors=True)
                staging.rename(root)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    unpacked = Install(root)
    unresolved = _unresolved(unpacked)
    if unresolved:
        raise Unavailable(f"unpacked libreswan in {root} lacks {', '.join(unresolved)} "
                          f"(remove {cache_dir} to fetch again)")
    return unpacked


def ipsec_conf(
    *,
    name: str = "gw",
    left: str = tb.SITE_B_OUTER,
    right: str = tb.SITE_A_OUTER,
    leftsubnet: str = tb.SITE_B_NET,
    rightsubnet: str = tb.SITE_A_NET,
    leftid: str | None = None,
    rightid: str | None = None,
    ike: str = "aes128-sha1;modp2048",
    esp: str = "aes128-sha1;modp2048",
    aggressive: bool = False,
    pfs: bool = True,
    extra: str = "",
) -> str:
    """One IKEv1 PSK ``conn`` with pluto at left (site B) and ipsecgw at right."""
    lines = [
        f"conn {name}",
        "    ikev2=no",  # IKEv1 (libreswan 4 spelling)
        "    authby=secret",
        f"    left={left}",
        f"    leftsubnet={leftsubnet}",
        f"    right={right}",
        f"    rightsubnet={rightsubnet}",
        f"    ike={ike}",
        f"    esp={esp}",
        f"    pfs={'yes' if pfs else 'no'}",
        # Pluto gives up on a peer after one try: a test waits for no retry.
        "    keyingtries=1",
        "    auto=add",
    ]
    if leftid:
        lines.append(f"    leftid={leftid}")
    if rightid:
        lines.append(f"    rightid={rightid}")
    if aggressive:
        lines.append("    aggressive=yes")
    lines += ["    " + x.strip() for x in extra.strip().splitlines() if x.strip()]
    return "\n".join(lines) + "\n"


class Pluto(tb.PeerDaemon):
    """A pluto daemon inside a namespace, with a private work directory.

    ``conns`` is the ``conn`` part of ipsec.conf; the ``config setup`` part
    is written here: IKEv1 accepted (libreswan 4 refuses it by default), no
    DNSSEC (no root key on these machines).
    """

    def __init__(
        self,
        netns: tb.Netns,
        conns: str,
        secrets: str,
        *,
        unpacked: Install,
        workdir: str | Path | None = None,
        plutodebug: str = "",
    ) -> None:
        super().__init__(workdir, "igw-pluto-")
        self.netns = netns
        self.unpacked = unpacked
        self.run_dir = self.dir / "run"
        self.nss_dir = self.dir / "nss"
        for d in (self.run_dir, self.nss_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.ctl = self.run_dir / "pluto.ctl"
        self.log_path = self.dir / "pluto.log"
        self.conf = self.dir / "ipsec.conf"
        self.secrets = self.dir / "ipsec.secrets"
        setup = ["config setup", "    ikev1-policy=accept", "    dnssec-enable=no"]
        if plutodebug:
            setup.append(f'    plutodebug="{plutodebug}"')
        self.conf.write_text("\n".join(setup) + "\n\n" + conns)
        self.secrets.write_text(secrets)
        self.secrets.chmod(0o600)
        self._out: IO[bytes] | None = None

    def start(self, *, wait_for: tuple[str, ...] = ("gw",), timeout: float = 10) -> Pluto:
        """Start pluto; return once the connections ``wait_for`` are loaded."""
        if not (self.nss_dir / "cert9.db").exists():
            _run([str(self.unpacked.certutil), "-N", "-d", f"sql:{self.nss_dir}",
                  "--empty-password"], timeout=30, env=self.unpacked.env())
        if self.ctl.exists():
            self.ctl.unlink()
        self.netns.flush_xfrm()
        i = self.unpacked
        pluto = [
            str(i.pluto), "--nofork", "--logfile", str(self.log_path),
            "--config", str(self.conf), "--rundir", str(self.run_dir),
            "--nssdir", str(self.nss_dir), "--secretsfile", str(self.secrets),
            "--ipsecdir", str(self.dir), "--dumpdir", str(self.run_dir),
        ]
        self._out = open(self.dir / "pluto.out", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = self.netns.popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount --bind "$1" /usr/libexec && shift && exec "$@"', "sh",
             str(i.root / "usr/libexec"), *pluto],
            stdout=self._out, stderr=subprocess.STDOUT, env=i.env(),
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pluto exited ({self.proc.returncode}):\n{self.output()}")
            if self.ctl.exists():
                status = self.whack("--status", check=False)
                if all(f'"{name}":' in status for name in wait_for):
                    return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"pluto did not load {wait_for}:\n{self.output()}")
            time.sleep(0.1)

    def whack(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        proc = subprocess.run(
            [str(self.unpacked.whack), "--ctlsocket", str(self.ctl), *args],
            capture_output=True, text=True, timeout=timeout, env=self.unpacked.env(),
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"whack {' '.join(args)} failed ({proc.returncode}): "
                               f"{proc.stdout}{proc.stderr}")
        return proc.stdout + proc.stderr

    def initiate(self, name: str = "gw") -> str:
        """Start negotiating ``name`` without waiting for the outcome."""
        return self.whack("--name", name, "--initiate", "--asynchronous")

    def status(self) -> str:
        return self.whack("--status", check=False)

    def states(self) -> str:
        """pluto's state objects: one ``#n: "conn"... STATE_...`` line per SA."""
        return "\n".join(line for line in self.status().splitlines()
                         if re.search(r'#\d+: "', line) and "STATE_" in line)

    def isakmp_established(self) -> bool:
        """A phase 1 SA is up: pluto 4 says "IKE SA established", older ones "ISAKMP"."""
        return re.search(r"\((IKE|ISAKMP) SA established\)", self.states()) is not None

    def ike_spis(self) -> set[tuple[str, str]]:
        """(initiator, responder) cookies, in hex, of the ISAKMP headers in the log.

        Needs ``plutodebug=base``: pluto dumps each header it parses or emits.
        """
        spi = r"\|\s+%s SPI: ([0-9a-f ]+)\n"
        pairs = re.findall(r".*" + spi % "initiator" + r".*" + spi % "responder", self.log())
        return {(i.replace(" ", ""), r.replace(" ", "")) for i, r in pairs}

    def output(self) -> str:
        out = self.dir / "pluto.out"
        text = out.read_text(errors="replace") if out.exists() else ""
        return text + self.log()[-4000:]

    def _ask_to_stop(self) -> None:
        self.whack("--shutdown", check=False, timeout=10)

    def stop(self) -> None:
        super().stop()
        if self._out is not None:
            self._out.close()
            self._out = None
