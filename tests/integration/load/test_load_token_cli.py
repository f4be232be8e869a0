"""End to end: `resildrill run` with load whose bearer token file is rewritten mid-run.

The real CLI runs a drill against the FHIR stub (127.0.0.1), which logs the time and the
``Authorization`` header of every request it gets. One local Locust worker and one remote
one (a separate ``locust --worker --master-host 127.0.0.1`` process, as docs/load.md
describes) play tagged ward nurses: the built-in persona, plus an ``X-Worker`` header
naming the worker, so the stub can tell them apart. The test replaces the token file
(relative to the drill file; the CLI runs from another folder) while they work: every
request after the change carries the new token, none before it does, no request goes
out without one, and the token appears nowhere in the run folder or the CLI's output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tests.integration.load.conftest import remote_worker

from resildrill.load.driver import _LOCUSTFILES, _free_port

pytestmark = pytest.mark.integration

OLD = "tok-old-3f9c2b7e51"
NEW = "tok-new-8d41a6c0e9"
#: The driver stats the file every 0.25 s; the token then goes runner -> master -> workers
#: over pipes and Locust's channel (milliseconds). A request built just before the new
#: token arrived may still reach the stub a little later: 1 s covers both.
SETTLE_S = 1.0
RUN = [sys.executable, "-m", "resildrill", "run"]

TAGGED = """
import os

from resildrill.load import users

WORKER = os.environ.get("RD_TEST_WORKER", "local")


class TaggedNurse(users.ObsRoundNurse):
    def fhir(self, method, action, path, body=None, headers=None, expected=()):
        tagged = {**(headers or {}), "X-Worker": WORKER}
        return super().fhir(method, action, path, body, tagged, expected)
"""


def _replace(path: Path, text: str) -> None:
    """Write the token the way token helpers do: a temporary file renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)


def _requests(base: str) -> list[tuple[float, str | None, str | None]]:
    with urllib.request.urlopen(f"{base}/_stub/requests", timeout=5) as resp:
        return [(float(t), auth, worker) for t, auth, worker in json.load(resp)]


