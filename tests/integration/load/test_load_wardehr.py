"""End-to-end: clinician load on the bundled ward EHR while its gateway is lost."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from resildrill.drill.model import LoadSpec
from resildrill.load import LoadDriver, apply_buckets
from resildrill.load.sizing import PERSONAS
from resildrill.observe.metrics import TimeSeries, bucket_index
from wardehr.testing import running_stack

pytestmark = pytest.mark.integration

BASELINE_S = 7.0
AFTER_KILL_S = 5.0
#: Requests on the ward EHR take tens of milliseconds (p95 < 100 ms): 1 s covers any
#: request still in flight at the kill.
IN_FLIGHT_BUCKETS = 10


@pytest.mark.timeout(120)
def test_gateway_loss_shows_failures_per_workflow_and_loses_no_write(tmp_path: Path) -> None:
    """Killing the gateway (by its pidfile) mid-load fails every workflow then, none before."""
    with running_stack(tmp_path / "ehr", restart_delay="2s") as stack:
        t0 = time.monotonic()
        # 26 users = two 30-bed wards, so the rarest personas (1 per ward) are two users;
        # pace 400 packs a shift's rhythm into seconds so each workflow passes 50 requests.
        driver = LoadDriver(
            LoadSpec(users=26, pace=400, request_timeout="3s"),
            host=f"http://{stack.address('gateway')}",
            run_dir=tmp_path / "run",
            monotonic_t0=t0,
        )
        series = TimeSeries()
        killed_at = None
        try:
            driver.start()
            end = time.monotonic() + BASELINE_S + AFTER_KILL_S
            kill_at = time.monotonic() + BASELINE_S
            while time.monotonic() < end:
                apply_buckets(series, driver.poll())
                if killed_at is None and time.monotonic() >= kill_at:
                    killed_at = time.monotonic() - t0
                    stack.signal("gateway", signal.SIGKILL)  # pid from its pidfile, checked
                time.sleep(0.1)
        finally:
            driver.stop()
        apply_buckets(series, driver.poll())
        assert killed_at is not None
        stack.wait_healthy(timeout_s=20)
        integrity = driver.integrity_check(timeout_s=30)

    kill_bucket = bucket_index(killed_at)
    for persona in PERSONAS:
        s = series.sources[persona.workflow]
        before = s.counts[:kill_bucket]
        assert sum(before) >= 50, (persona.workflow, sum(before))
        # A request in flight when the gateway died fails and is dated to its start, just
        # before the kill; nothing that started a second or more before it may fail.
        assert sum(s.failures[: kill_bucket - IN_FLIGHT_BUCKETS]) == 0, persona.workflow
        # Requests that started in the outage (the gateway restarts after 2 s) fail.
        assert sum(s.failures[kill_bucket : kill_bucket + 25]) > 0, persona.workflow
    assert integrity.writes_acknowledged > 100
    assert integrity.writes_lost == 0
    assert integrity.writes_unverifiable == 0
