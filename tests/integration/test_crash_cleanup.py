"""No human action: a runner SIGKILLed at every forced crash point and at random moments
leaves nothing injected within 5 s (its watchdog reverts), and never cuts a network path.

Process faults are inspected in /proc; network faults on the Toxiproxy API and by an
independent client sending requests through the proxied hop. Docker faults:
tests/integration/docker/test_docker_crash_cleanup.py. The figures
go to test-artifacts/crash-cleanup-*.json; benchmarks/crash_cleanup.py runs more trials.
"""

from __future__ import annotations

import http.client
import json
import random
import signal
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from tests.conftest import ROOT, free_port
from tests.support.crash import FORCED_POINTS, run_trial, trial_count, write_figures
from tests.support.tiny import process_fault, read_pid, resildrill, write_drill

from resildrill.drill.model import TargetSpec
from resildrill.faults.embedded_proxy import proxy_home, stop_embedded_proxy
from resildrill.faults.process import proc_state

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


class PathPoller:
    """An independent client of the proxied hop (plain HTTP, not resildrill): a GET through
    the listen address every 20 ms, each result stamped on the monotonic clock."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.results: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _one(self) -> bool:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=0.5)
        try:
            c.request("GET", "/healthz")
            return c.getresponse().status == 200
        except OSError:
            return False
        finally:
            c.close()

    def _loop(self) -> None:
        deadline = time.monotonic() + 600  # bounded, whatever the test does
        while not self._stop.is_set() and time.monotonic() < deadline:
            at = time.monotonic()
            self.results.append((at, self._one()))
            self._stop.wait(0.02)

    def __enter__(self) -> PathPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def since(self, t: float) -> list[bool]:
        return [ok for at, ok in list(self.results) if at >= t]


def test_network_crash_never_cuts_the_path(web: tuple[Path, int]) -> None:
    """Issue 14's hazard: a toxic that stalls every request through the runner-started
    embedded proxy; the runner is SIGKILLed at each forced point and at >= 10 random
    moments while the toxic is held. Every time the toxic is gone within 5 s *and* an
    independent poller's requests through the listen address succeed again and keep
    succeeding (the watchdog removes toxics, it never stops the proxy); ``rollback``
    reports the path checked."""
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
    spec = TargetSpec.model_validate(target)
    drill = write_drill(
        folder,
        "crash-network",
        [
            {
                "id": "stall",
                "kind": "network",
                "proxy": "web",
                "at": "0s",
                "duration": "30s",
                # data held, connections left open: nothing gets through while it is held
                "toxic": {"type": "timeout", "attributes": {"timeout": 0}},
            }
        ],
        slos=[{"probe": "web", "expect": "success_rate >= 0.0"}],
    )
    short = drill.with_name("crash-network-short.yaml")
    short.write_text(drill.read_text().replace("30s", "500ms"))
    rng = random.Random(11262026)
    randoms = max(10, trial_count())
    trials, held = [], []
    try:
        with PathPoller(hop) as poller:
            for i, how in enumerate([*FORCED_POINTS, *["random"] * randoms]):
                trial = run_trial(
                    "network",
                    drill if how == "random" else short,
                    folder / f"out-{i}",
                    how=how,
                    rng=rng,
                    injected=lambda: bool(_toxics(api)),
                    clean=lambda _run: (
                        _toxics(api) == [] and poller.since(time.monotonic() - 0.1)[-1:] == [True]
                    ),
                )
                trials.append(trial)
                # ... and keeps succeeding: every poll of the next second went through
                after = time.monotonic()
                while time.monotonic() - after < 1.0:
                    time.sleep(0.05)
                held.append(all(poller.since(after)))
        rolled = resildrill("rollback", str(next((folder / "out-0").iterdir())))
    finally:
        stop_embedded_proxy(proxy_home(spec, folder))
    summary = write_figures(ROOT / "test-artifacts" / "crash-cleanup-network.json", trials)
    print(f"\nnetwork: {summary}")
    assert all(t.cleanup_s is not None for t in trials), trials
    assert all(held), held
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "accepts connections" in rolled.stdout, rolled.stdout


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
