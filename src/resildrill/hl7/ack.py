"""What an HL7 v2 acknowledgement means, as the standard gives it (HL7 v2.5.1, chapter 2).

Original mode: ``AA`` application accept; ``AE`` application error and ``AR`` application
reject are refusals. Enhanced mode: ``CA`` commit accept (the receiver has it safely); ``CE``
commit error and ``CR`` commit reject are refusals. No ACK within the sender's timeout is
*unacknowledged*: the message may or may not have been taken. An ACK belongs to the message
whose control id (MSH-10) is in its MSA-2, whatever the order ACKs arrive in.

Parsing uses python-hl7 (``hl7`` on PyPI): small, pure Python, maintained since 2009, and
enough for the few segments drills need (MSH, MSA, PID, PV1, OBR, OBX); hl7apy's validation
against the full message structures is more than an ACK reader or a test sender needs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import hl7  # type: ignore[import-untyped]

Verdict = Literal["accepted", "rejected", "error", "unacknowledged", "unreadable"]

ACCEPT_CODES = {"AA": "original", "CA": "enhanced"}
REFUSE_CODES = {"AE": "error", "AR": "rejected", "CE": "error", "CR": "rejected"}


@dataclass(frozen=True)
class AckResult:
    """The fate of one sent message, as its acknowledgement (or its absence) tells it."""

    control_id: str
    verdict: Verdict
    code: str | None = None  # AA, AE, AR, CA, CE, CR
    acknowledged_id: str | None = None  # MSA-2 of the ACK that was read
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.verdict == "accepted"

    @classmethod
    def unacknowledged(cls, control_id: str, why: str) -> AckResult:
        return cls(control_id, "unacknowledged", detail=why)


def judge_ack(raw: bytes | str, sent_control_id: str) -> AckResult:
    """Read one ACK frame; ``acknowledged_id`` says which message it answers."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    try:
        message = hl7.parse(text.replace("\n", "\r").strip("\r"))
        msa = message.segment("MSA")
        code = str(msa[1]).strip().upper()
        acked = str(msa[2]).strip()
    except (hl7.ParseException, KeyError, IndexError, ValueError) as exc:
        return AckResult(sent_control_id, "unreadable", detail=f"not an ACK: {exc}")
    if code in ACCEPT_CODES:
        verdict: Verdict = "accepted"
    elif code in REFUSE_CODES:
        verdict = "rejected" if REFUSE_CODES[code] == "rejected" else "error"
    else:
        return AckResult(sent_control_id, "unreadable", code, acked, f"unknown MSA-1 {code!r}")
    detail = ""
    with contextlib.suppress(KeyError):
        detail = str(message.segment("ERR")).strip()
    return AckResult(sent_control_id, verdict, code, acked, detail)


def make_ack(message: str, code: str, *, sender: tuple[str, str], ack_id: str) -> str:
    """The ACK a receiver sends for ``message`` (MSA-2 = its MSH-10). For a message too broken
    to read, a bare ACK with an empty MSA-2 (it can be matched to nothing)."""
    try:
        parsed = hl7.parse(message.strip("\r"))
        ack = parsed.create_ack(code, message_id=ack_id, application=sender[0], facility=sender[1])
        return str(ack)
    except Exception:  # unreadable: the refusal still has to be sent
        from datetime import UTC, datetime

        ts = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        return f"MSH|^~\\&|{sender[0]}|{sender[1]}|||{ts}||ACK|{ack_id}|P|2.5.1\rMSA|{code}|\r"


def control_id_of(message: str) -> str:
    return str(hl7.parse(message.strip("\r")).segment("MSH")[10])
