"""Interop tests: root, network namespaces, strongSwan and tshark.

Where the machine lacks any of these the tests skip loudly, naming what is
missing; with IPSECGW_REQUIRE_INTEROP=1 (set by CI) they fail instead, so a
CI run can never pass by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

from ipsecgw.tools import testbed


def require_interop(
    tools: Sequence[str] = ("ip", "swanctl", testbed.CHARON, "tshark", "tcpdump"),
) -> None:
    """Skip (or fail under IPSECGW_REQUIRE_INTEROP=1) unless root and ``tools`` exist."""
    problems = []
    if not testbed.is_root():
        problems.append("not running as root")
    missing = testbed.missing_tools(tools)
    if missing:
        problems.append("missing " + ", ".join(missing))
    if not problems:
        return
    reason = "INTEROP TEST NOT RUN: " + "; ".join(problems)
    if os.environ.get("IPSECGW_REQUIRE_INTEROP") == "1":
        pytest.fail(reason + " (IPSECGW_REQUIRE_INTEROP=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def interop() -> None:
    """Use as a fixture in every interop test."""
    require_interop()


@pytest.fixture
def two_sites(interop: None) -> testbed.TwoSites:
    sites = testbed.TwoSites()
    yield sites  # type: ignore[misc]
    sites.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "interop" in str(item.fspath):
            item.add_marker(pytest.mark.interop)
