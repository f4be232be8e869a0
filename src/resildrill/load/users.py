"""Clinician personas as Locust users against a FHIR R4 API.

Owns the domain workflows: what each clinician asks the EHR for, in what order, and how
long they think in between. Persona -> FHIR calls follow shared/reference/clinical.md 3c
(derived from the R4 restful interactions and vital-signs value set); weights and paces
are in ``sizing.py`` and below, each with its source. Every request is named
``<workflow>:<action>`` so the timeline groups by workflow; every task is one clinical
action (``worker.record_action``), failed if any of its requests failed.

Writes carry a client identifier (system ``urn:resildrill:write``) so the driver can read
each acknowledged write back after the recovery window (``integrity.py``).
Think times are real-world seconds divided by ``LoadSpec.pace``.
"""

from __future__ import annotations

import contextlib
import random
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import gevent.ssl  # noqa: TID251 - this module only ever runs inside a Locust process
from locust import FastHttpUser, task  # noqa: TID251

from resildrill.load import worker

WRITE_SYSTEM = "urn:resildrill:write"
LOINC = "http://loinc.org"
FHIR_JSON = "application/fhir+json"
#: Patients, encounters and locations a process has seen are re-fetched this often.
_CACHE_S = 30.0

#: NEWS2 parameters (RCP 2017, clinical.md 3b) with their R4 vital-signs LOINC codes
#: (clinical.md 3c): respiratory rate, SpO2, systolic/diastolic BP (panel with
#: components), pulse, temperature. Consciousness (ACVPU) and the score itself have no
#: code in the reference, so they use a local system rather than a guessed LOINC.
VITALS: tuple[tuple[str, str, str, float, float], ...] = (
    ("9279-1", "Respiratory rate", "/min", 12, 24),
    ("2708-6", "Oxygen saturation", "%", 90, 100),
    ("8867-4", "Heart rate", "/min", 50, 120),
    ("8310-5", "Body temperature", "Cel", 35.5, 39.0),
)
LOCAL = "urn:resildrill:code"


def _think(low_s: float, high_s: float) -> float:
    """A think time drawn from real-world seconds, compressed by the drill's pace."""
    # read each time: a remote worker adopts the drill's pace when the master sends it
    return random.uniform(low_s, high_s) / worker.current_spec().pace


class _Token:
    """The drill's bearer token as an ``Authorization`` header, looked up per request.

    ``worker.bearer_token()`` holds the token the driver last sent through the master
    (a refreshed ``bearer_token_file`` reaches every worker that way, remote ones too),
    so a user always sends the newest one; the lookup is an attribute read.
    """

    def header(self) -> dict[str, str]:
        value = worker.bearer_token()
        return {"Authorization": f"Bearer {value}"} if value else {}


def _ssl_context() -> Any:
    ca = worker.current_spec().ca_bundle
    return (
        gevent.ssl.create_default_context(cafile=ca) if ca else gevent.ssl.create_default_context()
    )


class _Cache:
    """Ids of ward resources one Locust process has seen (shared by its users)."""

    patients: ClassVar[list[str]] = []
    encounters: ClassVar[list[dict[str, Any]]] = []
    locations: ClassVar[list[str]] = []
    #: Patient id -> "system|value" of its first identifier (the wristband MRN).
    wristbands: ClassVar[dict[str, str]] = {}
    fetched_at: ClassVar[float] = -1e9


