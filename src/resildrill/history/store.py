"""The run history: a local SQLite file holding one row per run, keyed by ``run_id``.

Owns the file's location (``--db``, else ``$RESILDRILL_HISTORY``, else
``$XDG_DATA_HOME/resildrill/history.sqlite``, else ``~/.local/share/...``), its schema,
and the queries behind trends and comparisons. Adding the same report twice keeps one
run (``INSERT ... ON CONFLICT(run_id)``); a changed report of a known run (a partial
report later completed) replaces the old row.

Each row keeps the gated figures as columns (for trends), one row per fault and per gate,
and the report itself without its timeline (for ``compare`` when the report file is gone,
as on CI runners that keep nothing). The file is a plain rollback-journal database, one
file, so a CI cache or artefact can carry it between jobs.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from resildrill.errors import InvalidInput
from resildrill.history.figures import COMPLETED_OUTCOMES, RunFigures, run_figures

__all__ = ["ENV_VAR", "SCHEMA_VERSION", "HistoryStore", "StoredRun", "default_path"]

ENV_VAR = "RESILDRILL_HISTORY"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id            TEXT PRIMARY KEY,
    drill             TEXT NOT NULL,
    drill_sha256      TEXT,
    target            TEXT,
    environment       TEXT,
    started_at        TEXT NOT NULL,
    started_ts        REAL NOT NULL,
    duration_s        REAL,
    outcome           TEXT NOT NULL,
    exit_code         INTEGER NOT NULL,
    partial           INTEGER NOT NULL,
    time_to_recover_s REAL,
    time_to_detect_s  REAL,
    outage_s          REAL,
    degraded_s        REAL,
    availability      REAL,
    relapses          INTEGER NOT NULL,
    all_recovered     INTEGER NOT NULL,
    writes_lost       INTEGER,
    git_commit        TEXT,
    change_ref        TEXT,
    tool_version      TEXT,
    report_path       TEXT,
    report_sha256     TEXT NOT NULL,
    report_json       TEXT NOT NULL,
    source            TEXT NOT NULL,
    added_at          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_drill ON runs (drill, started_ts);
CREATE TABLE IF NOT EXISTS faults (
    run_id            TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    fault_id          TEXT NOT NULL,
    kind              TEXT NOT NULL,
    time_to_detect_s  REAL,
    time_to_recover_s REAL,
    recovered         INTEGER NOT NULL,
    outage_s          REAL,
    degraded_s        REAL,
    relapses          INTEGER NOT NULL,
    truncated_by      TEXT,
    PRIMARY KEY (run_id, fault_id)
);
CREATE TABLE IF NOT EXISTS gates (
    run_id      TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    limit_json  TEXT,
    value_json  TEXT,
    passed      INTEGER NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""

_RUN_COLUMNS = [
    "run_id",
    "drill",
    "drill_sha256",
    "target",
    "environment",
    "started_at",
    "started_ts",
    "duration_s",
    "outcome",
    "exit_code",
    "partial",
    "time_to_recover_s",
    "time_to_detect_s",
    "outage_s",
    "degraded_s",
    "availability",
    "relapses",
    "all_recovered",
    "writes_lost",
    "git_commit",
    "change_ref",
    "tool_version",
]


def default_path() -> Path:
    """Where the history lives when ``--db`` is not given."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "resildrill" / "history.sqlite"


@dataclass(frozen=True)
class StoredRun:
    """A run as the history holds it."""

    figures: RunFigures
    report_path: str | None
    source: str
    added_at: str

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.figures.run_id


