"""Verifiers: how one write is read back from the system that acknowledged it.

Each verifier speaks the system's own protocol and answers, for one write record, one of
:data:`OUTCOMES`. A read-back that cannot tell (an error status, a timeout) is
``unverifiable``, never ``lost``. Built in, registered under the entry-point group
``resildrill.verifiers`` like third-party ones:

- ``fhir``: a create is searched by its client identifier (none: lost, more than one:
  duplicated); an update is read by id and checked by version and identifier;
- ``http``: a GET of a URL template judged by a status or a JSON field (any HTTP API);
- ``python``: a function of the drill's own (``module:function`` beside the drill);
- ``dicom``: a PACS, each image by its SOP Instance UID: counted in the archive's index (C-FIND
  at IMAGE level), and, when the write carries a digest, retrieved (C-GET) and compared with
  what was sent (an index entry whose file holds another image, or none, is lost); images the
  radiology users stored (resource ``DicomImage``) are read this way whatever the drill names.

A write record (what ``record_write`` streamed): ``resource``, ``id``, ``identifier``,
``version``, ``op`` (create/update), ``digest`` (optional), ``acknowledged``, ``at``.
"""

from __future__ import annotations

import importlib
import json
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from resildrill.drill.model import DicomLoadSpec, IntegritySpec
from resildrill.errors import InvalidInput

GROUP = "resildrill.verifiers"
OUTCOMES = ("found", "lost", "duplicated", "update_lost", "unverifiable")
_TRIES = 2


@dataclass(frozen=True)
class ReadBack:
    """What every verifier is given: where and how to read."""

    spec: IntegritySpec
    base_url: str
    headers: dict[str, str]
    ca_bundle: str | None
    deadline: float  # monotonic
    request_timeout_s: float
    drill_dir: Path | None = None
    #: The drill's PACS (``load.dicom``, resolved), for images its radiology users stored.
    dicom: DicomLoadSpec | None = None


class Verifier(Protocol):
    """Reads one write back; answers one of OUTCOMES."""

    def __init__(self, how: ReadBack) -> None: ...

    def check(self, write: dict[str, Any]) -> str: ...


class JsonReader:
    """GETs with a deadline, a retry, and the load's headers and CA bundle."""

    def __init__(self, how: ReadBack, accept: str) -> None:
        self.how = how
        self.headers = {"Accept": accept, **how.headers}
        self.ctx = ssl.create_default_context(cafile=how.ca_bundle) if how.ca_bundle else None

    def get(self, url: str) -> tuple[int, Any]:
        """Status and parsed JSON body (None if not JSON); OSError when it cannot tell."""
        last: Exception | None = None
        for _ in range(_TRIES):
            left = self.how.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("integrity deadline reached")
            req = urllib.request.Request(url, headers=self.headers)
            try:
                with urllib.request.urlopen(
                    req, timeout=min(self.how.request_timeout_s, left), context=self.ctx
                ) as resp:
                    raw = resp.read()
                    try:
                        return resp.status, json.loads(raw or b"null")
                    except ValueError:
                        return resp.status, None
            except urllib.error.HTTPError as exc:
                if exc.code in (404, 410):
                    return exc.code, None
                last = exc
            except OSError as exc:
                last = exc
        raise OSError(f"read-back failed: {last}")


class FhirVerifier:
    """A FHIR server: creates by client identifier, updates by version."""

    def __init__(self, how: ReadBack) -> None:
        self.http = JsonReader(how, "application/fhir+json")
        self.base = how.base_url.rstrip("/")

    def check(self, write: dict[str, Any]) -> str:
        try:
            if write.get("op") == "update":
                return self._update(write)
            q = urllib.parse.urlencode({"identifier": write["identifier"]})
            status, body = self.http.get(f"{self.base}/{write['resource']}?{q}")
            if status != 200 or not isinstance(body, dict):
                return "unverifiable"
            found = len([e for e in body.get("entry", []) if "resource" in e])
            found = max(found, int(body.get("total") or 0))
            return "lost" if found == 0 else "duplicated" if found > 1 else "found"
        except OSError:
            return "unverifiable"

    def _update(self, write: dict[str, Any]) -> str:
        status, body = self.http.get(f"{self.base}/{write['resource']}/{write['id']}")
        if status in (404, 410):
            return "update_lost"
        if status != 200 or not isinstance(body, dict):
            return "unverifiable"
        system, _, value = str(write["identifier"]).partition("|")
        idents = body.get("identifier") or []
        if not any(i.get("system") == system and i.get("value") == value for i in idents):
            return "update_lost"
        acked, now = write.get("version"), (body.get("meta") or {}).get("versionId")
        if acked is not None and now is not None:
            try:
                if int(now) < int(acked):
                    return "update_lost"
            except ValueError:
                pass  # opaque version ids: presence of our identifier is the check
        return "found"


def _fill(template: str, write: dict[str, Any], quote: bool) -> str:
    def text(key: str) -> str:
        value = str(write.get(key) if write.get(key) is not None else "")
        return urllib.parse.quote(value, safe="") if quote else value

    return template.format(id=text("id"), identifier=text("identifier"), resource=text("resource"))


