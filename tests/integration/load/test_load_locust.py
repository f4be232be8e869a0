"""Integration tests of the LoadDriver with real Locust processes against a local FHIR stub."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.integration.load.conftest import remote_worker

from resildrill.drill.model import LoadSpec
from resildrill.load import LoadDriver, apply_buckets
from resildrill.load.sizing import PERSONAS
from resildrill.observe.metrics import TimeSeries

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _drive(driver: LoadDriver, seconds: float, series: TimeSeries) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        apply_buckets(series, driver.poll())
        time.sleep(0.1)


_CLERK = """
from locust import FastHttpUser, constant, task

class Clerk(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def look(self):
        self.client.get("/Patient?_count=5", name="clerk:patients")
"""


@pytest.mark.timeout(90)
def test_every_persona_is_timed_per_100ms_bucket(
    fhir_stub: Callable[..., str], tmp_path: Path
) -> None:
    """Real Locust master+worker: every workflow streams buckets, fresh, and stop reaps all."""
    base = fhir_stub()
    t0 = time.monotonic()
    driver = LoadDriver(LoadSpec(users=13, pace=300), host=base, run_dir=tmp_path, monotonic_t0=t0)
    series = TimeSeries()
    try:
        driver.start()
        assert len(driver.pids) == 2
        _drive(driver, 5.0, series)
    finally:
        driver.stop()
    apply_buckets(series, driver.poll())
    ended = (time.monotonic() - t0) / 0.1
    assert {p.workflow for p in PERSONAS} <= set(series.sources)
    for name, s in series.sources.items():
        assert s.source == "workflow"
        assert sum(s.counts) > 0 and sum(s.failures) == 0, name
        assert len(s.counts) <= ended + 1  # no bucket from the future
    assert driver.failure is None
    age_p99 = driver.ages.quantile(0.99)
    assert age_p99 is not None and age_p99 <= 0.5
    assert driver.late_dropped == 0
    assert not [pid for pid in driver.pids if alive(pid)]


@pytest.mark.timeout(90)
def test_writes_lost_equal_the_writes_a_target_dropped(
    fhir_stub: Callable[..., str], tmp_path: Path
) -> None:
    """A target that drops every 20th acknowledged write yields exactly that many writes_lost."""
    base = fhir_stub(drop_every=20)
    driver = LoadDriver(
        LoadSpec(users=13, pace=300), host=base, run_dir=tmp_path, monotonic_t0=time.monotonic()
    )
    try:
        driver.start()
        _drive(driver, 4.0, TimeSeries())
    finally:
        driver.stop()
    result = driver.integrity_check(timeout_s=30)
    with urllib.request.urlopen(f"{base}/_stub/stats", timeout=5) as resp:
        stats = json.load(resp)
    # Writes in flight when load stopped were acknowledged by the target but never by the
    # client; only writes the client saw acknowledged are counted.
    in_flight = stats["acked"] - result.writes_acknowledged
    assert result.writes_acknowledged >= 100
    assert 0 <= in_flight <= 13
    assert stats["dropped"] - 1 <= result.writes_lost <= stats["dropped"]
    if in_flight == 0 or stats["acked"] % 20 >= in_flight:
        assert result.writes_lost == stats["dropped"]
    assert result.writes_duplicated == 0 and result.writes_unverifiable == 0


@pytest.mark.timeout(60)
def test_read_back_failure_is_unverifiable(fhir_stub: Callable[..., str], tmp_path: Path) -> None:
    """When the target is gone at read-back, every write is unverifiable, none 'fine'."""
    from resildrill.load.integrity import check_writes

    recs = [
        {
            "resource": "Observation",
            "id": "1",
            "identifier": "urn:resildrill:write|x",
            "version": "1",
            "op": "create",
        }
    ]
    result = check_writes(recs, base_url="http://127.0.0.1:9", timeout_s=3)
    assert (result.writes_acknowledged, result.writes_unverifiable) == (1, 1)


@pytest.mark.timeout(90)
def test_own_locustfile_still_gets_the_timeline(
    fhir_stub: Callable[..., str], tmp_path: Path
) -> None:
    """A drill's own locustfile runs with the plugin: its requests are bucketed by name."""
    base = fhir_stub()
    own = tmp_path / "mine.py"
    own.write_text(_CLERK)
    driver = LoadDriver(
        LoadSpec(users=2, locustfile=str(own)),
        host=base,
        run_dir=tmp_path / "run",
        monotonic_t0=time.monotonic(),
    )
    series = TimeSeries()
    try:
        driver.start()
        _drive(driver, 3.0, series)
    finally:
        driver.stop()
    apply_buckets(series, driver.poll())
    assert set(series.sources) == {"clerk"}
    assert sum(series.sources["clerk"].counts) >= 20


@pytest.mark.timeout(60)
def test_a_broken_locustfile_fails_start_with_its_error(tmp_path: Path) -> None:
    """start() raises ToolFailed naming the process and its error, and leaves nothing running."""
    from resildrill.errors import ToolFailed

    own = tmp_path / "broken.py"
    own.write_text("raise RuntimeError('no such ward')\n")
    driver = LoadDriver(
        LoadSpec(users=1, locustfile=str(own)),
        host="http://127.0.0.1:9",
        run_dir=tmp_path / "run",
        monotonic_t0=time.monotonic(),
    )
    with pytest.raises(ToolFailed, match="no such ward"):
        driver.start()
    assert driver.pids and not [pid for pid in driver.pids if alive(pid)]


@pytest.mark.timeout(60)
def test_a_locust_process_dying_mid_run_is_reported(
    fhir_stub: Callable[..., str], tmp_path: Path
) -> None:
    """When a worker dies on its own, poll() sets failure instead of going quiet."""
    base = fhir_stub()
    driver = LoadDriver(
        LoadSpec(users=2, pace=300), host=base, run_dir=tmp_path, monotonic_t0=time.monotonic()
    )
    try:
        driver.start()
        os.kill(driver.pids[1], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while driver.failure is None and time.monotonic() < deadline:
            driver.poll()
            time.sleep(0.1)
    finally:
        driver.stop()
    assert driver.failure is not None and driver.failure.startswith("worker-0 exited")
    assert driver.summary()["failure"] == driver.failure


@pytest.mark.timeout(60)
def test_losing_the_master_stops_the_unmeasured_load(
    fhir_stub: Callable[..., str], tmp_path: Path
) -> None:
    """When the master dies, poll() reports it and the workers stop loading the target."""
    base = fhir_stub()
    driver = LoadDriver(
        LoadSpec(users=2, pace=300), host=base, run_dir=tmp_path, monotonic_t0=time.monotonic()
    )
    try:
        driver.start()
        os.kill(driver.pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(p) for p in driver.pids):
            driver.poll()
            time.sleep(0.1)
        assert driver.failure is not None and driver.failure.startswith("master exited")
        assert not [p for p in driver.pids if alive(p)]
    finally:
        driver.stop()


_PARENT = """
import sys, time
from pathlib import Path
from resildrill.drill.model import LoadSpec
from resildrill.load import LoadDriver
d = LoadDriver(LoadSpec(users=4, workers=2, pace=300), host=sys.argv[1],
               run_dir=Path(sys.argv[2]), monotonic_t0=time.monotonic())
d.start()
print(" ".join(map(str, d.pids)), flush=True)
for _ in range(600):
    d.poll()
    time.sleep(0.1)
"""


@pytest.mark.timeout(90)
def test_sigkilled_runner_leaves_no_locust_process(
    fhir_stub: Callable[..., str], tmp_path: Path
) -> None:
    """Five seconds after the process driving Locust is SIGKILLed, no Locust process remains."""
    base = fhir_stub()
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, base, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    pids: list[int] = []
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 3 and all(alive(p) for p in pids)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=5)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.1)
        assert not [p for p in pids if alive(p)]
    finally:
        parent.kill()
        parent.wait(timeout=5)
        if parent.stdout is not None:
            parent.stdout.close()
        for p in pids:
            if alive(p):
                os.killpg(p, signal.SIGKILL)


