"""Run history, import, compare and the regression gate on reports from real drill runs.

Real short drills kill and restart a tiny HTTP service process (tests/support/tiny.py);
every command is the real CLI in a child process, with the history in a temporary file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import free_port, wait_http
from tests.support.tiny import (
    SERVICE,
    kill_pidfile,
    load_report,
    resildrill,
    write_drill,
    write_target,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DRILL = "history-kill"
# 100%: a 1 s kill gives 1.0-1.3 s of outage (more on a busy machine), a 4 s kill at least 4 s.
REGRESSION = {
    "metrics": ["outage", "time_to_recover"],
    "last_n": 3,
    "margin": "100%",
    "min_runs": 1,
}


@dataclass
class Bench:
    """A tiny service, its target, a history file and the runs made so far."""

    folder: Path
    db: Path
    runs: list[Path]

    def env(self, db: Path | None = None) -> dict[str, str]:
        """Environment for the CLI: the history in a temporary file."""
        return {"RESILDRILL_HISTORY": str(db or self.db)}

    def drill(self, kill_for: str, **gates: Any) -> Path:
        """The drill (same name every time): kill the service for ``kill_for``, restart it."""
        fault = {
            "id": "kill",
            "kind": "process",
            "service": "web",
            "action": "kill",
            "at": "0s",
            "duration": kill_for,
        }
        extra = {"gates": gates} if gates else {}
        return write_drill(self.folder, DRILL, [fault], **extra)

    def run(self, drill: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        """``resildrill run`` as a user types it; returns the result and the run folder."""
        result = resildrill("run", str(drill), "--out", str(self.folder / "reports"), *args,
                            env=self.env())  # fmt: skip
        return result, Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    """Two real runs of one drill (kill 1 s, regression gate on), appended by ``run``.

    The first has no history (its regression gate passes for want of runs), the second is
    judged against the first.
    """
    folder = tmp_path_factory.mktemp("history")
    port = free_port()
    pidfile = folder / "web.pid"
    service = subprocess.Popen(
        [sys.executable, str(SERVICE), "--port", str(port), "--pidfile", str(pidfile)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(port)
        write_target(folder, port, recovery="restart")
        b = Bench(folder, folder / "history.sqlite", [])
        for _ in range(2):
            result, run_dir = b.run(b.drill("1s", regression=REGRESSION))
            assert result.returncode == 0, result.stderr
            b.runs.append(run_dir)
        yield b
    finally:
        kill_pidfile(pidfile)
        service.kill()
        service.wait(timeout=10)


def cli(bench: Bench, *args: str, db: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Any resildrill command against the bench's (or another) history file."""
    return resildrill(*args, env=bench.env(db))


def test_every_run_is_in_the_history_with_its_figures(bench: Bench) -> None:
    """`run` appended each run; `history --drill` lists them oldest first with real figures."""
    result = cli(bench, "history", "--drill", DRILL, "--json")
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)["runs"]
    ids = [load_report(d)["run_id"] for d in bench.runs]
    assert [r["run_id"] for r in runs] == ids
    for entry, run_dir in zip(runs, bench.runs, strict=True):
        report = load_report(run_dir)
        assert entry["outage_s"] == report["summary"]["outage_s"]
        assert entry["time_to_recover_s"] == report["faults"][0]["recovery"]["time_to_recover_s"]
        assert 0.8 <= entry["outage_s"] <= 2.0
        assert entry["outcome"] == "passed"
    text = cli(bench, "history", "--drill", DRILL)
    assert text.returncode == 0
    assert all(i in text.stdout for i in ids)
    overview = cli(bench, "history")
    assert f"{DRILL}  2" in overview.stdout


def test_import_is_idempotent(bench: Bench, tmp_path: Path) -> None:
    """Importing the same report twice (as a file, then as its folder) keeps one run."""
    db = tmp_path / "ci-history.sqlite"
    report = bench.runs[0] / "report.json"
    first = cli(bench, "history", "import", str(report), db=db)
    assert first.returncode == 0, first.stderr
    assert "added" in first.stdout
    again = cli(bench, "history", "import", str(report), str(bench.runs[0]), db=db)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already in the history") == 2
    assert "(1 run(s))" in again.stdout
    everything = cli(bench, "history", "import", *map(str, bench.runs), db=db)
    assert "(2 run(s))" in everything.stdout


