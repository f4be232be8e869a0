"""Accuracy: resildrill's outage and recovery figures agree with an independent prober.

Three drills of five faults each (kill + supervisor restart, kill + restart command,
freeze/continue) run against a real service while a separate process probes it every
10 ms with the same success rule (HTTP 200 within the probe timeout). The two are aligned
through the report's ``clock.monotonic_t0`` (one host, one monotonic clock). Every
fault's ``outage_s`` and ``time_to_recover_s`` must be within 150 ms of the truth. The
errors are written to test-artifacts/accuracy.json.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import ROOT, SUPPORT, ManagedProcesses, free_port, wait_http
from tests.support.tiny import (
    SERVICE,
    SUPERVISOR,
    kill_pidfile,
    load_report,
    read_pid,
    resildrill,
    write_drill,
    write_target,
)

from resildrill.faults.process import proc_state

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(150)]

TOLERANCE_S = 0.150
#: Seconds between faults: room for the slowest recovery (kill + restart command: the
#: 700 ms fault, a Python start, then the 1 s stability window before the next fault).
SPACING_S = {"supervisor": 1.4, "restart": 1.8, "freeze": 1.4}
TRIALS = 5
PROBE_TIMEOUT_S = 0.2


def faults_for(case: str) -> list[dict[str, Any]]:
    """Five faults of one kind, ``SPACING_S`` apart."""
    out = []
    for i in range(TRIALS):
        f: dict[str, Any] = {
            "id": f"{case}-{i}",
            "kind": "process",
            "service": "web",
            "at": f"{i * SPACING_S[case]:g}s",
        }
        if case == "supervisor":
            f["action"] = "kill"
        elif case == "restart":
            f.update(action="kill", duration="700ms")
        else:
            f.update(action="freeze", duration="800ms")
        out.append(f)
    return out


@pytest.fixture
def service(
    tmp_path: Path, procs: ManagedProcesses, request: pytest.FixtureRequest
) -> Iterator[tuple[Path, int, str]]:
    """The tiny service, under a 300 ms supervisor for the 'supervisor' case."""
    case = request.param
    port = free_port()
    pidfile = tmp_path / "web.pid"
    cmd = [str(SERVICE), "--port", str(port), "--pidfile", str(pidfile)]
    if case == "supervisor":
        procs.start(
            str(SUPERVISOR),
            "--delay",
            "0.3",
            "--pidfile",
            str(tmp_path / "sup.pid"),
            "--",
            "python3",
            *cmd,
        )
    else:
        procs.start(*cmd)
    wait_http(port)
    write_target(
        tmp_path,
        port,
        recovery="supervisor" if case == "supervisor" else "restart",
        timeout=f"{int(PROBE_TIMEOUT_S * 1000)}ms",
    )
    yield tmp_path, port, case
    kill_pidfile(tmp_path / "sup.pid")
    kill_pidfile(pidfile)


def truth_for(
    samples: list[tuple[float, int]], start: float, end: float, counted_from: float
) -> tuple[float, float]:
    """(true outage, true time to recover) of one fault from 10 ms samples in [start, end).

    Outage: each failing sample counts for the time until the next sample (at most 50 ms),
    so a stray 10 ms blip adds 10 ms, not the span to it. Recovery: the first success after
    the longest run of failures (runs split by successes lasting more than 50 ms).
    """
    window = [(t, ok) for t, ok in samples if start <= t < end]
    if not any(not ok for _, ok in window):
        return 0.0, 0.0
    outage = 0.0
    for (t, ok), (t_next, _) in zip(window, [*window[1:], (end, 1)], strict=True):
        if not ok:
            outage += min(t_next - t, 0.05)
    runs: list[tuple[float, float]] = []  # (first failing, last failing)
    for t, ok in window:
        if ok:
            continue
        if runs and t - runs[-1][1] <= 0.05:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    _, last = max(runs, key=lambda r: r[1] - r[0])
    back = next((t for t, ok in window if t > last and ok), end)
    return outage, max(0.0, back - counted_from)


@pytest.mark.parametrize("service", ["supervisor", "restart", "freeze"], indirect=True)
def test_outage_and_recovery_match_independent_truth(
    service: tuple[Path, int, str], procs: ManagedProcesses
) -> None:
    """Each of five faults: outage_s and time_to_recover_s within 150 ms of the truth.

    These runs are also the end-to-end tests of the three ways a process fault ends: a
    supervised kill is counted from the injection (nothing to revert), a kill with a restart
    command and a freeze are counted from their revert; the killed service runs again under
    a new pid, the frozen one under its own, and the run folder holds every file."""
    folder, port, spec_case = service
    first_pid = read_pid(folder / "web.pid")
    drill = write_drill(
        folder,
        f"accuracy-{spec_case}",
        faults_for(spec_case),
        phases={"baseline": "500ms", "recovery": "2s"},
    )
    truth_file = folder / "truth.txt"
    # stopped by SIGTERM once the drill is over; the duration only bounds a lost prober
    procs.start(
        str(SUPPORT / "truthprober.py"),
        "--port",
        str(port),
        "--timeout",
        str(PROBE_TIMEOUT_S),
        "--duration",
        "120",
        "--out",
        str(truth_file),
    )
    result = resildrill("run", str(drill), "--out", str(folder / "reports"), timeout=120)
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    report = load_report(run_dir)
    prober = procs.procs[-1]
    prober.send_signal(signal.SIGTERM)  # the drill is over: stop probing, write the truth
    prober.wait(timeout=30)
    t0 = report["clock"]["monotonic_t0"]
    samples = [
        (float(a) - t0, int(b))
        for a, b, _wall in (ln.split() for ln in truth_file.read_text().splitlines())
    ]
    faults = report["faults"]
    errors = []
    for i, f in enumerate(faults):
        start = f["inject_requested_at_s"] - 0.05
        end = (
            faults[i + 1]["inject_requested_at_s"] if i + 1 < len(faults) else report["duration_s"]
        )
        counted = f["reverted_at_s"] if f["counted_from"] == "revert" else f["injected_at_s"]
        true_outage, true_ttr = truth_for(samples, start, end, counted)
        rec = f["recovery"]
        assert rec["recovered"], f
        errors.append(
            {
                "fault": f["id"],
                "outage_s": rec["outage_s"],
                "true_outage_s": round(true_outage, 3),
                "time_to_recover_s": rec["time_to_recover_s"],
                "true_time_to_recover_s": round(true_ttr, 3),
                "outage_error_s": round(rec["outage_s"] - true_outage, 3),
                "ttr_error_s": round(rec["time_to_recover_s"] - true_ttr, 3),
            }
        )
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / f"accuracy-{spec_case}.json").write_text(json.dumps(errors, indent=1))
    worst = max(max(abs(e["outage_error_s"]), abs(e["ttr_error_s"])) for e in errors)
    print(f"\n{spec_case}: max error {worst * 1000:.0f} ms over {len(errors)} faults")
    for e in errors:
        assert abs(e["outage_error_s"]) <= TOLERANCE_S, e
        assert abs(e["ttr_error_s"]) <= TOLERANCE_S, e
    assert report["outcome"] == "passed"
    for f in faults:
        assert f["recovery"]["time_to_detect_s"] is not None, f  # every fault was seen
        if spec_case == "supervisor":
            assert (f["counted_from"], f["reverted_at_s"]) == ("inject", None), f
        else:
            assert f["counted_from"] == "revert" and f["reverted_at_s"] is not None, f
    pid = read_pid(folder / "web.pid") or 0
    assert proc_state(pid) in ("S", "R")
    assert (pid == first_pid) == (spec_case == "freeze")
    for name in ("report.json", "report.html", "junit.xml", "journal.jsonl", "timeline.jsonl"):
        assert (run_dir / name).exists(), name
