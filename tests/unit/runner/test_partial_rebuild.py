"""A crashed run's timeline.jsonl rebuilt into a record (pipeline.rebuild_record): probe
samples, marks and the clinician-load buckets the runner had streamed before it died."""

from __future__ import annotations

from pathlib import Path

from tests.support.tiny import process_fault, write_drill, write_target

from resildrill.load.driver import LoadBucket
from resildrill.observe.histogram import LatencyHistogram
from resildrill.pipeline import rebuild_record
from resildrill.runner.timeline import Mark, TimelineStream


def bucket(workflow: str, index: int, count: int, failures: int, latency_s: float) -> LoadBucket:
    hist = LatencyHistogram()
    for _ in range(count):
        hist.add(latency_s)
    return LoadBucket(workflow, index, count, failures, hist, actions=1, actions_failed=failures)


def test_streamed_load_buckets_survive_a_crash(tmp_path: Path) -> None:
    """Two deltas of one bucket add up; totals per workflow come back for the report."""
    write_target(tmp_path, 9, recovery="restart")  # never contacted
    drill = write_drill(tmp_path, "crashed", [process_fault("freeze", "1s")])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stream = TimelineStream(
        run_dir / "timeline.jsonl",
        {
            "run_id": "crashed-1",
            "drill": str(drill),
            "monotonic_t0": 100.0,
            "wall_t0": 1.0,
            "started_at": "2026-11-26T00:00:00Z",
            "baseline_end_s": 1.0,
        },
    )
    stream.sample("web", 0.05, True, 0.002)
    stream.mark(Mark(1.0, "baseline_end"))
    stream.load_bucket(bucket("nurse_obs", 3, 4, 0, 0.020))
    stream.load_bucket(bucket("nurse_obs", 3, 2, 1, 0.040))  # a second worker's delta
    stream.load_bucket(bucket("drug_round", 12, 5, 5, 0.500))
    stream.close()  # the runner is "killed" here: no run_end, no report.json

    record = rebuild_record(run_dir)

    nurse = record.series.sources["nurse_obs"]
    assert nurse.counts[3] == 6 and nurse.failures[3] == 1
    assert record.series.sources["drug_round"].failures[12] == 5
    assert record.end_s >= 1.3  # the last load bucket ends at 1.3 s
    assert record.load is not None
    assert record.load["requests"] == 11 and record.load["failures"] == 6
    by = record.load["by_workflow"]
    assert by["nurse_obs"]["requests"] == 6 and by["nurse_obs"]["failed_actions"] == 1
    assert by["drug_round"]["failed_actions"] == 5
    assert by["drug_round"]["p95_ms"] is not None and by["drug_round"]["p95_ms"] >= 450


def test_a_watchdog_revert_appears_in_the_rebuilt_record(tmp_path: Path) -> None:
    """The runner died with its fault injected; its watchdog reverted it (journalled with
    its monotonic stamp): the rebuilt fault has that revert, not ``revert: null``."""
    from resildrill.runner.journal import Journal

    write_target(tmp_path, 9, recovery="restart")  # never contacted
    drill = write_drill(tmp_path, "crashed", [process_fault("freeze", "30s")])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    t0 = 100.0
    stream = TimelineStream(
        run_dir / "timeline.jsonl",
        {
            "run_id": "crashed-2",
            "drill": str(drill),
            "monotonic_t0": t0,
            "wall_t0": 1.0,
            "started_at": "2026-11-26T00:00:00Z",
            "baseline_end_s": 1.0,
        },
    )
    stream.mark(Mark(1.0, "baseline_end"))
    stream.mark(Mark(1.0, "inject_requested", "freeze"))
    stream.mark(Mark(1.02, "injected", "freeze"))
    stream.close()
    with Journal(run_dir / "journal.jsonl") as journal:
        journal.append("run_start", run_id="crashed-2")
        journal.append("intent", fault_id="freeze", kind="process", recipe={}, mono=t0 + 1.0)
        journal.append("injected", fault_id="freeze", recipe={}, mono=t0 + 1.02)
        journal.append("fenced", by="watchdog", reason="runner process died", mono=t0 + 2.4)
        journal.append("revert_intent", fault_id="freeze", kind="process", mono=t0 + 2.45)
        journal.append("reverted", fault_id="freeze", result="continued pid 7", mono=t0 + 2.5)

    record = rebuild_record(run_dir)

    [fault] = record.faults
    assert (fault.injected_at_s, fault.reverted_at_s) == (1.02, 2.5)
    assert fault.revert_detail == "continued pid 7"
    assert record.end_s >= 2.5
