"""Health probes: one HTTP request, TCP connect, HL7 message (MLLP) or DICOM C-ECHO, returning a
timed :class:`Sample`.

A probe never retries: a retry would hide exactly the failure a drill measures. A sample
is stamped with the monotonic time at which it *started*; a response slower than the
probe's timeout is a failure even if it eventually arrives.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from resildrill.drill.model import ProbeSpec


@dataclass(frozen=True, slots=True)
class Sample:
    """One probe result: started at ``at`` (monotonic seconds), took ``latency_s``."""

    probe: str
    at: float
    ok: bool
    latency_s: float
    error: str | None = None


class Probe:
    """A configured check; :meth:`check` is thread-safe and blocks at most ~timeout."""

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self._ssl: ssl.SSLContext | None = None
        self._factory: Any = None  # HL7 messages with this probe's own control ids
        if spec.http is not None:
            parts = urlsplit(spec.http.url)
            self._scheme = parts.scheme
            self._host = parts.hostname or "127.0.0.1"
            self._port = parts.port or (443 if parts.scheme == "https" else 80)
            self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            if parts.scheme == "https":
                self._ssl = ssl.create_default_context(cafile=spec.http.ca_bundle)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "resildrill-probe"}
        assert self.spec.http is not None
        if self.spec.http.bearer_token_env:
            token = os.environ.get(self.spec.http.bearer_token_env)
            if token:
                headers["Authorization"] = f"Bearer {token}"
        return headers

    def check(self) -> Sample:
        """Run the check once."""
        timeout = self.spec.timeout
        start = time.monotonic()
        ok, error = False, None
        try:
            if self.spec.tcp is not None:
                with socket.create_connection((self.spec.tcp.host, self.spec.tcp.port), timeout):
                    ok = True
            elif self.spec.mllp is not None:
                ok, error = self._mllp(timeout)
            elif self.spec.dicom is not None:
                ok, error = self._dicom(timeout)
            else:
                ok, error = self._http(timeout)
        except (OSError, http.client.HTTPException) as exc:
            error = type(exc).__name__ + (f": {exc}" if str(exc) else "")
        latency = time.monotonic() - start
        if ok and latency > timeout:
            ok, error = False, f"slower than timeout ({latency * 1000:.0f} ms)"
        return Sample(self.name, start, ok, latency, error)

    def _mllp(self, timeout: float) -> tuple[bool, str | None]:
        """One message on a fresh connection; ok only for an accepting ACK to it."""
        from resildrill.hl7.messages import Patient, Result

        spec = self.spec.mllp
        assert spec is not None
        if self._factory is None:
            from resildrill.hl7.messages import MessageFactory

            self._factory = MessageFactory(f"probe-{self.name}-{os.getpid()}")
        app, _, facility = spec.receiver.partition("^")
        receiver = (app, facility)
        patient = Patient("PROBE0001", "Probe", "Synthetic")
        if spec.message == "oru_r01":
            result = Result("8867-4", "Heart rate", "72", "/min")
            message, cid = self._factory.oru(patient, [result], receiver=receiver, mode=spec.mode)
        else:
            message, cid = self._factory.adt("A08", patient, receiver=receiver, mode=spec.mode)
        from resildrill.hl7.mllp import MllpClient

        client = MllpClient(spec.host, spec.port, timeout_s=timeout)
        try:
            answer = client.send(message, cid)
        finally:
            client.close()
        if answer.accepted:
            return True, None
        return False, f"{answer.verdict} {answer.code or ''} {answer.detail}".strip()

    def _dicom(self, timeout: float) -> tuple[bool, str | None]:
        """One C-ECHO on a fresh association; ok only for status 0x0000."""
        from resildrill.dicom.echo import echo  # pynetdicom: only for drills that probe DICOM

        spec = self.spec.dicom
        assert spec is not None
        result = echo(
            spec.host, spec.port, called_ae=spec.called_ae, calling_ae=spec.calling_ae,
            timeout_s=timeout,
        )  # fmt: skip
        return result.ok, result.detail

    def _http(self, timeout: float) -> tuple[bool, str | None]:
        assert self.spec.http is not None
        conn: http.client.HTTPConnection
        if self._scheme == "https":
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            conn.request(self.spec.http.method, self._path, headers=self._headers())
            response = conn.getresponse()
            response.read()
            if response.status in self.spec.http.expect_status:
                return True, None
            return False, f"HTTP {response.status}"
        finally:
            conn.close()
