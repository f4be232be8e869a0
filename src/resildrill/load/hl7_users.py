"""HL7 v2 senders as Locust users: a lab system sending results, a PAS sending admissions.

Owns what the load sends over MLLP to an interface engine (``load.hl7`` says where):

- ``hl7_lab`` (:class:`LabSystem`): ORU^R01 results (a renal panel of synthetic values) for
  the drill's synthetic patients, one every ``interval``;
- ``hl7_adt`` (:class:`AdmissionsSystem`): one patient's stay after another, A01 admit,
  A02 transfer, A08 update, A03 discharge.

Each message is one Locust request named ``<workflow>:<message>`` (its latency is the time to
the ACK, failed unless the ACK accepts: AA, or CA in enhanced mode), so SLOs and the timeline
treat the senders like any workflow. Each is also recorded (``worker.record_message``) with
its control id, patient, send time and ACK, for the delivery read-back after the recovery
window (``load/delivery.py``): whether, when and how often the EHR filed it.

A sender keeps one connection (as interface engines expect) and reconnects on the next
message after a loss; a message whose ACK never came is not resent (an engine's resend would
be a new control id here, so a drill sees exactly what the engine did with each one).
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
import uuid
from typing import Any, ClassVar

from locust import User, task  # noqa: TID251 - this module only ever runs inside Locust

from resildrill.drill.model import Hl7LoadSpec
from resildrill.hl7.messages import MessageFactory, Patient, Result
from resildrill.hl7.mllp import MllpClient, MllpError
from resildrill.load import worker

__all__ = ["HL7_CLASSES", "AdmissionsSystem", "LabSystem", "configure"]

#: A renal panel (LOINC) with plausible ranges: creatinine, sodium, potassium, urea.
_PANEL: tuple[tuple[str, str, str, float, float], ...] = (
    ("2160-0", "Creatinine", "umol/L", 50, 140),
    ("2951-2", "Sodium", "mmol/L", 133, 146),
    ("2823-3", "Potassium", "mmol/L", 3.4, 5.4),
    ("3094-0", "Urea", "mmol/L", 2.5, 9.0),
)
_FAMILY = ("Testpatient", "Synthetic", "Example", "Sample")
_GIVEN = ("Alpha", "Beta", "Gamma", "Delta", "Epsilon")
_ACCEPTING = {"AA", "CA"}


def _hl7_spec() -> Hl7LoadSpec:
    spec = worker.current_spec().hl7
    # the drill model refuses an HL7 sender without load.hl7; the runner resolves a service
    if spec is None or spec.host is None or spec.port is None:
        raise RuntimeError("an HL7 sender needs load.hl7 with where the interface engine listens")
    return spec


def synthetic_patient(number: int, *, ward: str = "WARD1") -> Patient:
    """Synthetic patient ``number``: an MRN of the drill's own namespace, never an NHS number."""
    return Patient(
        mrn=f"SYN{number:06d}",
        family=_FAMILY[number % len(_FAMILY)],
        given=_GIVEN[number % len(_GIVEN)],
        ward=ward,
        bed=str(1 + number % 30),
    )


class Hl7Sender(User):
    """Base sender: one MLLP connection, one message per ``interval``, each recorded."""

    abstract = True
    workflow: ClassVar[str] = "hl7"
    _users: ClassVar[int] = 0
    #: A process-wide tag: control ids stay unique across workers and runs.
    _tag: ClassVar[str] = uuid.uuid4().hex[:6]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        spec = _hl7_spec()
        Hl7Sender._users += 1
        # MSH-10 is at most 20 characters in older HL7 versions: "<L|A><tag><pid%100><n>-<k>"
        prefix = f"{self.workflow[-3].upper()}{self._tag}{os.getpid() % 100:02d}{self._users}"
        self.factory = MessageFactory(prefix)
        self.spec = spec
        app, _, facility = spec.receiver.partition("^")
        self.receiver = (app, facility)
        assert spec.host is not None and spec.port is not None  # checked by _hl7_spec
        self.mllp = MllpClient(spec.host, spec.port, timeout_s=spec.ack_timeout)

    def wait_time(self) -> float:
        return self.spec.interval

    def on_stop(self) -> None:
        self.mllp.close()

    def send(self, name: str, message: str, control_id: str, patient: Patient) -> bool:
        """Send one message, report it as a request, record it; True when accepted."""
        started = time.monotonic()
        ack: str | None = None
        detail: str | None = None
        try:
            result = self.mllp.send(message, control_id)
            ack, detail = result.code, result.detail
        except MllpError as exc:
            detail = str(exc)
        accepted = ack in _ACCEPTING
        self.environment.events.request.fire(
            request_type="MLLP",
            name=f"{self.workflow}:{name}",
            response_time=(time.monotonic() - started) * 1000.0,
            response_length=len(message),
            exception=None if accepted else RuntimeError(f"{ack or 'no ACK'}: {detail or ''}"),
            context={worker.START_KEY: started},
        )
        worker.record_message(
            self.workflow, name, control_id, patient.mrn, started, ack,
            accepted=accepted, detail=None if accepted else detail,
        )  # fmt: skip
        return accepted


class LabSystem(Hl7Sender):
    """A laboratory system sending results (ORU^R01) for the ward's patients."""

    workflow = "hl7_lab"

    @task
    def result(self) -> None:
        patient = synthetic_patient(random.randrange(self.spec.patients))
        results = [
            Result(code, name, f"{random.uniform(low, high):.1f}", unit)
            for code, name, unit, low, high in _PANEL
        ]
        message, cid = self.factory.oru(
            patient, results, receiver=self.receiver, mode=self.spec.mode,
            order="24362-6^Renal function panel^LN",
        )  # fmt: skip
        started = time.monotonic()
        ok = self.send("oru_r01", message, cid, patient)
        worker.record_action(self.workflow, started, ok)


class AdmissionsSystem(Hl7Sender):
    """A patient administration system: each user follows one stay after another."""

    workflow = "hl7_adt"
    _STAY = ("A01", "A02", "A08", "A03")

    def on_start(self) -> None:
        self.step = 0
        self.patient = synthetic_patient(random.randrange(self.spec.patients))

    @task
    def event(self) -> None:
        event = self._STAY[self.step % len(self._STAY)]
        if event == "A01":
            self.patient = synthetic_patient(random.randrange(self.spec.patients))
        elif event == "A02":
            self.patient = dataclasses.replace(self.patient, ward="WARD2")
        message, cid = self.factory.adt(
            event, self.patient, receiver=self.receiver, mode=self.spec.mode
        )
        started = time.monotonic()
        ok = self.send(f"adt_{event.lower()}", message, cid, self.patient)
        worker.record_action(self.workflow, started, ok)
        self.step += 1


HL7_CLASSES: tuple[type[Hl7Sender], ...] = (LabSystem, AdmissionsSystem)


def configure(weights: dict[str, float]) -> None:
    """Apply the drill's weights: an HL7 sender plays only when the drill names it."""
    for cls in HL7_CLASSES:
        w = weights.get(cls.workflow, 0)
        cls.weight = max(1, round(w)) if w > 0 else 1
        cls.abstract = w <= 0
