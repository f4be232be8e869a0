"""Locustfile of the built-in clinician personas, with the resildrill timeline plugin.

Loaded by ``locust -f`` in the processes the LoadDriver starts; never by the runner.
"""

from resildrill.drill.model import DICOM_WORKFLOWS
from resildrill.load import hl7_users, sizing, worker
from resildrill.load.hl7_users import AdmissionsSystem, LabSystem
from resildrill.load.shape import DrillPhaseShape
from resildrill.load.users import (
    PERSONA_CLASSES,
    BedManager,
    Doctor,
    DrugRoundNurse,
    EdTriageNurse,
    ObsRoundNurse,
    Pharmacist,
    configure,
)

worker.install()
_weights = sizing.weights_for(worker.spec())
configure(_weights)
hl7_users.configure(_weights)
if any(w in DICOM_WORKFLOWS for w in _weights):
    # pynetdicom only in drills with radiology; Locust finds the users among these globals
    from resildrill.load import dicom_users
    from resildrill.load.dicom_users import Modality, ReadingStation  # noqa: F401 - for Locust

    dicom_users.configure(_weights)

__all__ = [
    "PERSONA_CLASSES",
    "AdmissionsSystem",
    "BedManager",
    "Doctor",
    "DrillPhaseShape",
    "DrugRoundNurse",
    "EdTriageNurse",
    "LabSystem",
    "ObsRoundNurse",
    "Pharmacist",
]