def json_at(body: Any, dotted: str) -> Any:
    """The value at a dotted path (list items by index), or None."""
    for key in dotted.split("."):
        if isinstance(body, dict) and key in body:
            body = body[key]
        elif isinstance(body, list) and key.isdigit() and int(key) < len(body):
            body = body[int(key)]
        else:
            return None
    return body


class HttpVerifier:
    """Any HTTP API: ``url`` with the write's fields filled in, judged by ``found``."""

    def __init__(self, how: ReadBack) -> None:
        self.http = JsonReader(how, "application/json")
        self.spec = how.spec
        assert self.spec.url is not None

    def check(self, write: dict[str, Any]) -> str:
        assert self.spec.url is not None
        try:
            status, body = self.http.get(_fill(self.spec.url, write, quote=True))
        except OSError:
            return "unverifiable"
        rule = self.spec.found
        if status in (404, 410):
            return "lost"
        if rule.status is not None and status != rule.status:
            return "unverifiable" if status >= 500 else "lost"
        if rule.json_field is not None:
            if status != 200 or body is None:
                return "unverifiable"
            got = json_at(body, rule.json_field)
            want = None if rule.equals is None else _fill(rule.equals, write, quote=False)
            if got is None or (want is not None and str(got) != want):
                return "lost"
        if self.spec.count_field is not None:
            copies = json_at(body, self.spec.count_field)
            if not isinstance(copies, int):
                return "unverifiable"
            return "lost" if copies == 0 else "duplicated" if copies > 1 else "found"
        return "found"


class PythonVerifier:
    """A function of the drill's own: ``callable(write) -> outcome``."""

    def __init__(self, how: ReadBack) -> None:
        assert how.spec.callable is not None
        self.fn = load_callable(how.spec.callable, how.drill_dir)

    def check(self, write: dict[str, Any]) -> str:
        try:
            outcome = str(self.fn(dict(write)))
        except Exception:  # the user's code failing cannot tell us the write is lost
            return "unverifiable"
        return outcome if outcome in OUTCOMES else "unverifiable"


def load_callable(ref: str, drill_dir: Path | None) -> Callable[[dict[str, Any]], Any]:
    """``module:function``, importable beside the drill file."""
    module_name, _, name = ref.partition(":")
    if drill_dir is not None and str(drill_dir) not in sys.path:
        sys.path.insert(0, str(drill_dir))
    try:
        fn = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"load.integrity.callable: cannot load {ref!r}: {exc}") from None
    if not callable(fn):
        raise InvalidInput(f"load.integrity.callable: {ref!r} is not a function")
    return fn  # type: ignore[no-any-return]


class DicomVerifier:
    """A PACS: each image by its SOP Instance UID (a C-FIND at IMAGE level within its study)."""

    def __init__(self, how: ReadBack) -> None:
        from resildrill.dicom.archive import Peer  # pynetdicom: only for drills with DICOM

        spec = how.dicom
        if spec is None or spec.host is None or spec.port is None:
            raise InvalidInput("the dicom verifier needs load.dicom (where the PACS listens)")
        self.how = how
        self.peer = Peer(
            spec.host, spec.port, spec.called_ae, spec.calling_ae, how.request_timeout_s
        )

    def check(self, write: dict[str, Any]) -> str:
        from resildrill.dicom.archive import content_digest, count_images, fetch_image

        if time.monotonic() >= self.how.deadline:
            return "unverifiable"
        # identifier: "<study>/<series>/<sop>" (the built-in modality), "<study>/<sop>" or "<sop>"
        parts = str(write.get("identifier") or write.get("id") or "").split("/")
        sop = parts[-1] or str(write.get("id"))
        study = parts[0] if len(parts) > 1 else ""
        series = parts[1] if len(parts) > 2 else ""
        try:
            copies = count_images(self.peer, sop, study or None)
            if copies == 0:
                return "lost"
            if write.get("digest") and study and series:
                # the index may name an image whose file now holds another (or none): what
                # the archive would hand a radiologist is the test
                fetched = fetch_image(self.peer, study, series, sop)
                if not any(content_digest(ds) == write["digest"] for ds in fetched):
                    return "lost"
        except Exception:  # pynetdicom's own errors too (an abort mid-request): cannot tell
            return "unverifiable"
        return "duplicated" if copies > 1 else "found"


#: The built-in verifiers (also registered as entry points, like third-party ones).
BUILT_IN: dict[str, type[Verifier]] = {
    "fhir": FhirVerifier,
    "http": HttpVerifier,
    "python": PythonVerifier,
    "dicom": DicomVerifier,
}
#: Records of this resource are images a radiology user stored: always read back from the PACS.
DICOM_RESOURCE = "DicomImage"


def verifier_for(how: ReadBack) -> Verifier:
    """The verifier the drill names: a built-in, or one installed under the entry points."""
    name = how.spec.verifier
    cls = BUILT_IN.get(name)
    if cls is None:
        found = {ep.name: ep for ep in entry_points(group=GROUP)}
        if name not in found:
            known = ", ".join(sorted({*BUILT_IN, *found}))
            raise InvalidInput(
                f"load.integrity.verifier: unknown verifier {name!r} (known: {known})"
            )
        cls = found[name].load()
    return cls(how)
