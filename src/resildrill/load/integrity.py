"""Write integrity: read back every write after the recovery window.

Owns the parent-side check of the write records the Locust workers streamed
(``record_write``): each is read back by the drill's verifier (``load/verifiers.py``:
FHIR by default, any HTTP API, or a function of the drill's own) and counted:

- an acknowledged write not found is **lost**; found more than once, **duplicated**;
  an update read back older than acknowledged is a **lost update** (counted in both
  ``writes_lost`` and ``updates_lost``);
- a read-back that cannot tell is **unverifiable**, never lost;
- a write that was *not* acknowledged (the client timed out or got an error) but is found
  stored anyway is **stored_unacknowledged**: reported apart, never counted as lost.

Runs in the runner's process with the standard library only (threads, no gevent).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resildrill.drill.model import DicomLoadSpec, IntegritySpec
from resildrill.load.verifiers import DICOM_RESOURCE, DicomVerifier, ReadBack, verifier_for

__all__ = ["IntegrityResult", "check_writes"]

#: Read-back requests in flight at once: enough to check thousands of writes in seconds,
#: few enough not to be a load test of their own on a recovering system.
CONCURRENCY = 8


@dataclass(frozen=True)
class IntegrityResult:
    """Outcome of the read-back; the first four fields are report.json ``integrity``."""

    writes_acknowledged: int = 0
    writes_lost: int = 0
    writes_duplicated: int = 0
    writes_unverifiable: int = 0
    updates_lost: int = 0
    #: writes never acknowledged to the client, found stored all the same (not lost)
    writes_stored_unacknowledged: int = 0
    #: Up to 20 problem writes: {"resource", "id", "identifier", "problem"}.
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report.json ``integrity`` object (plus the breakdown fields)."""
        return {
            "writes_acknowledged": self.writes_acknowledged,
            "writes_lost": self.writes_lost,
            "writes_duplicated": self.writes_duplicated,
            "writes_unverifiable": self.writes_unverifiable,
            "updates_lost": self.updates_lost,
            "writes_stored_unacknowledged": self.writes_stored_unacknowledged,
            "examples": list(self.examples),
        }


def check_writes(
    records: Iterable[dict[str, Any]],
    *,
    base_url: str,
    headers: dict[str, str] | None = None,
    ca_bundle: str | None = None,
    timeout_s: float = 30.0,
    request_timeout_s: float = 5.0,
    spec: IntegritySpec | None = None,
    drill_dir: Path | None = None,
    dicom: DicomLoadSpec | None = None,
) -> IntegrityResult:
    """Read back every write (acknowledged or not), within ``timeout_s`` in total."""
    recs = list(records)
    how = ReadBack(
        spec or IntegritySpec(),
        base_url,
        headers or {},
        ca_bundle,
        time.monotonic() + timeout_s,
        request_timeout_s,
        drill_dir,
        dicom,
    )
    images = [r.get("resource") == DICOM_RESOURCE for r in recs]
    verifier = verifier_for(how) if not all(images) else None
    pacs = DicomVerifier(how) if any(images) else None

    def check(rec: dict[str, Any]) -> str:
        chosen = pacs if rec.get("resource") == DICOM_RESOURCE else verifier
        assert chosen is not None
        return chosen.check(rec)

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        outcomes = list(pool.map(check, recs))
    return _tally(recs, outcomes)


def _tally(recs: list[dict[str, Any]], outcomes: list[str]) -> IntegrityResult:
    counts = dict.fromkeys(("found", "lost", "duplicated", "update_lost", "unverifiable"), 0)
    stored_unacked = 0
    examples: list[dict[str, Any]] = []
    acked = 0
    for rec, outcome in zip(recs, outcomes, strict=True):
        if not rec.get("acknowledged", True):
            # never promised to the clinician: only its surprise survival is news
            if outcome in ("found", "duplicated"):
                stored_unacked += 1
            continue
        acked += 1
        counts[outcome] += 1
        if outcome != "found" and len(examples) < 20:
            examples.append(
                {
                    "resource": rec.get("resource"),
                    "id": rec.get("id"),
                    "identifier": rec.get("identifier"),
                    "problem": outcome,
                }
            )
    return IntegrityResult(
        writes_acknowledged=acked,
        writes_lost=counts["lost"] + counts["update_lost"],
        writes_duplicated=counts["duplicated"],
        writes_unverifiable=counts["unverifiable"],
        updates_lost=counts["update_lost"],
        writes_stored_unacknowledged=stored_unacked,
        examples=examples,
    )
