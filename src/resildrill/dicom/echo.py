"""C-ECHO (the Verification service): is a DICOM application entity there and answering?

One association per echo, every step bounded: the TCP connect and the association request by
``timeout_s`` (pynetdicom's ``acse_timeout`` and ``network_timeout``), the C-ECHO's answer by
``dimse_timeout``. Success is status 0x0000 from the called AE; anything else (refused,
aborted, no answer, another status) is a failure with its reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]  # made at import

__all__ = ["EchoResult", "echo"]

# pynetdicom logs every association at INFO/ERROR to the root logger: a probe's failures are
# reported in its samples, not as log noise in the runner's terminal.
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class EchoResult:
    ok: bool
    detail: str | None = None


def echo(
    host: str, port: int, *, called_ae: str, calling_ae: str = "RESILDRILL", timeout_s: float
) -> EchoResult:
    """One C-ECHO on a fresh association; never raises for the peer's behaviour."""
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(Verification)
    ae.acse_timeout = timeout_s
    ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    ae.connection_timeout = timeout_s
    assoc = ae.associate(host, port, ae_title=called_ae)
    try:
        if not assoc.is_established:
            why = (
                "association rejected" if assoc.is_rejected
                else "association aborted" if assoc.is_aborted
                else "no association (connection refused or timed out)"
            )  # fmt: skip
            return EchoResult(False, why)
        status = assoc.send_c_echo()
        if not status or "Status" not in status:
            return EchoResult(False, "no C-ECHO response in time")
        code = int(status.Status)
        return EchoResult(code == 0, None if code == 0 else f"C-ECHO status 0x{code:04X}")
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()
