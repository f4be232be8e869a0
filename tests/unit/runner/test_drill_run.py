"""The runner in-process, on a fake clock against a fake system (resildrill.testing):
every phase, every exit code of a run that went ahead, and what the record keeps.

Each run is a real `resildrill run` minus time and processes: guards, journal, timeline,
analysis, report.json and its exit code are the product's own code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from resildrill.errors import InvalidInput, ProductionRefused
from resildrill.testing import FakeSystem, run_in_process

TARGET: dict[str, Any] = {
    "apiVersion": "resildrill/v1",
    "kind": "Target",
    "name": "fake-ward",
    "environment": "test",
    "probes": [
        {
            "name": "web",
            "role": "clinical",
            "http": {"url": "http://127.0.0.1:9/healthz"},  # never contacted: fake sampler
            "interval": "100ms",
            "timeout": "300ms",
        }
    ],
}


def write(folder: Path, faults: list[dict[str, Any]], **extra: Any) -> Path:
    (folder / "target.yaml").write_text(yaml.safe_dump({**TARGET, **extra.pop("target", {})}))
    drill = {
        "apiVersion": "resildrill/v1",
        "kind": "Drill",
        "name": "fake",
        "target": "target.yaml",
        "slos": [{"probe": "web", "expect": "success_rate >= 0.99"}],
        "slo_window": "500ms",
        "stability_window": "1s",
        "phases": {"baseline": "2s", "recovery": "3s"},
        "faults": faults,
        **extra,
    }
    path = folder / "drill.yaml"
    path.write_text(yaml.safe_dump(drill, sort_keys=False))
    return path


def fault(
    fid: str = "cut", at: str = "1s", duration: str | None = "2s", **kw: Any
) -> dict[str, Any]:
    f: dict[str, Any] = {"id": fid, "kind": "fake", "at": at, **kw}
    if duration is not None:
        f["duration"] = duration
    return f


def marks(run_dir: Path) -> list[str]:
    lines = [json.loads(x) for x in (run_dir / "timeline.jsonl").read_text().splitlines()]
    return [x["kind"] for x in lines if x.get("t") == "mark"]


def test_passed_every_phase_in_order(tmp_path: Path) -> None:
    """0: baseline, inject, revert, recovery; outage = fault + healing, detect and recover
    measured on the fake clock; the journal ends cleanly."""
    result = run_in_process(write(tmp_path, [fault()]), FakeSystem(heals_after_s=0.5))
    report = result.report
    assert (report.outcome, result.exit_code, report.reason) == ("passed", 0, None)
    f = report.faults[0]
    assert (f.injected_at_s, f.reverted_at_s, f.recovered_at_s) == (3.0, 5.0, 5.5)
    assert f.recovery is not None
    assert (f.recovery.time_to_detect_s, f.recovery.time_to_recover_s) == (0.0, 0.5)
    assert (f.recovery.outage_s, f.recovery.relapses, f.recovery.recovered) == (2.5, 0, True)
    assert report.summary is not None and report.summary.outage_s == 2.5
    assert marks(result.run_dir) == [
        "baseline_start",
        "baseline_end",
        "inject_requested",
        "injected",
        "revert_requested",
        "reverted",
        "end",
    ]
    lines = (result.run_dir / "journal.jsonl").read_text().splitlines()
    journal = [json.loads(x)["type"] for x in lines]
    assert journal == ["run_start", "intent", "injected", "revert_intent", "reverted", "run_end"]
    assert report.duration_s == pytest.approx(8.0, abs=0.05)  # 2 + 1 + 2 + 3


def test_self_healing_fault_is_counted_from_injection(tmp_path: Path) -> None:
    """A fault without duration is the system's to heal: recovery from injection."""
    system = FakeSystem(down_for_s=1.5)
    result = run_in_process(write(tmp_path, [fault(duration=None)]), system)
    f = result.report.faults[0]
    assert f.recovery is not None and result.exit_code == 0
    assert f.recovery.time_to_recover_s == 1.5
    assert "checked" in marks(result.run_dir)


def test_gate_failed_is_1(tmp_path: Path) -> None:
    drill = write(tmp_path, [fault()], gates={"max_time_to_recover": "200ms"})
    result = run_in_process(drill, FakeSystem(heals_after_s=0.5))
    assert (result.report.outcome, result.exit_code) == ("failed", 1)
    assert result.report.reason == "gate failed: max_time_to_recover"


def test_steady_state_broken_in_baseline_is_5_and_injects_nothing(tmp_path: Path) -> None:
    system = FakeSystem()
    system.down_between(system.clock.monotonic() + 0.5, system.clock.monotonic() + 1.0)
    result = run_in_process(write(tmp_path, [fault()]), system)
    assert (result.report.outcome, result.exit_code) == ("not_ready", 5)
    assert system.injected == {}
    assert result.report.faults[0].injected_at_s is None


