"""The runner under slow-by-design calls: a slow webhook keeps the heartbeat (the watchdog
does not fence the run), and a halt issues every revert before it tells anyone."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.support.tiny import load_report, process_fault, read_pid, resildrill, write_drill
from tests.support.webhooks import webhook_receiver

from resildrill.faults.process import proc_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def add_webhook(folder: Path, url: str, timeout: str) -> None:
    path = folder / "target.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["notify"] = [{"url": url, "timeout": timeout}]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_slow_start_webhook_does_not_get_the_run_fenced(web: tuple[Path, int]) -> None:
    """A start webhook answering after 3 s, with the watchdog's limit cut to 1.5 s: the run
    is not fenced and the fault is injected and reverted as planned."""
    folder, _ = web
    drill = write_drill(folder, "slow-hook", [process_fault("freeze", "1s")])
    with webhook_receiver({"start": 3.0}) as (url, got):
        add_webhook(folder, url, "5s")
        result = resildrill(
            "run",
            str(drill),
            "--out",
            str(folder / "reports"),
            env={"RESILDRILL_TEST_STALE_AFTER": "1.5"},
        )
    assert [e["event"] for e in got] == ["start", "end"]
    assert result.returncode == 0, result.stderr
    report = load_report(Path(result.stdout.strip().splitlines()[-1]))
    assert "fenced" not in (report["reason"] or "")
    assert report["faults"][0]["injected_at_s"] is not None
    assert not any(m["kind"] == "halt" for m in report["timeline"]["marks"])


def test_halt_issues_every_revert_before_a_slow_webhook(web: tuple[Path, int]) -> None:
    """Two frozen faults and a halt webhook that takes 3 s: both reverts are issued within
    1 s of the halt, and the webhook is told afterwards."""
    folder, _ = web
    freeze = process_fault("freeze", "30s", "freeze-web")
    drill = write_drill(
        folder,
        "halt-slow-hook",
        [freeze, {**freeze, "id": "freeze-again", "at": "200ms"}],
        abort_when=[{"probe": "web", "when": "error_rate > 0.5", "for": "500ms"}],
    )
    with webhook_receiver({"halt": 3.0}) as (url, got):
        add_webhook(folder, url, "5s")
        result = resildrill("run", str(drill), "--out", str(folder / "reports"), timeout=60)
    assert result.returncode == 3, result.stderr
    assert [e["event"] for e in got] == ["start", "halt", "end"]
    marks = load_report(Path(result.stdout.strip().splitlines()[-1]))["timeline"]["marks"]
    halt = next(m["at_s"] for m in marks if m["kind"] == "halt")
    issued = [m for m in marks if m["kind"] == "revert_requested"]
    assert {m["fault_id"] for m in issued} == {"freeze-web", "freeze-again"}
    delays = [round(1000 * (m["at_s"] - halt)) for m in issued]
    print(f"\nhalt -> reverts issued after {delays} ms (halt webhook answered in 3 s)")
    assert all(0 <= m["at_s"] - halt <= 1.0 for m in issued), (halt, issued)
    assert proc_state(read_pid(folder / "web.pid") or 0) in ("S", "R")