class ClinicalUser(FastHttpUser):
    """Base persona: FHIR calls named ``workflow:action``, actions, writes, think times."""

    abstract = True
    workflow: ClassVar[str] = "clinical"
    network_timeout = worker.current_spec().request_timeout
    connection_timeout = min(network_timeout, 5.0)
    insecure = False
    ssl_context_factory = staticmethod(_ssl_context)
    token = _Token()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # the spec in force when the user spawns (a remote worker adopts the drill's):
        # FastHttpUser builds its client from these in its own __init__
        timeout = worker.current_spec().request_timeout
        self.network_timeout, self.connection_timeout = timeout, min(timeout, 5.0)
        super().__init__(*args, **kwargs)
        self._action_ok = True

    # -- requests --------------------------------------------------------------------

    def fhir(
        self,
        method: str,
        action: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        expected: tuple[int, ...] = (),
    ) -> Any:
        """One FHIR interaction; the parsed body of a 2xx response, else None.

        A status in ``expected`` (e.g. 412 when a colleague verified the order first) is
        an answer the clinician handles, not a failure.
        """
        hdrs = {"Accept": FHIR_JSON, **self.token.header(), **(headers or {})}
        if body is not None:
            hdrs["Content-Type"] = FHIR_JSON
        with self.client.request(
            method,
            path,
            name=f"{self.workflow}:{action}",
            json=body,
            headers=hdrs,
            context={worker.START_KEY: time.monotonic()},
            catch_response=True,
        ) as resp:
            status = resp.status_code or 0
            if status in expected:
                resp.success()
                return None
            if not 200 <= status < 300:
                resp.failure(f"HTTP {status}" if status else (resp.error or "no answer"))
                self._action_ok = False
                return None
            try:
                return resp.json() if resp.content else {}
            except ValueError:
                return {}

    def search(self, action: str, query: str) -> list[dict[str, Any]]:
        """A search returning the matched resources (empty on failure)."""
        bundle = self.fhir("GET", action, query)
        if not isinstance(bundle, dict):
            return []
        return [e["resource"] for e in bundle.get("entry", []) if "resource" in e]

    def write(
        self,
        method: str,
        action: str,
        resource: dict[str, Any],
        path: str,
        retries: int = 0,
        headers: dict[str, str] | None = None,
        expected: tuple[int, ...] = (),
    ) -> dict[str, Any] | None:
        """Create or update with a client identifier; record it when acknowledged."""
        key = uuid.uuid4().hex
        ident = resource.setdefault("identifier", [])
        ident.append({"system": WRITE_SYSTEM, "value": key})
        for _ in range(retries + 1):
            created = self.fhir(method, action, path, resource, headers, expected)
            if created is not None:
                rid = str(created.get("id") or resource.get("id") or "")
                version = (created.get("meta") or {}).get("versionId")
                worker.record_write(
                    resource["resourceType"],
                    rid,
                    f"{WRITE_SYSTEM}|{key}",
                    str(version) if version is not None else None,
                    "create" if method == "POST" else "update",
                )
                return dict(created)
        return None

    @contextlib.contextmanager
    def action(self) -> Iterator[None]:
        """One clinical action: failed when any request inside it failed."""
        started, self._action_ok = time.monotonic(), True
        try:
            yield
        finally:
            worker.record_action(self.workflow, started, self._action_ok)

    # -- the ward --------------------------------------------------------------------

    def ward(self) -> None:
        """Refresh the process's view of the ward (the ward list clinicians open)."""
        if time.monotonic() - _Cache.fetched_at < _CACHE_S and _Cache.encounters:
            return
        _Cache.fetched_at = time.monotonic()
        encounters = self.search("ward_list", "/Encounter?status=in-progress&_count=100")
        if encounters:
            _Cache.encounters = encounters
            _Cache.patients = sorted({_ref_id(e.get("subject")) for e in encounters} - {""})
        if not _Cache.patients:
            _Cache.patients = [
                p["id"] for p in self.search("ward_list", "/Patient?_count=50") if "id" in p
            ]

    def a_patient(self) -> tuple[str | None, str | None]:
        """A random (patient id, encounter id) on the ward."""
        self.ward()
        if _Cache.encounters:
            enc = random.choice(_Cache.encounters)
            return _ref_id(enc.get("subject")) or None, enc.get("id")
        if _Cache.patients:
            return random.choice(_Cache.patients), None
        return None, None

    def identify(self, patient: str) -> None:
        """Scan the wristband (``Patient?identifier=``), or read the record the first time."""
        band = _Cache.wristbands.get(patient)
        if band:
            self.search("scan_wristband", f"/Patient?identifier={urllib.parse.quote(band)}")
            return
        found = self.fhir("GET", "patient", f"/Patient/{patient}")
        for ident in (found or {}).get("identifier", []) if isinstance(found, dict) else []:
            if ident.get("system") and ident.get("value") and ident["system"] != WRITE_SYSTEM:
                _Cache.wristbands[patient] = f"{ident['system']}|{ident['value']}"
                break

    def pause(self, low_s: float, high_s: float) -> None:
        """Think time between two steps of one action."""
        self.wait_for(_think(low_s, high_s))

    def wait_for(self, seconds: float) -> None:
        gevent.sleep(seconds)


def _ref_id(ref: Any) -> str:
    if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
        return str(ref["reference"]).rsplit("/", 1)[-1]
    return ""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _vital(
    patient: str, encounter: str | None, code: str, text: str, unit: str, value: float
) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
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
        "code": {"coding": [{"system": LOINC, "code": code, "display": text}], "text": text},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": _now(),
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }
    if encounter:
        obs["encounter"] = {"reference": f"Encounter/{encounter}"}
    return obs


