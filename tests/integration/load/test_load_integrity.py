"""Integrity read-back against a stub FHIR server that duplicates, drops or reverts writes."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from resildrill.drill.model import LoadSpec
from resildrill.load import LoadDriver
from resildrill.load.integrity import check_writes

pytestmark = pytest.mark.integration


def _send(base: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return dict(json.load(resp))


def _stats(base: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base}/_stub/stats", timeout=5) as resp:
        return dict(json.load(resp))


def _create(base: str, n: int) -> list[dict[str, Any]]:
    """``n`` acknowledged creates, recorded the way the workers record them."""
    records = []
    for _ in range(n):
        key = f"urn:resildrill:write|{uuid.uuid4().hex}"
        system, _, value = key.partition("|")
        body = {
            "resourceType": "Observation",
            "status": "final",
            "identifier": [{"system": system, "value": value}],
        }
        made = _send(base, "POST", "/Observation", body)
        records.append(
            {
                "resource": "Observation",
                "id": made["id"],
                "identifier": key,
                "version": made["meta"]["versionId"],
                "op": "create",
            }
        )
    return records


@pytest.mark.timeout(60)
def test_duplicated_creates_are_counted_exactly(fhir_stub: Callable[..., str]) -> None:
    """A server that stores every 5th create twice yields writes_duplicated equal to that."""
    base = fhir_stub(extra=("--duplicate-every", "5"))
    result = check_writes(_create(base, 42), base_url=base, timeout_s=20)
    assert _stats(base)["duplicated"] == 8
    assert (result.writes_acknowledged, result.writes_duplicated, result.writes_lost) == (42, 8, 0)
    assert {e["problem"] for e in result.examples} == {"duplicated"}


@pytest.mark.timeout(60)
def test_updates_lost_by_version_are_counted(fhir_stub: Callable[..., str]) -> None:
    """Updates acknowledged with a new version but not kept are lost updates, by version."""
    base = fhir_stub(extra=("--stale-updates",))
    records = []
    for rec in _create(base, 6):
        system, _, value = rec["identifier"].partition("|")
        key = uuid.uuid4().hex
        body = {
            "resourceType": "Observation",
            "id": rec["id"],
            "status": "amended",
            "identifier": [{"system": system, "value": value}, {"system": system, "value": key}],
        }
        made = _send(base, "PUT", f"/Observation/{rec['id']}", body)
        records += [
            rec,
            {
                "resource": "Observation",
                "id": rec["id"],
                "identifier": f"{system}|{key}",
                "version": made["meta"]["versionId"],
                "op": "update",
            },
        ]
    result = check_writes(records, base_url=base, timeout_s=20)
    assert _stats(base)["stale"] == 6
    assert (result.writes_acknowledged, result.writes_lost, result.updates_lost) == (12, 6, 6)
    assert result.writes_unverifiable == 0


@pytest.mark.timeout(90)
def test_a_retried_medicine_administration_is_a_double_dose(
    fhir_stub: Callable[..., str], tmp_path: Path
) -> None:
    """Saved-then-503 administrations, retried by the drug-round nurse, show as duplicates."""
    base = fhir_stub(extra=("--commit-then-fail-every", "4"))
    spec = LoadSpec(users=6, pace=300, workflows={"drug_round": 1})
    driver = LoadDriver(spec, host=base, run_dir=tmp_path, monotonic_t0=time.monotonic())
    try:
        driver.start()
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            driver.poll()
            time.sleep(0.1)
    finally:
        driver.stop()
    driver.poll()
    result = driver.integrity_check(timeout_s=30)
    failed_saves = _stats(base)["commit_then_fail"]
    assert failed_saves >= 5
    # Every failed save was retried once; a retry that itself failed was never acknowledged.
    assert failed_saves // 2 <= result.writes_duplicated <= failed_saves
    assert {e["resource"] for e in result.examples} == {"MedicationAdministration"}
    assert result.writes_lost == 0