def _replace(path: Path, text: str) -> None:
    """Write a file the way token helpers do: a temporary file renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)


@pytest.mark.timeout(90)
def test_tls_ca_bundle_and_refreshed_bearer_token_file(
    fhir_stub: Callable[..., str], tmp_path: Path
) -> None:
    """Users verify TLS with the CA bundle and send the token in bearer_token_file; when the
    file is replaced mid-run (the identity provider rotated it) they send the new one, and
    the integrity read-back uses it too. The driver reads the real file: nothing is patched."""
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    old, new = "tok-first-5c1e", "tok-second-9a7d"
    base = fhir_stub(extra=("--token", old, "--tls", str(cert), str(key)))
    ctx = ssl.create_default_context(cafile=str(cert))
    token_file = tmp_path / "token"
    _replace(token_file, old)
    spec = LoadSpec(users=13, pace=300, bearer_token_file=str(token_file), ca_bundle=str(cert))
    driver = LoadDriver(spec, host=base, run_dir=tmp_path / "run", monotonic_t0=time.monotonic())
    series = TimeSeries()
    try:
        driver.start()
        _drive(driver, 2.5, series)
        # The identity provider rotates the token; its helper rewrites the file.
        req = urllib.request.Request(
            f"{base}/_stub/token", data=json.dumps({"token": new}).encode(), method="POST"
        )
        urllib.request.urlopen(req, timeout=5, context=ctx).close()
        _replace(token_file, new)
        rotated = time.monotonic()
        _drive(driver, 3.0, series)
    finally:
        driver.stop()
    apply_buckets(series, driver.poll())
    with urllib.request.urlopen(f"{base}/_stub/tokens", timeout=5, context=ctx) as resp:
        seen = json.load(resp)
    assert seen.get(f"Bearer {old}", 0) > 50 and seen.get(f"Bearer {new}", 0) > 50
    assert set(seen) == {f"Bearer {old}", f"Bearer {new}"}  # never without a token
    settled = int((rotated - driver.t0 + 1.0) / 0.1)
    assert sum(sum(s.failures[settled:]) for s in series.sources.values()) == 0
    assert sum(sum(s.counts[settled:]) for s in series.sources.values()) > 50
    assert driver.summary()["bearer_token"] == {
        "source": "file",
        "refreshes": 1,
        "read_failures": 0,
        "last_error": None,
    }
    result = driver.integrity_check(timeout_s=30)
    assert result.writes_acknowledged > 0 and result.writes_unverifiable == 0
    assert result.writes_lost == 0
    for log in (tmp_path / "run" / "load").iterdir():
        text = log.read_text(errors="replace")
        assert old not in text and new not in text, log.name


@pytest.mark.timeout(60)
def test_bearer_token_env_is_read_once_when_load_starts(
    fhir_stub: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bearer_token_env reaches the workers from the runner's environment at start; a later
    change of that environment (which nothing outside a running runner can make anyway) is
    not followed: a long drill uses bearer_token_file."""
    base = fhir_stub(extra=("--token", "tok-env-41d2"))
    monkeypatch.setenv("RD_TEST_TOKEN", "tok-env-41d2")
    spec = LoadSpec(users=13, pace=300, bearer_token_env="RD_TEST_TOKEN")
    driver = LoadDriver(spec, host=base, run_dir=tmp_path / "run", monotonic_t0=time.monotonic())
    series = TimeSeries()
    try:
        driver.start()
        monkeypatch.setenv("RD_TEST_TOKEN", "tok-env-changed")
        _drive(driver, 2.0, series)
    finally:
        driver.stop()
    with urllib.request.urlopen(f"{base}/_stub/tokens", timeout=5) as resp:
        seen = json.load(resp)
    assert set(seen) == {"Bearer tok-env-41d2"} and seen["Bearer tok-env-41d2"] > 50
    assert driver.summary()["bearer_token"] == {"source": "env", "present": True}


