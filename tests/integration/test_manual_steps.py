"""Manual steps as an operator meets them: the drill waits for the answer while it keeps
measuring, beating its heartbeat and honouring aborts (runner/operator.py)."""

from __future__ import annotations

import os
import pty
import time
from pathlib import Path
from typing import Any

import pytest
from tests.support.tiny import (
    load_report,
    process_fault,
    read_pid,
    resildrill,
    start_run,
    wait_mark,
    wait_state,
    write_drill,
    write_target,
)

from resildrill.faults.process import proc_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

#: The watchdog's heartbeat limit is cut to 1 s here (RESILDRILL_TEST_STALE_AFTER) and the
#: operator takes longer: a runner that blocked on the answer would be fenced and its
#: faults reverted meanwhile.
OPERATOR_TAKES_S = 1.7
SHORT_WATCHDOG = {"RESILDRILL_TEST_STALE_AFTER": "1"}
QUICK = {"baseline": "500ms", "recovery": "1s"}


def call_ward(timeout: str = "30s") -> dict[str, Any]:
    return {"id": "call-ward", "at": "500ms", "prompt": "Phone the ward", "timeout": timeout}


def run_dir_of(reports: Path) -> Path:
    return next(reports.iterdir())


def test_confirm_from_another_terminal_answers_the_step(web: tuple[Path, int]) -> None:
    """The step holds the schedule (the 1 s freeze is reverted only after the answer), the
    watchdog does not fence the waiting runner, and `resildrill confirm` answers it."""
    folder, port = web
    write_target(folder, port, recovery="restart")
    drill = write_drill(
        folder, "held", [process_fault("freeze", "1s")], manual=[call_ward()], phases=QUICK
    )
    reports = folder / "reports"
    runner = start_run(drill, reports, env=SHORT_WATCHDOG)
    try:
        pid = read_pid(folder / "web.pid") or 0
        assert wait_state(pid, ("T",), 15) is not None
        time.sleep(OPERATOR_TAKES_S)
        assert proc_state(pid) == "T", "the freeze was reverted before the step was answered"
        run_id = run_dir_of(reports).name
        unknown = resildrill("confirm", run_id, "call-wrad")
        assert unknown.returncode == 2 and "steps: call-ward" in unknown.stderr
        confirmed = resildrill("confirm", run_id, "call-ward")
        assert confirmed.returncode == 0, confirmed.stderr
        _, err = runner.communicate(timeout=30)
        assert runner.returncode == 0, err
    finally:
        if runner.poll() is None:
            runner.kill()
    assert proc_state(pid) in ("S", "R")
    report = load_report(run_dir_of(reports))
    assert report["outcome"] in ("passed", "failed"), report["reason"]
    assert "fenced" not in (report["reason"] or "")
    [step] = report["manual"]
    assert step["completed"] is True
    assert step["how"] == "confirmed with 'resildrill confirm'"
    assert step["duration_s"] >= OPERATOR_TAKES_S - 0.5  # the step starts 0.5 s in
    [fault] = report["faults"]
    assert fault["reverted_at_s"] - fault["injected_at_s"] >= OPERATOR_TAKES_S
    # the recovery window (1 s) is kept whole after the late step
    assert report["duration_s"] - fault["reverted_at_s"] >= 1.0
    # sampling went on while the runner waited
    web = next(p for p in report["probes"] if p["name"] == "web")
    assert web["samples"] >= 20, web


def test_enter_on_the_runners_terminal_answers_the_step(web: tuple[Path, int]) -> None:
    """On a real terminal (a pty), Enter answers the step."""
    folder, port = web
    write_target(folder, port, recovery="restart")
    drill = write_drill(
        folder, "enter", [process_fault("freeze", "1s")], manual=[call_ward()], phases=QUICK
    )
    reports = folder / "reports"
    controller, terminal = pty.openpty()
    runner = start_run(drill, reports, stdin=terminal, env=SHORT_WATCHDOG)
    os.close(terminal)
    try:
        pid = read_pid(folder / "web.pid") or 0
        assert wait_state(pid, ("T",), 15) is not None
        time.sleep(OPERATOR_TAKES_S)
        assert proc_state(pid) == "T"
        os.write(controller, b"\n")
        out, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
        os.close(controller)
    assert "resildrill confirm" in out + err and "press Enter" in out + err
    report = load_report(run_dir_of(reports))
    [step] = report["manual"]
    assert (step["completed"], step["how"]) == (True, "operator confirmed")
    assert step["duration_s"] >= OPERATOR_TAKES_S - 0.5  # the step starts 0.5 s in


def test_unanswered_step_times_out_and_the_drill_goes_on(web: tuple[Path, int]) -> None:
    """Nobody answers: the step ends at its timeout, not completed, and the run finishes."""
    folder, port = web
    write_target(folder, port, recovery="restart")
    drill = write_drill(
        folder,
        "unanswered",
        [process_fault("freeze", "1s")],
        manual=[call_ward("1500ms")],
        phases=QUICK,
    )
    result = resildrill("run", str(drill), "--out", str(folder / "reports"), env=SHORT_WATCHDOG)
    assert result.returncode == 0, result.stdout + result.stderr
    report = load_report(run_dir_of(folder / "reports"))
    [step] = report["manual"]
    assert (step["completed"], step["how"]) == (False, "timed out")
    assert 1.5 <= step["duration_s"] < 2.5


def test_abort_while_a_step_waits(web: tuple[Path, int]) -> None:
    """`resildrill abort` reaches a runner that waits for an operator: exit 3, reverted."""
    folder, port = web
    write_target(folder, port, recovery="restart")
    drill = write_drill(
        folder, "abort-wait", [process_fault("freeze", "1s")], manual=[call_ward()], phases=QUICK
    )
    reports = folder / "reports"
    runner = start_run(drill, reports, env=SHORT_WATCHDOG)
    try:
        pid = read_pid(folder / "web.pid") or 0
        assert wait_state(pid, ("T",), 15) is not None
        assert wait_mark(reports, "manual_start", 10)  # the step waits (0.5 s after the freeze)
        time.sleep(OPERATOR_TAKES_S)
        aborted = resildrill("abort", run_dir_of(reports).name, "--reason", "ward busy")
        assert aborted.returncode == 0, aborted.stderr
        _, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 3, err
    assert proc_state(pid) in ("S", "R")
    report = load_report(run_dir_of(reports))
    [step] = report["manual"]
    assert step["completed"] is False and step["how"].startswith("interrupted: ")
    assert "ward busy" in step["how"]
