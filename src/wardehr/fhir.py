"""FHIR R4 vocabulary of the ward EHR: resource types, search parameters, response bodies.

Owns what the API says (CapabilityStatement, OperationOutcome, search Bundles) and how a
resource is turned into the search index rows the stores keep. Knows nothing of HTTP or SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "RESOURCE_TYPES",
    "SEARCH_PARAMS",
    "FhirError",
    "SearchParam",
    "bundle",
    "capability_statement",
    "index_rows",
    "now_instant",
    "operation_outcome",
    "validate_resource",
]

FHIR_VERSION = "4.0.1"
JSON_TYPE = "application/fhir+json"

Resource = dict[str, Any]


class FhirError(Exception):
    """A request the API refuses: becomes an OperationOutcome with ``status``."""

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics


def now_instant() -> str:
    """The current time as a FHIR instant in UTC, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> Resource:
    """An OperationOutcome with one issue (``code`` from the R4 issue-type code system)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


# --- extraction helpers ----------------------------------------------------------------


def _get(resource: Resource, path: str) -> list[Any]:
    """Values at a dotted path; lists along the way are flattened."""
    values: list[Any] = [resource]
    for key in path.split("."):
        nxt: list[Any] = []
        for value in values:
            if isinstance(value, dict) and key in value:
                item = value[key]
                nxt.extend(item if isinstance(item, list) else [item])
        values = nxt
    return values


def _tokens(resource: Resource, path: str) -> list[str]:
    """Token index values of CodeableConcepts/Codings/Identifiers: ``code`` and ``system|code``."""
    out: list[str] = []
    for item in _get(resource, path):
        codings = item.get("coding", [item]) if isinstance(item, dict) else []
        for coding in codings:
            if not isinstance(coding, dict):
                continue
            value = coding.get("code", coding.get("value"))
            if isinstance(value, str):
                out.append(value)
                if isinstance(coding.get("system"), str):
                    out.append(f"{coding['system']}|{value}")
    return out


def _strings(resource: Resource, path: str) -> list[str]:
    return [v for v in _get(resource, path) if isinstance(v, str)]


def _refs(resource: Resource, path: str) -> list[str]:
    return [
        v["reference"] for v in _get(resource, path) if isinstance(v, dict) and "reference" in v
    ]


def normalize_date(value: str) -> str:
    """A FHIR date/dateTime as a UTC string that sorts and compares lexically."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        # a bare date (or a local time): keep its precision, compare as written
        return value
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class SearchParam:
    """A search parameter: its FHIR type and how to extract index values from a resource."""

    name: str
    type: str  # token | reference | date | string
    extract: Callable[[Resource], list[str]]
    target: str | None = None  # resource type a bare reference id refers to


def _tok(path: str) -> Callable[[Resource], list[str]]:
    return lambda r: _tokens(r, path)


def _str(path: str) -> Callable[[Resource], list[str]]:
    return lambda r: _strings(r, path)


def _ref(path: str) -> Callable[[Resource], list[str]]:
    return lambda r: _refs(r, path)


def _date(*paths: str) -> Callable[[Resource], list[str]]:
    def extract(r: Resource) -> list[str]:
        for path in paths:
            values = _strings(r, path)
            if values:
                return [normalize_date(values[0])]
        return []

    return extract


def _lower(path: str) -> Callable[[Resource], list[str]]:
    return lambda r: [v.lower() for v in _strings(r, path)]


def _params(*items: SearchParam) -> dict[str, SearchParam]:
    common = (SearchParam("identifier", "token", _tok("identifier")),)
    return {p.name: p for p in (*common, *items)}


_PATIENT = SearchParam("patient", "reference", _ref("subject"), "Patient")
_ENCOUNTER = SearchParam("encounter", "reference", _ref("encounter"), "Encounter")
_STATUS = SearchParam("status", "token", _str("status"))

