"""Address pools (`ip local pool NAME FIRST LAST`): addresses lent to subscribers.

A pool hands out its lowest free address; an address comes back when its
subscriber goes. The configuration may change under live subscribers: a
pool keeps the addresses it lent that are still in its new range, and an
address outside it is simply not taken back (`release` of an address the
pool does not hold is a no-op), so nothing is lent twice.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


class PoolExhausted(Exception):
    """Every address of the pool is lent."""


@dataclass
class AddressPool:
    name: str
    first: str
    last: str
    _in_use: set[int] = field(default_factory=set)
    _next: int = 0  # search hint: no free address below it

    def __post_init__(self) -> None:
        self._low = int(ipaddress.IPv4Address(self.first))
        self._high = int(ipaddress.IPv4Address(self.last))
        if self._low > self._high:
            raise ValueError(f"pool {self.name}: {self.first} is above {self.last}")
        self._next = self._low

    @property
    def size(self) -> int:
        return self._high - self._low + 1

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    def contains(self, address: str) -> bool:
        return self._low <= int(ipaddress.IPv4Address(address)) <= self._high

    def allocate(self) -> str:
        """The lowest free address; PoolExhausted when there is none."""
        candidate = self._next
        while candidate <= self._high and candidate in self._in_use:
            candidate += 1
        if candidate > self._high:
            raise PoolExhausted(f"pool {self.name} exhausted ({self.size} addresses in use)")
        self._in_use.add(candidate)
        self._next = candidate + 1
        return str(ipaddress.IPv4Address(candidate))

    def reserve(self, address: str) -> bool:
        """Take `address` (a RADIUS Framed-IP-Address in the range); False if it is lent."""
        value = int(ipaddress.IPv4Address(address))
        if value in self._in_use:
            return False
        self._in_use.add(value)
        return True

    def release(self, address: str) -> None:
        value = int(ipaddress.IPv4Address(address))
        if value in self._in_use:
            self._in_use.discard(value)
            self._next = min(self._next, value)

    def resized(self, first: str, last: str) -> AddressPool:
        """This pool with a new range, keeping what it lent inside it."""
        pool = AddressPool(self.name, first, last)
        pool._in_use = {a for a in self._in_use if pool._low <= a <= pool._high}
        return pool
