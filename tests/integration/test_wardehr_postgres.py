"""The ward EHR on PostgreSQL: live durability settings, and no acknowledged write lost when a
replica and then the database itself are SIGKILLed mid-stream."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fhir.resources.R4B import get_fhir_model_class
from tests.integration.test_wardehr_resilience import check_integrity, kill, run_stream

from wardehr.testing import (
    RunningStack,
    postgres_unavailable,
    running_stack,
    world_readable_tempdir,
)

_REASON = postgres_unavailable()

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(_REASON is not None, reason=f"PostgreSQL cannot be started: {_REASON}"),
]


@pytest.fixture(scope="module")
def ehr() -> Iterator[RunningStack]:
    """A PostgreSQL stack in a folder the postgres user can reach, always stopped."""
    with world_readable_tempdir() as folder, running_stack(folder, store="postgres") as running:
        yield running


@pytest.mark.timeout(60)
def test_live_postgres_settings_are_durable(ehr: RunningStack) -> None:
    """Each replica's session reports fsync=on, synchronous_commit=on, full_page_writes=on."""
    for replica in ("replica-a", "replica-b"):
        client = ehr.client(replica)
        reply = client.get("/_admin/store")
        client.close()
        assert reply.status == 200
        settings = reply.body["settings"]
        assert reply.body["store"] == "postgres"
        assert settings["fsync"] == "on"
        assert settings["synchronous_commit"] == "on"
        assert settings["full_page_writes"] == "on"


@pytest.mark.timeout(60)
def test_postgres_answers_valid_fhir(ehr: RunningStack) -> None:
    """Read and search over PostgreSQL give the same valid R4 resources as over SQLite."""
    client = ehr.client()
    read = client.get("/Patient/pat-0001")
    search = client.get("/MedicationRequest?status=draft&_count=5")
    client.close()
    assert read.status == 200 and search.status == 200
    get_fhir_model_class("Patient").model_validate(read.body)
    bundle = get_fhir_model_class("Bundle").model_validate(search.body)
    assert bundle.total > 0
    assert all(e.resource.status == "draft" for e in bundle.entry)


@pytest.mark.timeout(90)
def test_no_acknowledged_write_lost_when_replica_and_database_are_killed(
    ehr: RunningStack,
) -> None:
    """Writes stream while replica-a, then the PostgreSQL postmaster, are SIGKILLed: every
    acknowledged create and update survives crash recovery, once, at its version."""
    ehr.wait_healthy()
    marks: dict[str, float] = {}
    stream = run_stream(
        ehr,
        6.0,
        [(1.0, kill(ehr, "replica-a", marks)), (3.0, kill(ehr, "database", marks))],
        writers=3,
        readers=0,
    )
    result = check_integrity(ehr, stream)
    print(f"\npostgres durability under replica + database SIGKILL: {json.dumps(result)}")
    assert result["creates_acknowledged"] > 50
    assert result["updates_acknowledged"] > 10
    assert result["writes_failed"] > 0  # the database kill was felt (the test can fail)
    assert result["lost"] == 0
    assert result["duplicated"] == 0
    assert result["wrong_version"] == 0
