"""The drill ``ehr-down-engine-queues`` as a user runs it, against the bundled ward EHR with its
interface engine, with an independent observer beside it.

The EHR that files results is down for 2 minutes (killed while its supervisor is frozen) while
the lab load sends results through the engine. The observer is this test: a thread that reads
the EHR's own store file every 20 ms and notes when each result first appears there, and, after
the run, the engine's queue file for when each message was received. It knows nothing of
resildrill's counters. What must hold:

* nothing the engine accepted is lost, by the report and by the EHR's store;
* the backlog the report says was queued when the outage ended is the observer's backlog;
* the report's drain end is within 200 ms of the moment the observer saw the last queued
  result filed (the issue's bar), and the duplicates it counts are the store's.

The drill is the bundled file; the copy differs in ``target:`` (the bundled HL7 target with
free ports and a run folder under tmp). Figures go to test-artifacts/hl7-drain.json.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import ROOT, free_port
from tests.support.tiny import load_report

from wardehr import stack
from wardehr.hl7_inbound import MSH10_SYSTEM

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]
ARTIFACTS = ROOT / "test-artifacts"


def _hl7_target(folder: Path) -> Path:
    """targets/ward-ehr/target-hl7.yaml with every port free and its run folder in ``folder``."""
    text = (ROOT / "targets" / "ward-ehr" / "target-hl7.yaml").read_text()
    ports = {p: str(free_port()) for p in sorted(set(re.findall(r"\b184\d\d\b", text)))}
    text = re.sub(r"\b184\d\d\b", lambda m: ports[m.group(0)], text)
    doc = yaml.safe_load(text)
    doc["name"] = "ward-ehr-hl7-drain-test"
    doc["run_dir"] = str(folder / "run")
    path = folder / "target-hl7.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


class StoreObserver:
    """Reads the EHR's store file every 20 ms: the wall time each result first appeared."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.first_seen: dict[str, float] = {}
        self.copies: Counter[str] = Counter()
        self._last_rowid = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> StoreObserver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self._poll()
            except sqlite3.Error:
                continue  # the store is being created or restarted: read again next time

    def _poll(self) -> None:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1)
        try:
            rows = conn.execute(
                "SELECT rowid, body FROM resource WHERE type = 'DiagnosticReport' AND rowid > ?"
                " ORDER BY rowid",
                (self._last_rowid,),
            ).fetchall()
        finally:
            conn.close()
        now = time.time()
        for rowid, body in rows:
            self._last_rowid = max(self._last_rowid, rowid)
            for ident in json.loads(body).get("identifier", []):
                if ident.get("system") == MSH10_SYSTEM:
                    self.first_seen.setdefault(ident["value"], now)
                    self.copies[ident["value"]] += 1


def _received(queue: Path) -> dict[str, float]:
    """Control id -> when the engine received it (its queue file, wall clock)."""
    conn = sqlite3.connect(f"file:{queue}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT control_id, MIN(received_at) FROM messages GROUP BY 1")
        return {cid: float(at) for cid, at in rows.fetchall()}
    finally:
        conn.close()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


@pytest.fixture(scope="module")
def hl7_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bundled HL7 target on free ports, for this module's drills; stopped by pidfiles."""
    target = _hl7_target(tmp_path_factory.mktemp("hl7-stack"))

    def cli(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "resildrill", *args, str(target)],
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip

    try:
        # as a user starts it: the stack and the embedded proxy the engine forwards through
        cli("target", "up")
        yield target
    finally:
        cli("target", "down")
        stack.down(target)  # by pidfiles, whatever the CLI managed


