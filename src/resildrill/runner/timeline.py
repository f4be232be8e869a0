"""Timestamped marks of a run and the streamed ``timeline.jsonl`` that outlives a crash.

Times are seconds from the run's ``monotonic_t0``. The stream holds a header, every probe
sample, every mark and every clinician-load bucket as one JSON line each, flushed every
tick, so a run killed at any moment still leaves what it measured (``resildrill report``
rebuilds a partial report).

Line types (``t``): ``header``; ``s`` a probe sample (``p`` probe, ``at``, ``ok``, ``l``
latency in s); ``mark``; ``lb`` a load bucket delta (``w`` workflow, ``i`` 100 ms bucket
index, ``n`` requests, ``f`` failures, ``h`` latency histogram, ``a`` clinical actions,
``af`` failed actions; several lines for one bucket add up).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from resildrill.load.driver import LoadBucket


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

    def load_bucket(self, b: LoadBucket) -> None:
        self.write(
            {
                "t": "lb",
                "w": b.workflow,
                "i": b.index,
                "n": b.count,
                "f": b.failures,
                "h": b.hist.to_json(),
                "a": b.actions,
                "af": b.actions_failed,
            }
        )

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