def _stripped(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what history never reads (the per-bucket timeline can be MBs)."""
    keep = {k: v for k, v in report.items() if k not in ("timeline", "drill_as_run", "trend")}
    return keep


class HistoryStore:
    """The SQLite history file; use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A drill run and an import may write at the same moment: wait, don't fail.
            self._db = sqlite3.connect(self.path, timeout=15.0)
        except (OSError, sqlite3.Error) as exc:
            raise InvalidInput(f"{self.path}: cannot open the history: {exc}") from None
        self._db.row_factory = sqlite3.Row
        try:
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise InvalidInput(f"{self.path}: not a resildrill history: {exc}") from None

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} was written by a newer resildrill "
                f"(this one reads {SCHEMA_VERSION})"
            )
        self._db.execute("PRAGMA foreign_keys = ON")
        if version < SCHEMA_VERSION:
            with self._db:
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._db:
            yield self._db

    # --- writing ---------------------------------------------------------------------

    def add(
        self,
        report: dict[str, Any],
        *,
        report_path: str | os.PathLike[str] | None = None,
        source: Literal["run", "import"] = "import",
    ) -> Literal["added", "unchanged", "updated"]:
        """Add a run from its report.json document; idempotent on ``run_id``.

        Raises:
            InvalidInput: the document lacks a run id, drill name or start time.
        """
        try:
            fig = run_figures(report)
        except ValueError as exc:
            raise InvalidInput(f"{report_path or 'report'}: {exc}") from None
        body = json.dumps(_stripped(report), sort_keys=True, default=str)
        digest = hashlib.sha256(body.encode()).hexdigest()
        path = str(Path(report_path).resolve()) if report_path is not None else None
        with self._tx() as db:
            row = db.execute(
                "SELECT report_sha256 FROM runs WHERE run_id = ?", (fig.run_id,)
            ).fetchone()
            if row is not None and row["report_sha256"] == digest:
                if path is not None:
                    db.execute(
                        "UPDATE runs SET report_path = ? WHERE run_id = ?", (path, fig.run_id)
                    )
                return "unchanged"
            values = {c: getattr(fig, c) for c in _RUN_COLUMNS}
            values["partial"] = int(fig.partial)
            values["all_recovered"] = int(fig.all_recovered)
            values |= {
                "report_path": path,
                "report_sha256": digest,
                "report_json": body,
                "source": source,
                "added_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            columns = ", ".join(values)
            marks = ", ".join(f":{c}" for c in values)
            updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != "run_id")
            db.execute(
                f"INSERT INTO runs ({columns}) VALUES ({marks}) "
                f"ON CONFLICT (run_id) DO UPDATE SET {updates}",
                values,
            )
            db.execute("DELETE FROM faults WHERE run_id = ?", (fig.run_id,))
            db.execute("DELETE FROM gates WHERE run_id = ?", (fig.run_id,))
            db.executemany(
                "INSERT INTO faults VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        fig.run_id,
                        f.fault_id,
                        f.kind,
                        f.time_to_detect_s,
                        f.time_to_recover_s,
                        int(f.recovered),
                        f.outage_s,
                        f.degraded_s,
                        f.relapses,
                        f.truncated_by,
                    )
                    for f in fig.faults
                ],
            )
            db.executemany(
                "INSERT OR REPLACE INTO gates VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        fig.run_id,
                        str(g.get("name")),
                        json.dumps(g.get("limit")),
                        json.dumps(g.get("value")),
                        int(bool(g.get("passed"))),
                    )
                    for g in report.get("gates") or []
                    if isinstance(g, dict)
                ],
            )
        return "added" if row is None else "updated"

    # --- reading ---------------------------------------------------------------------

    def _stored(self, row: sqlite3.Row) -> StoredRun:
        return StoredRun(
            figures=run_figures(json.loads(row["report_json"])),
            report_path=row["report_path"],
            source=row["source"],
            added_at=row["added_at"],
        )

    def runs(self, drill: str | None = None, *, limit: int | None = None) -> list[StoredRun]:
        """Runs (of one drill, or all), oldest first; with ``limit``, the newest ``limit``."""
        args: list[str | int] = [] if drill is None else [drill]
        where = "" if drill is None else "WHERE drill = ?"
        sql = f"SELECT * FROM runs {where} ORDER BY started_ts DESC, run_id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = self._db.execute(sql, args).fetchall()
        return [self._stored(r) for r in reversed(rows)]

    def previous(
        self,
        drill: str,
        before_ts: float,
        *,
        limit: int,
        completed: bool = True,
        target: str | None = None,
    ) -> list[StoredRun]:
        """Runs of ``drill`` against ``target`` started before ``before_ts``, newest first.

        The same drill against another target (another staging system, another size of
        machine) is not a baseline for this one, so runs are matched on the target too
        (a run without a target name matches runs without one).
        With ``completed`` (the default) only runs whose figures cover the whole drill:
        passed or failed, not partial.
        """
        sql = "SELECT * FROM runs WHERE drill = ? AND started_ts < ?"
        args: list[str | float | int | None] = [drill, before_ts]
        sql += " AND target IS ?"
        args.append(target)
        if completed:
            marks = ", ".join("?" for _ in COMPLETED_OUTCOMES)
            sql += f" AND partial = 0 AND outcome IN ({marks})"
            args += COMPLETED_OUTCOMES
        rows = self._db.execute(
            sql + " ORDER BY started_ts DESC, run_id DESC LIMIT ?", [*args, limit]
        ).fetchall()
        return [self._stored(r) for r in rows]

    def drills(self) -> list[str]:
        """Names of the drills with runs, alphabetically."""
        rows = self._db.execute("SELECT DISTINCT drill FROM runs ORDER BY drill").fetchall()
        return [str(r[0]) for r in rows]

    def count(self) -> int:
        """How many runs the history holds."""
        return int(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def find(self, ref: str) -> StoredRun | None:
        """A run by its id, or by a prefix of it that names exactly one run.

        Raises:
            InvalidInput: the prefix matches several runs (they are listed).
        """
        row = self._db.execute("SELECT * FROM runs WHERE run_id = ?", (ref,)).fetchone()
        if row is not None:
            return self._stored(row)
        escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._db.execute(
            "SELECT * FROM runs WHERE run_id LIKE ? ESCAPE '\\' ORDER BY started_ts LIMIT 6",
            (escaped + "%",),
        ).fetchall()
        if len(rows) > 1:
            names = ", ".join(r["run_id"] for r in rows[:5])
            raise InvalidInput(f"{ref!r} matches several runs in {self.path}: {names}")
        return self._stored(rows[0]) if rows else None

    def report(self, run_id: str) -> dict[str, Any] | None:
        """The stored report of a run (without its timeline), or None."""
        row = self._db.execute(
            "SELECT report_json FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return None if row is None else dict(json.loads(row["report_json"]))
