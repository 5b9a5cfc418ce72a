"""The kernel tests' ipsecgw daemon: driven over its control socket from the
test process, because in the VM every `ipsecgw cli` is a Python start on an
emulated CPU (seconds each, and `wait_tunnel_up` polls it).

The commands go through `run_batch`, the code behind `ipsecgw cli -c`, so
the output and the error handling are the CLI's own."""

from __future__ import annotations

import io
from pathlib import Path

from ipsecgw.cli.batch import run_batch
from ipsecgw.cli.protocol import ControlClient, ControlError
from ipsecgw.tools import testbed as tb
from ipsecgw.tools.lab import IpsecgwProcess

# Python starts slowly on the VM's emulated CPU (the daemon's imports alone take seconds).
START_TIMEOUT = 90


class Gateway(IpsecgwProcess):
    def __init__(self, netns: tb.Netns, workdir: Path, config: str, *,
                 dataplane: str | None = None) -> None:
        super().__init__(netns, workdir, config, dataplane=dataplane,
                         start_timeout=START_TIMEOUT)

    def cli(self, *commands: str, check: bool = True, timeout: float = 30) -> str:
        out, err = io.StringIO(), io.StringIO()
        try:
            with ControlClient(str(self.control), timeout=timeout) as client:
                status = run_batch(client, commands, out, err)
        except ControlError as e:  # as `ipsecgw cli` exits 1 when the daemon is gone
            status = 1
            err.write(str(e))
        if check and status != 0:
            raise RuntimeError(f"ipsecgw cli {commands}: {err.getvalue().strip()}")
        return out.getvalue()
