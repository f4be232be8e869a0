"""Frozen, typed models of drill and target files, and the duration and SLO grammars.

Owns the shape of ``kind: Drill`` and ``kind: Target`` documents (``apiVersion:
resildrill/v1``). Knows nothing of YAML, files or environment variables: the loader maps
YAML nodes onto these models and turns validation errors into ``file:line:col`` lines.

Fault kinds contribute their own spec models (subclasses of :class:`FaultSpec`), which
the loader combines into one discriminated union on ``kind``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails

API_VERSION = "resildrill/v1"

# ---------------------------------------------------------------------------------------
# Durations: every duration carries its unit, so "90" (seconds? ms?) can never be misread.

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
#: No drill step may be longer than a day: larger values are typos, not drills.
MAX_DURATION_S = 86_400.0


def parse_duration(value: Any) -> float:
    """Parse ``500ms``, ``30s``, ``5m`` or ``2h`` into seconds; reject bare numbers."""
    if isinstance(value, bool | int | float):
        raise ValueError(f"duration {value!r} needs a unit, like 500ms, 30s or 5m")
    if not isinstance(value, str):
        raise ValueError("duration must be a string with a unit, like 500ms, 30s or 5m")
    match = _DURATION_RE.match(value)
    if not match:
        raise ValueError(
            f"invalid duration {value!r}: use a number and a unit, like 500ms, 30s or 5m"
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_DURATION_S:
        raise ValueError(f"duration {value!r} is longer than 24h")
    return round(seconds, 6)


def format_duration(seconds: float) -> str:
    """Render seconds back into the grammar :func:`parse_duration` accepts."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000, 3):g}ms"
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d+(\.\d+)?(ms|s|m|h)$",
            "description": "a number with a unit: 500ms, 30s, 5m, 1h",
        }
    ),
]


class Frozen(BaseModel):
    """Base of every document model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------------------------------
# Target


Environment = Literal["production", "staging", "test", "dev"]


class HttpCheck(Frozen):
    """An HTTP request a probe makes; success is a status in ``expect_status``."""

    url: str
    method: Literal["GET", "HEAD"] = "GET"
    expect_status: list[int] = Field(default_factory=lambda: [200])
    bearer_token_env: str | None = Field(
        default=None, description="name of an environment variable holding a bearer token"
    )
    ca_bundle: str | None = Field(default=None, description="CA bundle file for https URLs")


class TcpCheck(Frozen):
    """A TCP connect a probe makes; success is an accepted connection."""

    host: str
    port: int = Field(ge=1, le=65535)


class MllpCheck(Frozen):
    """An HL7 v2 message over MLLP; success is an accepting ACK (AA or CA) for *it* within
    the probe's timeout (matched by MSA-2)."""

    host: str
    port: int = Field(ge=1, le=65535)
    mode: Literal["original", "enhanced"] = Field(
        default="original", description="original: AA accepts; enhanced: CA accepts"
    )
    message: Literal["adt_a08", "oru_r01"] = Field(
        default="adt_a08",
        description="what is sent: an ADT^A08 update or an ORU^R01 result, for a synthetic "
        "probe patient",
    )
    receiver: str = Field(default="EHR^WARD", description="MSH-5^MSH-6 of the messages")


class DicomCheck(Frozen):
    """A DICOM C-ECHO (Verification) on a fresh association; success is status 0x0000 from the
    called application entity within the probe's timeout."""

    host: str
    port: int = Field(ge=1, le=65535)
    called_ae: str = Field(
        min_length=1, max_length=16, description="the PACS's AE title (e.g. WARDPACS)"
    )
    calling_ae: str = Field(default="RESILDRILL", min_length=1, max_length=16)


class ProbeSpec(Frozen):
    """A health probe sampled at a fixed cadence on the monotonic clock."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    http: HttpCheck | None = None
    tcp: TcpCheck | None = None
    mllp: MllpCheck | None = None
    dicom: DicomCheck | None = None
    role: Literal["clinical", "component"] = Field(
        default="component",
        description="clinical: the user-facing entry point; its failures count as outage",
    )
    service: str | None = Field(default=None, description="the service this probe watches")
    interval: Duration = 0.1
    timeout: Duration = 0.5

    @model_validator(mode="after")
    def _exactly_one_check(self) -> ProbeSpec:
        if sum(c is not None for c in (self.http, self.tcp, self.mllp, self.dicom)) != 1:
            raise ValueError("a probe needs exactly one of 'http', 'tcp', 'mllp' or 'dicom'")
        return self


class ProcessLocator(Frozen):
    """How to find a service's process: by pidfile, by pid, or by an exact command line."""

    pidfile: str | None = None
    pid: int | None = Field(default=None, ge=2)
    match: str | None = Field(
        default=None, description="exact command line (arguments joined by single spaces)"
    )
    unit: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9@_.:\\-]+\.(service|scope)$",
        description="a systemd unit (its processes are those in the unit's cgroup)",
    )
    count: int = Field(default=1, ge=1, description="how many processes the locator must find")

    @model_validator(mode="after")
    def _exactly_one_way(self) -> ProcessLocator:
        given = [x for x in (self.pidfile, self.pid, self.match, self.unit) if x is not None]
        if len(given) != 1:
            raise ValueError("a process needs exactly one of 'pidfile', 'pid', 'match' or 'unit'")
        return self