def _write_drill(folder: Path, base: str, load: dict[str, object]) -> Path:
    """A target (one probe on the stub) and a drill with ``load`` and no fault, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "target.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "resildrill/v1",
                "kind": "Target",
                "name": "fhir-stub",
                "environment": "test",
                "probes": [
                    {
                        "name": "api",
                        "http": {"url": f"{base}/_stub/stats"},
                        "role": "clinical",
                        "interval": "100ms",
                    }
                ],
            }
        )
    )
    drill = folder / "drill.yaml"
    drill.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "resildrill/v1",
                "kind": "Drill",
                "name": "token-refresh",
                "target": "target.yaml",
                "slos": [{"probe": "api", "expect": "success_rate >= 0.9"}],
                "slo_window": "500ms",
                "stability_window": "1s",
                "phases": {"baseline": "6s", "recovery": "1s"},
                "load": {"host": base, **load},
            }
        )
    )
    return drill


@pytest.mark.timeout(90)
def test_rewritten_token_file_reaches_local_and_remote_workers(
    fhir_stub: Callable[..., str], tmp_path: Path
) -> None:
    base = fhir_stub()
    drills = tmp_path / "drills"
    (drills / "secrets").mkdir(parents=True)
    token_file = drills / "secrets" / "token"
    _replace(token_file, OLD)
    tagged = tmp_path / "tagged.py"
    tagged.write_text(TAGGED)
    port = _free_port()
    load = {
        "users": 4,
        "pace": 200,
        "workers": 1,
        "remote_workers": 1,
        "master_port": port,
        "locustfile": str(tagged),
        "bearer_token_file": "secrets/token",  # relative to the drill file
    }
    drill = _write_drill(drills, base, load)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESILDRILL_", "RD_TEST"))}
    remote_log = tmp_path / "remote-worker.log"
    with open(remote_log, "wb") as log:
        # The drill's pace, as a remote host's operator passes it (docs/load.md); no
        # token, no clock, no parent: what it knows of the run comes from the master.
        remote = remote_worker(
            f"{_LOCUSTFILES / 'plugin.py'},{tagged}",
            port,
            base,
            {"RD_TEST_WORKER": "remote", "RESILDRILL_LOAD": '{"spec": {"pace": 200}}'},
            drop=("RESILDRILL_", "RD_TEST"),
            log=log,
        )
    elsewhere = tmp_path / "elsewhere"  # not the drill's folder: paths are the drill's
    elsewhere.mkdir()
    reports = tmp_path / "reports"
    cli_env = {**env, "RESILDRILL_STATE_DIR": str(tmp_path / "state")}
    started = time.monotonic()
    try:
        run = subprocess.Popen(
            [*RUN, str(drill), "--yes", "--no-history", "--out", str(reports)],
            cwd=elsewhere,
            env=cli_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Both workers at work with the first token, then the helper rewrites the file.
            deadline = time.monotonic() + 45
            while True:
                assert run.poll() is None, run.communicate()
                assert time.monotonic() < deadline, "load never reached both workers"
                seen = _requests(base)
                if all(sum(1 for r in seen if r[2] == w) >= 30 for w in ("local", "remote")):
                    break
                time.sleep(0.2)
            changed = time.monotonic()
            _replace(token_file, NEW)
            out, err = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
    finally:
        os.killpg(remote.pid, signal.SIGKILL)
        remote.wait(timeout=10)
    took = time.monotonic() - started
    assert run.returncode == 0, (run.returncode, out, err)

    seen = _requests(base)
    load = [r for r in seen if r[2] is not None]
    assert [r for r in load if r[1] is None] == []  # never without a token, even at start
    assert {auth for _, auth, _ in seen} == {f"Bearer {OLD}", f"Bearer {NEW}"}
    assert [t for t, auth, _ in seen if auth == f"Bearer {NEW}" and t < changed] == []
    settled = changed + SETTLE_S
    for worker in ("local", "remote"):
        before = [auth for t, auth, w in load if w == worker and t < changed]
        after = [auth for t, auth, w in load if w == worker and t >= settled]
        assert len(before) >= 30 and set(before) == {f"Bearer {OLD}"}, worker
        assert len(after) >= 30, (worker, len(after))
        assert set(after) == {f"Bearer {NEW}"}, (worker, sorted(set(after)))
    # The runner's own integrity read-back (no X-Worker) came after load: the new token.
    readback = [auth for t, auth, w in seen if w is None]
    assert readback and set(readback) == {f"Bearer {NEW}"}

    (run_dir,) = reports.iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["load"]["bearer_token"]["source"] == "file"
    assert report["load"]["bearer_token"]["refreshes"] == 1
    assert len(report["load"]["remote_workers"]) == 1
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    names = {str(p.relative_to(run_dir)) for p in files}
    assert {"report.json", "timeline.jsonl", "journal.jsonl", "load/master.log"} <= names
    assert "load/worker-0.log" in names
    for path in [*files, remote_log]:
        data = path.read_bytes()
        assert OLD.encode() not in data and NEW.encode() not in data, path
    assert OLD not in out + err and NEW not in out + err
    counts = {w: sum(1 for r in load if r[2] == w and r[0] >= settled) for w in ("local", "remote")}
    print(
        f"\ntoken refresh through the CLI: {took:.1f} s; load requests {len(load)}, after {counts}"
    )


@pytest.mark.timeout(60)
def test_a_missing_token_file_stops_the_run_before_anything_starts(
    fhir_stub: Callable[..., str], tmp_path: Path
) -> None:
    """No token file beside the drill: exit 2 with the file:line:col of the setting, before
    anything runs (a file that vanishes after validation stops load start with exit 6:
    tests/unit/load/test_load_token.py)."""
    base = fhir_stub()
    drill = _write_drill(tmp_path / "drills", base, {"users": 2, "bearer_token_file": "nope"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESILDRILL_")}
    env["RESILDRILL_STATE_DIR"] = str(tmp_path / "state")
    run = subprocess.run(
        [*RUN, str(drill), "--yes", "--no-history", "--out", str(tmp_path / "reports")],
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert run.returncode == 2, (run.stdout, run.stderr)
    [line] = run.stderr.strip().splitlines()
    assert re.match(r"^.+drill\.yaml:\d+:\d+: load\.bearer_token_file: no file .+nope", line), line
    assert str(tmp_path / "drills" / "nope") in line
    assert not (tmp_path / "reports").exists()
    assert _requests(base) == []
