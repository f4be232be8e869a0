"""Talking to a PACS the way radiology does: store a study (C-STORE), find it (C-FIND), fetch it
(C-GET); and synthetic images to do it with (never real patient data).

Every association is bounded by ``timeout_s`` at each step (connect, association, each DIMSE
answer). These functions answer with statuses and counts; they raise :class:`DicomError` only
when no association could be made, so a caller can tell "the archive refused this" from "the
archive was not there".
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # made at import
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

__all__ = [
    "DicomError",
    "Peer",
    "Stored",
    "content_digest",
    "count_images",
    "fetch_image",
    "get_study",
    "store_study",
    "synthetic_study",
]

logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
#: C-FIND "pending" statuses: each carries one match.
_PENDING = (0xFF00, 0xFF01)
#: C-GET "refused: out of resources, unable to perform sub-operations": the archive understood
#: the request and could send none of the images (dcmqrscp answers this when an image's file is
#: gone although its index still lists it).
_SUBOPERATIONS_FAILED = 0xA702


class DicomError(OSError):
    """No association: the archive refused, aborted or did not answer."""


@dataclass(frozen=True)
class Peer:
    """Where the archive is and who we say we are."""

    host: str
    port: int
    called_ae: str
    calling_ae: str = "RESILDRILL"
    timeout_s: float = 10.0


def synthetic_study(patient_id: str, images: int) -> list[Dataset]:
    """``images`` tiny CT slices (8x8 pixels) of one new study of a synthetic patient."""
    study, series = generate_uid(), generate_uid()
    out = []
    for n in range(1, images + 1):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.PatientName = patient_id, "Testpatient^Synthetic"
        ds.Modality, ds.StudyDate, ds.InstanceNumber = "CT", "20261208", n
        ds.Rows = ds.Columns = 8
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = os.urandom(128)  # unique content: an image overwritten by another shows
        out.append(ds)
    return out


def content_digest(ds: Dataset) -> str:
    """What an image *is*, for the read-back: its SOP Instance UID and pixel data, hashed."""
    h = hashlib.sha256(str(ds.SOPInstanceUID).encode())
    h.update(bytes(ds.PixelData))
    return h.hexdigest()


@contextmanager
def _association(
    peer: Peer, contexts: Sequence[tuple[Any, str | None]], **extra: Any
) -> Iterator[Any]:
    ae = AE(ae_title=peer.calling_ae)
    for sop_class, syntax in contexts:
        if syntax is None:
            ae.add_requested_context(sop_class)
        else:
            ae.add_requested_context(sop_class, syntax)
    ae.acse_timeout = ae.dimse_timeout = peer.timeout_s
    ae.network_timeout = ae.connection_timeout = peer.timeout_s
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.called_ae, **extra)
    try:
        if not assoc.is_established:
            raise DicomError(
                f"dicom {peer.host}:{peer.port} ({peer.called_ae}): "
                + ("association rejected" if assoc.is_rejected else "no association")
            )
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()


@dataclass(frozen=True)
class Stored:
    """One C-STORE: its status (0 stored; None when no answer came: the association broke on
    the way, the archive may or may not have it) and when it was sent and answered
    (monotonic)."""

    status: int | None
    started: float
    ended: float


def store_study(peer: Peer, images: list[Dataset]) -> list[Stored]:
    """C-STORE each image on one association, in order."""
    out: list[Stored] = []
    with _association(peer, [(CTImageStorage, ExplicitVRLittleEndian)]) as assoc:
        for ds in images:
            started = time.monotonic()
            if not assoc.is_established:
                out.append(Stored(None, started, started))
                continue
            try:
                answer = assoc.send_c_store(ds)
            except (RuntimeError, ValueError):  # pynetdicom: the association went away
                answer = None
            status = int(answer.Status) if answer and "Status" in answer else None
            out.append(Stored(status, started, time.monotonic()))
    return out


def count_images(peer: Peer, sop_instance_uid: str, study_uid: str | None = None) -> int:
    """How many images the archive answers for one SOP Instance UID (a C-FIND at IMAGE level);
    raises :class:`DicomError` when it could not be asked or the answer was cut short."""
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.SOPInstanceUID = sop_instance_uid
    query.StudyInstanceUID = study_uid or ""
    query.SeriesInstanceUID = ""
    found = 0
    with _association(peer, [(StudyRootQueryRetrieveInformationModelFind, None)]) as assoc:
        for status, identifier in assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind
        ):
            if not status or "Status" not in status:
                raise DicomError("C-FIND answer cut short")
            code = int(status.Status)
            if code in _PENDING and identifier is not None:
                found += 1
            elif code != 0:
                raise DicomError(f"C-FIND status 0x{code:04X}")
    return found


def fetch_image(peer: Peer, study_uid: str, series_uid: str, sop_uid: str) -> list[Dataset]:
    """Retrieve one image with C-GET at IMAGE level: the datasets that came back (none when
    the archive has no readable image for it); raises :class:`DicomError` when it could not
    be asked or the answer was cut short."""
    return _get(peer, "IMAGE", study_uid, series_uid, sop_uid)


def get_study(peer: Peer, study_uid: str) -> int:
    """Retrieve a study with C-GET (the images come back on the same association): how many
    images arrived; raises :class:`DicomError` when the retrieve failed."""
    return len(_get(peer, "STUDY", study_uid))


def _get(
    peer: Peer, level: str, study_uid: str, series_uid: str = "", sop_uid: str = ""
) -> list[Dataset]:
    received: list[Dataset] = []

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        return 0x0000

    query = Dataset()
    query.QueryRetrieveLevel = level
    query.StudyInstanceUID = study_uid
    if level == "IMAGE":
        query.SeriesInstanceUID, query.SOPInstanceUID = series_uid, sop_uid
    contexts = [
        (StudyRootQueryRetrieveInformationModelGet, None),
        (CTImageStorage, ExplicitVRLittleEndian),
    ]
    with _association(
        peer,
        contexts,
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    ) as assoc:
        for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
            if not status or "Status" not in status:
                raise DicomError("C-GET answer cut short")
            code = int(status.Status)
            if code == _SUBOPERATIONS_FAILED:
                break  # understood, and no image could be sent: none came back
            if code not in (0x0000, 0xFF00) and code & 0xF000 != 0xB000:
                raise DicomError(f"C-GET status 0x{code:04X}")
    return received
