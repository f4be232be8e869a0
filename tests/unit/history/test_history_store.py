"""The SQLite store: idempotent adds, ordering, previous runs, lookups, its location."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.unit.history.reports import day, make_report

from resildrill.errors import InvalidInput
from resildrill.history.store import HistoryStore, default_path


def test_same_report_twice_is_one_run(tmp_path: Path) -> None:
    """Adding a report again changes nothing and keeps one run."""
    with HistoryStore(tmp_path / "h.sqlite") as store:
        assert store.add(make_report("r1")) == "added"
        assert store.add(make_report("r1")) == "unchanged"
        assert store.count() == 1


def test_changed_report_replaces_the_run(tmp_path: Path) -> None:
    """A changed report of a known run (a partial one completed) updates it in place."""
    with HistoryStore(tmp_path / "h.sqlite") as store:
        store.add(make_report("r1", partial=True, outcome="error", exit_code=6))
        assert store.add(make_report("r1", ttr=1.5)) == "updated"
        [run] = store.runs()
        assert run.figures.time_to_recover_s == 1.5
        assert run.figures.outcome == "passed"
        faults = store._db.execute("SELECT COUNT(*) FROM faults").fetchone()[0]
        assert faults == 1


def test_runs_oldest_first_and_limit_keeps_newest(tmp_path: Path) -> None:
    """runs() lists oldest first; a limit keeps the newest runs."""
    with HistoryStore(tmp_path / "h.sqlite") as store:
        for n in (3, 1, 2):
            store.add(make_report(f"r{n}", started_at=day(n)))
        store.add(make_report("other", started_at=day(4), drill="replica-loss"))
        assert [r.run_id for r in store.runs("gateway-loss")] == ["r1", "r2", "r3"]
        assert [r.run_id for r in store.runs("gateway-loss", limit=2)] == ["r2", "r3"]
        assert store.drills() == ["gateway-loss", "replica-loss"]


def test_previous_runs_are_completed_and_earlier(tmp_path: Path) -> None:
    """previous() gives completed runs started before a time, newest first."""
    with HistoryStore(tmp_path / "h.sqlite") as store:
        store.add(make_report("r1", started_at=day(1)))
        store.add(make_report("r2", started_at=day(2), outcome="aborted", exit_code=3))
        store.add(make_report("r3", started_at=day(3), outcome="failed", exit_code=1))
        store.add(make_report("r5", started_at=day(5)))
        before = store.previous("gateway-loss", run_ts(day(4)), limit=5, target="ward-ehr")
        assert [r.run_id for r in before] == ["r3", "r1"]


def test_previous_runs_are_of_the_same_target(tmp_path: Path) -> None:
    """The same drill against another staging system is no baseline for this one."""
    with HistoryStore(tmp_path / "h.sqlite") as store:
        store.add(make_report("a1", started_at=day(1)))
        store.add(make_report("b1", started_at=day(2), target="pharmacy-staging"))
        store.add(make_report("a2", started_at=day(3)))
        ward = store.previous("gateway-loss", run_ts(day(4)), limit=5, target="ward-ehr")
        assert [r.run_id for r in ward] == ["a2", "a1"]
        other = store.previous("gateway-loss", run_ts(day(4)), limit=5, target="pharmacy-staging")
        assert [r.run_id for r in other] == ["b1"]


def run_ts(iso: str) -> float:
    """Unix seconds of an ISO time."""
    from resildrill.history.figures import timestamp_of

    return timestamp_of(iso)


def test_find_by_prefix_and_ambiguity(tmp_path: Path) -> None:
    """A unique prefix finds a run; an ambiguous one names the candidates."""
    with HistoryStore(tmp_path / "h.sqlite") as store:
        store.add(make_report("gateway-20261101-aa"))
        store.add(make_report("gateway-20261101-ab", started_at=day(2)))
        found = store.find("gateway-20261101-aa")
        assert found is not None and found.run_id == "gateway-20261101-aa"
        assert store.find("nothing") is None
        with pytest.raises(InvalidInput, match="matches several runs"):
            store.find("gateway-2026")
        report = store.report("gateway-20261101-ab")
        assert report is not None and "timeline" not in report


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A history written by a newer resildrill is not read, and the message says so."""
    path = tmp_path / "h.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(InvalidInput, match="newer resildrill"):
        HistoryStore(path)


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    """A file that is not SQLite gives a one-line error naming it."""
    path = tmp_path / "h.sqlite"
    path.write_text("hello, this is not a database at all" * 100)
    with pytest.raises(InvalidInput, match="not a resildrill history"):
        HistoryStore(path)


def test_default_path_env_then_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """$RESILDRILL_HISTORY wins, then $XDG_DATA_HOME, then ~/.local/share."""
    monkeypatch.setenv("RESILDRILL_HISTORY", str(tmp_path / "x.sqlite"))
    assert default_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv("RESILDRILL_HISTORY")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_path() == tmp_path / "data" / "resildrill" / "history.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_path() == tmp_path / "home" / ".local/share/resildrill/history.sqlite"
