"""Unit tests of the worker-side bucketing and the wire format (no Locust involved)."""

from __future__ import annotations

import math
import random

from resildrill.load.stream import (
    MAX_WORKFLOWS,
    OTHER_WORKFLOW,
    Bucketer,
    decode,
    encode,
    index_of,
    workflow_of,
)
from resildrill.observe.histogram import RELATIVE_ERROR, LatencyHistogram


def _raw_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_workflow_is_the_name_before_the_colon() -> None:
    """Requests named ``workflow:action`` group by workflow; other names stand alone."""
    assert workflow_of("obs_round:record_vital") == "obs_round"
    assert workflow_of("/Patient") == "/Patient"


def test_samples_bucket_by_start_time_on_the_t0_grid() -> None:
    """A sample lands in the 100 ms bucket of its start, relative to monotonic_t0."""
    t0 = 1000.037
    b = Bucketer(t0)
    b.add("doctor", t0 + 0.05, 3.0, ok=False)  # started in bucket 0, finished in bucket 30
    b.add("doctor", t0 + 0.15, 0.01, ok=True)
    msg = b.drain("w", t0 + 4.0)
    assert msg is not None
    got = {index_of(start, t0): (count, fails) for _, start, count, fails, *_ in msg["buckets"]}
    assert got == {0: (1, 1), 1: (1, 0)}
    assert msg["oldest_done"] == t0 + 0.15 + 0.01


def test_drain_sends_deltas_and_then_nothing() -> None:
    """Each drain carries only samples since the previous one; an idle drain is None."""
    b = Bucketer(0.0)
    b.add("a", 0.01, 0.1, ok=True)
    first = b.drain("w", 1.0)
    assert first is not None and first["buckets"][0][2] == 1
    assert b.drain("w", 1.2) is None
    b.add("a", 0.02, 0.1, ok=True)  # a late sample for bucket 0 arrives as a new delta
    second = b.drain("w", 1.4)
    assert second is not None and second["buckets"][0][2] == 1


def test_workflow_names_are_capped() -> None:
    """Past MAX_WORKFLOWS distinct names, samples go to 'other' so memory stays bounded."""
    b = Bucketer(0.0)
    for i in range(MAX_WORKFLOWS + 5):
        b.add(f"/Patient/{i}", 0.0, 0.001, ok=True)
    msg = b.drain("w", 1.0)
    assert msg is not None
    names = {row[0] for row in msg["buckets"]}
    assert len(names) == MAX_WORKFLOWS + 1 and OTHER_WORKFLOW in names


def test_encode_decode_round_trip_and_torn_lines() -> None:
    """Messages survive the JSON-lines wire; a torn line decodes to None, not an error."""
    b = Bucketer(0.0)
    b.add("a", 0.0, 0.2, ok=True)
    b.add_write({"resource": "Observation", "id": "1"})
    msg = b.drain("w", 1.0)
    assert msg is not None
    line = encode(msg)
    assert decode(line) == msg
    assert decode(line[:10]) is None


def test_p95_of_merged_histograms_matches_raw_samples() -> None:
    """p95 from worker buckets merged in the parent is within the histogram's relative error."""
    rng = random.Random(7)
    t0 = 50.0
    workers = [Bucketer(t0) for _ in range(3)]
    raw: list[float] = []
    for i in range(30_000):
        latency = rng.lognormvariate(-3.0, 0.8) + (0.5 if rng.random() < 0.03 else 0.0)
        raw.append(latency)
        workers[i % 3].add("obs_round", t0 + rng.uniform(0, 10), latency, ok=True)
    merged = LatencyHistogram()
    for w in workers:
        msg = w.drain("w", t0 + 20)
        assert msg is not None
        for _, _, _, _, hist, *_ in msg["buckets"]:
            merged.merge(LatencyHistogram.from_json(hist))
    assert merged.count == len(raw)
    for q in (0.5, 0.95, 0.99):
        got, want = merged.quantile(q), _raw_quantile(raw, q)
        assert got is not None
        assert abs(got - want) <= RELATIVE_ERROR * want, (q, got, want)