class RestartSpec(Frozen):
    """A command the drill runs to bring a lost service back."""

    command: list[str] = Field(min_length=1)
    delay: Duration = 0.0
    cwd: str | None = None


class ServiceSpec(Frozen):
    """A service of the target: where it is reached and how it comes back when lost."""

    address: str | None = Field(default=None, description="host:port clients use")
    process: ProcessLocator | None = None
    recovery: Literal["supervisor", "restart", "none"] = Field(
        default="supervisor",
        description=(
            "supervisor: the system restarts it itself (recovery counted from injection); "
            "restart: the drill runs 'restart' (counted from that revert)"
        ),
    )
    restart: RestartSpec | None = None
    host: str | None = Field(
        default=None,
        description="a host of the target's 'hosts': the process is found, signalled and "
        "restarted there, through the host's guard (over SSH)",
    )

    @model_validator(mode="after")
    def _restart_needs_command(self) -> ServiceSpec:
        if self.recovery == "restart" and self.restart is None:
            raise ValueError("recovery 'restart' needs a 'restart' command")
        return self


class HostSpec(Frozen):
    """A host of the staging estate, reached over SSH with a key (never a password)."""

    address: str = Field(description="name or IP address the runner connects to")
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(pattern=r"^[a-z_][a-z0-9_.-]*$")
    key_file: str | None = Field(
        default=None, description="private key (relative: the target's folder)"
    )
    key_passphrase_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="variable holding the key's passphrase (only its name is recorded)",
    )
    agent: bool = Field(default=False, description="use the keys of the SSH agent instead")
    known_hosts: str = Field(
        default="~/.ssh/known_hosts",
        description="host keys the host's key must be found in (no trust on first use)",
    )
    host_key_alias: str | None = Field(
        default=None,
        description="name to look the host key up under (as OpenSSH HostKeyAlias), e.g. "
        "when the connection goes through a proxy",
    )
    sudo: bool = Field(
        default=False,
        description="run the guard with 'sudo -n' (needs guard_path: a root-owned copy)",
    )
    guard_path: str | None = Field(
        default=None,
        pattern=r"^/[A-Za-z0-9_./-]+$",
        description="a copy of the guard an administrator installed (root-owned with sudo); "
        "checked by hash, never written by the runner",
    )
    python: str = Field(default="python3", pattern=r"^[A-Za-z0-9_./-]+$")
    heartbeat_timeout: Duration = Field(
        default=5.0, description="the guard reverts by itself after this long without the runner"
    )
    connect_timeout: Duration = 5.0
    min_free_disk_mib: int = Field(
        default=256,
        ge=0,
        description="a disk fill on this host never leaves less free than this (MiB)",
    )
    state_dir: str = Field(
        default=".local/state/resildrill-guard",
        pattern=r"^[A-Za-z0-9_./~-]+$",
        description="the guard's journals on the host (relative: the user's home)",
    )

    @model_validator(mode="after")
    def _one_key_source(self) -> HostSpec:
        if (self.key_file is None) == (not self.agent):
            raise ValueError("a host needs exactly one of 'key_file' or 'agent: true'")
        if self.sudo and self.guard_path is None:
            raise ValueError(
                "sudo: true needs guard_path (a root-owned copy of the guard): a guard in the "
                "user's home run with sudo would let that user become root"
            )
        if self.heartbeat_timeout < 1.0:
            raise ValueError("heartbeat_timeout must be at least 1s")
        return self


class ProxyRoute(Frozen):
    """One proxy of a Toxiproxy API: it listens on ``listen`` and forwards to ``upstream``."""

    listen: str = Field(description="host:port the proxy listens on")
    upstream: str = Field(description="host:port the proxy forwards to")


class ToxiproxySpec(Frozen):
    """The Toxiproxy-compatible API that carries the target's network hops."""

    url: str = "http://127.0.0.1:8474"
    embedded: bool = Field(
        default=True,
        description="true: resildrill starts its own proxy server; false: an external Toxiproxy",
    )
    proxies: dict[str, ProxyRoute] = Field(default_factory=dict)
    token_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="variable holding the API's bearer token (sent on every call; an "
        "embedded server is started requiring it); the name only is ever written down",
    )