@pytest.mark.timeout(90)
def test_remote_worker_clock_is_measured_and_corrected(
    fhir_stub: Callable[..., str], tmp_path: Path
) -> None:
    """A worker whose monotonic clock is 1000 s off joins; its samples land in the right buckets."""
    from resildrill.load.driver import _LOCUSTFILES, _free_port

    base = fhir_stub()
    own = tmp_path / "clerk.py"
    own.write_text(_CLERK)
    port = _free_port()
    # another host's monotonic clock
    remote = remote_worker(
        f"{_LOCUSTFILES / 'plugin.py'},{own}", port, base, {"RESILDRILL_TEST_CLOCK_SKEW": "1000"}
    )
    t0 = time.monotonic()
    spec = LoadSpec(users=4, remote_workers=1, master_port=port, locustfile=str(own))
    driver = LoadDriver(spec, host=base, run_dir=tmp_path / "run", monotonic_t0=t0)
    series = TimeSeries()
    try:
        driver.start()
        _drive(driver, 4.0, series)
    finally:
        driver.stop()
        os.killpg(remote.pid, signal.SIGKILL)
        remote.wait(timeout=10)
    apply_buckets(series, driver.poll())
    clocks = driver.summary()["remote_workers"]
    assert len(clocks) == 1
    (clock,) = clocks.values()
    assert abs(clock["clock_offset_s"] - 1000) < 0.05 and clock["uncertainty_s"] < 0.05
    counts = series.sources["clerk"].counts
    assert len(counts) <= (time.monotonic() - t0) / 0.1 + 1  # nothing 1000 s in the future
    assert sum(counts) > 100 and driver.late_dropped == 0
    assert driver.unsynced_dropped <= sum(counts) * 0.05
    assert 0 < clock["requests"] <= sum(counts)