class ObsRoundNurse(ClinicalUser):
    """Ward nurse/HCA on a NEWS2 observation round: ward list, patient, one full set of vitals.

    Cadence: a flowsheet entry every 0.82-1.14 min over a shift (Collins et al., AMIA;
    clinical.md 3a); the bedside documentation step takes ~6.4 s (J Healthc Eng 2016, 3b).
    """

    workflow = "obs_round"
    weight = 4

    def wait_time(self) -> float:
        return _think(49, 68)  # 0.82-1.14 min between patients' observation sets

    @task
    def observation_set(self) -> None:
        with self.action():
            patient, encounter = self.a_patient()
            if patient is None:
                return
            self.identify(patient)
            for code, text, unit, low, high in VITALS:
                self.pause(4, 9)
                self.write(
                    "POST",
                    "record_vital",
                    _vital(
                        patient, encounter, code, text, unit, round(random.uniform(low, high), 1)
                    ),
                    "/Observation",
                )
            bp = _vital(patient, encounter, "85354-9", "Blood pressure panel", "mm[Hg]", 0)
            del bp["valueQuantity"]
            bp["component"] = [
                {
                    "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                    "valueQuantity": {"value": random.randint(95, 160), "unit": "mm[Hg]"},
                },
                {
                    "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                    "valueQuantity": {"value": random.randint(55, 95), "unit": "mm[Hg]"},
                },
            ]
            self.pause(4, 9)
            self.write("POST", "record_vital", bp, "/Observation")
            score = _vital(
                patient,
                encounter,
                "news2",
                "NEWS2 score",
                "{score}",
                random.choice([0, 0, 1, 2, 3, 5, 7]),
            )
            score["code"] = {"coding": [{"system": LOCAL, "code": "news2"}], "text": "NEWS2"}
            self.write("POST", "record_news2", score, "/Observation")


class DrugRoundNurse(ClinicalUser):
    """Nurse on a drug round: active prescriptions for a patient, then each administration.

    Round length 50 min (15-105) on a ward (BMJ Qual Saf); bedside steps: scan patient
    ~6.5 s, scan medicine ~4.2 s, document ~6.4 s, review record ~17.7 s (J Healthc Eng
    2016; clinical.md 3b). A failed save is retried once with the same identifier, as a
    nurse re-clicks "save": if the first try did land, that is a double-dose record.
    """

    workflow = "drug_round"
    weight = 3

    def wait_time(self) -> float:
        return _think(15, 25)  # walking to the next bed and reviewing the record

    @task
    def give_medicines(self) -> None:
        with self.action():
            patient, encounter = self.a_patient()
            if patient is None:
                return
            self.pause(5, 8)  # scan patient ID
            meds = self.search("active_meds", f"/MedicationRequest?patient={patient}&status=active")
            for med in meds[:3]:
                self.pause(3, 6)  # scan medicine, then document
                admin: dict[str, Any] = {
                    "resourceType": "MedicationAdministration",
                    "status": "completed",
                    "subject": {"reference": f"Patient/{patient}"},
                    "effectiveDateTime": _now(),
                    "request": {"reference": f"MedicationRequest/{med.get('id')}"},
                }
                if "medicationCodeableConcept" in med:
                    admin["medicationCodeableConcept"] = med["medicationCodeableConcept"]
                else:
                    admin["medicationCodeableConcept"] = {"text": "as prescribed"}
                if encounter:
                    admin["context"] = {"reference": f"Encounter/{encounter}"}
                self.write("POST", "administer", admin, "/MedicationAdministration", retries=1)


class Doctor(ClinicalUser):
    """Doctor reviewing results, then sometimes ordering a test or a medicine.

    Inpatient physicians spend 15.6-21.7 min of EHR time per patient (Safian 2025); about
    44% of EHR time is documentation and orders (Arndt 2017; clinical.md 3a).
    """

    workflow = "doctor"
    weight = 3

    def wait_time(self) -> float:
        return _think(20, 45)  # reading the results before the next patient

    @task
    def review_and_order(self) -> None:
        with self.action():
            patient, encounter = self.a_patient()
            if patient is None:
                return
            self.search(
                "lab_results", f"/Observation?patient={patient}&category=laboratory&_sort=-date"
            )
            self.pause(10, 20)
            self.search("reports", f"/DiagnosticReport?patient={patient}")
            self.pause(10, 20)
            self.search(
                "vitals_chart",
                f"/Observation?patient={patient}&category=vital-signs&_sort=-date&_count=20",
            )
            if random.random() < 0.44:  # Arndt 2017: ~44% of EHR time is orders/notes
                self.pause(10, 20)
                subject = {"reference": f"Patient/{patient}"}
                if random.random() < 0.5:
                    order: dict[str, Any] = {
                        "resourceType": "ServiceRequest",
                        "status": "active",
                        "intent": "order",
                        "subject": subject,
                        "authoredOn": _now(),
                        "category": [
                            {
                                "coding": [
                                    {
                                        "system": "http://snomed.info/sct",
                                        "code": "108252007",
                                        "display": "Laboratory procedure",
                                    }
                                ]
                            }
                        ],
                        "code": {"text": "Full blood count"},
                    }
                    self.write("POST", "order_test", order, "/ServiceRequest")
                else:
                    # A draft prescription lands in the pharmacist's verification queue.
                    rx: dict[str, Any] = {
                        "resourceType": "MedicationRequest",
                        "status": "draft",
                        "intent": "order",
                        "subject": subject,
                        "authoredOn": _now(),
                        "medicationCodeableConcept": {"text": "Paracetamol 1 g oral"},
                    }
                    if encounter:
                        rx["encounter"] = {"reference": f"Encounter/{encounter}"}
                    self.write("POST", "prescribe", rx, "/MedicationRequest")