def test_halt_condition_aborts_with_3_and_reverts(tmp_path: Path) -> None:
    drill = write(
        tmp_path,
        [fault(duration="20s")],
        abort_when=[{"probe": "web", "when": "success_rate < 0.5", "for": "500ms"}],
    )
    system = FakeSystem()
    result = run_in_process(drill, system)
    assert (result.report.outcome, result.exit_code) == ("aborted", 3)
    assert "cut" in system.reverted  # the fault was reverted on the halt
    f = result.report.faults[0]
    assert f.reverted_at_s is not None and f.reverted_at_s < 3.0 + 1.5  # long before 20 s


def test_abort_file_is_3(tmp_path: Path) -> None:
    """`resildrill abort` writes ABORT into the run folder; the next tick stops the run
    and reverts (here the operator aborts as soon as the fault is in)."""
    system = FakeSystem()
    drill = write(tmp_path, [fault(duration="20s")])
    seen = system.healthy

    def healthy(at: float) -> bool:
        if "cut" in system.injected:
            for run_dir in (tmp_path / "reports").glob("*"):
                (run_dir / "ABORT").write_text("operator said so")
        return seen(at)

    system.healthy = healthy  # type: ignore[method-assign]
    result = run_in_process(drill, system)
    assert (result.exit_code, result.report.outcome) == (3, "aborted")
    assert result.report.reason == "aborted by 'resildrill abort' (operator said so)"
    assert "cut" in system.reverted


def test_injection_failure_is_6_and_nothing_left(tmp_path: Path) -> None:
    result = run_in_process(write(tmp_path, [fault(fail="inject")]), FakeSystem())
    assert (result.report.outcome, result.exit_code) == ("error", 6)
    assert "the fake injection was told to fail" in (result.report.reason or "")


def test_revert_that_does_not_take_is_4_with_the_undo(tmp_path: Path) -> None:
    """4 wins over everything: the reason names the fault and how to undo it."""
    result = run_in_process(write(tmp_path, [fault(fail="revert")]), FakeSystem())
    assert (result.report.outcome, result.exit_code) == ("error", 4)
    assert result.report.reason == (
        "still injected: cut (undo with: nothing to undo by hand: fake fault cut)"
    )


def test_4_beats_6(tmp_path: Path) -> None:
    """A fault left in place and a later injection that failed: 4, not 6."""
    faults = [fault("stuck", duration="5s", fail="revert"), fault("broken", at="2s", fail="inject")]
    result = run_in_process(write(tmp_path, faults), FakeSystem())
    assert result.exit_code == 4


def test_6_beats_gate_failure(tmp_path: Path) -> None:
    drill = write(
        tmp_path,
        [fault(), fault("broken", at="4s", fail="inject")],
        gates={"max_time_to_recover": "100ms"},
    )
    result = run_in_process(drill, FakeSystem(heals_after_s=0.5))
    assert result.exit_code == 6


def test_plan_and_run_agree(tmp_path: Path) -> None:
    """The run executes the plan `resildrill plan` prints: its marks fall on the plan's
    times (no clinician load here, so no lead)."""
    from resildrill.clock import MonotonicClock
    from resildrill.drill.loader import load_drill
    from resildrill.faults.base import FaultContext
    from resildrill.plugins import FaultRegistry
    from resildrill.runner.plan import build_plan
    from resildrill.testing import FakeFaultBackend

    drill = write(tmp_path, [fault(), fault("second", at="6s", duration="1s")])
    registry = FaultRegistry({**FaultRegistry.discover().classes(), "fake": FakeFaultBackend})
    loaded = load_drill(drill, registry)
    ctx = FaultContext(loaded.target.spec, tmp_path, "plan", MonotonicClock())
    plan = build_plan(loaded.spec, registry, ctx)
    result = run_in_process(drill, FakeSystem())
    done = {(m.kind, m.fault_id): m.at_s for m in result.report.timeline.marks}
    for step in plan.steps:
        kind = {"inject": "inject_requested", "revert": "revert_requested"}[step.action]
        assert done[(kind, step.ref)] == pytest.approx(step.at_s, abs=0.03), step


def test_clock_pairing_is_read_together(tmp_path: Path) -> None:
    """wall_t0 is the wall time of monotonic_t0 (the fake clock's fixed offset)."""
    system = FakeSystem()
    offset = system.clock.wall() - system.clock.monotonic()
    result = run_in_process(write(tmp_path, [fault()]), system)
    clock = result.report.clock
    assert clock.wall_t0 - clock.monotonic_t0 == pytest.approx(offset, abs=1e-6)


def test_production_refused_before_anything(tmp_path: Path) -> None:
    drill = write(tmp_path, [fault()], target={"environment": "production"})
    with pytest.raises(ProductionRefused):
        run_in_process(drill, FakeSystem())
    assert not (tmp_path / "reports").exists()


def test_load_without_a_host_is_bad_input_before_a_run_folder(tmp_path: Path) -> None:
    """An exit 2 found at run time leaves no fenced run folder behind."""
    target = {
        "probes": [{"name": "web", "role": "clinical", "tcp": {"host": "127.0.0.1", "port": 9}}]
    }
    drill = write(tmp_path, [fault()], target=target, load={"users": 1})
    with pytest.raises(InvalidInput, match=r"load\.host"):
        run_in_process(drill, FakeSystem())
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())
