"""The kernel tests' shared pieces: the ipsecgw daemon, driven over its
control socket from the test process, because in the VM every `ipsecgw cli`
is a Python start on an emulated CPU (seconds each, and `wait_tunnel_up`
polls it); strongSwan on the kernel's XFRM; what the kernel holds.

The commands go through `run_batch`, the code behind `ipsecgw cli -c`, so
the output and the error handling are the CLI's own."""

from __future__ import annotations

import io
import re
from pathlib import Path

from gwlab import PSK

from ipsecgw.cli.batch import run_batch
from ipsecgw.cli.protocol import ControlClient, ControlError
from ipsecgw.tools import testbed as tb
from ipsecgw.tools.lab import IpsecgwProcess

# Python starts slowly on the VM's emulated CPU (the daemon's imports alone take seconds).
START_TIMEOUT = 90


class Gateway(IpsecgwProcess):
    def __init__(self, netns: tb.Netns, workdir: Path, config: str, *,
                 dataplane: str | None = None) -> None:
        try:
            super().__init__(netns, workdir, config, dataplane=dataplane,
                             start_timeout=START_TIMEOUT)
        except RuntimeError as error:  # what the VM was busy with instead
            processes = tb.run(["ps", "-eo", "pid,stat,etime,time,wchan:24,args"], check=False)
            raise RuntimeError(f"{error}\n{processes[-6000:]}") from None

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


def kernel_strongswan(netns: tb.Netns, workdir: Path, *, esp: str, charon_extra: str = "",
                      **conf: str) -> tb.StrongSwan:
    """charon with its kernel backend only (kernel-netlink, not kernel-libipsec):
    ESP in the kernel; site B's end of the tunnel to site A unless `conf`
    (tb.swanctl_conf's arguments) says otherwise. Raw ESP unless a NAT is seen."""
    settings = dict(local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
                    local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, psk=PSK,
                    proposals="aes128-sha1-modp2048", esp_proposals=esp,
                    extra_conn="encap = no")
    settings.update(conf)
    return tb.StrongSwan(netns, tb.swanctl_conf(**settings), workdir=workdir,
                         charon_extra=charon_extra).use_kernel_esp()


def kernel_bytes(netns: tb.Netns) -> dict[str, int]:
    """SPI -> bytes, from `ip -s xfrm state`."""
    shown = netns.ip("-s", "xfrm", "state")
    found = {}
    for block in re.split(r"\n(?=src )", shown):
        spi = re.search(r"spi (0x[0-9a-f]+)", block)
        count = re.search(r"(\d+)\(bytes\)", block)
        if spi and count:
            found[f"0x{int(spi.group(1), 16):08x}"] = int(count.group(1))
    return found


def kernel_policies(netns: tb.Netns) -> int:
    """How many XFRM policies the namespace holds (`ip xfrm policy`)."""
    return len(re.findall(r"\bdir (?:in|out|fwd)\b", netns.ip("xfrm", "policy")))


def sa_pairs(gw: Gateway) -> dict[str, list[tuple[str, str]]]:
    """Tunnel -> its (inbound, outbound) SPIs, from `show ipsec sa`."""
    pairs: dict[str, list[tuple[str, str]]] = {}
    for line in gw.cli("show ipsec sa").splitlines():
        if line.startswith("ipsec:"):
            tunnel, inbound, outbound, *_ = line.split()
            pairs.setdefault(tunnel, []).append((inbound, outbound))
    return pairs


def nothing_left(netns: tb.Netns) -> None:
    assert netns.ip("xfrm", "state").strip() == ""
    assert netns.ip("xfrm", "policy").strip() == ""
    assert netns.ip("-d", "link", "show", "type", "xfrm").strip() == ""