def test_import_of_a_bad_file_exits_2_and_imports_the_rest(bench: Bench, tmp_path: Path) -> None:
    """A file that is not a report is named on stderr (exit 2); the good ones still go in."""
    bad = tmp_path / "report.json"
    bad.write_text("{not json")
    db = tmp_path / "h.sqlite"
    result = cli(bench, "history", "import", str(bad), str(bench.runs[1]), db=db)
    assert result.returncode == 2
    assert f"{bad}:1:2: not JSON" in result.stderr
    assert "(1 run(s))" in result.stdout


def test_compare_by_run_id_and_by_path(bench: Bench) -> None:
    """`compare` takes a run id prefix from the history and a run folder, figure by figure."""
    a = load_report(bench.runs[0])
    b = load_report(bench.runs[1])
    result = cli(bench, "compare", a["run_id"][:-1], str(bench.runs[1]), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["a"]["run_id"] == a["run_id"] and data["b"]["run_id"] == b["run_id"]
    rows = {r["figure"]: r for r in data["rows"]}
    outage = rows["outage_s"]
    assert (outage["a"], outage["b"]) == (a["summary"]["outage_s"], b["summary"]["outage_s"])
    assert outage["delta"] == pytest.approx(b["summary"]["outage_s"] - a["summary"]["outage_s"])
    assert "kill.time_to_recover_s" in rows
    text = cli(bench, "compare", str(bench.runs[0] / "report.json"), b["run_id"])
    assert text.returncode == 0, text.stderr
    assert "kill.outage_s" in text.stdout
    missing = cli(bench, "compare", "no-such-run", b["run_id"])
    assert missing.returncode == 2
    assert "no-such-run: neither a report.json" in missing.stderr


def test_regression_gate_judges_a_run_by_the_runs_before_it(bench: Bench) -> None:
    """The first run passes for want of history; the second is compared with the first."""
    first, second = (load_report(d) for d in bench.runs)
    gate = {g["name"]: g for g in first["gates"]}["regression.outage"]
    assert gate["passed"] is True
    assert gate["limit"] is None
    assert "not enough history: 0 previous run(s)" in gate["reason"]
    assert first["trend"] == []
    gates = {g["name"]: g for g in second["gates"]}
    assert gates["regression.outage"]["passed"] is True
    assert gates["regression.outage"]["compared_runs"] == [first["run_id"]]
    assert gates["regression.outage"]["median"] == first["summary"]["outage_s"]
    assert gates["regression.time_to_recover"]["passed"] is True
    assert [t["run_id"] for t in second["trend"]] == [first["run_id"]]
    assert second["trend"][0]["outage_s"] == first["summary"]["outage_s"]


def test_regression_gate_fails_a_longer_outage_and_names_the_gate(bench: Bench) -> None:
    """A 4 s kill more than doubles the outage: exit 1 naming regression.outage; then
    imported (CI way)."""
    result, run_dir = bench.run(bench.drill("4s", regression=REGRESSION), "--no-history")
    assert result.returncode == 1, result.stderr
    report = load_report(run_dir)
    assert report["outcome"] == "failed"
    assert report["reason"] == "gate failed: regression.outage"
    gate = next(g for g in report["gates"] if g["name"] == "regression.outage")
    assert gate["passed"] is False
    assert gate["value"] > gate["limit"] >= gate["median"] * 2.0 - 1e-6
    assert gate["compared_runs"] == [load_report(d)["run_id"] for d in bench.runs][::-1]
    assert "regression.outage" in result.stderr
    listed = json.loads(cli(bench, "history", "--drill", DRILL, "--json").stdout)["runs"]
    assert report["run_id"] not in [r["run_id"] for r in listed]
    imported = cli(bench, "history", "import", str(run_dir))
    assert imported.returncode == 0, imported.stderr
    runs = json.loads(cli(bench, "history", "--drill", DRILL, "--json").stdout)["runs"]
    assert runs[-1]["run_id"] == report["run_id"]
    assert runs[-1]["outcome"] == "failed"