class IdentityCheck(Frozen):
    """How the runner makes sure it talks to the system the target file means.

    A self-declared ``environment: staging`` is the weakest guard: before injecting, the
    runner fetches ``url`` and requires one rule to match: a response header (``header``
    and ``value``), the ``software.name`` of a FHIR CapabilityStatement (``fhir_software``),
    a field of a JSON body (``json_field``, dotted like ``service.name``, and ``value``), or
    a regular expression found in the body (``body_pattern``): systems we did not write
    rarely have the first two.
    """

    url: str
    header: str | None = None
    json_field: str | None = None
    value: str | None = None
    fhir_software: str | None = None
    body_pattern: str | None = None
    timeout: Duration = 2.0

    @model_validator(mode="after")
    def _one_rule(self) -> IdentityCheck:
        rules = [
            self.header is not None,
            self.json_field is not None,
            self.fhir_software is not None,
            self.body_pattern is not None,
        ]
        if sum(rules) != 1:
            raise ValueError(
                "identity needs exactly one rule: 'header' and 'value', 'json_field' and "
                "'value', 'fhir_software', or 'body_pattern'"
            )
        if (self.header is not None or self.json_field is not None) and self.value is None:
            raise ValueError("identity: 'header' and 'json_field' need the 'value' expected")
        if self.body_pattern is not None:
            try:
                re.compile(self.body_pattern)
            except re.error as exc:
                raise ValueError(
                    f"identity.body_pattern is not a regular expression: {exc}"
                ) from None
        return self


WebhookEvent = Literal["start", "halt", "end"]
_ALL_EVENTS: tuple[WebhookEvent, ...] = ("start", "halt", "end")


class Webhook(Frozen):
    """A URL that receives JSON when a drill starts, halts and ends (on-call staff notice).

    ``url``, or ``url_env``: the name of an environment variable holding it (a webhook URL
    often carries a token: keep it out of the target file). Only http and https; redirects
    are not followed; messages and reports show only its scheme and host.
    """

    url: str | None = None
    url_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    events: list[WebhookEvent] = Field(default_factory=lambda: list(_ALL_EVENTS))
    timeout: Duration = 2.0

    @model_validator(mode="after")
    def _one_url(self) -> Webhook:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("a webhook needs exactly one of 'url' or 'url_env'")
        if self.url is not None and not re.match(r"^https?://[^/?#]+", self.url):
            raise ValueError("a webhook url must be http:// or https:// with a host")
        return self


class TargetSpec(Frozen):
    """A system under test: its environment, services and probes."""

    apiVersion: Literal["resildrill/v1"]
    kind: Literal["Target"]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    environment: Environment
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    hosts: dict[str, HostSpec] = Field(
        default_factory=dict, description="hosts of the estate reached over SSH, by name"
    )
    probes: list[ProbeSpec] = Field(min_length=1)
    run_dir: str | None = Field(
        default=None, description="folder for pidfiles and logs, relative to the target file"
    )
    stack: dict[str, Any] | None = Field(
        default=None,
        description="how 'resildrill target up' starts the system (bundled stacks only)",
    )
    toxiproxy: ToxiproxySpec | None = None
    identity: IdentityCheck | None = None
    notify: list[Webhook] = Field(default_factory=list)
    approved_by: str | None = Field(
        default=None, description="who approved drills against a production target"
    )

    @model_validator(mode="after")
    def _probe_names_unique(self) -> TargetSpec:
        names = [p.name for p in self.probes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"probe names must be unique: {', '.join(dupes)}")
        for name, service in self.services.items():
            if service.host is not None and service.host not in self.hosts:
                known = ", ".join(sorted(self.hosts)) or "none"
                raise ValueError(
                    f"service {name!r} names host {service.host!r}, not in 'hosts' (known: {known})"
                )
        return self


# ---------------------------------------------------------------------------------------
# SLOs: "success_rate >= 0.99", "error_rate <= 0.05", "p95 <= 300ms", "p95 <= 2x baseline"

SLOMetric = Literal["success_rate", "error_rate", "p50", "p95", "p99"]
_SLO_RE = re.compile(
    r"^\s*(success_rate|error_rate|p50|p95|p99)\s*(<=|>=|<|>)\s*"
    r"(?:(\d+(?:\.\d+)?)\s*x\s*baseline|(\d+(?:\.\d+)?)\s*(ms|s)?)\s*$"
)


@dataclass(frozen=True, slots=True)
class SLOExpectation:
    """A parsed SLO: ``metric op value``, or ``metric op factor x baseline``."""

    metric: str
    op: str
    value: float
    relative_to_baseline: bool
    text: str

    def holds(self, observed: float, baseline: float | None = None) -> bool:
        """Whether an observed figure meets this expectation."""
        limit = self.value * (baseline or 0.0) if self.relative_to_baseline else self.value
        return {
            "<=": observed <= limit,
            ">=": observed >= limit,
            "<": observed < limit,
            ">": observed > limit,
        }[self.op]


def parse_slo(value: Any) -> SLOExpectation:
    """Parse an SLO expression; latency values are stored in seconds."""
    if isinstance(value, SLOExpectation):
        return value
    if not isinstance(value, str):
        raise ValueError("an SLO is a string like 'success_rate >= 0.99' or 'p95 <= 2x baseline'")
    match = _SLO_RE.match(value)
    if not match:
        raise ValueError(
            f"invalid SLO {value!r}: write 'success_rate >= 0.99', 'error_rate <= 0.05', "
            "'p95 <= 300ms' or 'p95 <= 2x baseline'"
        )
    metric, op, factor, number, unit = match.groups()
    is_latency = metric.startswith("p")
    if factor is not None:
        if not is_latency:
            raise ValueError("only latency percentiles can be relative to the baseline")
        return SLOExpectation(metric, op, float(factor), True, value.strip())
    amount = float(number)
    if is_latency:
        if unit is None:
            raise ValueError(f"latency SLO {value!r} needs a unit, like 300ms")
        amount = amount * _UNIT_SECONDS[unit]
    else:
        if unit is not None:
            raise ValueError(f"{metric} is a ratio between 0 and 1, without a unit")
        if not 0.0 <= amount <= 1.0:
            raise ValueError(f"{metric} is a ratio between 0 and 1")
    return SLOExpectation(metric, op, amount, False, value.strip())


