"""Kernel tests: they need ESP, AH and XFRM interfaces in the kernel, which
the build machines' own kernel lacks, so they run in a VM booted from
Debian's kernel (scripts/vm), all of them in ONE boot per test run.

On the host, the `kernel`-marked tests are not collected one by one: the
launcher `test_vm.py::test_kernel_tests_in_vm` boots the VM and runs
`pytest -m kernel tests/kernel` inside it (IPSECGW_IN_VM=1), and passes or
fails with them.  Inside the VM, the launcher is left out; scripts/vm has
loaded the kernel modules they need.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

IN_VM = os.environ.get("IPSECGW_IN_VM") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, left = [], []
    for item in items:
        in_here = os.path.dirname(str(item.fspath)) == os.path.dirname(__file__)
        launcher = in_here and item.get_closest_marker("vm_launcher") is not None
        kernel = item.get_closest_marker("kernel") is not None
        if (kernel and not IN_VM) or (launcher and IN_VM):
            left.append(item)
        else:
            kept.append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


# The interop tests' helpers (site configurations, pings, the daemon wrapper).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
