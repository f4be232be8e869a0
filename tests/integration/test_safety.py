"""Safety: the watchdog, fault lifetimes, halts, the target lock, stale journals, identity,
webhooks and the 'still injected' exit. Process state is read from /proc, never the journal."""

from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import ROOT, ManagedProcesses, free_port, wait_http
from tests.support.tiny import (
    SERVICE,
    load_report,
    process_fault,
    read_pid,
    resildrill,
    start_run,
    wait_journal,
    wait_state,
    write_drill,
    write_target,
)
from tests.support.webhooks import webhook_receiver

from resildrill.faults.process import proc_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FREEZE_LONG = [
    process_fault("freeze", "30s"),
]


def edit_target(folder: Path, **changes: Any) -> None:
    path = folder / "target.yaml"
    doc = yaml.safe_load(path.read_text())
    doc.update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_watchdog_reverts_after_runner_sigkill(web: tuple[Path, int]) -> None:
    """SIGKILL of the runner at random moments: the watchdog unfreezes the service within 5 s."""
    folder, _ = web
    rng = random.Random(7)
    cleanup: list[float] = []
    for trial in range(6):
        drill = write_drill(folder, f"wd-{trial}", FREEZE_LONG)
        pid = read_pid(folder / "web.pid") or 0
        runner = start_run(drill, folder / f"reports-{trial}", capture=False)
        try:
            assert wait_state(pid, ("T",), 15) is not None
            time.sleep(rng.uniform(0.0, 1.0))
            runner.kill()
            runner.wait(timeout=5)
            took = wait_state(pid, ("S", "R"), 5.0)
        finally:
            if runner.poll() is None:
                runner.kill()
        assert took is not None, "still frozen 5 s after the runner died"
        cleanup.append(took)
        # the next trial's runner would be refused while this journal still shows the fault
        assert wait_journal(folder / f"reports-{trial}", "watchdog_done", 5)
    figures = {
        "trials": len(cleanup),
        "p50_s": round(statistics.median(cleanup), 3),
        "max_s": round(max(cleanup), 3),
    }
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "watchdog-cleanup.json").write_text(json.dumps(figures))
    print(f"\nwatchdog clean-up after SIGKILL: {figures}")


def test_fault_lifetime_enforced_while_runner_alive(web: tuple[Path, int]) -> None:
    """A fault past max_fault_lifetime is reverted by the watchdog; the run stops, exit 3."""
    folder, _ = web
    # No duration: the freeze would last until the drill's end (30 s of recovery window),
    # as if the runner were stuck; validate refuses a declared duration over the lifetime.
    drill = write_drill(
        folder,
        "lifetime",
        [{"id": "freeze", "kind": "process", "service": "web", "action": "freeze", "at": "0s"}],
        max_fault_lifetime="1s",
        phases={"baseline": "1s", "recovery": "30s"},
    )
    pid = read_pid(folder / "web.pid") or 0
    runner = start_run(drill, folder / "reports")
    try:
        assert wait_state(pid, ("T",), 15) is not None
        took = wait_state(pid, ("S", "R"), 5.0)
        out, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert took is not None and took < 2.0
    assert runner.returncode == 3, err
    assert "fenced" in load_report(Path(out.strip().splitlines()[-1]))["reason"]


def test_halt_condition_reverts_within_a_second(web: tuple[Path, int]) -> None:
    """An error-rate halt stops the drill: every revert issued within 1 s of the halt, exit 3;
    on-call staff get the halt webhook."""
    folder, _ = web
    drill = write_drill(
        folder,
        "halt",
        FREEZE_LONG,
        abort_when=[{"probe": "web", "when": "error_rate > 0.5", "for": "500ms"}],
    )
    with webhook_receiver() as (url, received):
        edit_target(folder, notify=[{"url": url}])
        result = resildrill("run", str(drill), "--out", str(folder / "reports"), timeout=60)
    assert result.returncode == 3, result.stderr
    assert [r["event"] for r in received] == ["start", "halt", "end"]
    assert "error_rate > 0.5" in received[1]["reason"]
    report = load_report(Path(result.stdout.strip().splitlines()[-1]))
    marks = report["timeline"]["marks"]
    halt = next(m for m in marks if m["kind"] == "halt")
    issued = next(m for m in marks if m["kind"] == "revert_requested")
    confirmed = next(m for m in marks if m["kind"] == "reverted")
    assert "error_rate > 0.5" in report["reason"]
    assert 0 <= issued["at_s"] - halt["at_s"] <= 1.0
    assert confirmed["at_s"] - issued["at_s"] <= 1.0
    print(f"\nhalt -> revert issued {1000 * (issued['at_s'] - halt['at_s']):.0f} ms")
    assert proc_state(read_pid(folder / "web.pid") or 0) in ("S", "R")


def test_failed_actions_halt(web: tuple[Path, int]) -> None:
    """A failed_actions halt names the workflow; a probe stands in as no load runs here."""
    folder, _ = web
    drill = write_drill(
        folder,
        "halt2",
        FREEZE_LONG,
        abort_when=[{"workflow": "web", "failed_actions": 3}],
    )
    result = resildrill("validate", str(drill))
    assert result.returncode == 0, result.stdout + result.stderr


