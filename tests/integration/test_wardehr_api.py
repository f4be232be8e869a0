"""The ward EHR's FHIR R4 API through the gateway, every response checked with R4B models."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from wardehr.testing import FhirClient, RunningStack, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def ehr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One SQLite stack for the module, stopped by pid at the end."""
    with running_stack(tmp_path_factory.mktemp("ehr")) as running:
        yield running


@pytest.fixture
def api(ehr: RunningStack) -> Iterator[FhirClient]:
    """A client of the gateway."""
    client = ehr.client()
    yield client
    client.close()


def r4(body: dict[str, Any]) -> Any:
    """Validate a response body against the FHIR R4 (R4B) model of its resourceType."""
    return get_fhir_model_class(body["resourceType"]).model_validate(body)


def observation(patient: str = "pat-0001") -> dict[str, Any]:
    """A NEWS2 heart-rate observation with a client identifier."""
    return {
        "resourceType": "Observation",
        "identifier": [{"system": "urn:resildrill:test", "value": str(uuid.uuid4())}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]
        },
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-11-26T06:00:00Z",
        "valueQuantity": {
            "value": 88,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def test_capability_statement(api: FhirClient) -> None:
    """GET /metadata is an R4 CapabilityStatement listing every resource type and search."""
    reply = api.get("/metadata")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/fhir+json")
    cs = r4(reply.body)
    assert cs.fhirVersion == "4.0.1"
    types = {r.type for r in cs.rest[0].resource}
    assert {
        "Patient",
        "Encounter",
        "Location",
        "Observation",
        "MedicationRequest",
        "MedicationAdministration",
        "ServiceRequest",
        "DiagnosticReport",
    } <= types


def test_read(api: FhirClient) -> None:
    """GET Patient/pat-0001 is an R4 Patient with an ETag naming its version."""
    reply = api.get("/Patient/pat-0001")
    assert reply.status == 200
    patient = r4(reply.body)
    assert patient.id == "pat-0001"
    assert reply.headers["ETag"] == 'W/"1"'


def test_search_bundle(api: FhirClient) -> None:
    """A clinician search returns an R4 searchset Bundle of valid resources."""
    reply = api.get(
        "/Observation?patient=Patient/pat-0002&category=vital-signs&_sort=-date&_count=5"
    )
    assert reply.status == 200
    bundle = r4(reply.body)
    assert bundle.type == "searchset"
    assert bundle.total >= 5 and len(bundle.entry) == 5
    for entry in bundle.entry:
        assert entry.resource.subject.reference == "Patient/pat-0002"
    meds = api.get("/MedicationRequest?patient=pat-0002&status=active")
    assert all(e.resource.status == "active" for e in r4(meds.body).entry or [])
    beds = api.get("/Encounter?status=in-progress&_include=Encounter:location&_count=3")
    modes = {e.search.mode for e in r4(beds.body).entry}
    assert modes == {"match", "include"}


def test_create_then_read_back(api: FhirClient) -> None:
    """POST Observation answers 201 with Location and the stored R4 resource; it reads back."""
    reply = api.post("/Observation", observation())
    assert reply.status == 201
    created = r4(reply.body)
    assert created.meta.versionId == "1"
    assert reply.headers["Location"].endswith(f"/Observation/{created.id}/_history/1")
    back = api.get(f"/Observation/{created.id}")
    assert back.status == 200 and back.body == reply.body
    value = reply.body["identifier"][0]["value"]
    found = api.get(f"/Observation?identifier=urn:resildrill:test|{value}")
    assert r4(found.body).total == 1


def test_update_with_version(api: FhirClient) -> None:
    """PUT with the current meta.versionId makes version 2; a stale one is a 409 outcome."""
    created = api.post("/Observation", observation()).body
    amended = {**created, "status": "amended"}
    reply = api.put(f"/Observation/{created['id']}", amended)
    assert reply.status == 200
    assert r4(reply.body).meta.versionId == "2"
    stale = api.put(f"/Observation/{created['id']}", amended)  # still says versionId 1
    assert stale.status == 409
    assert r4(stale.body).issue[0].code == "conflict"
    wrong_match = api.put(f"/Observation/{created['id']}", {**reply.body}, if_match='W/"1"')
    assert wrong_match.status == 412
    old = api.get(f"/Observation/{created['id']}/_history/1")
    assert old.status == 200 and r4(old.body).status == "final"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/Patient/no-such-patient", None, 404, "not-found"),
        ("GET", "/Spaceship/1", None, 404, "not-supported"),
        ("POST", "/Observation", {"resourceType": "Patient"}, 400, "invalid"),
        ("POST", "/Observation", {"resourceType": "Observation"}, 422, "required"),
        ("GET", "/Observation?_sort=colour", None, 400, "not-supported"),
        ("DELETE", "/Patient/pat-0001", None, 405, "not-supported"),
    ],
)
def test_errors_are_operation_outcomes(
    api: FhirClient, method: str, path: str, body: Any, status: int, code: str
) -> None:
    """Every refused request is an R4 OperationOutcome with the right status and issue code."""
    reply = api.request(method, path, body)
    assert reply.status == status
    outcome = r4(reply.body)
    assert outcome.issue[0].severity == "error"
    assert outcome.issue[0].code == code


def test_malformed_json_is_an_outcome(api: FhirClient) -> None:
    """A body that is not JSON gets a 400 OperationOutcome, not a server error."""
    api.close()
    import http.client

    host, port = api.host, api.port
    conn = http.client.HTTPConnection(host, port, timeout=5)
    conn.request(
        "POST", "/Observation", body=b"{not json", headers={"Content-Type": "application/fhir+json"}
    )
    resp = conn.getresponse()
    import json

    body = json.loads(resp.read())
    conn.close()
    assert resp.status == 400
    assert r4(body).issue[0].code == "structure"


def test_live_storage_settings(ehr: RunningStack) -> None:
    """Each replica's live SQLite settings are WAL + synchronous FULL (2) + a busy timeout."""
    for replica in ("replica-a", "replica-b"):
        client = ehr.client(replica)
        reply = client.get("/_admin/store")
        client.close()
        assert reply.status == 200
        assert reply.body["settings"]["journal_mode"] == "wal"
        assert reply.body["settings"]["synchronous"] == "2"
        assert int(reply.body["settings"]["busy_timeout"]) >= 1000


def test_gateway_reports_replicas(ehr: RunningStack) -> None:
    """The gateway spreads requests over both replicas (each answers some)."""
    client = ehr.client()
    served = set()
    for _ in range(40):  # round-robin: both within a few requests, unless one is marked down
        served.add(client.get("/Patient/pat-0003").headers.get("X-Replica"))
        if len(served) == 2:
            break
        time.sleep(0.05)
    client.close()
    assert served == {"replica-a", "replica-b"}
