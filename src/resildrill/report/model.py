"""``DrillReport``: the single immutable input to every renderer, and report.json's shape.

Owns the ``resildrill.report/v1`` contract of DESIGN.md ("add fields freely, never rename
these"), plus optional sections the HTML report shows when a producer fills them in
(``slos``, ``probes``, ``drill_as_run``, ``manual``, ``warnings``, ``blind_spots``,
``services``). It also owns reading and writing report.json; it computes nothing.

Every model allows extra keys (``extra="allow"``) so the runner and analysis can add
fields without a change here; renderers only show the fields named below.

Times inside a report are seconds from ``clock.monotonic_t0``.

Timeline series names (the runner produces them, the HTML chart reads them):

=============================  ======  ================================================
``probe.<name>.success``       ratio   per-bucket success ratio, null when no sample
``probe.<name>.latency_ms``    ms      per-bucket probe latency
``workflow.<name>.requests``   count   requests in the bucket
``workflow.<name>.failures``   count   failed requests in the bucket
``workflow.<name>.p95_ms``     ms      95th percentile latency in the bucket
``workflow.<name>.actions``    count   clinical actions started in the bucket
``workflow.<name>.failed_actions`` count  of those, actions with a failed request
``slo.<label>.breached``       flag    1 while the SLO is breached
``outage`` / ``degraded``      flag    1 during outage / any SLO breached
``heat.room``                  °C      the room's temperature (heat faults)
``heat.<server>.temp_c``       °C      inlet temperature of a server (heat faults)
``heat.<server>.state``        state   0 normal, 1 throttled, 2 shut down; in between
                                       and above refine them (``labels`` names each)
=============================  ======  ================================================

Mark kinds: ``baseline_start``, ``baseline_end``, ``inject_requested``, ``injected``,
``revert_requested``, ``reverted``, ``recovered``, ``manual_start``, ``manual_end``, ``end``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_json

from resildrill.errors import InvalidInput

__all__ = [
    "MARK_KINDS",
    "SCHEMA",
    "BlindSpotWindow",
    "BlindSpots",
    "Clock",
    "DrillRef",
    "DrillReport",
    "Fault",
    "FaultAction",
    "Gate",
    "Integrity",
    "Load",
    "ManualRecord",
    "Mark",
    "Outcome",
    "ProbeSummary",
    "Provenance",
    "Recovery",
    "Series",
    "ServiceRestore",
    "SloSummary",
    "Summary",
    "TargetRef",
    "Timeline",
    "WorkflowLoad",
    "load_report",
    "write_report_json",
]

SCHEMA: Final = "resildrill.report/v1"
REPORT_FILENAME = "report.json"

Outcome = Literal["passed", "failed", "aborted", "not_ready", "error"]

#: The mark kinds the runner writes; other kinds are allowed and shown as plain ticks.
MARK_KINDS: tuple[str, ...] = (
    "baseline_start",
    "baseline_end",
    "inject_requested",
    "injected",
    "revert_requested",
    "reverted",
    "recovered",
    "manual_start",
    "manual_end",
    "end",
)

Scalar = float | int | bool | str


class _Part(BaseModel):
    """Base of every report section: immutable, and producers may add their own keys."""

    model_config = ConfigDict(frozen=True, extra="allow")


class DrillRef(_Part):
    """Which drill file ran, by name, path and checksum."""

    name: str
    file: str
    sha256: str


class TargetRef(_Part):
    """Which target the drill ran against."""

    name: str
    environment: str
    sha256: str
    approved_by: str | None = Field(
        default=None, description="who approved a drill on this target (production only)"
    )


class Provenance(_Part):
    """Who ran what, from which code: enough to reproduce or challenge the figures."""

    tool_version: str
    git_commit: str | None = None
    operator: str | None = None
    change_ref: str | None = None


class Clock(_Part):
    """The run's time origin: monotonic for every figure, wall time (Unix seconds) to date it."""

    monotonic_t0: float
    wall_t0: float