def test_second_drill_on_same_target_is_refused(web: tuple[Path, int]) -> None:
    """The target lock: while one drill runs, another against the same target exits 2."""
    folder, _ = web
    drill = write_drill(folder, "locked", FREEZE_LONG)
    pid = read_pid(folder / "web.pid") or 0
    runner = start_run(drill, folder / "reports")
    try:
        assert wait_state(pid, ("T",), 15) is not None
        second = resildrill("run", str(drill), "--out", str(folder / "reports2"))
        assert second.returncode == 2
        assert "another drill is running" in second.stderr
        assert not (folder / "reports2").exists()
    finally:
        runner.terminate()
        runner.communicate(timeout=20)
    assert proc_state(pid) in ("S", "R")


def test_stale_journal_blocks_run_until_rollback(web: tuple[Path, int]) -> None:
    """A crashed run's journal with faults pending blocks the next run against the target,
    whatever its --out, until rollback --all."""
    folder, _ = web
    drill = write_drill(folder, "stale", FREEZE_LONG)
    # A host that lost runner and watchdog together: the journal and the run's registration
    # are all that remain.
    crashed = resildrill(
        "run",
        str(drill),
        "--out",
        str(folder / "reports"),
        env={"RESILDRILL_CRASH_AT": "intent_written", "RESILDRILL_TEST_WATCHDOG": "off"},
    )
    assert crashed.returncode == -9
    for out in ("reports", "elsewhere"):
        blocked = resildrill("run", str(drill), "--out", str(folder / out))
        assert blocked.returncode == 2, (out, blocked.stderr)
        assert "resildrill rollback" in blocked.stderr
    assert not (folder / "elsewhere").exists()
    cleared = resildrill("rollback", "--all", "--out", str(folder / "reports"))
    assert cleared.returncode == 0, cleared.stdout
    assert "reverted freeze" in cleared.stdout
    again = resildrill("rollback", "--all", "--out", str(folder / "reports"))
    assert "nothing to do" in again.stdout


def test_identity_mismatch_refuses_before_injecting(web: tuple[Path, int]) -> None:
    """A target whose identity header does not match is refused (exit 2), nothing injected."""
    folder, port = web
    edit_target(
        folder,
        identity={
            "url": f"http://127.0.0.1:{port}/healthz",
            "header": "X-Service",
            "value": "ward-ehr",
        },
    )
    drill = write_drill(folder, "ident", FREEZE_LONG)
    result = resildrill("run", str(drill), "--out", str(folder / "reports"))
    assert result.returncode == 2
    assert "identity" in result.stderr and "tiny-test-service" in result.stderr
    assert proc_state(read_pid(folder / "web.pid") or 0) in ("S", "R")


def test_identity_match_allows_the_run(web: tuple[Path, int]) -> None:
    """The right identity header lets the drill run."""
    folder, port = web
    edit_target(
        folder,
        identity={
            "url": f"http://127.0.0.1:{port}/healthz",
            "header": "X-Service",
            "value": "tiny-test-service",
        },
    )
    drill = write_drill(
        folder,
        "ident-ok",
        [process_fault("freeze", "300ms")],
    )
    result = resildrill("run", str(drill), "--out", str(folder / "reports"))
    assert result.returncode == 0, result.stderr


def test_webhooks_receive_start_and_end(web: tuple[Path, int]) -> None:
    """Webhooks get JSON for start and end from a local receiver's point of view."""
    folder, _ = web
    with webhook_receiver() as (url, received):
        edit_target(folder, notify=[{"url": url}])
        drill = write_drill(folder, "hooks", [process_fault("freeze", "300ms")])
        result = resildrill("run", str(drill), "--out", str(folder / "reports"))
        assert result.returncode == 0, result.stderr
    assert [r["event"] for r in received] == ["start", "end"]
    assert received[1]["status"] == "completed"


def test_unrevertable_fault_exits_4_with_undo_hint(tmp_path: Path, procs: ManagedProcesses) -> None:
    """A restart command that fails leaves the service down: exit 4 names it and how to undo."""
    port = free_port()
    procs.start(str(SERVICE), "--port", str(port), "--pidfile", str(tmp_path / "web.pid"))
    wait_http(port)
    write_target(tmp_path, port, recovery="restart")
    doc = yaml.safe_load((tmp_path / "target.yaml").read_text())
    doc["services"]["web"]["restart"]["command"] = ["false"]
    (tmp_path / "target.yaml").write_text(yaml.safe_dump(doc))
    drill = write_drill(
        tmp_path,
        "stuck",
        [process_fault("kill", "300ms")],
    )
    result = resildrill("run", str(drill), "--out", str(tmp_path / "reports"))
    assert result.returncode == 4, result.stderr
    report = load_report(Path(result.stdout.strip().splitlines()[-1]))
    assert "still injected" in report["reason"] and "false" in report["reason"]


def test_secrets_never_written(web: tuple[Path, int]) -> None:
    """A bearer token is sent by the probe but appears in no file of the run: only ${VAR}."""
    folder, _ = web
    doc = yaml.safe_load((folder / "target.yaml").read_text())
    doc["probes"][0]["http"]["bearer_token_env"] = "WARD_TOKEN"
    (folder / "target.yaml").write_text(yaml.safe_dump(doc))
    drill = write_drill(
        folder,
        "secret",
        [process_fault("freeze", "300ms")],
    )
    secret = "s3cr3t-token-do-not-log-8c1f"
    result = resildrill(
        "run", str(drill), "--out", str(folder / "reports"), env={"WARD_TOKEN": secret}
    )
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    written = [p for p in run_dir.rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert secret not in path.read_text(errors="replace"), path
    assert secret not in result.stdout + result.stderr
