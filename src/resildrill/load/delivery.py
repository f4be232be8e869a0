"""HL7 delivery read-back: for every message the load sent, whether, when and how often the
EHR filed it, read from the EHR (never from the engine's log or our counters).

Each message the senders recorded (``load/messages.jsonl``, on the runner's clock) is searched
on the EHR's FHIR API by its control id: ``GET {host}/{resource}?identifier={system}|{MSH-10}``
where ``resource`` is what the EHR files that message type as (``load.hl7.filed_as``). The
number of matches says filed (1), never filed (0) or filed twice (2+); the earliest
``meta.lastUpdated`` is when it was filed, on the EHR's wall clock, placed on the run's
clock through ``clock.wall_t0`` (the EHR must share the runner's clock, or be NTP-synced:
the offset between them is an error of every delay; docs/hl7.md).

A read that cannot tell (an error status, a timeout, no ``lastUpdated``) leaves the message
unverifiable, never lost. Runs in the runner's process: standard library and threads.
"""

from __future__ import annotations

import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from resildrill.drill.model import Hl7LoadSpec, IntegritySpec
from resildrill.load.verifiers import JsonReader, ReadBack

__all__ = ["read_back_messages"]

#: Read-back requests in flight at once (as the write integrity check).
CONCURRENCY = 8
#: How often messages not yet filed are read again while the engine may still drain.
SETTLE_POLL_S = 1.0


def _wall(instant: Any) -> float | None:
    try:
        return datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp()
    except (AttributeError, TypeError, ValueError):
        return None


def _message_kind(message_type: str) -> str:
    """``oru_r01`` -> ``ORU``, ``adt_a01`` -> ``ADT``."""
    return message_type.split("_", 1)[0].upper()


class _Reader:
    def __init__(self, how: ReadBack, hl7: Hl7LoadSpec, monotonic_t0: float, wall_t0: float):
        self.http = JsonReader(how, "application/fhir+json")
        self.base = how.base_url.rstrip("/")
        self.hl7 = hl7
        self.t0, self.wall_t0 = monotonic_t0, wall_t0

    def one(self, sent: dict[str, Any]) -> dict[str, Any]:
        out = {
            "control_id": sent.get("control_id"),
            "type": sent.get("type"),
            "workflow": sent.get("workflow"),
            "patient": sent.get("patient"),
            "ack": sent.get("ack"),
            "accepted": bool(sent.get("accepted")),
            "sent_s": _run_s(sent.get("sent_at"), self.t0),
            "acked_s": _run_s(sent.get("acked_at"), self.t0),
            "copies": None,  # None: could not tell
            "filed_s": None,
        }
        if sent.get("type") == "adt_a08":
            out["readable"] = False  # A08 changes nothing the EHR stores
            return out
        resource = self.hl7.filed_as.get(_message_kind(str(sent.get("type"))))
        if resource is None:
            out["readable"] = False
            return out
        query = urllib.parse.urlencode(
            {"identifier": f"{self.hl7.identifier_system}|{sent.get('control_id')}"}
        )
        try:
            status, body = self.http.get(f"{self.base}/{resource}?{query}")
        except OSError:
            return out
        if status != 200 or not isinstance(body, dict):
            return out
        found = [e["resource"] for e in body.get("entry", []) if "resource" in e]
        copies = max(len(found), int(body.get("total") or 0))
        out["copies"] = copies
        stamps = [_wall((r.get("meta") or {}).get("lastUpdated")) for r in found]
        known = [s for s in stamps if s is not None]
        if copies and known:
            out["filed_s"] = round(min(known) - self.wall_t0, 4)
        elif copies:
            out["copies"] = None  # filed, but when cannot be told
        return out


def _run_s(monotonic: Any, t0: float) -> float | None:
    return None if monotonic is None else round(float(monotonic) - t0, 4)


def read_back_messages(
    sent: list[dict[str, Any]],
    *,
    hl7: Hl7LoadSpec,
    base_url: str,
    headers: dict[str, str],
    ca_bundle: str | None,
    monotonic_t0: float,
    wall_t0: float,
    deadline: float,
    request_timeout_s: float,
    settle_s: float = 30.0,
) -> list[dict[str, Any]]:
    """One row per message sent: its ACK, copies filed and the filing time (run seconds).

    Accepted messages not yet filed (or not yet readable) are read again every second for up
    to ``settle_s`` after the first pass; only those still missing then count as lost.
    """
    how = ReadBack(IntegritySpec(), base_url, headers, ca_bundle, deadline, request_timeout_s)
    reader = _Reader(how, hl7, monotonic_t0, wall_t0)
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        rows = list(pool.map(reader.one, sent))
        # An engine may still be draining when load stops (and the EHR still restarting): a
        # message it accepted is lost only if it is still not filed ``settle_s`` after the
        # first pass; re-read those, and those the first pass could not tell, meanwhile.
        settle_until = min(deadline - request_timeout_s, time.monotonic() + settle_s)
        while time.monotonic() < settle_until:
            waiting = [
                i
                for i, r in enumerate(rows)
                if r["accepted"] and r.get("readable", True) and r["copies"] in (0, None)
            ]
            if not waiting:
                break
            time.sleep(SETTLE_POLL_S)
            for i, row in zip(
                waiting, pool.map(reader.one, [sent[i] for i in waiting]), strict=True
            ):
                rows[i] = row
    return rows