class FaultAction(_Part):
    """One step a fault took on its own (heat: a throttle, a protective shutdown, a restart)."""

    at_s: float
    action: str
    target: str | None = None
    detail: str | None = None


class Recovery(_Part):
    """A fault's recovery figures, per DESIGN.md "Recovery, defined"."""

    time_to_detect_s: float | None = None
    time_to_recover_s: float | None = None
    recovered: bool
    outage_s: float = 0.0
    degraded_s: float = 0.0
    relapses: int = 0
    truncated_by: str | None = None


class Fault(_Part):
    """One injected fault: its window on the run's clock and how the system recovered."""

    id: str
    kind: str
    description: str | None = None
    # Null when the run ended before the fault's time came (aborted), and injected_at_s
    # also when the injection itself failed: the other faults' figures stay meaningful.
    inject_requested_at_s: float | None = None
    injected_at_s: float | None = None
    reverted_at_s: float | None = None
    recovered_at_s: float | None = None
    actions: list[FaultAction] | None = None
    # A fault acting on hosts of the estate: each host's times (the guard's own act on the
    # run's clock), who reverted it, and the spread between hosts.
    remote: dict[str, Any] | None = None
    # A signal aimed at a system call: {"caught": "pwrite64 (pid/tid)" or None, "after_s"}.
    aimed: dict[str, Any] | None = None
    # The HL7 backlog when the fault ended and its drain, beside the API's recovery.
    delivery: FaultDrain | None = None
    # Null when the fault could not be analysed (its injection failed): ``error`` says why.
    recovery: Recovery | None = None
    error: str | None = None


class Summary(_Part):
    """Whole-run figures; each second counted once even when faults overlap."""

    outage_s: float
    degraded_s: float
    availability: float | None = None


class WorkflowLoad(_Part):
    """What clinicians doing one workflow experienced."""

    requests: int = 0
    failures: int = 0
    failed_actions: int = 0
    p95_ms: float | None = None
    #: Null when the producer did not measure it (shown as a dash, never as zero).
    wait_beyond_slo_s: float | None = None
    actions: int | None = Field(default=None, description="clinical actions attempted")


class Load(_Part):
    """Clinician load totals, and per workflow."""

    requests: int = 0
    failures: int = 0
    by_workflow: dict[str, WorkflowLoad] = Field(default_factory=dict)


class Integrity(_Part):
    """Acknowledged writes read back after the recovery window."""

    writes_acknowledged: int = 0
    writes_lost: int = 0
    writes_duplicated: int = 0
    writes_unverifiable: int = 0


class DeliveryDelay(_Part):
    """Delivery delay of accepted messages, send to filing, in milliseconds."""

    p50: float | None = None
    p95: float | None = None
    max: float | None = None


class FaultDrain(_Part):
    """A fault's HL7 backlog when it ended, and when the backlog drained (docs/hl7.md)."""

    end_s: float
    backlog_at_end: int = 0
    lost_from_backlog: int = 0
    last_backlog_filed_at_s: float | None = None
    timely_again_at_s: float | None = None
    drained_at_s: float | None = None
    drain_s: float | None = Field(default=None, description="None: not drained by the end")


class WardView(_Part):
    """What the ward nurse saw of the results."""

    late_after_s: float
    patients_with_results: int = 0
    patients_late: int = 0
    patients_never_arrived: int = 0


class Delivery(_Part):
    """HL7 messages the load sent, read back one by one from the EHR after the run."""

    messages_sent: int = 0
    accepted: int = 0
    rejected: int = 0
    unacknowledged: int = 0
    not_read_back: int = 0
    lost: int = 0
    duplicated: int = 0
    extra_copies: int = 0
    unverifiable: int = 0
    stored_unacknowledged: int = 0
    delay_ms: DeliveryDelay = Field(default_factory=DeliveryDelay)
    usual_delay_s: float | None = None
    max_backlog_drain_s: float | None = None
    by_fault: dict[str, FaultDrain] = Field(default_factory=dict)
    ward: WardView | None = None
    examples: list[dict[str, Any]] = Field(default_factory=list)


