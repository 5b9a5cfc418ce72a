"""Shared pieces of the fault-injection tests (issue 13): one ipsecgw and one
strongSwan (or two strongSwans, for the reference numbers), traffic that
records every failure, and the SA tables of both ends."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gwlab import IpsecgwProcess, site_config

from ipsecgw.tools import testbed as tb

# A UDP stream from one inner address to another, sent at a fixed rate until
# stdin closes or the time is up; prints one JSON line: datagrams sent and
# the errno name of every failed send, counted (unconnected, so that the
# far end's ICMP port unreachable is not reported back). An application sending into
# a tunnel must never be told the network is unreachable while the tunnel
# is configured and being renewed.
_UDP_STREAM = """
import errno, json, socket, sys, time
source, target, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((source, 0))
data = bytes(1000)
sent, errors, first_error = 0, {}, None
start = time.monotonic()
n = 0
while (now := time.monotonic()) < start + seconds:
    n += 1
    try:
        s.sendto(data, (target, 9))
        sent += 1
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno))
        errors[name] = errors.get(name, 0) + 1
        first_error = first_error if first_error is not None else round(now - start, 2)
    time.sleep(max(0.0, start + n / rate - time.monotonic()))
print(json.dumps({"sent": sent, "errors": errors, "first_error_at": first_error}))
"""


@dataclass
class StreamResult:
    sent: int
    errors: dict[str, int]
    first_error_at: float | None


class UdpStream:
    """``_UDP_STREAM`` running in a namespace; ``result()`` waits for it."""

    def __init__(self, netns: tb.Netns, source: str, target: str, *, rate: float,
                 seconds: float) -> None:
        self.proc = netns.popen([sys.executable, "-c", _UDP_STREAM, source, target, str(rate),
                                 str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.seconds = seconds

    def result(self) -> StreamResult:
        out, err = self.proc.communicate(timeout=self.seconds + 30)
        if self.proc.returncode:
            raise RuntimeError(f"UDP stream failed: {err.decode(errors='replace')}")
        r = json.loads(out)
        return StreamResult(r["sent"], r["errors"], r["first_error_at"])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Pinger:
    """``ping -i 0.1`` from site A's inner address to B's, with timestamps,
    written to a file as it goes: when did replies stop and start again."""

    def __init__(self, sites: tb.TwoSites, path: Path, interval: float = 0.1) -> None:
        self.path = path
        self._file = open(path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = sites.a.popen(
            ["stdbuf", "-oL", "ping", "-D", "-n", "-i", str(interval), "-W", "1",
             "-I", tb.SITE_A_INNER, tb.SITE_B_INNER],
            stdout=self._file, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self._file.close()

    def reply_times(self) -> list[float]:
        """Wall-clock times (time.time()) of the echo replies so far."""
        text = self.path.read_text(errors="replace")
        return [float(m) for m in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", text,
                                             re.MULTILINE)]

    def first_reply_after(self, wall: float) -> float | None:
        """Seconds from ``wall`` (time.time()) to the first reply after it."""
        later = [t for t in self.reply_times() if t > wall]
        return later[0] - wall if later else None


def swan_conf_b(**extra: str) -> str:
    """strongSwan in B for ipsecgw in A: site_config()'s suites (group 14, PFS)."""
    return tb.swanctl_conf(local_addr=tb.SITE_B_OUTER, remote_addr=tb.SITE_A_OUTER,
                           local_ts=tb.SITE_B_NET, remote_ts=tb.SITE_A_NET, **extra)


def swan_conf_a(**extra: str) -> str:
    """strongSwan in A (the reference pair: strongSwan in place of ipsecgw)."""
    return tb.swanctl_conf(local_addr=tb.SITE_A_OUTER, remote_addr=tb.SITE_B_OUTER,
                           local_ts=tb.SITE_A_NET, remote_ts=tb.SITE_B_NET, **extra)


# -- the SA tables of both ends ---------------------------------------------------

def gw_ike_sas(gw: IpsecgwProcess) -> list[str]:
    """States of ipsecgw's ISAKMP SAs (`show ipsec ike-sa`), one per SA."""
    out = gw.cli("show ipsec ike-sa")
    return [line.split()[1] for line in out.splitlines() if line.startswith("ipsec:")]


def gw_ipsec_sas(gw: IpsecgwProcess) -> list[tuple[str, str]]:
    """(inbound SPI, outbound SPI) of ipsecgw's IPsec SAs (`show ipsec sa`)."""
    out = gw.cli("show ipsec sa")
    return [(words[1][2:], words[2][2:]) for line in out.splitlines()
            if (words := line.split()) and words[0].startswith("ipsec:")]


def swan_ike_sas(swan: tb.StrongSwan) -> list[str]:
    """States of strongSwan's IKE SAs (`swanctl --list-sas`)."""
    return re.findall(r"^\S+: #\d+, (\S+), IKEv1", swan.list_sas(), re.MULTILINE)


