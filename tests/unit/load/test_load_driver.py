"""Unit tests of the parent side: message -> LoadBucket conversion, late samples, merging."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from resildrill.drill.model import LoadSpec
from resildrill.load import LoadBucket, LoadDriver, WorkflowSeries, apply_buckets
from resildrill.load.stream import Bucketer
from resildrill.observe.histogram import LatencyHistogram
from resildrill.observe.metrics import TimeSeries


def _driver(tmp_path: Path, t0: float) -> LoadDriver:
    return LoadDriver(
        LoadSpec(users=1, request_timeout="2s"),
        host="http://127.0.0.1:9",
        run_dir=tmp_path,
        monotonic_t0=t0,
    )


def test_poll_turns_messages_into_buckets_relative_to_t0(tmp_path: Path) -> None:
    """Raw monotonic bucket starts become indices from monotonic_t0 and merge into series."""
    t0 = time.monotonic() - 1.5
    d = _driver(tmp_path, t0)
    w = Bucketer(t0)
    w.add("doctor", t0 + 1.23, 0.05, ok=True)
    w.add("doctor", t0 + 1.27, 0.07, ok=False)
    w.add_action("doctor", t0 + 1.2, ok=False)
    msg = w.drain("w1", time.monotonic())
    assert msg is not None
    msg["arrived"] = time.monotonic()
    d._queue.append(msg)
    buckets = d.poll()
    assert [(b.workflow, b.index, b.count, b.failures) for b in buckets] == [("doctor", 12, 2, 1)]
    assert d.poll() == []
    series = TimeSeries()
    apply_buckets(series, buckets)
    s = series.sources["doctor"]
    assert s.source == "workflow" and s.counts[12] == 2 and s.failures[12] == 1
    summary = d.summary()["by_workflow"]["doctor"]
    assert summary["requests"] == 2 and summary["failed_actions"] == 1


def test_samples_older_than_the_request_timeout_are_dropped_and_counted(tmp_path: Path) -> None:
    """A bucket arriving later than the request timeout (+ slack) is not merged but counted."""
    now = time.monotonic()
    d = _driver(tmp_path, now - 60)
    w = Bucketer(now - 60)
    w.add("a", now - 30, 0.01, ok=True)  # 30 s old, timeout is 2 s
    w.add("a", now - 1.5, 0.01, ok=True)  # within the timeout: accepted
    msg = w.drain("w", now)
    assert msg is not None
    msg["arrived"] = now
    d._queue.append(msg)
    assert [b.count for b in d.poll()] == [1]
    assert d.late_dropped == 1


def test_sample_age_is_measured_on_arrival(tmp_path: Path) -> None:
    """The age of a message's oldest sample is recorded when the parent receives it."""
    now = time.monotonic()
    d = _driver(tmp_path, now - 10)
    w = Bucketer(now - 10)
    w.add("a", now - 0.3, 0.1, ok=True)  # finished 0.2 s before arrival
    msg = w.drain("w", now)
    assert msg is not None
    msg["arrived"] = now
    d._queue.append(msg)
    d.poll()
    age = d.ages.quantile(0.99)
    assert age is not None and abs(age - 0.2) < 0.01


def test_stop_before_start_is_a_no_op(tmp_path: Path) -> None:
    """stop() is idempotent and safe on a driver that never started."""
    d = _driver(tmp_path, time.monotonic())
    d.stop()
    d.stop()
    assert d.pids == []


def test_runner_and_cli_never_import_locust_or_gevent() -> None:
    """Importing the CLI, the runner and the load driver leaves gevent/locust out (P11)."""
    mods = ["resildrill.cli", "resildrill.load", "resildrill.load.driver"]
    if (Path(__file__).parents[3] / "src/resildrill/runner/__init__.py").exists():
        mods.append("resildrill.runner")
    code = (
        f"import {', '.join(mods)}, sys; "
        "bad = {'gevent', 'locust'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_apply_buckets_keeps_clinical_actions_per_workflow() -> None:
    """Actions and failed actions reach the workflow's series bucket by bucket, even in a
    bucket without requests (an action starts just before its first request), and a plain
    series made earlier is upgraded without losing its requests."""
    series = TimeSeries()
    series.source("obs_round", "workflow").add(0.05, ok=True, latency_s=0.01)
    hist = LatencyHistogram()
    hist.add(0.02)
    apply_buckets(
        series,
        [
            LoadBucket("obs_round", 3, 0, 0, LatencyHistogram(), actions=2, actions_failed=1),
            LoadBucket("obs_round", 4, 7, 3, hist),
            LoadBucket("obs_round", 3, 0, 0, LatencyHistogram(), actions=1, actions_failed=1),
        ],
    )
    s = series.sources["obs_round"]
    assert isinstance(s, WorkflowSeries) and s.source == "workflow"
    assert s.counts == [1, 0, 0, 0, 7] and s.failures == [0, 0, 0, 0, 3]
    assert s.actions == [0, 0, 0, 3, 0] and s.actions_failed == [0, 0, 0, 2, 0]
    s.padded(8)
    assert len(s.actions) == len(s.actions_failed) == len(s.counts) == 8
