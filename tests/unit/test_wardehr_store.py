"""The ward EHR's store, search and population, in-process on a SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from wardehr import fhir
from wardehr.fhir import FhirError
from wardehr.seed import population
from wardehr.server import parse_search
from wardehr.store import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    """A seeded SQLite store in a temporary folder."""
    s = SqliteStore(str(tmp_path / "ward.sqlite"))
    s.ensure_ready(population(42))
    return s


def test_population_is_deterministic_and_synthetic() -> None:
    """The same seed gives the same resources; another seed gives others; no real-looking ids."""
    a, b, c = population(42), population(42), population(7)
    assert a == b
    assert a != c
    patients = [r for r in a if r["resourceType"] == "Patient"]
    assert 20 <= len(patients) <= 36
    assert all(
        p["identifier"][0]["system"].startswith("https://resildrill.example/") for p in patients
    )
    kinds = {r["resourceType"] for r in a}
    assert kinds == set(fhir.RESOURCE_TYPES)


def test_population_validates_against_fhir_r4b_models() -> None:
    """Every seeded resource is valid FHIR R4 (fhir.resources R4B models)."""
    for resource in population(42):
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_r4b_models_reject_invalid_resources() -> None:
    """The validator used by the tests does catch a broken resource (so it can fail)."""
    missing_status = {"resourceType": "Observation", "code": {"text": "x"}}
    unknown_field = {**missing_status, "status": "final", "colour": "red"}
    nested = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "Patient", "gender": 5}}],
    }
    for bad in (missing_status, unknown_field, nested):
        with pytest.raises(ValidationError):
            get_fhir_model_class(bad["resourceType"]).model_validate(bad)


def test_live_sqlite_settings_are_durable(store: SqliteStore) -> None:
    """WAL journal, synchronous FULL (2) and a busy timeout are what the database reports."""
    settings = store.settings()
    assert settings["journal_mode"] == "wal"
    assert settings["synchronous"] == "2"
    assert int(settings["busy_timeout"]) >= 1000


def test_seeding_happens_once(store: SqliteStore) -> None:
    """A second ensure_ready does not load the population again."""
    before = store.count_all()
    assert store.ensure_ready(population(42)) is False
    assert store.count_all() == before == len(population(42))


def test_search_by_patient_category_sorted_and_counted(store: SqliteStore) -> None:
    """Observation?patient=&category=laboratory&_sort=-date&_count=1 returns the newest lab."""
    criteria, sort, count, include = parse_search(
        "Observation",
        {"patient": "pat-0001", "category": "laboratory", "_sort": "-date", "_count": "1"},
    )
    result = store.search("Observation", criteria, sort, count, include)
    assert result.total == 2
    assert len(result.matches) == 1
    assert result.matches[0]["category"][0]["coding"][0]["code"] == "laboratory"
    all_labs = store.search("Observation", criteria, sort, 10, include).matches
    dates = [o["effectiveDateTime"] for o in all_labs]
    assert dates == sorted(dates, reverse=True)


def test_search_dates_and_identifiers(store: SqliteStore) -> None:
    """Date prefixes bound the results and identifier matches with or without system."""
    everything = store.search("Observation", [], [], 500).total
    criteria, *_ = parse_search("Observation", {"date": "ge2026-11-20T07:00:00Z"})
    recent = store.search("Observation", criteria).total
    assert 0 < recent < everything
    criteria, *_ = parse_search("Patient", {"identifier": f"{fhir_mrn()}|RD000002"})
    assert [p["id"] for p in store.search("Patient", criteria).matches] == ["pat-0002"]
    criteria, *_ = parse_search("Patient", {"identifier": "RD000002"})
    assert store.search("Patient", criteria).total == 1


def fhir_mrn() -> str:
    """The MRN identifier system of the population."""
    from wardehr.seed import MRN_SYSTEM

    return MRN_SYSTEM


def test_include_locations_of_encounters(store: SqliteStore) -> None:
    """Encounter?status=in-progress&_include=Encounter:location adds the bed and ward."""
    criteria, sort, count, include = parse_search(
        "Encounter", {"status": "in-progress", "_include": "Encounter:location", "_count": "2"}
    )
    result = store.search("Encounter", criteria, sort, count, include)
    assert len(result.matches) == 2
    assert {r["resourceType"] for r in result.included} == {"Location"}
    assert len(result.included) >= 3  # two beds and at least one ward


def test_update_checks_versions(store: SqliteStore) -> None:
    """An update names the current version or is refused with 409/412; versions increase."""
    current = store.read("MedicationRequest", "mr-0001-1")
    assert current is not None
    changed = {**current, "status": "active"}
    stored, created = store.update("MedicationRequest", "mr-0001-1", changed, if_match=1)
    assert not created and stored["meta"]["versionId"] == "2"
    with pytest.raises(FhirError) as stale:
        store.update("MedicationRequest", "mr-0001-1", changed, if_match=1)
    assert stale.value.status == 412
    with pytest.raises(FhirError) as conflict:
        store.update("MedicationRequest", "mr-0001-1", current)  # body says versionId 1
    assert conflict.value.status == 409
    assert store.vread("MedicationRequest", "mr-0001-1", 1) == current


def test_unsupported_search_is_refused() -> None:
    """Unknown sort keys and date prefixes are 400s; unknown params only under strict handling."""
    with pytest.raises(FhirError):
        parse_search("Observation", {"_sort": "color"})
    with pytest.raises(FhirError):
        parse_search("Observation", {"date": "sa2026-01-01"})
    assert parse_search("Observation", {"colour": "red"})[0] == []
    with pytest.raises(FhirError):
        parse_search("Observation", {"colour": "red"}, strict=True)
