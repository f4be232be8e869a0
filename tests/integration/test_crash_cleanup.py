"""No human action: a runner SIGKILLed at every forced crash point and at random moments
leaves nothing injected within 5 s (its watchdog reverts), and no proxy process behind.

Process faults are inspected in /proc; network faults on the Toxiproxy API and the proxy's
own pid. Docker faults: tests/integration/docker/test_docker_crash_cleanup.py. The figures
go to test-artifacts/crash-cleanup-*.json; benchmarks/crash_cleanup.py runs more trials.
"""

from __future__ import annotations

import json
import random
import signal
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from tests.conftest import ROOT, free_port
from tests.support.crash import FORCED_POINTS, run_trial, trial_count, write_figures
from tests.support.tiny import process_fault, read_pid, resildrill, write_drill

from resildrill.faults.process import is_same_process, proc_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_process_faults_cleaned_by_watchdog(web: tuple[Path, int]) -> None:
    """Freeze faults: every forced point and random moment ends with the service running."""
    folder, _ = web
    drill = write_drill(
        folder,
        "crash-process",
        [process_fault("freeze", "30s")],
    )
    pid = read_pid(folder / "web.pid") or 0
    # Forced crash points use a short fault so 'revert_issued' comes quickly.
    short = drill.with_name("crash-process-short.yaml")
    short.write_text(drill.read_text().replace("30s", "500ms"))
    rng = random.Random(20261126)
    trials = []
    for i, how in enumerate([*FORCED_POINTS, *["random"] * trial_count()]):
        trials.append(
            run_trial(
                "process",
                drill if how == "random" else short,
                folder / f"out-{i}",
                how=how,
                rng=rng,
                injected=lambda: proc_state(pid) == "T",
                clean=lambda _run: proc_state(pid) in ("S", "R"),
            )
        )
    summary = write_figures(ROOT / "test-artifacts" / "crash-cleanup-process.json", trials)
    print(f"\nprocess: {summary}")
    assert all(t.cleanup_s is not None for t in trials), trials


def _toxics(api: str) -> list[object] | None:
    try:
        with urllib.request.urlopen(f"{api}/proxies/web/toxics", timeout=1) as r:
            return list(json.load(r))
    except OSError:
        return None  # the proxy is gone


def _proxy_gone(run_dir: Path | None) -> bool:
    if run_dir is None:
        return True
    try:
        info = json.loads((run_dir / "toxiproxy.pid").read_text())
    except (OSError, ValueError):
        return True  # removed by a clean stop
    return not is_same_process(int(info["pid"]), int(info["start_time"]))


def test_network_faults_cleaned_and_proxy_not_orphaned(web: tuple[Path, int]) -> None:
    """A toxic on the runner-started embedded proxy: removed, and the proxy process stopped."""
    folder, port = web
    api_port, hop = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    target = yaml.safe_load((folder / "target.yaml").read_text())
    target["toxiproxy"] = {
        "url": api,
        "proxies": {"web": {"listen": f"127.0.0.1:{hop}", "upstream": f"127.0.0.1:{port}"}},
    }
    target["probes"][0]["http"]["url"] = f"http://127.0.0.1:{hop}/healthz"
    (folder / "target.yaml").write_text(yaml.safe_dump(target))
    drill = write_drill(
        folder,
        "crash-network",
        [
            {
                "id": "slow",
                "kind": "network",
                "proxy": "web",
                "at": "0s",
                "duration": "30s",
                "toxic": {"type": "latency", "attributes": {"latency": 50}},
            }
        ],
    )
    # Forced crash points use a short fault so 'revert_issued' comes quickly.
    short = drill.with_name("crash-network-short.yaml")
    short.write_text(drill.read_text().replace("30s", "500ms"))
    rng = random.Random(11262026)
    trials = []
    for i, how in enumerate([*FORCED_POINTS, *["random"] * trial_count()]):
        trials.append(
            run_trial(
                "network",
                drill if how == "random" else short,
                folder / f"out-{i}",
                how=how,
                rng=rng,
                injected=lambda: bool(_toxics(api)),
                clean=lambda run_dir: not _toxics(api) and _proxy_gone(run_dir),
            )
        )
    summary = write_figures(ROOT / "test-artifacts" / "crash-cleanup-network.json", trials)
    print(f"\nnetwork: {summary}")
    assert all(t.cleanup_s is not None for t in trials), trials


def test_watchdog_forgets_the_run_it_cleaned(web: tuple[Path, int], tmp_path: Path) -> None:
    """Once the watchdog has reverted a dead runner's faults, `resildrill runs` no longer
    lists the run (nothing is left to abort or roll back)."""
    folder, _ = web
    state = {"RESILDRILL_STATE_DIR": str(tmp_path / "state")}
    drill = write_drill(folder, "forgotten", [process_fault("freeze", "30s")])
    pid = read_pid(folder / "web.pid") or 0
    result = resildrill(
        "run",
        str(drill),
        "--out",
        str(folder / "reports"),
        env={**state, "RESILDRILL_CRASH_AT": "injected"},
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    deadline = time.monotonic() + 10
    listed = ""
    while time.monotonic() < deadline:
        listed = resildrill("runs", env=state).stdout.strip()
        if proc_state(pid) in ("S", "R") and listed == "no drill is running":
            break
        time.sleep(0.2)
    assert proc_state(pid) in ("S", "R")
    assert listed == "no drill is running"
