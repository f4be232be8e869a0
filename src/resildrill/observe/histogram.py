"""A small mergeable latency histogram with a stated relative error.

Bins grow geometrically by ``GAMMA`` (log buckets, as in DDSketch), so any quantile read
from the histogram is within ``RELATIVE_ERROR`` of the true sample quantile's value.
Histograms from workers and buckets merge by adding counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

#: Relative accuracy of every quantile this histogram returns.
RELATIVE_ERROR = 0.01
GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(GAMMA)
#: Latencies below this (seconds) share the lowest bin.
MIN_LATENCY_S = 1e-5


def bin_of(latency_s: float) -> int:
    """Index of the bin holding ``latency_s``."""
    return math.ceil(math.log(max(latency_s, MIN_LATENCY_S)) / _LOG_GAMMA)


def bin_value(index: int) -> float:
    """The representative value of a bin (within RELATIVE_ERROR of every value in it)."""
    return 2 * GAMMA**index / (GAMMA + 1)


class LatencyHistogram:
    """Counts per log bin; ``quantile`` answers within RELATIVE_ERROR."""

    __slots__ = ("bins", "count")

    def __init__(self, bins: dict[int, int] | None = None) -> None:
        self.bins: dict[int, int] = dict(bins or {})
        self.count = sum(self.bins.values())

    def add(self, latency_s: float) -> None:
        """Record one latency."""
        i = bin_of(latency_s)
        self.bins[i] = self.bins.get(i, 0) + 1
        self.count += 1

    def merge(self, other: LatencyHistogram) -> None:
        """Add another histogram's counts into this one."""
        for i, n in other.bins.items():
            self.bins[i] = self.bins.get(i, 0) + n
        self.count += other.count

    @classmethod
    def merged(cls, histograms: Iterable[LatencyHistogram | None]) -> LatencyHistogram:
        """A new histogram holding the sum of ``histograms``."""
        out = cls()
        for h in histograms:
            if h is not None:
                out.merge(h)
        return out

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0..1) by the nearest-rank rule, or None when empty."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for i in sorted(self.bins):
            seen += self.bins[i]
            if seen >= rank:
                return bin_value(i)
        return bin_value(max(self.bins))  # pragma: no cover - unreachable by construction

    def to_json(self) -> dict[str, int]:
        """Compact form for streaming and reports: ``{bin: count}`` with string keys."""
        return {str(i): n for i, n in self.bins.items()}

    @classmethod
    def from_json(cls, data: dict[str, int]) -> LatencyHistogram:
        """Inverse of :meth:`to_json`."""
        return cls({int(k): int(v) for k, v in data.items()})
