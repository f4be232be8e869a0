"""Journals you can trust (issue 19): `rollback` and the watchdog act only on a journal this
user wrote and nobody changed since. Each case plants a journal whose undo would run a
restart command that leaves a canary file; a refused journal leaves no canary.

The recipe is a killed service owed a restart: reverting it runs ``restart.command``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.tiny import resildrill

from resildrill.drill.model import ProcessLocator
from resildrill.faults.process import find_processes
from resildrill.runner.journal import Journal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def restart_command(canary: Path) -> list[str]:
    """Writes the canary, then stays up a while as the 'restarted service'."""
    code = f"import time; open({str(canary)!r}, 'w').write('ran'); time.sleep(20)"
    return [sys.executable, "-c", code]


@pytest.fixture(autouse=True)
def _stop_restarted(tmp_path: Path) -> Iterator[None]:
    """Stop every 'restarted service' a test's rollback started (by its command line)."""
    yield
    for name in ("canary", "good", "bad"):
        for pid in find_processes(
            ProcessLocator(match=" ".join(restart_command(tmp_path / name))), tmp_path
        ):
            os.kill(pid, signal.SIGKILL)


def plant(run_dir: Path, canary: Path) -> Path:
    """A signed journal (this user's key) of a kill whose undo writes the canary."""
    recipe = {
        "kind": "process",
        "service": "web",
        "action": "kill",
        "processes": [{"pid": 999999, "start_time": 1}],
        "locator": {"match": " ".join(restart_command(canary)), "count": 1},
        "base_dir": str(run_dir),
        "recovery": "restart",
        "restart": {
            "command": restart_command(canary),
            "cwd": str(run_dir),
            "delay_s": 0,
        },
    }
    with Journal(run_dir / "journal.jsonl") as journal:
        journal.append("run_start", run_id=run_dir.name, target_name="planted", pid=1)
        journal.append("intent", fault_id="k", kind="process", recipe=recipe)
        journal.append("injected", fault_id="k", recipe=recipe)
    return run_dir / "journal.jsonl"


def wait_canary(canary: Path, within_s: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and not canary.exists():
        time.sleep(0.05)
    return canary.exists()


def test_a_journal_of_your_own_is_rolled_back(tmp_path: Path) -> None:
    """The control: the same journal, untouched, does run its restart (so the refusals
    below are refusals, not a broken recipe)."""
    canary = tmp_path / "canary"
    path = plant(tmp_path / "run", canary)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    result = resildrill("rollback", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ran restart command" in result.stdout, result.stdout
    assert wait_canary(canary)


@pytest.mark.parametrize("tamper", ["edited", "group-writable", "other-owner", "unsigned"])
def test_a_planted_or_changed_journal_is_refused(tmp_path: Path, tamper: str) -> None:
    canary = tmp_path / "canary"
    path = plant(tmp_path / "run", canary)
    if tamper == "edited":  # a different restart command pasted in after writing
        path.write_text(path.read_text().replace("'ran'", "'pwned'"))
    elif tamper == "group-writable":
        path.chmod(0o664)
    elif tamper == "other-owner":
        if os.geteuid() != 0:
            pytest.skip("changing a file's owner needs root (CI runs as root)")
        os.chown(path, 65534, 65534)
    else:  # written by hand: no signatures at all
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        path.write_text(
            "".join(json.dumps({k: v for k, v in r.items() if k != "mac"}) + "\n" for r in lines)
        )
    result = resildrill("rollback", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "nothing is reverted" in result.stderr, result.stderr
    # nothing was even attempted: no revert record, and no canary from a detached restart
    assert "revert_intent" not in path.read_text()
    assert not wait_canary(canary, within_s=1.5), "a refused journal ran its restart command"


def test_rollback_all_skips_the_planted_journal_and_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    good_canary, bad_canary = tmp_path / "good", tmp_path / "bad"
    plant(out / "run-good", good_canary)
    bad = plant(out / "run-bad", bad_canary)
    bad.write_text(bad.read_text().replace("'ran'", "'pwned'"))
    result = resildrill("rollback", "--all", "--out", str(out))
    assert result.returncode == 2, result.stdout + result.stderr
    assert wait_canary(good_canary) and not bad_canary.exists()
    assert "revert_intent" not in bad.read_text()


def test_another_key_is_refused(tmp_path: Path) -> None:
    """Signed, but with another user's key (another state folder)."""
    canary = tmp_path / "canary"
    os.environ["RESILDRILL_STATE_DIR"] = str(tmp_path / "someone-else")
    path = plant(tmp_path / "run", canary)
    os.environ["RESILDRILL_STATE_DIR"] = str(tmp_path / "me")
    result = resildrill("rollback", str(path))
    assert result.returncode == 2 and "not signed by your journal key" in result.stderr
    assert not wait_canary(canary, within_s=1.5)


def test_a_planted_journal_does_not_block_runs_but_yours_does(tmp_path: Path) -> None:
    """An earlier run of yours that left a fault blocks the next run against its target
    (undo it first); a planted or edited journal is not yours to undo and blocks nothing."""
    from resildrill.runner.safety import stale_journals

    out = tmp_path / "reports"
    mine = plant(out / "run-mine", tmp_path / "canary")
    assert stale_journals(out, "planted") == [mine]
    mine.write_text(mine.read_text().replace("'ran'", "'pwned'"))
    assert stale_journals(out, "planted") == []


def test_the_watchdog_reverts_nothing_from_a_changed_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from resildrill.plugins import FaultRegistry
    from resildrill.runner.watchdog import revert_all

    canary = tmp_path / "canary"
    path = plant(tmp_path / "run", canary)
    path.write_text(path.read_text().replace("'ran'", "'pwned'"))
    revert_all(path.parent, FaultRegistry.discover(), "runner process died")
    assert "nothing reverted" in capsys.readouterr().out
    assert "revert_intent" not in path.read_text()
    assert not wait_canary(canary, within_s=1.5)
