"""The registry of active runs: one small JSON file per run in a state folder.

Lets ``resildrill abort RUN`` (from another terminal) find a run by its id, and lets a
new run see that an earlier one against the same target never finished. The folder is
``$RESILDRILL_STATE_DIR`` or ``~/.local/state/resildrill``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from resildrill.faults.process import is_same_process, proc_start_time
from resildrill.statehome import state_home


def state_dir() -> Path:
    """The state folder (created on demand)."""
    path = state_home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def register_run(run_id: str, **info: Any) -> Path:
    """Record this process as running ``run_id``."""
    pid = os.getpid()
    entry = {"run_id": run_id, "pid": pid, "pid_start": proc_start_time(pid), **info}
    path = state_dir() / f"{run_id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry, default=str, indent=1))
    tmp.replace(path)
    return path


def unregister_run(run_id: str) -> None:
    """Forget ``run_id`` (idempotent)."""
    (state_dir() / f"{run_id}.json").unlink(missing_ok=True)


def active_runs() -> list[dict[str, Any]]:
    """Registered runs, each with ``alive``: whether its runner process still exists."""
    runs = []
    for path in sorted(state_dir().glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        start = entry.get("pid_start")
        entry["alive"] = start is not None and is_same_process(int(entry["pid"]), int(start))
        runs.append(entry)
    return runs


def find_run(ref: str) -> dict[str, Any] | None:
    """A registered run by id, id prefix or run folder."""
    ref_path = Path(ref).resolve()
    matches = [
        r
        for r in active_runs()
        if r["run_id"] == ref or r["run_id"].startswith(ref) or Path(r["run_dir"]) == ref_path
    ]
    return matches[0] if len(matches) == 1 else None


def journals_without_runner(out_dir: Path, target: str | None = None) -> list[Path]:
    """Journals no live runner is writing, resolved and sorted: those under ``out_dir``,
    and those of runs registered on this machine whose runner is gone, wherever their
    folder is (only runs against ``target`` when given; a journal under ``out_dir`` is
    not filtered here, its ``run_start`` record names its target)."""
    registered = active_runs()
    live = {Path(r["run_dir"]).resolve() for r in registered if r["alive"]}
    found = {p.resolve() for p in out_dir.glob("*/journal.jsonl")}
    found |= {
        (Path(r["run_dir"]) / "journal.jsonl").resolve()
        for r in registered
        if not r["alive"] and (target is None or r.get("target") == target)
    }
    return sorted(p for p in found if p.exists() and p.parent not in live)
