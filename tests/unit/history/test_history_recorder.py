"""What a run does with the history: trend, regression gates, exit code, recording."""

from __future__ import annotations

from pathlib import Path

from tests.unit.history.reports import day, make_report

from resildrill.drill.model import RegressionGate
from resildrill.history.recorder import apply_history, record_run
from resildrill.history.store import HistoryStore

SPEC = RegressionGate.model_validate(
    {"metrics": ["time_to_recover"], "last_n": 5, "min_runs": 3, "margin": "20%"}
)


def seed(db: Path, ttrs: list[float]) -> None:
    """Previous runs with the given times to recover, one per day."""
    for i, ttr in enumerate(ttrs, start=1):
        record_run(make_report(f"r{i}", started_at=day(i), ttr=ttr), None, db=db)


def test_trend_lists_previous_runs_oldest_first(tmp_path: Path) -> None:
    """The trend holds the drill's earlier runs with their figures, not the run itself."""
    db = tmp_path / "h.sqlite"
    seed(db, [2.0, 2.1, 1.9])
    record_run(make_report("other", started_at=day(2), drill="x"), None, db=db)
    report = apply_history(make_report("now", started_at=day(10)), None, db=db)
    assert [t["run_id"] for t in report["trend"]] == ["r1", "r2", "r3"]
    assert report["trend"][0] == {
        "run_id": "r1",
        "started_at": day(1),
        "time_to_recover_s": 2.0,
        "time_to_detect_s": 0.2,
        "outage_s": 3.0,
        "degraded_s": 3.5,
        "availability": 0.95,
        "outcome": "passed",
        "git_commit": "abc1234",
    }


def test_regression_turns_a_pass_into_exit_1(tmp_path: Path) -> None:
    """A time to recover far above the median fails the run with the gate named."""
    db = tmp_path / "h.sqlite"
    seed(db, [2.0, 2.1, 1.9])
    report = apply_history(make_report("now", started_at=day(10), ttr=5.0), SPEC, db=db)
    assert report["exit_code"] == 1
    assert report["outcome"] == "failed"
    assert report["reason"] == "gate failed: regression.time_to_recover"
    gate = report["gates"][-1]
    assert gate["name"] == "regression.time_to_recover"
    assert gate["passed"] is False
    assert gate["value"] == 5.0


def test_regression_ignores_runs_against_another_target(tmp_path: Path) -> None:
    """Fast runs against a bigger staging system set no limit for the ward EHR."""
    db = tmp_path / "h.sqlite"
    seed(db, [2.0, 2.1, 1.9])
    for i in range(4, 8):
        fast = make_report(f"big{i}", started_at=day(i), ttr=0.5, target="big-staging")
        record_run(fast, None, db=db)
    report = apply_history(make_report("now", started_at=day(10), ttr=2.2), SPEC, db=db)
    assert report["exit_code"] == 0, report["gates"]
    assert [t["run_id"] for t in report["trend"]] == ["r1", "r2", "r3"]
    assert report["gates"][-1]["median"] == 2.0


def test_regression_passes_near_the_median(tmp_path: Path) -> None:
    """A run like the previous ones passes and keeps exit 0."""
    db = tmp_path / "h.sqlite"
    seed(db, [2.0, 2.1, 1.9])
    report = apply_history(make_report("now", started_at=day(10), ttr=2.2), SPEC, db=db)
    assert report["exit_code"] == 0
    assert report["gates"][-1]["passed"] is True


def test_other_exit_codes_win(tmp_path: Path) -> None:
    """An aborted run gets no regression gate and keeps exit 3."""
    db = tmp_path / "h.sqlite"
    seed(db, [2.0, 2.1, 1.9])
    aborted = make_report("now", started_at=day(10), ttr=None, outcome="aborted", exit_code=3)
    report = apply_history(aborted, SPEC, db=db)
    assert report["exit_code"] == 3
    assert all(not g["name"].startswith("regression") for g in report["gates"])


def test_failed_gates_are_listed_together(tmp_path: Path) -> None:
    """A run already failed by a gate names the regression gate too: the outcome is
    decided again from every gate (outcome.py), not by editing the reason's text."""
    db = tmp_path / "h.sqlite"
    seed(db, [2.0, 2.1, 1.9])
    gate = {"name": "max_time_to_recover", "limit": 3.0, "value": 5.0, "passed": False}
    failed = make_report(
        "now", started_at=day(10), ttr=5.0, outcome="failed", exit_code=1, gates=[gate]
    )
    failed["reason"] = "gate failed: max_time_to_recover"
    report = apply_history(failed, SPEC, db=db)
    assert report["reason"] == "gate failed: max_time_to_recover, regression.time_to_recover"
    assert (report["outcome"], report["exit_code"]) == ("failed", 1)


def test_no_history_file_means_empty_trend(tmp_path: Path) -> None:
    """Without a history file the trend is empty, the gate passes, and no file is made."""
    db = tmp_path / "none.sqlite"
    report = apply_history(make_report("now"), SPEC, db=db)
    assert report["trend"] == []
    assert report["gates"][-1]["passed"] is True
    assert "not enough history" in report["gates"][-1]["reason"]
    assert not db.exists()


def test_unreadable_history_fails_an_asked_regression_gate(tmp_path: Path) -> None:
    """A corrupt history is a warning, and a regression gate that cannot be judged fails."""
    db = tmp_path / "h.sqlite"
    db.write_text("garbage" * 1000)
    report = apply_history(make_report("now"), SPEC, db=db)
    assert report["exit_code"] == 1
    assert report["gates"][-1]["name"] == "regression"
    assert any("not read" in w for w in report["warnings"])


def test_record_run_never_raises(tmp_path: Path) -> None:
    """An unwritable history is a warning on stderr, not an exception."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert record_run(make_report("r1"), None, db=blocker / "h.sqlite") is None
    db = tmp_path / "h.sqlite"
    assert record_run(make_report("r1"), tmp_path / "report.json", db=db) == "added"
    with HistoryStore(db) as store:
        [run] = store.runs()
        assert run.source == "run"
        assert run.report_path == str((tmp_path / "report.json").resolve())


def test_a_corrupt_stored_report_is_a_warning(tmp_path: Path) -> None:
    """A stored report that no longer parses warns instead of crashing the finished run."""
    db = tmp_path / "h.sqlite"
    seed(db, [2.0, 2.1, 1.9])
    with HistoryStore(db) as store, store._db:
        store._db.execute("UPDATE runs SET report_json = '{' WHERE run_id = 'r2'")
    report = apply_history(make_report("now", started_at=day(10)), None, db=db)
    assert report["exit_code"] == 0
    assert any("not read" in w for w in report["warnings"])
