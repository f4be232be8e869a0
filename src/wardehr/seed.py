"""The deterministic synthetic population of the ward EHR (seeded; never real data).

Owns what a fresh store contains: wards and beds (Location), one in-progress inpatient
Encounter per occupied bed, the patient's NEWS2 vital signs and laboratory results
(Observation), medication orders (MedicationRequest, some ``draft`` for the pharmacist's
queue), administrations, a ServiceRequest and a DiagnosticReport each. The same seed always
gives the same resources, ids and dates. Names are drawn from short generic lists and
identifiers use an ``example`` system, so nothing here can be mistaken for a real person.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["MRN_SYSTEM", "population"]

MRN_SYSTEM = "https://resildrill.example/fhir/sid/mrn"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
#: Every seeded date is relative to this fixed instant, so a seed always gives the same data.
ANCHOR = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

_WARDS = (
    ("ward-7a", "Ward 7A Acute Medicine"),
    ("ward-9", "Ward 9 General Surgery"),
    ("ward-4c", "Ward 4C Respiratory"),
)
_GIVEN = (
    "Alex",
    "Sam",
    "Jo",
    "Robin",
    "Chris",
    "Morgan",
    "Jamie",
    "Kit",
    "Lee",
    "Drew",
    "Pat",
    "Ash",
    "Rowan",
    "Sky",
    "Jesse",
    "Quinn",
)
_FAMILY = (
    "Testpatient",
    "Example",
    "Synthetic",
    "Sample",
    "Fictional",
    "Placeholder",
    "Mockford",
    "Demo",
)
_DRUGS = (
    ("Paracetamol 1 g oral", "1 g", "every 6 hours"),
    ("Enoxaparin 40 mg subcutaneous", "40 mg", "once daily"),
    ("Amoxicillin 500 mg oral", "500 mg", "every 8 hours"),
    ("Omeprazole 20 mg oral", "20 mg", "once daily"),
    ("Furosemide 40 mg oral", "40 mg", "once daily"),
    ("Morphine sulfate 5 mg oral", "5 mg", "every 4 hours when required"),
)
# (LOINC code, display, unit, low, high) of the NEWS2 parameters charted on a round
_VITALS = (
    ("9279-1", "Respiratory rate", "/min", 12, 24),
    ("8867-4", "Heart rate", "/min", 55, 115),
    ("2708-6", "Oxygen saturation in Arterial blood", "%", 91, 99),
    ("8310-5", "Body temperature", "Cel", 36.0, 38.6),
)
_LABS = (
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", 95, 160),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.2, 5.4),
)

Resource = dict[str, Any]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta() -> dict[str, str]:
    return {"versionId": "1", "lastUpdated": _iso(ANCHOR)}


def _cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _obs_category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": OBS_CATEGORY, "code": code}]}]


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def population(seed: int = 42, beds_per_ward: int = 12, occupancy: float = 0.85) -> list[Resource]:
    """Every resource of a fresh ward EHR, in an order a store can insert them."""
    rng = random.Random(seed)
    out: list[Resource] = []
    n_patient = 0
    for ward_id, ward_name in _WARDS:
        out.append(
            {
                "resourceType": "Location",
                "id": ward_id,
                "meta": _meta(),
                "status": "active",
                "name": ward_name,
                "mode": "instance",
                "physicalType": _cc(
                    "http://terminology.hl7.org/CodeSystem/location-physical-type", "wa", "Ward"
                ),
            }
        )
        for bed in range(1, beds_per_ward + 1):
            bed_id = f"{ward_id}-bed-{bed:02d}"
            occupied = rng.random() < occupancy
            out.append(
                {
                    "resourceType": "Location",
                    "id": bed_id,
                    "meta": _meta(),
                    "status": "active",
                    "name": f"{ward_name} bed {bed}",
                    "mode": "instance",
                    "operationalStatus": {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0116",
                        "code": "O" if occupied else "U",
                        "display": "Occupied" if occupied else "Unoccupied",
                    },
                    "physicalType": _cc(
                        "http://terminology.hl7.org/CodeSystem/location-physical-type", "bd", "Bed"
                    ),
                    "partOf": {"reference": f"Location/{ward_id}"},
                }
            )
            if occupied:
                n_patient += 1
                out.extend(_admitted_patient(rng, n_patient, ward_id, bed_id))
    return out


def _admitted_patient(rng: random.Random, n: int, ward_id: str, bed_id: str) -> list[Resource]:
    """One inpatient's record: patient and encounter, two rounds of vital signs, a blood
    count with its order and report, and medications (draws from ``rng`` in this order,
    so a seed always makes the same ward)."""
    pid = f"pat-{n:04d}"
    eid = f"enc-{n:04d}"
    subject = {"reference": f"Patient/{pid}"}
    encounter = {"reference": f"Encounter/{eid}"}
    admitted = ANCHOR - timedelta(hours=rng.randint(6, 240))
    birth = ANCHOR - timedelta(days=rng.randint(18 * 365, 95 * 365))
    out: list[Resource] = [
        {
            "resourceType": "Patient",
            "id": pid,
            "meta": _meta(),
            "identifier": [{"system": MRN_SYSTEM, "value": f"RD{n:06d}"}],
            "active": True,
            "name": [
                {"use": "official", "family": rng.choice(_FAMILY), "given": [rng.choice(_GIVEN)]}
            ],
            "gender": rng.choice(("female", "male", "other", "unknown")),
            "birthDate": birth.strftime("%Y-%m-%d"),
        },
        {
            "resourceType": "Encounter",
            "id": eid,
            "meta": _meta(),
            "status": "in-progress",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "IMP",
                "display": "inpatient encounter",
            },
            "subject": subject,
            "period": {"start": _iso(admitted)},
            "location": [
                {"location": {"reference": f"Location/{bed_id}"}, "status": "active"},
                {"location": {"reference": f"Location/{ward_id}"}, "status": "active"},
            ],
        },
    ]
    n_obs = _vital_rounds(rng, n, subject, encounter, out)
    _lab_results(rng, n, n_obs, subject, encounter, out)
    _medications(rng, n, admitted, subject, encounter, out)
    return out


def _vital_rounds(
    rng: random.Random, n: int, subject: Resource, encounter: Resource, out: list[Resource]
) -> int:
    """Two observation rounds (vitals and a blood pressure panel); the observations made."""
    n_obs = 0
    for round_no in range(2):
        taken = ANCHOR - timedelta(hours=4 * round_no, minutes=rng.randint(0, 30))
        for code, display, unit, low, high in _VITALS:
            n_obs += 1
            value = round(rng.uniform(low, high), 1 if isinstance(low, float) else 0)
            out.append(
                {
                    "resourceType": "Observation",
                    "id": f"obs-{n:04d}-{n_obs:02d}",
                    "meta": _meta(),
                    "status": "final",
                    "category": _obs_category("vital-signs"),
                    "code": _cc(LOINC, code, display),
                    "subject": subject,
                    "encounter": encounter,
                    "effectiveDateTime": _iso(taken),
                    "valueQuantity": _quantity(value, unit),
                }
            )
        n_obs += 1
        out.append(
            {
                "resourceType": "Observation",
                "id": f"obs-{n:04d}-{n_obs:02d}",
                "meta": _meta(),
                "status": "final",
                "category": _obs_category("vital-signs"),
                "code": _cc(LOINC, "85354-9", "Blood pressure panel"),
                "subject": subject,
                "encounter": encounter,
                "effectiveDateTime": _iso(taken),
                "component": [
                    {
                        "code": _cc(LOINC, "8480-6", "Systolic blood pressure"),
                        "valueQuantity": _quantity(rng.randint(95, 170), "mm[Hg]"),
                    },
                    {
                        "code": _cc(LOINC, "8462-4", "Diastolic blood pressure"),
                        "valueQuantity": _quantity(rng.randint(55, 100), "mm[Hg]"),
                    },
                ],
            }
        )
    return n_obs


def _lab_results(
    rng: random.Random,
    n: int,
    n_obs: int,
    subject: Resource,
    encounter: Resource,
    out: list[Resource],
) -> None:
    """A full blood count: its results, the order and the diagnostic report."""
    drawn = ANCHOR - timedelta(hours=rng.randint(1, 20))
    lab_refs = []
    for code, display, unit, low, high in _LABS:
        n_obs += 1
        oid = f"obs-{n:04d}-{n_obs:02d}"
        lab_refs.append({"reference": f"Observation/{oid}"})
        out.append(
            {
                "resourceType": "Observation",
                "id": oid,
                "meta": _meta(),
                "status": "final",
                "category": _obs_category("laboratory"),
                "code": _cc(LOINC, code, display),
                "subject": subject,
                "encounter": encounter,
                "effectiveDateTime": _iso(drawn),
                "valueQuantity": _quantity(round(rng.uniform(low, high), 1), unit),
            }
        )
    out.append(
        {
            "resourceType": "ServiceRequest",
            "id": f"sr-{n:04d}",
            "meta": _meta(),
            "status": "completed",
            "intent": "order",
            "category": [_cc(SNOMED, "108252007", "Laboratory procedure")],
            "code": _cc(LOINC, "58410-2", "CBC panel - Blood by Automated count"),
            "subject": subject,
            "encounter": encounter,
            "authoredOn": _iso(drawn - timedelta(hours=2)),
        }
    )
    out.append(
        {
            "resourceType": "DiagnosticReport",
            "id": f"dr-{n:04d}",
            "meta": _meta(),
            "basedOn": [{"reference": f"ServiceRequest/sr-{n:04d}"}],
            "status": "final",
            "category": [_cc("http://terminology.hl7.org/CodeSystem/v2-0074", "HM", "Hematology")],
            "code": _cc(LOINC, "58410-2", "CBC panel - Blood by Automated count"),
            "subject": subject,
            "encounter": encounter,
            "effectiveDateTime": _iso(drawn),
            "issued": _iso(drawn + timedelta(hours=1)),
            "result": lab_refs,
        }
    )


def _medications(
    rng: random.Random,
    n: int,
    admitted: datetime,
    subject: Resource,
    encounter: Resource,
    out: list[Resource],
) -> None:
    """Two to four medication orders; an active one has been given once."""
    for m, (drug, dose, timing) in enumerate(rng.sample(_DRUGS, rng.randint(2, 4)), start=1):
        mid = f"mr-{n:04d}-{m}"
        status = "draft" if rng.random() < 0.2 else "active"
        authored = admitted + timedelta(hours=rng.randint(0, 6))
        out.append(
            {
                "resourceType": "MedicationRequest",
                "id": mid,
                "meta": _meta(),
                "status": status,
                "intent": "order",
                "medicationCodeableConcept": {"text": drug},
                "subject": subject,
                "encounter": encounter,
                "authoredOn": _iso(authored),
                "dosageInstruction": [{"text": f"{dose} {timing}"}],
            }
        )
        if status == "active":
            out.append(
                {
                    "resourceType": "MedicationAdministration",
                    "id": f"ma-{n:04d}-{m}",
                    "meta": _meta(),
                    "status": "completed",
                    "medicationCodeableConcept": {"text": drug},
                    "subject": subject,
                    "context": encounter,
                    "request": {"reference": f"MedicationRequest/{mid}"},
                    "effectiveDateTime": _iso(authored + timedelta(hours=1)),
                    "dosage": {"text": dose},
                }
            )
