"""No human action: a runner SIGKILLed with a container paused is undone by its watchdog.

Every forced crash point and a few random moments; ``docker inspect`` (never the journal)
must show the container running and unpaused within 5 s of the kill. Figures go to
test-artifacts/crash-cleanup-docker.json.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from docker_support import SESSION, Containers, inspect
from tests.conftest import ROOT, free_port, wait_http
from tests.support.crash import FORCED_POINTS, run_trial, trial_count, write_figures

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _files(folder: Path, port: int, label: str, duration: str) -> Path:
    target = {
        "apiVersion": "resildrill/v1",
        "kind": "Target",
        "name": "docker-crash-cleanup",
        "environment": "test",
        "probes": [
            {
                "name": "web",
                "role": "clinical",
                "http": {"url": f"http://127.0.0.1:{port}/"},
                "timeout": "500ms",
            }
        ],
    }
    drill = {
        "apiVersion": "resildrill/v1",
        "kind": "Drill",
        "name": f"docker-crash-{duration}",
        "target": "target.yaml",
        "slos": [{"probe": "web", "expect": "success_rate >= 0.5"}],
        "stability_window": "1s",
        "phases": {"baseline": "1s", "recovery": "1s"},
        "faults": [
            {
                "id": "pause",
                "kind": "docker",
                "action": "pause",
                "at": "0s",
                "duration": duration,
                "select": {"labels": {"rdt-cc": label}},
            }
        ],
    }
    (folder / "target.yaml").write_text(yaml.safe_dump(target))
    path = folder / f"drill-{duration}.yaml"
    path.write_text(yaml.safe_dump(drill))
    return path


def test_paused_container_restored_by_watchdog(tmp_path: Path, containers: Containers) -> None:
    """Forced points and random moments: the container is unpaused within 5 s, unaided."""
    port = free_port()
    label = SESSION + "cc"
    cid = containers.run(
        "crash-cleanup",
        labels={"rdt-cc": label},
        command=[
            "/usr/bin/python3",
            "-c",
            "import http.server as h, signal, sys\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
            f"h.ThreadingHTTPServer(('127.0.0.1', {port}), h.SimpleHTTPRequestHandler)"
            ".serve_forever()",
        ],
    )
    wait_http(port, "/", timeout=15)
    long, short = _files(tmp_path, port, label, "30s"), _files(tmp_path, port, label, "500ms")
    rng = random.Random(2022)
    trials = []
    for i, how in enumerate([*FORCED_POINTS, *["random"] * trial_count()]):
        trials.append(
            run_trial(
                "docker",
                long if how == "random" else short,
                tmp_path / f"out-{i}",
                how=how,
                rng=rng,
                injected=lambda: bool(inspect(cid)["State"]["Paused"]),
                clean=lambda _run: (lambda s: s["Running"] and not s["Paused"])(
                    inspect(cid)["State"]
                ),
            )
        )
    summary = write_figures(ROOT / "test-artifacts" / "crash-cleanup-docker.json", trials)
    print(f"\ndocker: {summary}")
    assert all(t.cleanup_s is not None for t in trials), trials
