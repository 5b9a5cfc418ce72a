"""The host's side of the kernel tests: one VM boot runs them all."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import libreswan
import pytest

ROOT = Path(__file__).resolve().parents[2]
# Boot (~40 s under TCG) plus the tests, about 12 min on an idle 2-core machine;
# scripts/test runs them beside the host's tests, which may slow them by half.
VM_TIMEOUT = 1500


def libreswan_for_the_guest(out: Path) -> dict[str, str]:
    """Unpack Libreswan where the guest sees it: the guest cannot fetch it (its
    /var/cache is a tmpfs), so the host fetches it into its own cache (once)
    and copies the unpacked tree into the directory it shares with the VM.
    Without it, the guest's Libreswan test says why it cannot run."""
    try:
        unpacked = libreswan.install()
    except libreswan.Unavailable as e:
        print(f"Libreswan unavailable for the kernel VM: {e}")
        return {}
    cache = out / "libreswan"
    shutil.copytree(unpacked.root, cache / "root", symlinks=True)
    return {"IPSECGW_LIBRESWAN_CACHE": str(cache)}


@pytest.mark.vm_launcher
def test_kernel_tests_in_vm(tmp_path: Path) -> None:
    env = dict(os.environ, IPSECGW_VM_TIMEOUT=str(VM_TIMEOUT),
               **libreswan_for_the_guest(tmp_path))
    inner = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "kernel",
             "--basetemp=/var/tmp/ipsecgw-kernel-tests", "-rfEs", "--durations=8",
             "tests/kernel"]
    proc = subprocess.run([str(ROOT / "scripts" / "vm"), "--out", str(tmp_path), "--", *inner],
                          capture_output=True, text=True, env=env, timeout=VM_TIMEOUT + 60)
    print(proc.stdout)  # the inner pytest's report, shown with -s or on failure
    if proc.returncode == 125:
        reason = "KERNEL TESTS NOT RUN: no kernel VM: " + proc.stderr.strip()[-2000:]
        if os.environ.get("IPSECGW_REQUIRE_INTEROP") == "1" or os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    assert proc.returncode == 0, (
        f"kernel tests in the VM failed (exit {proc.returncode}):\n{proc.stdout[-12000:]}\n"
        f"{proc.stderr[-3000:]}"
    )
    assert " passed" in proc.stdout and "no tests ran" not in proc.stdout, proc.stdout