@pytest.mark.timeout(90)
def test_remote_worker_plays_at_the_drills_pace(
    fhir_stub: Callable[..., str], tmp_path: Path
) -> None:
    """A remote worker with no spec of its own (default pace 30: an observation round every
    1.6-2.3 s) plays the built-in personas at the drill's pace 600, sent by the master."""
    from resildrill.load.driver import _LOCUSTFILES, _free_port

    base = fhir_stub()
    port = _free_port()
    remote = remote_worker(str(_LOCUSTFILES / "clinical.py"), port, base)
    spec = LoadSpec(
        users=2, pace=600, remote_workers=1, master_port=port, workflows={"obs_round": 1}
    )
    driver = LoadDriver(spec, host=base, run_dir=tmp_path / "run", monotonic_t0=time.monotonic())
    series = TimeSeries()
    try:
        driver.start()
        _drive(driver, 4.0, series)
    finally:
        driver.stop()
        os.killpg(remote.pid, signal.SIGKILL)
        remote.wait(timeout=10)
    (clock,) = driver.summary()["remote_workers"].values()
    actions = sum(series.sources["obs_round"].actions) if "obs_round" in series.sources else 0
    print(f"\nremote worker at the drill's pace: {clock['requests']} requests, {actions} actions")
    # one user on the remote worker: at pace 30 at most 3 rounds in 4 s, at 600 dozens
    assert clock["requests"] >= 60, clock


@pytest.mark.timeout(60)
def test_the_shape_follows_the_drill_phases(fhir_stub: Callable[..., str], tmp_path: Path) -> None:
    """A surge phase (2 -> 8 users) quadruples the request rate from its start on."""
    base = fhir_stub()
    own = tmp_path / "clerk.py"
    own.write_text(_CLERK)
    t0 = time.monotonic()
    driver = LoadDriver(
        LoadSpec(locustfile=str(own)),
        host=base,
        run_dir=tmp_path / "run",
        monotonic_t0=t0,
        phases=[(0.0, 2), (5.0, 8)],
    )
    series = TimeSeries()
    try:
        driver.start()
        started = time.monotonic() - t0
        while time.monotonic() - t0 < 8.0:
            apply_buckets(series, driver.poll())
            time.sleep(0.1)
    finally:
        driver.stop()
    apply_buckets(series, driver.poll())
    assert started < 4.0, "Locust took too long to start for this test's windows"
    counts = series.sources["clerk"].counts
    first = int((started + 0.3) / 0.1)
    before = sum(counts[first:50]) / ((50 - first) / 10)  # 2 users, until 5.0 s
    after = sum(counts[60:78]) / 1.8  # 6.0-7.8 s: 8 users, past the spawn
    assert before > 0 and after / before > 2.5, (before, after)
