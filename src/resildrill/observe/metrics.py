"""TimeSeries: probe and load samples merged into 100 ms buckets by start time.

A sample belongs to the bucket in which its request *started* (seconds from the run's
``monotonic_t0``), so a failure is dated to the moment the clinician asked, not the
moment a timeout gave up. One :class:`SourceSeries` per probe or clinician workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from resildrill.observe.histogram import LatencyHistogram

#: Width of one bucket; every time in a report is resolved to this.
RESOLUTION_S = 0.1


def bucket_index(at_s: float) -> int:
    """Bucket of a time given in seconds from ``monotonic_t0`` (floored)."""
    return int((at_s + 1e-9) // RESOLUTION_S)


@dataclass
class SourceSeries:
    """Per-bucket counts, failures and latencies of one probe or workflow.

    Lists grow as buckets are touched; index ``i`` covers ``[i*0.1, (i+1)*0.1)`` seconds.
    """

    name: str
    source: str  # "probe" or "workflow"
    role: str | None = None  # "clinical" / "component" for probes
    counts: list[int] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    latency: list[LatencyHistogram | None] = field(default_factory=list)

    def _grow(self, n: int) -> None:
        if n > len(self.counts):
            extra = n - len(self.counts)
            self.counts.extend([0] * extra)
            self.failures.extend([0] * extra)
            self.latency.extend([None] * extra)

    def add(self, started_at_s: float, ok: bool, latency_s: float) -> None:
        """Record one sample by its start time."""
        i = bucket_index(started_at_s)
        if i < 0:
            return
        self._grow(i + 1)
        self.counts[i] += 1
        if not ok:
            self.failures[i] += 1
        hist = self.latency[i]
        if hist is None:
            hist = self.latency[i] = LatencyHistogram()
        hist.add(latency_s)

    def add_bucket(self, i: int, count: int, failures: int, hist: LatencyHistogram) -> None:
        """Merge a pre-aggregated bucket (from a load worker)."""
        if i < 0:
            return
        self._grow(i + 1)
        self.counts[i] += count
        self.failures[i] += failures
        cur = self.latency[i]
        if cur is None:
            self.latency[i] = LatencyHistogram(hist.bins)
        else:
            cur.merge(hist)

    def padded(self, n: int) -> SourceSeries:
        """This series extended with empty buckets to at least ``n`` buckets."""
        self._grow(n)
        return self


@dataclass
class TimeSeries:
    """All sources of one run, keyed by name."""

    sources: dict[str, SourceSeries] = field(default_factory=dict)

    def source(self, name: str, source: str, role: str | None = None) -> SourceSeries:
        """The series for ``name``, created on first use."""
        s = self.sources.get(name)
        if s is None:
            s = self.sources[name] = SourceSeries(name=name, source=source, role=role)
        return s

    @property
    def n_buckets(self) -> int:
        """Number of buckets of the longest source."""
        return max((len(s.counts) for s in self.sources.values()), default=0)
