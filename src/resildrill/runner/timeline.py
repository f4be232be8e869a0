"""Timestamped marks of a run and the streamed ``timeline.jsonl`` that outlives a crash.

Times are seconds from the run's ``monotonic_t0``. The stream holds a header, every probe
sample and every mark as one JSON line each, flushed every tick, so a run killed at any
moment still leaves what it measured (``resildrill report`` rebuilds a partial report).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class Mark:
    """Something the runner did or saw, at ``at_s`` seconds from ``monotonic_t0``."""

    at_s: float
    kind: str
    fault_id: str | None = None
    detail: str | None = None


class TimelineStream:
    """Appends JSON lines to ``timeline.jsonl``; :meth:`flush` after each runner tick."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self.write({"t": "header", **header})

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")

    def mark(self, mark: Mark) -> None:
        self.write({"t": "mark", **asdict(mark)})

    def sample(self, probe: str, at_s: float, ok: bool, latency_s: float) -> None:
        self.write({"t": "s", "p": probe, "at": round(at_s, 4), "ok": ok, "l": round(latency_s, 5)})

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_timeline(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a timeline stream (a torn last line is ignored)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out