def _run_copy(name: str, target: Path, folder: Path, phases: dict[str, str]) -> Path:
    """Run a copy of drills/<name>.yaml (``target`` and ``phases`` replaced) through the CLI;
    its run folder, after checking it passed."""
    original = yaml.safe_load((ROOT / "drills" / f"{name}.yaml").read_text())
    copy = {**original, "target": str(target), "phases": phases}
    drill = folder / f"{name}.yaml"
    drill.write_text(yaml.safe_dump(copy, sort_keys=False))
    command = ["run", str(drill), "--yes", "--no-history", "--out", str(folder / "reports")]
    result = subprocess.run(
        [sys.executable, "-m", "resildrill", *command],
        capture_output=True,
        text=True,
        timeout=330,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return Path(result.stdout.strip().splitlines()[-1])


def _store_copies(db: Path) -> Counter[str]:
    """Control id -> DiagnosticReports filed for it, read from the EHR's store file."""
    observer = StoreObserver(db)
    observer._poll()
    return observer.copies


def test_ehr_down_two_minutes_drain_time_matches_an_independent_observer(
    hl7_stack: Path, tmp_path: Path
) -> None:
    original = yaml.safe_load((ROOT / "drills" / "ehr-down-engine-queues.yaml").read_text())
    assert original["faults"][0]["duration"] == "2m"
    run_dir_root = yaml.safe_load(hl7_stack.read_text())["run_dir"]
    store = Path(run_dir_root) / "ward.sqlite"
    with StoreObserver(store) as observer:
        # the drill's own phases: its 20 s recovery window holds the drain
        run_dir = _run_copy("ehr-down-engine-queues", hl7_stack, tmp_path, original["phases"])
        time.sleep(0.2)  # the observer's last look
    report = load_report(run_dir)
    delivery = report["delivery"]
    wall_t0 = report["clock"]["wall_t0"]
    drain = delivery["by_fault"]["supervisor-held"]
    assert report["faults"][1]["delivery"]["end_s"] == drain["end_s"]  # the kill overlaps it

    # The observer's own figures, from the engine's queue file (when each message arrived,
    # the lab's and the probe's) and its watch of the EHR's store (when each was filed):
    # - the backlog: the lab's messages received before the outage ended, not yet filed then;
    # - the drain's end: the last message filed late (more than the usual delay after the
    #   engine received it), after the outage ended. Every later one came on time.
    ended = wall_t0 + drain["end_s"]
    received = _received(Path(run_dir_root) / "engine-queue.sqlite")
    lines = (run_dir / "load" / "messages.jsonl").read_text().splitlines()
    lab = {json.loads(line)["control_id"] for line in lines}
    never = float("inf")
    backlog = {
        cid for cid, at in received.items()
        if cid in lab and at <= ended and observer.first_seen.get(cid, never) > ended
    }  # fmt: skip
    missing = sorted(cid for cid in lab & set(received) if cid not in observer.first_seen)
    usual = delivery["usual_delay_s"]
    late = [
        seen for cid, at in received.items()
        for seen in [observer.first_seen.get(cid, never)]
        if ended < seen < never and seen - at > usual
    ]  # fmt: skip
    last_backlog = max(observer.first_seen[cid] for cid in backlog)
    drained = max(late)
    figures: dict[str, Any] = {
        "outage_s": round(drain["end_s"] - report["faults"][1]["injected_at_s"], 3),
        "backlog_report": drain["backlog_at_end"],
        "backlog_observer": len(backlog),
        "drain_s_report": drain["drain_s"],
        "drain_s_observer": round(drained - ended, 3),
        "backlog_filed_error_ms": _ms(wall_t0 + drain["last_backlog_filed_at_s"] - last_backlog),
        "drained_error_ms": _ms(wall_t0 + drain["drained_at_s"] - drained),
        "accepted": delivery["accepted"],
        "lost": delivery["lost"],
        "duplicated_report": delivery["duplicated"],
        "duplicated_store": sum(1 for cid in lab if observer.copies[cid] > 1),
    }  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "hl7-drain.json").write_text(json.dumps(figures, indent=1) + "\n")

    assert figures["outage_s"] >= 119.0, figures
    assert missing == [] and delivery["lost"] == 0, figures
    # a 2-minute outage at 10 results a second leaves a real backlog
    assert len(backlog) > 500, figures
    # a message in flight at the very moment may be counted on either side of it
    assert abs(drain["backlog_at_end"] - len(backlog)) <= 2, figures
    assert abs(figures["backlog_filed_error_ms"]) <= 200, figures
    assert abs(figures["drained_error_ms"]) <= 200, figures
    assert figures["duplicated_report"] == figures["duplicated_store"], figures
    html = (run_dir / "report.html").read_text()
    assert "HL7 results reaching the ward" in html and "Backlog drained in" in html


def test_engine_killed_inside_a_queue_write_loses_nothing_it_acknowledged(
    hl7_stack: Path, tmp_path: Path
) -> None:
    """The kill is aimed inside a commit of the engine's queue (a pwrite of its log, or the
    flush after it: a half-written entry); every result the lab got AA for is in the EHR's
    store file afterwards."""
    run_dir = _run_copy(
        "engine-killed-mid-write", hl7_stack, tmp_path, {"baseline": "3s", "recovery": "8s"}
    )
    report = load_report(run_dir)
    aimed = report["faults"][0]["aimed"]
    # inside the queue's commit: writing its frames or flushing them
    assert aimed["caught"] is not None, aimed
    assert aimed["caught"].split()[0] in ("pwrite64", "fsync", "fdatasync"), aimed
    sent = [json.loads(ln) for ln in (run_dir / "load" / "messages.jsonl").read_text().splitlines()]
    acknowledged = {m["control_id"] for m in sent if m["ack"] == "AA"}
    store = Path(yaml.safe_load(hl7_stack.read_text())["run_dir"]) / "ward.sqlite"
    filed = _store_copies(store)
    assert acknowledged and not (acknowledged - set(filed))
    assert report["delivery"]["lost"] == 0
    assert report["delivery"]["duplicated"] == sum(1 for c in acknowledged if filed[c] > 1)
    html = (run_dir / "report.html").read_text()
    assert f"signalled inside {aimed['caught']}" in html