class Gate(_Part):
    """A threshold from the drill and the value measured against it.

    ``reason`` (optional) is the producer's sentence for a failed gate; renderers fall back
    to "value V, limit L".
    """

    name: str
    # Usually a number or a bool; a gate of its own kind (regression) may give an object.
    limit: Scalar | dict[str, Any] | list[Any] | None = None
    value: Scalar | dict[str, Any] | list[Any] | None = None
    passed: bool
    unit: str | None = None
    reason: str | None = None


class Series(_Part):
    """One timeline series: one value per bucket of ``timeline.resolution_s`` (null: no data)."""

    unit: str
    values: list[float | None]
    #: For state series: value (as ``f"{v:g}"``) -> label, e.g. {"2": "shut down"}.
    labels: dict[str, str] | None = None


class Mark(_Part):
    """A moment on the run's clock: a phase boundary or a fault step."""

    at_s: float
    kind: str
    fault_id: str | None = None
    detail: str | None = None


class Timeline(_Part):
    """Bucketed series and marks; the full resolution lives here, never downsampled."""

    resolution_s: float = 0.1
    series: dict[str, Series] = Field(default_factory=dict)
    marks: list[Mark] = Field(default_factory=list)


class Phases(_Part):
    """Where the phases fell on the run's clock (optional; the chart labels them)."""

    baseline_start_s: float | None = None
    baseline_end_s: float | None = None
    recovery_end_s: float | None = None


class SloSummary(_Part):
    """One SLO as judged: what it watched and what it expected."""

    name: str
    source: str = Field(description="the probe or workflow it watches")
    expect: str
    baseline: float | None = None
    breached_s: float | None = None


class ProbeSummary(_Part):
    """A health probe's figures over the run."""

    name: str
    role: str | None = Field(default=None, description="clinical or component")
    service: str | None = None
    samples: int | None = None
    failures: int | None = None
    outage_s: float | None = None
    availability: float | None = None


class ManualRecord(_Part):
    """An operator step the drill waited for, as it happened."""

    id: str
    prompt: str
    at_s: float | None = Field(default=None, description="when the prompt was shown")
    duration_s: float | None = None
    completed: bool | None = None
    how: str | None = Field(default=None, description="e.g. operator confirmed, timed out")


class BlindSpotWindow(_Part):
    """A stretch of time when probes passed while a workflow breached its SLO."""

    workflow: str
    start_s: float
    end_s: float


class BlindSpots(_Part):
    """Seconds during which every probe passed while a workflow breached its SLO."""

    total_s: float = 0.0
    by_workflow: dict[str, float] = Field(default_factory=dict)
    windows: list[BlindSpotWindow] = Field(default_factory=list)


class ServiceRestore(_Part):
    """One service's loss and restore, listed in the order the services came back."""

    name: str
    order: int | None = None
    depends_on: list[str] = Field(default_factory=list)
    down_at_s: float | None = None
    restored_at_s: float | None = None
    time_to_restore_s: float | None = None


