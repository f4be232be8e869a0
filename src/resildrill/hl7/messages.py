"""HL7 v2.5.1 messages a drill sends: ADT (A01 admit, A02 transfer, A03 discharge, A08 update)
and ORU^R01 results, for synthetic patients only, each with a unique control id (MSH-10).

Control ids are ``<prefix>-<n>`` with a prefix unique to the sender (a run and a worker), so
every message of a drill can be told apart and matched to its ACK and to what was filed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

ADT_EVENTS = ("A01", "A02", "A03", "A08")


def _ts(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")


def _escape(text: str) -> str:
    """HL7 escaping of the delimiters a value may hold (|^~\\&)."""
    out = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    return out.replace("~", "\\R\\").replace("&", "\\T\\").replace("\r", " ").replace("\n", " ")


@dataclass(frozen=True)
class Patient:
    """A synthetic patient: an MRN of the drill's own namespace, never an NHS number."""

    mrn: str
    family: str
    given: str
    birth_date: str = "19700101"
    sex: str = "U"
    ward: str = "WARD1"
    bed: str = "1"


@dataclass(frozen=True)
class Result:
    """One observation of an ORU: a LOINC code, a value and its unit."""

    code: str
    name: str
    value: str
    unit: str
    kind: str = "NM"


class MessageFactory:
    """Builds messages with control ids ``<prefix>-<n>``; thread-unsafe by design (one per
    sending user)."""

    def __init__(self, prefix: str, *, sender: tuple[str, str] = ("RESILDRILL", "LAB")) -> None:
        self.prefix = prefix
        self.sender = sender
        self._n = itertools.count(1)

    def next_id(self) -> str:
        return f"{self.prefix}-{next(self._n)}"

    def _msh(self, kind: str, control_id: str, *, receiver: tuple[str, str], mode: str) -> str:
        # MSH-15/16: accept / application acknowledgement types. Enhanced mode asks for a
        # commit ACK always and no application ACK; original mode leaves both empty.
        accept, app = ("AL", "NE") if mode == "enhanced" else ("", "")
        return (
            f"MSH|^~\\&|{self.sender[0]}|{self.sender[1]}|{receiver[0]}|{receiver[1]}|{_ts()}||"
            f"{kind}|{control_id}|P|2.5.1|||{accept}|{app}"
        )

    @staticmethod
    def _pid(p: Patient) -> str:
        return (
            f"PID|1||{_escape(p.mrn)}^^^RESILDRILL^MR||{_escape(p.family)}^{_escape(p.given)}||"
            f"{p.birth_date}|{p.sex}"
        )

    def adt(
        self,
        event: str,
        patient: Patient,
        *,
        receiver: tuple[str, str] = ("EHR", "WARD"),
        mode: str = "original",
    ) -> tuple[str, str]:
        """(message, control id) for an ADT event."""
        if event not in ADT_EVENTS:
            raise ValueError(f"ADT event {event!r}: one of {', '.join(ADT_EVENTS)}")
        cid = self.next_id()
        segments = [
            self._msh(f"ADT^{event}^ADT_A01", cid, receiver=receiver, mode=mode),
            f"EVN|{event}|{_ts()}",
            self._pid(patient),
            f"PV1|1|I|{_escape(patient.ward)}^^{_escape(patient.bed)}",
        ]
        return "\r".join(segments) + "\r", cid

    def oru(
        self,
        patient: Patient,
        results: list[Result],
        *,
        receiver: tuple[str, str] = ("EHR", "WARD"),
        mode: str = "original",
        order: str = "24331-1^Lipid panel^LN",
    ) -> tuple[str, str]:
        """(message, control id) for an ORU^R01 with one OBR and an OBX per result."""
        cid = self.next_id()
        segments = [
            self._msh("ORU^R01^ORU_R01", cid, receiver=receiver, mode=mode),
            self._pid(patient),
            f"OBR|1||{cid}|{order}|||{_ts()}",
        ]
        for i, r in enumerate(results, start=1):
            segments.append(
                f"OBX|{i}|{r.kind}|{r.code}^{_escape(r.name)}^LN||{_escape(r.value)}|"
                f"{_escape(r.unit)}|||||F"
            )
        return "\r".join(segments) + "\r", cid
