"""The JUNOSe-style command line: command tree, sessions, shell and batch mode.

The daemon runs one `Session` per control connection (`daemon.control`)
against its `Gateway`; `ipsecgw cli` is a thin client (`main_cli`).
"""

from __future__ import annotations

from .gateway import FakeGateway, Gateway, GatewayError, SaSelector
from .loader import load_config_text
from .session import Help, Result, Session


def main_cli(argv: list[str]) -> int:
    """`ipsecgw cli [--control SOCKET] [-c COMMAND]...`"""
    from .entry import main

    return main(argv)


__all__ = [
    "FakeGateway",
    "Gateway",
    "GatewayError",
    "Help",
    "Result",
    "SaSelector",
    "Session",
    "load_config_text",
    "main_cli",
]
