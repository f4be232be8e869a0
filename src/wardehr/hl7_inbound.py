"""The ward EHR's HL7 v2 inbound: results (ORU^R01) and ADT over MLLP, filed as FHIR.

A replica started with ``--mllp-listen HOST:PORT`` also accepts MLLP connections (from the
interface engine, :mod:`wardehr.engine`). Each ORU^R01 is filed as one Observation per OBX and
then a DiagnosticReport referencing them, for the patient named by PID-3 (a logical reference
by identifier). The DiagnosticReport carries the message's control id (MSH-10) as its
identifier (system :data:`MSH10_SYSTEM`) and is written last, so its presence means the whole
result was filed; reading it back by that identifier is how a drill counts a message lost (0),
delivered (1) or duplicated (2+). ``meta.lastUpdated`` is the filing time, to the millisecond.

ADT A01/A02/A03/A08 update the patient's encounter: A01 creates an Encounter (in progress), A02
records the new location, A03 finishes it, A08 is acknowledged with nothing to change. The ACK
(AA, or CA when MSH-15 asks for enhanced mode) is sent only after the store committed; a store
failure is AE (the sender must retry), an unreadable message AR.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import hl7  # type: ignore[import-untyped]

from resildrill.hl7.ack import make_ack
from resildrill.hl7.mllp import FrameDecoder, frame
from wardehr.store import StoreUnavailable

log = logging.getLogger("mllp-in")

MSH10_SYSTEM = "urn:resildrill:hl7:msh-10"
MRN_SYSTEM = "urn:resildrill:mrn"
SENDER = ("WARDEHR", "WARD")


def _codes(message: Any) -> tuple[str, str]:
    msh = message.segment("MSH")
    return str(msh[9]), str(msh[10])


def _enhanced(message: Any) -> bool:
    msh = message.segment("MSH")
    try:
        return str(msh[15]).strip().upper() in ("AL", "ER", "SU")
    except IndexError:
        return False


def _patient_ref(message: Any) -> dict[str, Any]:
    pid = message.segment("PID")
    mrn = str(pid[3][0][0]) if pid[3] else "unknown"
    return {"identifier": {"system": MRN_SYSTEM, "value": mrn}}


def _observations(message: Any, cid: str, subject: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, obx in enumerate(message.segments("OBX"), start=1):
        code = obx[3][0]
        value = str(obx[5])
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "identifier": [{"system": MSH10_SYSTEM, "value": f"{cid}/{i}"}],
            "code": {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": str(code[0]),
                        "display": str(code[1]) if len(code) > 1 else "",
                    }
                ]
            },
            "subject": subject,
        }
        try:
            resource["valueQuantity"] = {"value": float(value), "unit": str(obx[6])}
        except ValueError:
            resource["valueString"] = value
        out.append(resource)
    return out


class Inbound:
    """Files messages through a replica's store pool (``call`` runs a blocking store call)."""

    def __init__(self, store: Any, call: Any) -> None:
        self.store, self.call = store, call
        self._acks = 0

    def _ack(self, text: str, code: str) -> str:
        self._acks += 1
        return make_ack(text, code, sender=SENDER, ack_id=f"WARDEHR-ACK-{self._acks}")

    async def handle(self, text: str) -> str:
        try:
            message = hl7.parse(text.strip("\r"))
            kind, cid = _codes(message)
        except Exception as exc:  # an unreadable message is rejected, never filed
            log.warning("unreadable message: %s", exc)
            return self._ack(text, "AR") if "MSH" in text[:4] else ""
        accept, error = ("CA", "CE") if _enhanced(message) else ("AA", "AE")
        try:
            if kind.startswith("ORU"):
                await self._file_result(message, cid)
            elif kind.startswith("ADT"):
                await self._file_adt(message, cid, kind)
            else:
                return self._ack(text, "CR" if accept == "CA" else "AR")
        except StoreUnavailable as exc:
            log.warning("store unavailable, %s not filed: %s", cid, exc)
            return self._ack(text, error)
        return self._ack(text, accept)

    async def _file_result(self, message: Any, cid: str) -> None:
        subject = _patient_ref(message)
        refs = []
        for obs in _observations(message, cid, subject):
            stored = await self.call(self.store.create, "Observation", obs)
            refs.append({"reference": f"Observation/{stored['id']}"})
        obr = message.segment("OBR")
        code = obr[4][0]
        report = {
            "resourceType": "DiagnosticReport",
            "status": "final",
            "identifier": [{"system": MSH10_SYSTEM, "value": cid}],
            "code": {"coding": [{"system": "http://loinc.org", "code": str(code[0])}]},
            "subject": subject,
            "result": refs,
        }
        await self.call(self.store.create, "DiagnosticReport", report)  # last: fully filed

    async def _file_adt(self, message: Any, cid: str, kind: str) -> None:
        event = kind.split("^")[1] if "^" in kind else ""
        if event not in ("A01", "A02", "A03"):
            return  # A08: demographics only, nothing of ours to change
        status = {"A01": "in-progress", "A02": "in-progress", "A03": "finished"}[event]
        encounter = {
            "resourceType": "Encounter",
            "status": status,
            "identifier": [{"system": MSH10_SYSTEM, "value": cid}],
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "IMP",
            },
            "subject": _patient_ref(message),
        }
        await self.call(self.store.create, "Encounter", encounter)


async def start(listen: str, inbound: Inbound) -> asyncio.Server:
    """Accept MLLP connections on ``listen`` (host:port); one ACK per message, in order."""
    host, _, port = listen.rpartition(":")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        try:
            while data := await reader.read(65536):
                for raw in decoder.feed(data):
                    ack = await inbound.handle(raw.decode(errors="replace"))
                    if ack:
                        writer.write(frame(ack))
                        await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(serve, host, int(port), reuse_address=True)
