"""Ctrl-C and kill as an operator sends them: the first signal reverts and reports (exit 3),
a second one exits at once (130) and leaves the journal, which the watchdog then undoes.
Process state is read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.support.tiny import load_report, process_fault, read_pid, wait_state, write_drill

from resildrill.faults.process import proc_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def start_in_own_group(drill: Path, out: Path) -> subprocess.Popen[str]:
    """`resildrill run` as a terminal starts it: its own process group, so a signal to the
    group is what Ctrl-C sends."""
    return subprocess.Popen(
        [sys.executable, "-m", "resildrill", "run", str(drill), "--out", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_ctrl_c_reverts_and_exits_3(web: tuple[Path, int]) -> None:
    """SIGINT to the runner's process group: the freeze is continued, the report written."""
    folder, _ = web
    drill = write_drill(folder, "ctrl-c", [process_fault("freeze", "30s")])
    runner = start_in_own_group(drill, folder / "reports")
    try:
        pid = read_pid(folder / "web.pid") or 0
        assert wait_state(pid, ("T",), 15) is not None
        os.killpg(runner.pid, signal.SIGINT)
        out, err = runner.communicate(timeout=20)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 3, err
    assert proc_state(pid) in ("S", "R")
    report = load_report(Path(out.strip().splitlines()[-1]))
    assert report["outcome"] == "aborted" and "SIGINT" in report["reason"]


def test_second_signal_exits_at_once_and_the_watchdog_reverts(web: tuple[Path, int]) -> None:
    """Two signals: exit 130 with the rollback hint; the journal remains and the watchdog
    continues the frozen service within 5 s."""
    folder, _ = web
    drill = write_drill(folder, "insist", [process_fault("freeze", "30s")])
    runner = start_in_own_group(drill, folder / "reports")
    try:
        pid = read_pid(folder / "web.pid") or 0
        assert wait_state(pid, ("T",), 15) is not None
        # Two different signals (two of the same would merge into one pending signal in the
        # kernel), delivered together: sent while the runner is stopped, so a busy machine
        # cannot let it finish the first's graceful abort before the second lands.
        os.kill(runner.pid, signal.SIGSTOP)
        runner.send_signal(signal.SIGTERM)
        runner.send_signal(signal.SIGINT)
        os.kill(runner.pid, signal.SIGCONT)
        _, err = runner.communicate(timeout=20)
    finally:
        if runner.poll() is None:
            runner.kill()
    if runner.returncode == 3:
        pytest.fail("the runner finished its graceful abort before the second signal landed")
    assert runner.returncode == 130, err
    assert "resildrill rollback" in err
    run_dir = next((folder / "reports").iterdir())
    assert (run_dir / "journal.jsonl").exists()
    deadline = time.monotonic() + 5
    while proc_state(pid) not in ("S", "R") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc_state(pid) in ("S", "R"), "nobody continued the frozen service"
