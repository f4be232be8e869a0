"""Write integrity: read back every acknowledged write after the recovery window.

Owns the parent-side check of the write records the Locust workers streamed (each 2xx
create/update, with its client identifier ``urn:resildrill:write|<uuid>`` and version):

- a create is searched by its identifier: none found is **lost**, more than one is
  **duplicated** (a retried POST that made a second MedicationAdministration is a
  double-dose record);
- an update is read by id: gone, a ``meta.versionId`` older than the acknowledged one, or
  the write's identifier missing (overwritten from a stale read) is a **lost update**,
  counted in ``writes_lost`` and ``updates_lost``;
- a read-back that fails (error status, timeout, deadline) is **unverifiable**, never
  silently "fine".

Runs in the runner's process with the standard library only (threads, no gevent).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = ["IntegrityResult", "check_writes"]

#: Read-back requests in flight at once: enough to check thousands of writes in seconds,
#: few enough not to be a load test of their own on a recovering system.
CONCURRENCY = 8
_TRIES = 2


@dataclass(frozen=True)
class IntegrityResult:
    """Outcome of the read-back; the first four fields are report.json ``integrity``."""

    writes_acknowledged: int = 0
    writes_lost: int = 0
    writes_duplicated: int = 0
    writes_unverifiable: int = 0
    updates_lost: int = 0
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
            "examples": list(self.examples),
        }


class _Reader:
    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        ca_bundle: str | None,
        deadline: float,
        request_timeout_s: float,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.headers = {"Accept": "application/fhir+json", **headers}
        self.ctx = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
        self.deadline = deadline
        self.timeout = request_timeout_s

    def get(self, path: str) -> tuple[int, Any]:
        """Status and parsed body; raises OSError on transport failure or the deadline."""
        last: Exception | None = None
        for _ in range(_TRIES):
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("integrity deadline reached")
            req = urllib.request.Request(self.base + path, headers=self.headers)
            try:
                with urllib.request.urlopen(
                    req, timeout=min(self.timeout, left), context=self.ctx
                ) as resp:
                    return resp.status, json.loads(resp.read() or b"{}")
            except urllib.error.HTTPError as exc:
                if exc.code in (404, 410):
                    return exc.code, None
                last = exc
            except (OSError, ValueError) as exc:
                last = exc
        raise OSError(f"read-back failed: {last}")

    def check(self, rec: dict[str, Any]) -> str:
        """'ok', 'lost', 'duplicated', 'update_lost' or 'unverifiable' for one write."""
        try:
            if rec.get("op") == "update":
                return self._check_update(rec)
            q = urllib.parse.urlencode({"identifier": rec["identifier"]})
            status, body = self.get(f"/{rec['resource']}?{q}")
            if status != 200 or not isinstance(body, dict):
                return "unverifiable"
            found = len([e for e in body.get("entry", []) if "resource" in e])
            found = max(found, int(body.get("total") or 0))
            return "lost" if found == 0 else "duplicated" if found > 1 else "ok"
        except OSError:
            return "unverifiable"

    def _check_update(self, rec: dict[str, Any]) -> str:
        status, body = self.get(f"/{rec['resource']}/{rec['id']}")
        if status in (404, 410):
            return "update_lost"
        if status != 200 or not isinstance(body, dict):
            return "unverifiable"
        system, _, value = str(rec["identifier"]).partition("|")
        idents = body.get("identifier") or []
        if not any(i.get("system") == system and i.get("value") == value for i in idents):
            return "update_lost"
        acked, now = rec.get("version"), (body.get("meta") or {}).get("versionId")
        if acked is not None and now is not None:
            try:
                if int(now) < int(acked):
                    return "update_lost"
            except ValueError:
                pass  # opaque version ids: presence of our identifier is the check
        return "ok"


def check_writes(
    records: Iterable[dict[str, Any]],
    *,
    base_url: str,
    headers: dict[str, str] | None = None,
    ca_bundle: str | None = None,
    timeout_s: float = 30.0,
    request_timeout_s: float = 5.0,
) -> IntegrityResult:
    """Read back every acknowledged write, within ``timeout_s`` in total."""
    recs = list(records)
    reader = _Reader(
        base_url, headers or {}, ca_bundle, time.monotonic() + timeout_s, request_timeout_s
    )
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        outcomes = list(pool.map(reader.check, recs))
    counts = {k: 0 for k in ("ok", "lost", "duplicated", "update_lost", "unverifiable")}
    examples: list[dict[str, Any]] = []
    for rec, outcome in zip(recs, outcomes, strict=True):
        counts[outcome] += 1
        if outcome != "ok" and len(examples) < 20:
            examples.append(
                {
                    "resource": rec.get("resource"),
                    "id": rec.get("id"),
                    "identifier": rec.get("identifier"),
                    "problem": outcome,
                }
            )
    return IntegrityResult(
        writes_acknowledged=len(recs),
        writes_lost=counts["lost"] + counts["update_lost"],
        writes_duplicated=counts["duplicated"],
        writes_unverifiable=counts["unverifiable"],
        updates_lost=counts["update_lost"],
        examples=examples,
    )
