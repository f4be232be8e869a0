"""Crash safety: a runner killed at any point leaves a journal that `rollback` fully undoes.

The watchdog is switched off here (RESILDRILL_TEST_WATCHDOG=off) to stand for a host that
lost it with the runner; tests/integration/test_crash_cleanup.py covers the watchdog.

The inspector reads process state from /proc and probes the service over HTTP; it never
trusts the journal.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.conftest import wait_http
from tests.support.tiny import (
    cli_command,
    process_fault,
    read_pid,
    resildrill,
    write_drill,
)

from resildrill.faults.process import proc_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FAULTS = [
    process_fault("freeze", "1s"),
]
KILL = [
    process_fault("kill", "1s"),
]
#: The random-moment trials kill the runner anyway: a long fault keeps a late injection (the
#: runner waits for its watchdog first) from being reverted before the kill lands.
LONG_FAULTS = {"freeze": [process_fault("freeze", "30s")], "kill": [process_fault("kill", "30s")]}
#: Every run here is killed, so only the baseline before the fault costs time.
QUICK = {"baseline": "500ms", "recovery": "1s"}


def healthy(folder: Path, port: int) -> bool:
    """Independent inspection: the pidfile's process is running (not stopped) and answers."""
    pid = read_pid(folder / "web.pid")
    if pid is None or proc_state(pid) not in ("S", "R"):
        return False
    try:
        wait_http(port, timeout=3)
    except TimeoutError:
        return False
    return True


def the_run_dir(folder: Path) -> Path:
    dirs = list((folder / "reports").iterdir())
    assert len(dirs) == 1
    return dirs[0]


@pytest.mark.parametrize(
    ("point", "kind"),
    [
        # every crash point with a freeze; a kill (restart owed) where its state differs:
        # killed but not yet journalled, and restart sent but its outcome not journalled
        ("intent_written", "freeze"),
        ("injected", "freeze"),
        ("outcome_written", "freeze"),
        ("revert_issued", "freeze"),
        ("injected", "kill"),
        ("revert_issued", "kill"),
    ],
)
def test_forced_crash_then_rollback(web: tuple[Path, int], point: str, kind: str) -> None:
    """At each forced crash point, rollback leaves nothing frozen or dead; again: nothing to do."""
    folder, port = web
    faults = FAULTS if kind == "freeze" else KILL
    drill = write_drill(folder, f"crash-{point}", faults, phases=QUICK)
    result = resildrill(
        "run",
        str(drill),
        "--out",
        str(folder / "reports"),
        env={"RESILDRILL_CRASH_AT": point, "RESILDRILL_TEST_WATCHDOG": "off"},
    )
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr)
    run_dir = the_run_dir(folder)
    first = resildrill("rollback", str(run_dir))
    assert first.returncode == 0, first.stdout + first.stderr
    assert healthy(folder, port)
    second = resildrill("rollback", str(run_dir / "journal.jsonl"))
    assert second.returncode == 0
    assert "nothing to do" in second.stdout
    # What the crashed run measured is not lost: a partial report is rebuilt from its stream.
    rebuilt = resildrill("report", str(run_dir), "--format", "json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    report = json.loads((run_dir / "report.json").read_text())
    assert report["partial"] is True
    probe = report["timeline"]["series"]["probe.web.success"]["values"]
    assert sum(v is not None for v in probe) >= 3  # the baseline's samples survived


@pytest.mark.parametrize("trial", range(2))
def test_sigkill_at_random_moment_then_rollback(web: tuple[Path, int], trial: int) -> None:
    """SIGKILL of the runner at a random moment while its fault is in place (freeze or
    kill, seen in /proc): the service stays broken, and rollback restores it."""
    folder, port = web
    faults = LONG_FAULTS["freeze" if trial % 2 == 0 else "kill"]
    drill = write_drill(folder, f"random-{trial}", faults, phases=QUICK)
    rng = random.Random(1000 + trial)
    before = read_pid(folder / "web.pid") or 0
    no_watchdog = {"RESILDRILL_TEST_WATCHDOG": "off"}
    runner = subprocess.Popen(
        [*cli_command(no_watchdog), "run", str(drill), "--out", str(folder / "reports")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **no_watchdog},
    )
    try:
        deadline = time.monotonic() + 15
        while proc_state(before) not in ("T", None, "Z"):  # frozen, or killed
            assert time.monotonic() < deadline, "the fault was never injected"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.8))  # well inside the fault window
    finally:
        runner.kill()
        runner.wait(timeout=10)
    assert not healthy(folder, port), "the fault should outlive its runner"
    run_dir = the_run_dir(folder)
    first = resildrill("rollback", str(run_dir))
    assert first.returncode == 0, first.stdout + first.stderr
    assert healthy(folder, port)
    assert "nothing to do" in resildrill("rollback", str(run_dir)).stdout


def test_rollback_of_unreadable_journal_exits_2(tmp_path: Path) -> None:
    """A journal that is not JSON is refused with exit 2 and a located message."""
    bad = tmp_path / "journal.jsonl"
    bad.write_text("this is not json\nnor this\n")
    result = resildrill("rollback", str(bad))
    assert result.returncode == 2
    assert "journal.jsonl:1:1" in result.stderr
    assert "Traceback" not in result.stderr


def test_runs_shows_a_lost_runner_and_rollback_all_finds_it_anywhere(
    web: tuple[Path, int], tmp_path: Path
) -> None:
    """A runner killed with its watchdog: `resildrill runs` says so, and `rollback --all`
    reverts it even when its folder is not under --out, then stops listing it."""
    folder, port = web
    state = {"RESILDRILL_STATE_DIR": str(tmp_path / "state")}  # this test's runs only
    drill = write_drill(folder, "lost-runner", FAULTS, phases=QUICK)
    result = resildrill(
        "run",
        str(drill),
        "--out",
        str(folder / "reports"),
        env={**state, "RESILDRILL_CRASH_AT": "injected", "RESILDRILL_TEST_WATCHDOG": "off"},
    )
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr)
    run_id = the_run_dir(folder).name
    assert not healthy(folder, port)
    listed = resildrill("runs", env=state)
    assert run_id in listed.stdout and "runner gone" in listed.stdout, listed.stdout
    rolled = resildrill("rollback", "--all", "--out", str(tmp_path / "elsewhere"), env=state)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert f"{run_id}/journal.jsonl: reverted" in rolled.stdout
    assert healthy(folder, port)
    assert resildrill("runs", env=state).stdout.strip() == "no drill is running"