class Pharmacist(ClinicalUser):
    """Pharmacist verifying the queue of draft prescriptions (read, then PUT as active).

    Prescribe-to-verification median 2 h 23 min (CJHP), so the queue is never empty on a
    real ward; per-order review time is our estimate (derived): 30-90 s.
    """

    workflow = "pharmacist"
    weight = 1

    def wait_time(self) -> float:
        return _think(30, 90)

    @task
    def verify_next(self) -> None:
        with self.action():
            queue = self.search("queue", "/MedicationRequest?status=draft&_count=20")
            if not queue:
                return
            rx_id = random.choice(queue).get("id")
            current = self.fhir("GET", "read_order", f"/MedicationRequest/{rx_id}")
            if not isinstance(current, dict) or current.get("status") != "draft":
                return
            self.pause(30, 60)
            current["status"] = "active"
            version = (current.get("meta") or {}).get("versionId")
            # If-Match: a colleague verifying the same order first gives 412, which the
            # pharmacist handles by moving on (never a blind overwrite).
            self.write(
                "PUT",
                "verify",
                current,
                f"/MedicationRequest/{rx_id}",
                headers={"If-Match": f'W/"{version}"'} if version else None,
                expected=(412,),
            )


class EdTriageNurse(ClinicalUser):
    """ED triage nurse: register an arrival, open an emergency encounter, record vitals.

    Manchester Triage System first-assessment targets run from 0 (red) to 240 min (blue)
    (clinical.md 3b); an arrival every few minutes per triage nurse is our estimate.
    """

    workflow = "ed_triage"
    weight = 1

    def wait_time(self) -> float:
        return _think(120, 300)

    @task
    def triage_arrival(self) -> None:
        with self.action():
            patient = self.write(
                "POST",
                "register",
                {
                    "resourceType": "Patient",
                    "name": [
                        {
                            "family": random.choice(["Smith", "Jones", "Patel", "Okafor"]),
                            "given": ["Test"],
                        }
                    ],
                    "gender": random.choice(["female", "male"]),
                    "birthDate": f"{random.randint(1930, 2020)}-0{random.randint(1, 9)}-15",
                },
                "/Patient",
            )
            if not patient or not patient.get("id"):
                return
            self.pause(20, 40)
            encounter = self.write(
                "POST",
                "open_encounter",
                {
                    "resourceType": "Encounter",
                    "status": "in-progress",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "EMER",
                        "display": "emergency",
                    },
                    "subject": {"reference": f"Patient/{patient['id']}"},
                    "period": {"start": _now()},
                },
                "/Encounter",
            )
            enc_id = (encounter or {}).get("id")
            for code, text, unit, low, high in VITALS[:3]:
                self.pause(8, 15)
                self.write(
                    "POST",
                    "triage_vital",
                    _vital(
                        patient["id"], enc_id, code, text, unit, round(random.uniform(low, high), 1)
                    ),
                    "/Observation",
                )


class BedManager(ClinicalUser):
    """Bed manager / ward clerk: occupancy (encounters in progress) and bed status."""

    workflow = "bed_manager"
    weight = 1

    def wait_time(self) -> float:
        return _think(30, 60)

    @task
    def occupancy(self) -> None:
        with self.action():
            self.search(
                "occupancy", "/Encounter?status=in-progress&_include=Encounter:location&_count=100"
            )
            self.pause(10, 20)
            self.search("beds", "/Location?status=active&_count=100")


PERSONA_CLASSES: tuple[type[ClinicalUser], ...] = (
    ObsRoundNurse,
    DrugRoundNurse,
    Doctor,
    Pharmacist,
    EdTriageNurse,
    BedManager,
)


def configure(weights: dict[str, float]) -> None:
    """Apply the drill's workflow weights; personas not named are not spawned."""
    for cls in PERSONA_CLASSES:
        w = weights.get(cls.workflow, 0)
        cls.weight = max(1, round(w)) if w > 0 else 1
        cls.abstract = w <= 0