SLOExpr = Annotated[
    SLOExpectation,
    BeforeValidator(parse_slo),
    PlainSerializer(lambda e: e.text, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["success_rate >= 0.99", "p95 <= 2x baseline"]}),
]


class SLOSpec(Frozen):
    """A service level objective judged per 100 ms bucket over a trailing ``slo_window``."""

    name: str | None = None
    probe: str | None = Field(default=None, description="a probe of the target")
    workflow: str | None = Field(default=None, description="a clinician workflow of the load")
    expect: SLOExpr
    min_samples: int = Field(
        default=1, ge=1, description="samples a window needs before it can be judged"
    )

    @model_validator(mode="after")
    def _one_source(self) -> SLOSpec:
        if (self.probe is None) == (self.workflow is None):
            raise ValueError("an SLO needs exactly one of 'probe' or 'workflow'")
        return self

    @property
    def label(self) -> str:
        """The SLO's name, or one made from its source and expectation."""
        return self.name or f"{self.probe or self.workflow}: {self.expect.text}"


# ---------------------------------------------------------------------------------------
# Drill


class FaultSpec(Frozen):
    """Fields every fault has; each fault kind subclasses it with ``kind: Literal[...]``."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str
    at: Duration = Field(description="offset from the end of the baseline")
    duration: Duration | None = Field(
        default=None,
        description="how long the fault stays; omitted: the system must heal itself",
    )
    description: str | None = None


class ManualStep(Frozen):
    """An operator action the drill waits for, with a prompt and a timeout; measured."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    at: Duration = Field(description="offset from the end of the baseline")
    prompt: str
    timeout: Duration = 300.0


class Phases(Frozen):
    """The drill's timeline around its faults."""

    baseline: Duration = Field(default=5.0, description="steady state checked before injecting")
    recovery: Duration = Field(
        default=20.0, description="recovery window watched after the last fault ends"
    )


#: Figures a regression gate can watch: report.json's names without the ``_s`` suffix
#: (``time_to_recover`` and ``time_to_detect`` are the worst over the drill's faults).
RegressionMetric = Literal[
    "time_to_recover", "time_to_detect", "outage", "degraded", "relapses", "availability"
]


def parse_percent(value: Any) -> float:
    """Parse ``20%`` into 0.2; a bare number is refused (is 20 a ratio or a percentage?)."""
    if not isinstance(value, str) or not value.strip().endswith("%"):
        raise ValueError(f"margin {value!r} needs a percent sign, like 20%")
    try:
        number = float(value.strip()[:-1])
    except ValueError:
        raise ValueError(f"invalid percentage {value!r}: use a number and %, like 20%") from None
    if not 0 <= number <= 1000:
        raise ValueError(f"percentage {value!r} must be between 0% and 1000%")
    return round(number / 100, 6)