#: Search parameters per resource type: the ones the clinician workflows use.
SEARCH_PARAMS: dict[str, dict[str, SearchParam]] = {
    "Patient": _params(
        SearchParam("family", "string", _lower("name.family")),
        SearchParam("birthdate", "date", _date("birthDate")),
        SearchParam("gender", "token", _str("gender")),
    ),
    "Encounter": _params(
        _PATIENT,
        _STATUS,
        SearchParam("location", "reference", _ref("location.location"), "Location"),
        SearchParam("class", "token", _tok("class")),
        SearchParam("date", "date", _date("period.start")),
    ),
    "Location": _params(
        _STATUS,
        SearchParam("partof", "reference", _ref("partOf"), "Location"),
        SearchParam("type", "token", _tok("physicalType")),
        SearchParam("name", "string", _lower("name")),
    ),
    "Observation": _params(
        _PATIENT,
        _ENCOUNTER,
        _STATUS,
        SearchParam("category", "token", _tok("category")),
        SearchParam("code", "token", _tok("code")),
        SearchParam("date", "date", _date("effectiveDateTime", "issued")),
    ),
    "MedicationRequest": _params(
        _PATIENT,
        _ENCOUNTER,
        _STATUS,
        SearchParam("intent", "token", _str("intent")),
        SearchParam("date", "date", _date("authoredOn")),
    ),
    "MedicationAdministration": _params(
        _PATIENT,
        SearchParam("context", "reference", _ref("context"), "Encounter"),
        _STATUS,
        SearchParam("request", "reference", _ref("request"), "MedicationRequest"),
        SearchParam("date", "date", _date("effectiveDateTime")),
    ),
    "ServiceRequest": _params(
        _PATIENT,
        _ENCOUNTER,
        _STATUS,
        SearchParam("category", "token", _tok("category")),
        SearchParam("code", "token", _tok("code")),
        SearchParam("date", "date", _date("authoredOn")),
    ),
    "DiagnosticReport": _params(
        _PATIENT,
        _ENCOUNTER,
        _STATUS,
        SearchParam("category", "token", _tok("category")),
        SearchParam("code", "token", _tok("code")),
        SearchParam("date", "date", _date("effectiveDateTime", "issued")),
    ),
}

RESOURCE_TYPES: tuple[str, ...] = tuple(SEARCH_PARAMS)

#: Sort keys the API accepts for ``_sort`` (a leading ``-`` sorts descending).
SORT_KEYS = ("date", "_lastUpdated", "_id")

#: Fields each type must carry (the R4 1..1 elements the workflows rely on).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "Encounter": ("status", "class"),
    "Location": (),
    "Observation": ("status", "code"),
    "MedicationRequest": ("status", "intent", "subject"),
    "MedicationAdministration": ("status", "subject"),
    "ServiceRequest": ("status", "intent", "subject"),
    "DiagnosticReport": ("status", "code"),
    "Patient": (),
}

_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def valid_id(value: str) -> bool:
    """Whether ``value`` is a FHIR logical id."""
    return bool(_ID_RE.match(value))


def validate_resource(type_: str, resource: Any, id_: str | None = None) -> Resource:
    """Check the structural rules the API enforces; raise :class:`FhirError` otherwise."""
    if not isinstance(resource, dict):
        raise FhirError(400, "structure", "the body must be a JSON object")
    if resource.get("resourceType") != type_:
        raise FhirError(
            400, "invalid", f"resourceType must be {type_!r} (got {resource.get('resourceType')!r})"
        )
    if id_ is not None and resource.get("id") not in (None, id_):
        raise FhirError(400, "invalid", f"id in the body ({resource.get('id')!r}) is not {id_!r}")
    missing = [f for f in _REQUIRED.get(type_, ()) if f not in resource]
    if missing:
        raise FhirError(422, "required", f"{type_} needs {', '.join(missing)}")
    return resource


def index_rows(type_: str, resource: Resource) -> list[tuple[str, str]]:
    """The ``(param, value)`` rows the store indexes for a resource."""
    rows: list[tuple[str, str]] = []
    for param in SEARCH_PARAMS[type_].values():
        for value in param.extract(resource):
            rows.append((param.name, value))
    return rows


def sort_date(type_: str, resource: Resource) -> str | None:
    """The value ``_sort=date`` orders by, if the type has a date parameter."""
    param = SEARCH_PARAMS[type_].get("date")
    if param is None:
        return None
    values = param.extract(resource)
    return values[0] if values else None


def bundle(
    entries: Iterable[Resource],
    total: int,
    self_url: str,
    base_url: str,
    included: Iterable[Resource] = (),
) -> Resource:
    """A searchset Bundle: matches first, then ``_include``-d resources."""
    entry = [
        {
            "fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match"},
        }
        for r in entries
    ]
    entry += [
        {
            "fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "include"},
        }
        for r in included
    ]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": [{"relation": "self", "url": self_url}],
        "entry": entry,
    }


def capability_statement(software_version: str) -> Resource:
    """The server's CapabilityStatement (``GET /metadata``)."""
    resources = []
    for type_, params in SEARCH_PARAMS.items():
        search = [{"name": p.name, "type": p.type} for p in params.values()]
        search += [
            {"name": "_id", "type": "token"},
            {"name": "_lastUpdated", "type": "date"},
        ]
        resources.append(
            {
                "type": type_,
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": False,
                "interaction": [
                    {"code": c} for c in ("read", "vread", "update", "create", "search-type")
                ],
                "searchParam": search,
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "publisher": "resildrill (synthetic staging system; no real patient data)",
        "kind": "instance",
        "software": {"name": "resildrill ward EHR", "version": software_version},
        "implementation": {"description": "resildrill bundled staging ward EHR"},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{"mode": "server", "resource": resources}],
    }
