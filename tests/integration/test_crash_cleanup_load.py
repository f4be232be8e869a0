"""A runner SIGKILLed while clinicians are at work (real Locust processes on the ward EHR):
no Locust process outlives it (they die with their parent, PR_SET_PDEATHSIG), the watchdog
reverts the fault, and `resildrill runs` forgets the run. Inspected in /proc, never the
journal's word for it. What clinicians did up to the kill is in the partial report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from resildrill.faults.process import is_same_process, proc_state
from wardehr import stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def ward(tmp_path: Path) -> Iterator[Path]:
    """The ward EHR on free ports, stopped at the end."""
    target = stack.write_target(tmp_path / "ward", restart_delay="1s")
    stack.up(target)
    try:
        yield target
    finally:
        stack.down(target)


def load_children(run_dir: Path) -> list[tuple[int, int]]:
    """(pid, start time) of the Locust processes the journal says the runner started."""
    out = []
    for line in (run_dir / "journal.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("type") == "child" and rec.get("role") == "load":
            out.append((int(rec["pid"]), int(rec["start_time"])))
    return out


def locust_processes(marker: str) -> set[int]:
    """Live processes running Locust whose environment holds ``marker`` (this test's own
    state folder: a Locust of another run on a shared machine is none of its business)."""
    found = set()
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"locust" in cmd
            and needle in env
            and proc_state(int(entry.name)) not in (None, "Z", "X")
        ):
            found.add(int(entry.name))
    return found


def test_killed_runner_leaves_no_locust_and_no_fault(ward: Path, tmp_path: Path) -> None:
    """SIGKILL mid-fault: within 5 s no Locust process is left and the replica runs again."""
    drill = tmp_path / "drill.yaml"
    drill.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "resildrill/v1",
                "kind": "Drill",
                "name": "crash-under-load",
                "target": str(ward),
                "slos": [{"probe": "gateway", "expect": "success_rate >= 0.99"}],
                "phases": {"baseline": "3s", "recovery": "5s"},
                "load": {"users": 10, "workers": 1},
                "faults": [
                    {
                        "id": "freeze-b",
                        "kind": "process",
                        "service": "replica-b",
                        "action": "freeze",
                        "at": "0s",
                        "duration": "30s",
                    }
                ],
            }
        )
    )
    pid_b = stack.read_pid(ward, "replica-b") or 0
    env = {**os.environ, "RESILDRILL_STATE_DIR": str(tmp_path / "state")}
    marker = f"RESILDRILL_STATE_DIR={tmp_path / 'state'}"
    before = locust_processes(marker)
    reports = tmp_path / "reports"
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resildrill",
            "run",
            str(drill),
            "--yes",
            "--no-history",
            "--out",
            str(reports),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while proc_state(pid_b) != "T":
            assert runner.poll() is None, "the run ended before its fault was injected"
            assert time.monotonic() < deadline, "the fault was never injected"
            time.sleep(0.02)
        run_dir = next(reports.iterdir())
        children = load_children(run_dir)
        assert children and all(is_same_process(p, s) for p, s in children)
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
    killed = time.monotonic()
    gone: dict[str, float] = {}
    while time.monotonic() - killed < 5.0 and len(gone) < 2:
        if "locust" not in gone and not locust_processes(marker) - before:
            gone["locust"] = time.monotonic() - killed
        if "fault" not in gone and proc_state(pid_b) in ("S", "R"):
            gone["fault"] = time.monotonic() - killed
        time.sleep(0.02)
    print(f"\nrunner killed under load: clean after {gone}")
    assert [p for p, s in children if is_same_process(p, s)] == [], "a Locust worker survived"
    assert locust_processes(marker) - before == set()
    assert proc_state(pid_b) in ("S", "R"), "the watchdog did not continue replica-b"
    # the watchdog unregisters the run just after journalling its reverts: poll, bounded
    deadline = time.monotonic() + 5
    while True:
        listed = subprocess.run(
            [sys.executable, "-m", "resildrill", "runs"], capture_output=True, text=True, env=env
        )
        if listed.stdout.strip() == "no drill is running" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert listed.stdout.strip() == "no drill is running"
    # a drill loses no result it has measured: the load's 100 ms buckets were streamed
    rebuilt = subprocess.run(
        [sys.executable, "-m", "resildrill", "report", str(run_dir), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    report = json.loads((run_dir / "report.json").read_text())
    assert report["partial"] is True
    series = report["timeline"]["series"]
    requests = {
        name: sum(v or 0 for v in s["values"])
        for name, s in series.items()
        if name.startswith("workflow.") and name.endswith(".requests")
    }
    print(f"partial report: requests by workflow before the kill {requests}")
    assert len(requests) >= 3 and sum(requests.values()) >= 30, requests
    # and the clinical-impact figures are rebuilt from the same buckets
    assert report["load"]["requests"] == sum(requests.values())
    played = {n.removeprefix("workflow.").removesuffix(".requests") for n in requests}
    assert set(report["load"]["by_workflow"]) == played
