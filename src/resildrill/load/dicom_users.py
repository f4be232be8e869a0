"""Radiology as Locust users against a PACS (``load.dicom`` says where), with pynetdicom.

- ``dicom_modality`` (:class:`Modality`): a CT scanner sending one study after another, each
  ``images_per_study`` slices of a synthetic patient on one association (C-STORE);
- ``dicom_reading`` (:class:`ReadingStation`): a radiologist's workstation finding a study this
  process stored (C-FIND) and retrieving it (C-GET).

Every C-STORE, C-FIND and C-GET is one Locust request named ``<workflow>:<operation>`` (failed
unless the archive answered success), and one study or one read is one clinical action. Every
image sent is recorded (``worker.record_write``, resource ``DicomImage``, id its SOP Instance
UID, identifier ``<study UID>/<series UID>/<SOP Instance UID>``, digest of its UID and pixel
data), acknowledged when its C-STORE status was 0x0000, for the DICOM verifier's read-back after
the recovery window (``load/verifiers.py``).
"""

from __future__ import annotations

import random
import time
from typing import Any, ClassVar

from locust import User, task  # noqa: TID251 - this module only ever runs inside Locust

from resildrill.dicom.archive import (
    DicomError,
    Peer,
    Stored,
    content_digest,
    get_study,
    store_study,
    synthetic_study,
)
from resildrill.drill.model import DicomLoadSpec
from resildrill.load import worker

__all__ = ["DICOM_CLASSES", "Modality", "ReadingStation", "configure"]

#: The resource name DICOM writes are recorded under (the DICOM verifier reads these).
RESOURCE = "DicomImage"


def _spec() -> tuple[DicomLoadSpec, Peer]:
    spec = worker.current_spec().dicom
    if spec is None or spec.host is None or spec.port is None:
        raise RuntimeError("a DICOM user needs load.dicom with where the PACS listens")
    peer = Peer(spec.host, spec.port, spec.called_ae, spec.calling_ae, spec.timeout)
    return spec, peer


class _Studies:
    """Studies this process stored, for the reading stations (most recent last)."""

    stored: ClassVar[list[str]] = []


class DicomUser(User):
    abstract = True
    workflow: ClassVar[str] = "dicom"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec, self.peer = _spec()

    def wait_time(self) -> float:
        return self.spec.interval

    def _report(
        self, name: str, started: float, ended: float, ok: bool, why: str | None, size: int
    ) -> None:
        self.environment.events.request.fire(
            request_type="DICOM",
            name=f"{self.workflow}:{name}",
            response_time=(ended - started) * 1000.0,
            response_length=size,
            exception=None if ok else RuntimeError(why or "failed"),
            context={worker.START_KEY: started},
        )


class Modality(DicomUser):
    """A CT scanner: one study of ``images_per_study`` slices per task, on one association."""

    workflow = "dicom_modality"

    @task
    def study(self) -> None:
        patient = f"SYN{random.randrange(self.spec.patients):06d}"
        images = synthetic_study(patient, self.spec.images_per_study)
        started = time.monotonic()
        try:
            stored = store_study(self.peer, images)
        except Exception as exc:  # no association (or pynetdicom gave up): nothing confirmed
            self._report("associate", started, time.monotonic(), False, str(exc), 0)
            stored = [Stored(None, started, started)] * len(images)
        for ds, one in zip(images, stored, strict=True):
            acknowledged = one.status == 0x0000
            detail = f"status 0x{one.status:04X}" if one.status is not None else "no answer"
            if one.ended > one.started:  # an image never sent is no request
                self._report("c_store", one.started, one.ended, acknowledged, detail, 128)
            worker.record_write(
                RESOURCE,
                str(ds.SOPInstanceUID),
                f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}",
                op="create",
                acknowledged=acknowledged,
                digest=content_digest(ds),
            )
        ok = all(one.status == 0x0000 for one in stored)
        if ok:
            _Studies.stored.append(str(images[0].StudyInstanceUID))
            del _Studies.stored[:-200]
        worker.record_action(self.workflow, started, ok)


class ReadingStation(DicomUser):
    """A radiologist: find a recent study and retrieve it (C-GET)."""

    workflow = "dicom_reading"

    @task
    def read(self) -> None:
        if not _Studies.stored:
            return  # nothing stored by this process yet: a radiologist waits for a study
        study = random.choice(_Studies.stored[-20:])
        started = time.monotonic()
        try:
            got = get_study(self.peer, study)
            ok, why = got == self.spec.images_per_study, f"{got} images retrieved"
        except (DicomError, RuntimeError, ValueError) as exc:
            ok, why = False, str(exc)
        self._report("c_get", started, time.monotonic(), ok, why, 0)
        worker.record_action(self.workflow, started, ok)


DICOM_CLASSES: tuple[type[DicomUser], ...] = (Modality, ReadingStation)


def configure(weights: dict[str, float]) -> None:
    """Apply the drill's weights: a radiology user plays only when the drill names it."""
    for cls in DICOM_CLASSES:
        w = weights.get(cls.workflow, 0)
        cls.weight = max(1, round(w)) if w > 0 else 1
        cls.abstract = w <= 0