def swan_child_sas(swan: tb.StrongSwan) -> list[tuple[str, str, str]]:
    """(state, inbound SPI, outbound SPI) of strongSwan's CHILD_SAs."""
    text = swan.list_sas()
    states = re.findall(r"^\s+\S+: #\d+, reqid \d+, (\S+),", text, re.MULTILINE)
    ins = re.findall(r"^\s+in\s+([0-9a-f]{8})", text, re.MULTILINE)
    outs = re.findall(r"^\s+out\s+([0-9a-f]{8})", text, re.MULTILINE)
    return list(zip(states, ins, outs, strict=False))


def settled(gw: IpsecgwProcess, swan: tb.StrongSwan) -> bool:
    """One established ISAKMP SA and one IPsec SA pair on each end, the same
    pair (the SPIs cross-match), nothing half-open or being deleted."""
    gw_sas, swan_sas = gw_ipsec_sas(gw), swan_child_sas(swan)
    return (gw_ike_sas(gw) == ["established"] and len(gw_sas) == 1
            and swan_ike_sas(swan) == ["ESTABLISHED"] and len(swan_sas) == 1
            and swan_sas[0] == ("INSTALLED", gw_sas[0][1], gw_sas[0][0]))


def both_ends(gw: IpsecgwProcess, swan: tb.StrongSwan) -> str:
    """Both SA tables, for an assertion message."""
    return (gw.cli("show ipsec ike-sa") + gw.cli("show ipsec sa") + "\nstrongSwan:\n"
            + swan.list_sas())


def statistic(gw: IpsecgwProcess, label: str) -> int:
    """One counter of `show ipsec statistics` (a single VR)."""
    match = re.search(rf"^\s+{re.escape(label)}\s+(\d+)$", gw.cli("show ipsec statistics"),
                      re.MULTILINE)
    assert match, f"no counter {label!r}"
    return int(match.group(1))


@contextmanager
def gw_and_swan(sites: tb.TwoSites, workdir: Path, *, gw_config: str | None = None,
                swan_conf: str | None = None) -> Iterator[tuple[IpsecgwProcess, tb.StrongSwan]]:
    """strongSwan answering in B, ipsecgw initiating in A (not yet waited for)."""
    with tb.StrongSwan(sites.b, swan_conf or swan_conf_b(), workdir=workdir / "swan") as swan:
        swan.start()
        with IpsecgwProcess(sites.a, workdir / "gw", gw_config or site_config()) as gw:
            yield gw, swan




# -- captured packets, sent again --------------------------------------------------

def pcap_ip_packets(path: Path) -> list[bytes]:
    """The IPv4 packets of a pcap file written by tcpdump on a veth (Ethernet frames)."""
    data = path.read_bytes()
    magic = int.from_bytes(data[:4], "little")
    order: Literal["little", "big"] = "little" if magic in (0xA1B2C3D4, 0xA1B23C4D) else "big"
    assert int.from_bytes(data[20:24], order) == 1, "not an Ethernet capture"
    packets, offset = [], 24
    while offset + 16 <= len(data):
        captured = int.from_bytes(data[offset + 8:offset + 12], order)
        frame = data[offset + 16:offset + 16 + captured]
        offset += 16 + captured
        if frame[12:14] == b"\x08\x00":  # IPv4
            packets.append(_with_udp_checksum(frame[14:]))
    return packets


def _with_udp_checksum(packet: bytes) -> bytes:
    """The packet with its UDP checksum computed: a veth offloads it, so
    tcpdump records only the pseudo-header's part (RFC 768)."""
    header = (packet[0] & 0x0F) * 4
    if packet[9] != 17:
        return packet
    udp = bytearray(packet[header:])
    udp[6:8] = bytes(2)
    pseudo = packet[12:20] + bytes((0, 17)) + len(udp).to_bytes(2, "big")
    data = pseudo + udp + bytes(len(udp) % 2)
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    udp[6:8] = ((~total & 0xFFFF) or 0xFFFF).to_bytes(2, "big")
    return packet[:header] + bytes(udp)


def is_ike(packet: bytes) -> bool:
    """UDP to 500, or to 4500 with the non-ESP marker (RFC 3948 2.2)."""
    header = (packet[0] & 0x0F) * 4
    if packet[9] != 17:
        return False
    port = int.from_bytes(packet[header + 2:header + 4], "big")
    return port == 500 or (port == 4500 and packet[header + 8:header + 12] == bytes(4))


def source_of(packet: bytes) -> str:
    return ".".join(str(b) for b in packet[12:16])


_REPLAY = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for line in sys.stdin:
    packet = bytes.fromhex(line.strip())
    s.sendto(packet, (".".join(str(b) for b in packet[16:20]), 0))
"""


def replay(netns: tb.Netns, packets: list[bytes]) -> None:
    """Send whole captured IPv4 packets again, as they were (raw socket with
    IP_HDRINCL: same addresses, ports and payload), from ``netns``."""
    netns_input = "".join(p.hex() + "\n" for p in packets)
    proc = netns.popen([sys.executable, "-c", _REPLAY], stdin=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    _, err = proc.communicate(netns_input.encode(), timeout=30)
    assert proc.returncode == 0, err.decode(errors="replace")