Percent = Annotated[
    float,
    BeforeValidator(parse_percent),
    PlainSerializer(lambda v: f"{v * 100:g}%", return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?%$", "description": "20%"}),
]


_DEFAULT_REGRESSION: tuple[RegressionMetric, ...] = ("time_to_recover",)


class RegressionGate(Frozen):
    """Fail when a figure is worse than the median of this drill's last runs by a margin.

    The previous runs come from the run history (``resildrill history``): completed runs
    (passed or failed) of the drill with the same name. A figure regresses when it is worse
    than the median by more than ``margin`` and by more than ``min_change`` (seconds, for
    the time figures: two 100 ms buckets of noise are not a regression). With fewer than
    ``min_runs`` previous runs the gate passes and says why.
    """

    metrics: list[RegressionMetric] = Field(
        default_factory=lambda: list(_DEFAULT_REGRESSION), min_length=1
    )
    last_n: int = Field(default=5, ge=1, le=100, description="how many previous runs")
    margin: Percent = Field(default=0.2, description="how much worse than the median, e.g. 20%")
    min_runs: int = Field(default=3, ge=1, le=100, description="fewer previous runs: pass")
    min_change: Duration = Field(default=0.2, description="smallest change (time figures)")


Count = Annotated[int, Field(ge=0)]

#: One limit for every workflow, or workflow -> limit (errors come from the form written).
PerWorkflowCount = Annotated[
    Annotated[Count, Tag("number")] | Annotated[dict[str, Count], Tag("mapping")],
    Discriminator(lambda v: "mapping" if isinstance(v, dict) else "number"),
]

#: The built-in personas' workflows (``resildrill.load.sizing.PERSONAS`` plays them; a unit
#: test keeps the two equal). Here so a drill can be checked without the load layer.
BUILTIN_WORKFLOWS: tuple[str, ...] = (
    "obs_round",
    "drug_round",
    "doctor",
    "pharmacist",
    "ed_triage",
    "bed_manager",
)

#: The HL7 senders the load can play (``resildrill.load.hl7_users``); they need ``load.hl7``
#: (where the interface engine listens), so no drill plays them by default.
HL7_WORKFLOWS: tuple[str, ...] = ("hl7_lab", "hl7_adt")
#: The radiology users (``resildrill.load.dicom_users``); they need ``load.dicom``.
DICOM_WORKFLOWS: tuple[str, ...] = ("dicom_modality", "dicom_reading")

#: Gates measured from clinician load: a drill without ``load`` can never measure them.
LOAD_GATES: tuple[str, ...] = (
    "max_writes_lost",
    "max_writes_duplicated",
    "max_failed_actions",
    "max_wait_beyond_slo",
)

#: Gates measured from HL7 messages the load sent: they need ``load.hl7`` and an HL7 sender.
DELIVERY_GATES: tuple[str, ...] = (
    "max_messages_lost",
    "max_messages_duplicated",
    "max_delivery_delay",
    "max_backlog_drain",
)


class Gates(Frozen):
    """Thresholds that turn a completed drill into exit code 0 or 1.

    The clinical gates read report.json ``integrity`` and ``load.by_workflow`` and need a
    ``load`` section: ``max_writes_lost`` / ``max_writes_duplicated`` (0 is the clinical
    expectation: an acknowledged write must never vanish or be doubled; they fail when the
    read-back could not verify every write), ``max_failed_actions`` (one number for every
    workflow, or workflow -> number) and ``max_wait_beyond_slo`` (the worst workflow's time
    beyond its SLO).
    """

    all_faults_recovered: bool = True
    max_time_to_recover: Duration | None = None
    max_time_to_detect: Duration | None = None
    max_outage: Duration | None = None
    max_degraded: Duration | None = None
    max_relapses: int | None = Field(default=None, ge=0)
    min_availability: float | None = Field(default=None, ge=0.0, le=1.0)
    max_writes_lost: int | None = Field(
        default=None, ge=0, description="acknowledged writes not found on read-back (use 0)"
    )
    max_writes_duplicated: int | None = Field(
        default=None, ge=0, description="acknowledged creates found more than once (use 0)"
    )
    max_failed_actions: PerWorkflowCount | None = Field(
        default=None,
        description="failed clinical actions: one limit for every workflow, or workflow -> limit",
    )
    max_wait_beyond_slo: Duration | None = Field(
        default=None, description="time clinicians of the worst workflow waited beyond its SLO"
    )
    max_messages_lost: int | None = Field(
        default=None,
        ge=0,
        description="HL7 messages the engine accepted (AA/CA) that the EHR never filed (use 0)",
    )
    max_messages_duplicated: int | None = Field(
        default=None, ge=0, description="accepted HL7 messages the EHR filed more than once"
    )
    max_delivery_delay: Duration | None = Field(
        default=None,
        description="slowest accepted HL7 message, from the sender's send to the EHR's filing",
    )
    max_backlog_drain: Duration | None = Field(
        default=None,
        description="longest time, after a fault ended, until the engine's backlog was filed "
        "and new results reached the ward within their usual delay again",
    )
    regression: RegressionGate | None = Field(
        default=None, description="fail when worse than this drill's recent runs"
    )

    def load_problems(
        self, load: LoadSpec | None, slo_workflows: list[str]
    ) -> list[tuple[tuple[str | int, ...], str]]:
        """(location below ``gates``, message) for clinical gates the drill cannot measure."""
        used = [name for name in LOAD_GATES if getattr(self, name) is not None]
        hl7_used = [name for name in DELIVERY_GATES if getattr(self, name) is not None]
        if load is None:
            return [
                ((name,), f"{name} is measured from clinician load: add a 'load' section")
                for name in used + hl7_used
            ]
        problems: list[tuple[tuple[str | int, ...], str]] = []
        senders = [w for w in (load.workflows or {}) if w in HL7_WORKFLOWS]
        if hl7_used and (load.hl7 is None or not (senders or load.locustfile)):
            for name in hl7_used:
                message = (
                    f"{name} is measured from HL7 messages the load sends: add 'load.hl7' "
                    f"(where the interface engine listens) and a sender to load.workflows "
                    f"({' or '.join(HL7_WORKFLOWS)})"
                )
                problems.append(((name,), message))
        if self.max_wait_beyond_slo is not None and not slo_workflows:
            message = "max_wait_beyond_slo is measured against workflow SLOs: add one to slos"
            problems.append((("max_wait_beyond_slo",), message))
        if isinstance(self.max_failed_actions, dict):
            if load.workflows:
                known = sorted(load.workflows)
            elif load.locustfile:
                return problems  # the user's own locustfile names its workflows
            else:
                known = sorted(BUILTIN_WORKFLOWS)
            for name in self.max_failed_actions:
                if name not in known:
                    close = difflib.get_close_matches(name, known, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    message = f"unknown workflow {name!r}{hint}; the load plays: {', '.join(known)}"
                    problems.append((("max_failed_actions", name), message))
        return problems


class HaltCondition(Frozen):
    """Stop the drill and revert everything when clinicians are hurt more than agreed.

    Either ``when`` (a condition on a probe or workflow, e.g. ``error_rate > 0.5``) holding
    for ``for``, or more than ``failed_actions`` failed clinical actions in a workflow since
    the first injection (an action is one task of a persona, such as one patient's set of
    observations, and fails when any of its requests failed; counted by its start time).
    Checked at timeline resolution (100 ms).
    """

    name: str | None = None
    probe: str | None = None
    workflow: str | None = None
    when: SLOExpr | None = None
    for_: Duration = Field(default=0.1, alias="for")
    failed_actions: int | None = Field(default=None, ge=0)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _shape(self) -> HaltCondition:
        if (self.probe is None) == (self.workflow is None):
            raise ValueError("a halt condition needs exactly one of 'probe' or 'workflow'")
        if (self.when is None) == (self.failed_actions is None):
            raise ValueError("a halt condition needs exactly one of 'when' or 'failed_actions'")
        if self.failed_actions is not None and self.workflow is None:
            raise ValueError("'failed_actions' counts a workflow's failed clinical actions")
        return self

    @property
    def label(self) -> str:
        """The condition's name, or one made from its parts."""
        what = self.when.text if self.when else f"failed_actions > {self.failed_actions}"
        return self.name or f"{self.probe or self.workflow}: {what}"


class FoundRule(Frozen):
    """When the read-back of one write counts as *found* (the HTTP verifier)."""

    status: int | None = Field(default=None, description="the read-back answers this status")
    json_field: str | None = Field(
        default=None, description="dotted field of the JSON body, e.g. item.client_id"
    )
    equals: str | None = Field(
        default=None, description="what that field must hold; {id}/{identifier} filled in"
    )

    @model_validator(mode="after")
    def _one_rule(self) -> FoundRule:
        if (self.status is None) == (self.json_field is None):
            raise ValueError("found needs exactly one of 'status' or 'json_field'")
        return self


class IntegritySpec(Frozen):
    """How every write the load acknowledged is read back after the recovery window.

    ``fhir`` (default): searched by its identifier on the load's FHIR host. ``http``: a GET of
    ``url`` (``{id}``, ``{identifier}``, ``{resource}`` filled in from the write) judged by
    ``found``; with ``count_field`` a JSON number of stored copies (duplicates). ``python``:
    ``callable`` (``module:function``, importable beside the drill) returns found, lost,
    duplicated or unverifiable for each write. More verifiers install under the entry-point
    group ``resildrill.verifiers``.
    """

    verifier: str = Field(default="fhir", pattern=r"^[A-Za-z0-9_.-]+$")
    url: str | None = None
    found: FoundRule = Field(default_factory=lambda: FoundRule(status=200))
    count_field: str | None = None
    callable: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

    @model_validator(mode="after")
    def _needs(self) -> IntegritySpec:
        if self.verifier == "http" and not self.url:
            raise ValueError("the http verifier needs 'url' (e.g. http://host/items/{id})")
        if self.verifier == "python" and not self.callable:
            raise ValueError("the python verifier needs 'callable: module:function'")
        return self


class Hl7LoadSpec(Frozen):
    """The lab and the admissions system the load plays: HL7 v2 over MLLP to an interface engine.

    Each ``hl7_lab`` user sends ORU^R01 results, each ``hl7_adt`` user a patient's stay
    (A01 admit, A02 transfer, A08 update, A03 discharge), one message every ``interval``
    (real time: the drill's ``pace`` compresses clinicians' thinking, not a lab's output).
    Every message is read back from the EHR after the recovery window (docs/hl7.md): a FHIR
    search on the load's host for a resource carrying the message's control id (MSH-10) as an
    identifier of ``identifier_system``; the earliest ``meta.lastUpdated`` is when it was filed.
    """

    service: str | None = Field(
        default=None,
        description="the target's service that accepts the messages (the interface engine): "
        "its address is where they go",
    )
    proxy: str | None = Field(
        default=None,
        description="or: a proxy of the target in front of the engine (its listen address), so "
        "drills can cut or slow the lab's link",
    )
    host: str | None = Field(default=None, description="or: where the engine listens")
    port: int | None = Field(default=None, ge=1, le=65535)
    mode: Literal["original", "enhanced"] = Field(
        default="original", description="original: AA accepts; enhanced: CA commits"
    )
    interval: Duration = Field(default=0.2, description="between one sender's messages")
    ack_timeout: Duration = Field(default=5.0, description="no ACK by then: unacknowledged")
    patients: int = Field(default=30, ge=1, le=100_000, description="synthetic patients")
    receiver: str = Field(default="EHR^WARD", description="MSH-5^MSH-6 of the messages")
    identifier_system: str = Field(
        default="urn:resildrill:hl7:msh-10",
        description="identifier system under which the EHR files a message's control id",
    )
    filed_as: dict[str, str] = Field(
        default_factory=lambda: {"ORU": "DiagnosticReport", "ADT": "Encounter"},
        description="message type -> the FHIR resource the EHR files it as (A08 files "
        "nothing and is not read back)",
    )
    late_after: Duration = Field(
        default=900.0,
        description="the ward nurse's view: results delivered later than this are late",
    )
    usual_delay: Duration | None = Field(
        default=None,
        description="delivery delay counted as usual when a backlog drains; default: twice "
        "the baseline's p99, at least 250ms",
    )

    @model_validator(mode="after")
    def _one_destination(self) -> Hl7LoadSpec:
        given = [self.service is not None, self.proxy is not None, self.host is not None]
        if sum(given) != 1 or (self.host is None) != (self.port is None):
            raise ValueError(
                "give one of 'service' (a service of the target), 'proxy' (a proxy of the "
                "target) or 'host' with 'port'"
            )
        return self

    def resolved(self, target: TargetSpec) -> Hl7LoadSpec:
        """This spec with ``host``/``port`` taken from the named service's or proxy's address."""
        host, port = _resolve(self.service, self.proxy, target)
        if host is None:
            return self
        return self.model_copy(update={"service": None, "proxy": None, "host": host, "port": port})


class DicomLoadSpec(Frozen):
    """Radiology the load plays against a PACS: ``dicom_modality`` users store studies
    (C-STORE, ``images_per_study`` CT slices of a synthetic patient, one study every
    ``interval``); ``dicom_reading`` users find a recent study (C-FIND) and retrieve it (C-GET).
    Every image the archive acknowledged (status 0x0000) is read back after the recovery window
    by its SOP Instance UID (C-FIND at IMAGE level): found, lost or duplicated."""

    service: str | None = Field(default=None, description="the target's PACS service")
    proxy: str | None = Field(default=None, description="or: a proxy of the target before it")
    host: str | None = Field(default=None, description="or: where the PACS listens")
    port: int | None = Field(default=None, ge=1, le=65535)
    called_ae: str = Field(min_length=1, max_length=16, description="the PACS's AE title")
    calling_ae: str = Field(default="RESILDRILL", min_length=1, max_length=16)
    images_per_study: int = Field(default=3, ge=1, le=500)
    interval: Duration = Field(default=0.5, description="between one user's studies or reads")
    timeout: Duration = Field(default=10.0, description="each association step's timeout")
    patients: int = Field(default=30, ge=1, le=100_000, description="synthetic patients")

    @model_validator(mode="after")
    def _one_destination(self) -> DicomLoadSpec:
        given = [self.service is not None, self.proxy is not None, self.host is not None]
        if sum(given) != 1 or (self.host is None) != (self.port is None):
            raise ValueError(
                "give one of 'service' (a service of the target), 'proxy' (a proxy of the "
                "target) or 'host' with 'port'"
            )
        return self

    def resolved(self, target: TargetSpec) -> DicomLoadSpec:
        """This spec with ``host``/``port`` from the named service's or proxy's address."""
        host, port = _resolve(self.service, self.proxy, target)
        if host is None:
            return self
        return self.model_copy(update={"service": None, "proxy": None, "host": host, "port": port})


def _resolve(
    service: str | None, proxy: str | None, target: TargetSpec
) -> tuple[str | None, int | None]:
    """(host, port) of a target's service or proxy listen address; (None, None) for neither."""
    if service is not None:
        address = str(target.services[service].address)
    elif proxy is not None and target.toxiproxy is not None:
        address = target.toxiproxy.proxies[proxy].listen
    else:
        return None, None
    host, _, port = address.rpartition(":")
    return host, int(port)


class LoadSpec(Frozen):
    """Clinicians at work: Locust users playing clinical workflows (see load/, docs/load.md)."""

    host: str | None = Field(default=None, description="base URL; default: the target's API")
    users: int | None = Field(default=None, ge=1, le=10_000)
    beds: int | None = Field(default=None, ge=1, le=100_000, description="size load from beds")
    users_per_bed: float = Field(
        default=0.4,
        ge=0.05,
        le=2.0,
        description="active users per bed when sized from beds (0.35-0.45 on a day shift)",
    )
    workers: int = Field(default=1, ge=1, le=64, description="local Locust worker processes")
    remote_workers: int = Field(
        default=0,
        ge=0,
        le=256,
        description="workers on other hosts the master waits for (locust --worker --master-host)",
    )
    master_bind: str = Field(
        default="127.0.0.1", description="address the Locust master listens on for workers"
    )
    master_port: int | None = Field(
        default=None, ge=1024, le=65535, description="port of the Locust master; default: free"
    )
    shape: Literal["steady", "handover", "ward_round"] = "steady"
    surge_at: Duration = Field(
        default=30.0, description="handover/ward_round: when the surge starts, from load start"
    )
    surge_for: Duration = Field(default=60.0, description="handover/ward_round: surge length")
    pace: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="time compression of clinicians' think times (30: a minute of ward work "
        "in 2 s), so a short drill sees enough requests per 100 ms bucket",
    )
    workflows: dict[str, float] | None = Field(
        default=None, description="workflow name -> weight; default: every built-in persona"
    )
    locustfile: str | None = Field(default=None, description="your own locustfile instead")
    request_timeout: Duration = 10.0
    bearer_token_env: str | None = Field(
        default=None,
        description="environment variable holding a bearer token, read once when load starts "
        "(nothing outside the runner can change it later: use bearer_token_file on long drills)",
    )
    bearer_token_file: str | None = Field(
        default=None,
        description="file holding a bearer token, relative to the drill file; re-read while "
        "load runs (on change, and every 5 s) and sent to every worker, remote ones included",
    )
    ca_bundle: str | None = None
    integrity: IntegritySpec = Field(
        default_factory=IntegritySpec, description="how acknowledged writes are read back"
    )
    hl7: Hl7LoadSpec | None = Field(
        default=None,
        description="HL7 v2 senders (workflows hl7_lab, hl7_adt): where the interface "
        "engine listens and how delivery is read back",
    )
    dicom: DicomLoadSpec | None = Field(
        default=None,
        description="radiology (workflows dicom_modality, dicom_reading): the PACS and the "
        "studies sent to it",
    )

    @model_validator(mode="after")
    def _workflows_playable(self) -> LoadSpec:
        """Every named workflow is one the load can play, and an HL7 sender knows where the
        engine is; located at the workflow."""
        problems = []
        known = (*BUILTIN_WORKFLOWS, *HL7_WORKFLOWS, *DICOM_WORKFLOWS)
        for name in self.workflows or {}:
            if name not in known and not self.locustfile:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                message = f"unknown workflow {name!r}{hint}; built in: {', '.join(known)}"
                problems.append((name, message))
            elif name in HL7_WORKFLOWS and self.hl7 is None:
                problems.append(
                    (name, f"{name} sends HL7 messages: add 'load.hl7' with the interface "
                     "engine's host and port")
                )  # fmt: skip
            elif name in DICOM_WORKFLOWS and self.dicom is None:
                problems.append(
                    (name, f"{name} speaks DICOM: add 'load.dicom' with the PACS (service: "
                     "or host: and port:) and its called_ae")
                )  # fmt: skip
        if not problems:
            return self
        raise ValidationError.from_exception_data(
            "LoadSpec",
            [
                InitErrorDetails(
                    type="value_error",
                    loc=("workflows", name),
                    input=(self.workflows or {}).get(name),
                    ctx={"error": ValueError(message)},
                )
                for name, message in problems
            ],
        )

    @model_validator(mode="after")
    def _one_token_source(self) -> LoadSpec:
        """At most one token source, and a non-empty one; located at the offending key."""
        problem = None
        if self.bearer_token_env is not None and self.bearer_token_file is not None:
            problem = (
                "'bearer_token_env' and 'bearer_token_file' are two sources of the one token: "
                "give one of them, not both"
            )
        elif self.bearer_token_file is not None and not self.bearer_token_file.strip():
            problem = "'bearer_token_file' must name a file"
        elif self.bearer_token_env is not None and not self.bearer_token_env.strip():
            problem = "'bearer_token_env' must name an environment variable"
        if problem is None:
            return self
        key = "bearer_token_file" if self.bearer_token_file is not None else "bearer_token_env"
        raise ValidationError.from_exception_data(
            "LoadSpec",
            [
                InitErrorDetails(
                    type="value_error",
                    loc=(key,),
                    input=getattr(self, key),
                    ctx={"error": ValueError(problem)},
                )
            ],
        )


class DrillSpec(Frozen):
    """A drill: against which target, what counts as healthy, which faults, which gates."""

    apiVersion: Literal["resildrill/v1"]
    kind: Literal["Drill"]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    target: str = Field(description="path of the target file, relative to the drill file")
    slos: list[SLOSpec] = Field(min_length=1)
    slo_window: Duration = 1.0
    stability_window: Duration = 5.0
    phases: Phases = Field(default_factory=Phases)
    faults: list[FaultSpec] = Field(default_factory=list)
    manual: list[ManualStep] = Field(default_factory=list)
    gates: Gates = Field(default_factory=Gates)
    load: LoadSpec | None = None
    abort_when: list[HaltCondition] = Field(default_factory=list)
    max_fault_lifetime: Duration = Field(
        default=600.0,
        description="no fault outlives this, even if the runner hangs (enforced by the watchdog)",
    )

    @model_validator(mode="after")
    def _ids_unique(self) -> DrillSpec:
        ids = [f.id for f in self.faults] + [m.id for m in self.manual]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"fault and manual step ids must be unique: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _gates_measurable(self) -> DrillSpec:
        """Clinical gates need the load that measures them; located at the gate itself."""
        slo_workflows = [s.workflow for s in self.slos if s.workflow]
        problems = self.gates.load_problems(self.load, slo_workflows)
        if problems:
            raise ValidationError.from_exception_data(
                "Drill",
                [
                    InitErrorDetails(
                        type="value_error",
                        loc=("gates", *loc),
                        input=getattr(self.gates, str(loc[0])),
                        ctx={"error": ValueError(message)},
                    )
                    for loc, message in problems
                ],
            )
        return self
