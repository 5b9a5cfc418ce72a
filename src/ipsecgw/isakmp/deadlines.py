"""A queue of deadlines, one per key, earliest first (a binary heap with lazy removal).

The engine keeps every timer of every SA, tunnel and peer here, so that
`get_timer()` and `handle_timer()` cost O(log n) per change however many
thousands of tunnels one engine holds, instead of a scan over all of them.
Moving or cancelling a deadline leaves the old heap entry behind; it is
recognised as stale (its key now has another deadline, or none) and skipped.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

#: Rebuild the heap when stale entries outnumber live ones by this much.
_COMPACT_SLACK = 64


class Deadlines(Generic[K]):
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._at: dict[K, float] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._at)

    def schedule(self, key: K, at: float | None) -> None:
        """`key` is due at `at`; None or infinity cancels its deadline."""
        if at is None or not math.isfinite(at):
            self._at.pop(key, None)
            return
        if self._at.get(key) == at:
            return
        self._at[key] = at
        heapq.heappush(self._heap, (at, next(self._order), key))
        if len(self._heap) > 2 * len(self._at) + _COMPACT_SLACK:
            self._heap = [(when, next(self._order), k) for k, when in self._at.items()]
            heapq.heapify(self._heap)

    def earliest(self) -> float | None:
        heap = self._heap
        while heap and self._at.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> list[K]:
        """Every key due at or before `now`, earliest first; their deadlines are cleared."""
        due: list[K] = []
        while (at := self.earliest()) is not None and at <= now:
            key = heapq.heappop(self._heap)[2]
            del self._at[key]
            due.append(key)
        return due


class Schedule(Generic[K]):
    """`Deadlines` whose keys compute their own deadline (`deadline_of`).

    Whatever changes an object's deadline marks it (`touch`); the deadlines of
    the marked objects are recomputed, in the order marked, before the heap is
    next read (equal deadlines fire in that order: tunnels that became due
    together start in configuration order).
    """

    def __init__(self, deadline_of: Callable[[K], float | None]) -> None:
        self._deadline_of = deadline_of
        self._deadlines: Deadlines[K] = Deadlines()
        self._dirty: dict[K, None] = {}

    def touch(self, key: K) -> None:
        self._dirty[key] = None

    def earliest(self) -> float | None:
        self._refresh()
        return self._deadlines.earliest()

    def pop_due(self, now: float) -> list[K]:
        self._refresh()
        return self._deadlines.pop_due(now)

    def _refresh(self) -> None:
        if self._dirty:
            dirty, self._dirty = self._dirty, {}
            for key in dirty:
                self._deadlines.schedule(key, self._deadline_of(key))
