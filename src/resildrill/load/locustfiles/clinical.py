"""Locustfile of the built-in clinician personas, with the resildrill timeline plugin.

Loaded by ``locust -f`` in the processes the LoadDriver starts; never by the runner.
"""

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
configure(sizing.weights_for(worker.spec()))
hl7_users.configure(sizing.weights_for(worker.spec()))

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