class DrillReport(_Part):
    """report.json as a value: everything every renderer needs, nothing they must compute."""

    schema_: Literal["resildrill.report/v1"] = Field(default=SCHEMA, alias="schema")
    run_id: str
    drill: DrillRef
    target: TargetRef
    provenance: Provenance
    started_at: str = Field(description="ISO 8601 UTC")
    duration_s: float
    clock: Clock
    outcome: Outcome
    exit_code: int
    reason: str | None = None
    partial: bool = False
    faults: list[Fault] = Field(default_factory=list)
    summary: Summary | None = None
    load: Load | None = None
    integrity: Integrity | None = None
    delivery: Delivery | None = None
    gates: list[Gate] = Field(default_factory=list)
    timeline: Timeline = Field(default_factory=Timeline)
    # Optional sections for the HTML report.
    phases: Phases | None = None
    slos: list[SloSummary] = Field(default_factory=list)
    probes: list[ProbeSummary] = Field(default_factory=list)
    drill_as_run: str | None = Field(
        default=None, description="the drill YAML as run, secrets as ${VAR} references"
    )
    manual: list[ManualRecord] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    blind_spots: BlindSpots | None = None
    services: list[ServiceRestore] = Field(default_factory=list)

    model_config = ConfigDict(
        frozen=True, extra="allow", populate_by_name=True, serialize_by_alias=True
    )


def _locate(error: ValidationError) -> str:
    """One line naming the first problem as ``path: message`` (+ how many more)."""
    errors = error.errors()
    first = errors[0]
    path = ""
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path or '<root>'}: {first['msg']}{more}"


def load_report(path: str | os.PathLike[str]) -> DrillReport:
    """Read a report from a run directory or a report.json path.

    Raises:
        InvalidInput: the file is missing, not JSON, of another schema, or not a valid
            report; the message is one line naming the file and the first problem.
    """
    source = Path(path)
    if source.is_dir():
        source = source / REPORT_FILENAME
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"{source}: no such report") from None
    except OSError as exc:
        raise InvalidInput(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        # Parsing and validating in one pass (pydantic-core) is several times faster than
        # json.loads then validate on an hour of buckets; diagnosis below only on failure.
        return DrillReport.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidInput(f"{source}{_diagnose(raw, exc)}") from None


def _diagnose(raw: bytes, error: ValidationError) -> str:
    """Why ``raw`` is not a report, as ``: message`` (or ``:line:col: message``)."""
    try:
        head = json.loads(raw)
    except json.JSONDecodeError as exc:
        return f":{exc.lineno}:{exc.colno}: not JSON: {exc.msg}"
    except UnicodeDecodeError:
        return ": not JSON: not UTF-8"
    if not isinstance(head, dict):
        return ": not a report: expected a JSON object"
    schema = head.get("schema")
    if schema != SCHEMA:
        return f": schema {schema!r} is not {SCHEMA!r}"
    return f": {_locate(error)}"


def report_to_json(report: DrillReport) -> str:
    """report.json's text: indented for reading, each series' values on one line.

    One value per line would turn an hour's timeline into millions of lines. The series
    values are serialised by pydantic-core directly, never turned into Python objects twice.
    """
    data: dict[str, Any] = report.model_dump(
        mode="json", by_alias=True, exclude={"timeline": {"series"}}
    )
    packed: list[str] = []
    series: dict[str, Any] = {}
    for name, entry in report.timeline.series.items():
        meta = entry.model_dump(mode="json", exclude={"values"})
        token = f"\u0000series-{len(packed)}"
        packed.append(to_json(entry.values, inf_nan_mode="null").decode())
        series[name] = {"unit": meta.pop("unit"), "values": token, **meta}
    timeline = data.get("timeline", {})
    # Keep the contract's order: resolution_s, series, marks (then any producer fields).
    data["timeline"] = {"resolution_s": timeline.pop("resolution_s", None), "series": series}
    data["timeline"].update(timeline)
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    text = _TOKEN.sub(lambda m: packed[int(m.group(1))], text)
    return text + "\n"


_TOKEN = re.compile(r'"\\u0000series-(\d+)"')


def write_report_json(report: DrillReport, path: str | os.PathLike[str]) -> Path:
    """Write report.json atomically (a crash never leaves half a report); return its path."""
    target = Path(path)
    if target.is_dir():
        target = target / REPORT_FILENAME
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(report_to_json(report), encoding="utf-8")
    os.replace(tmp, target)
    return target
