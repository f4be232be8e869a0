"""The pure, deterministic heat model: from a ``kind: heat`` spec to a schedule of states.

Owns the physics and the protective logic, and nothing else (no clock, no process, no I/O):

- **Room inlet** follows a first-order curve toward an equilibrium that depends on cooling
  and on the heat still being produced: ``T_eq = T0 + (ceiling - T0) * load`` while cooling is
  lost, ``T0`` while it works; each model tick moves ``T`` exactly (``T_eq + (T - T_eq) *
  exp(-dt/tau)``), with ``tau = (ceiling - T0) / rate`` so that the initial slope at full load
  is the preset heating rate (clinical.md 2f.1). After cooling returns the fall is limited to
  ``recool_rate`` °C/h (ASHRAE's 20 °C/h). Servers that are off stop heating the room, which is
  what makes them flap: the room cools, they restart, the load returns, they trip again
  ("re-trips if cooling still short", 2f.3).
- **Each server** reads ``room + rack_offset + seeded jitter`` and climbs bands
  ``normal < throttled < warning < caution`` (1 °C hysteresis going down); ``shutdown_after``
  at caution triggers a graceful shutdown (HPE iLO: 60 s), critical a hard power-off; an off
  server restarts when its inlet is below ``warning - hysteresis`` and it has been off for
  its (jittered) retry interval (DL380 G3: 5 min); long enough above critical, it is lost.

Model time is seconds since injection; real time is model time divided by ``time_scale``,
exactly. The same spec always yields the same schedule.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

from resildrill.faults.heat.spec import (
    HEATING_RATES,
    ROOM_PRESETS,
    SERVER_CLASSES,
    HeatFaultSpec,
    RoomSpec,
    ServerSpec,
)

#: Server states, coolest first; the first four are "on".
STATES = ("normal", "throttled", "warning", "caution", "shutdown", "power-off", "lost")
ON_STATES = frozenset(STATES[:4])
THROTTLED_STATES = frozenset(("throttled", "warning", "caution"))
OFF_STATES = frozenset(("shutdown", "power-off", "lost"))
STATE_CODE = {s: i for i, s in enumerate(STATES)}
#: A state's value in the report's ``heat.<server>.state`` series (docs/reports.md): 0 normal,
#: 1 up to 2 running but slowed, 2 and above off; the higher, the worse (a display bin keeps
#: the worst). ``REPORT_LABELS`` names each value, keyed as the report model wants.
REPORT_CODE: dict[str, float] = {
    "normal": 0.0,
    "throttled": 1.0,
    "warning": 1.25,
    "caution": 1.5,
    "shutdown": 2.0,
    "power-off": 2.5,
    "lost": 3.0,
}
REPORT_LABELS: dict[str, str] = {f"{code:g}": state for state, code in REPORT_CODE.items()}
#: °C an on-server must fall below a band's threshold before it drops out of that band.
BAND_HYSTERESIS_C = 1.0

DEFAULT_INITIAL_C = 22.0
DEFAULT_CEILING_C = 48.0
DEFAULT_RATE = "medium"


@dataclass(frozen=True)
class Room:
    """The resolved room: temperatures in °C, times in model seconds."""

    initial: float
    ceiling: float
    rate_c_per_min: float
    lost_at: float
    restored_at: float | None
    recool_c_per_h: float
    other_load: float

    @property
    def tau_s(self) -> float:
        """Time constant of the first-order rise (initial slope at full load = rate)."""
        return (self.ceiling - self.initial) / self.rate_c_per_min * 60.0

    def cooling_works(self, model_s: float) -> bool:
        """Whether the room's cooling is working at ``model_s``."""
        if model_s < self.lost_at:
            return True
        return self.restored_at is not None and model_s >= self.restored_at


@dataclass(frozen=True)
class Profile:
    """One server's resolved thermal profile (jitter applied)."""

    name: str
    server_class: str
    offset: float
    heat_share: float
    throttle: float
    warning: float
    caution: float
    critical: float
    shutdown_after: float
    restart_below: float
    retry_s: float
    hardware_loss_after: float | None
    on_critical: str

    def band(self, inlet: float) -> str:
        """The on-state an inlet temperature puts the server in, ignoring hysteresis."""
        if inlet >= self.caution:
            return "caution"
        if inlet >= self.warning:
            return "warning"
        if inlet >= self.throttle:
            return "throttled"
        return "normal"


@dataclass(frozen=True)
class HeatEvent:
    """A change in the room or in one server, at a model time and its scaled real time."""

    model_s: float
    real_s: float
    action: str  # cooling_lost | cooling_restored | a state of STATES | restart
    server: str | None
    state: str | None
    previous: str | None
    inlet_c: float
    room_c: float


@dataclass(frozen=True)
class Sample:
    """The room and every server at one model tick."""

    model_s: float
    room_c: float
    inlet_c: dict[str, float]
    state: dict[str, str]


@dataclass(frozen=True)
class Schedule:
    """What the model says will happen, tick by tick and change by change."""

    time_scale: float
    tick_s: float
    horizon_s: float
    room: Room
    profiles: dict[str, Profile]
    events: list[HeatEvent]
    samples: list[Sample] = field(repr=False)

    def real(self, model_s: float) -> float:
        """Real seconds from injection for a model time (exact division)."""
        return model_s / self.time_scale

    def server_events(self, server: str) -> list[HeatEvent]:
        """The events of one server, in order."""
        return [e for e in self.events if e.server == server]

    def sample_at(self, model_s: float) -> Sample:
        """The last tick at or before ``model_s`` (the state holds between ticks)."""
        index = math.floor(model_s / self.tick_s + 1e-9)
        return self.samples[max(0, min(index, len(self.samples) - 1))]


# --- resolution ---------------------------------------------------------------------------


def resolve_room(spec: RoomSpec) -> Room:
    """The room with its preset applied and defaults filled; raises ValueError if unusable."""
    preset = ROOM_PRESETS.get(spec.preset or "", {})
    initial = spec.initial if spec.initial is not None else preset.get("initial", DEFAULT_INITIAL_C)
    ceiling = spec.ceiling if spec.ceiling is not None else preset.get("ceiling", DEFAULT_CEILING_C)
    rate = spec.rate if spec.rate is not None else preset.get("rate", DEFAULT_RATE)
    rate_c = HEATING_RATES[rate] if isinstance(rate, str) else float(rate)
    assert isinstance(initial, float | int) and isinstance(ceiling, float | int)
    if float(ceiling) <= float(initial):
        raise ValueError(f"room ceiling {ceiling} °C must be above its initial {initial} °C")
    return Room(
        initial=float(initial),
        ceiling=float(ceiling),
        rate_c_per_min=rate_c,
        lost_at=spec.cooling_lost_at,
        restored_at=spec.cooling_restored_at,
        recool_c_per_h=spec.recool_rate,
        other_load=spec.other_load,
    )


def resolve_profile(
    name: str, server: ServerSpec, *, seed: int, jitter: float, default_share: float
) -> Profile:
    """One server's profile: its class preset, overrides, and seeded jitter."""
    base = SERVER_CLASSES[server.server_class]
    # A string seed is hashed with SHA-512 by random.Random: stable across runs and hosts.
    rng = random.Random(f"resildrill-heat:{seed}:{name}")
    offset_jitter = rng.uniform(-jitter, jitter) if jitter > 0 else 0.0
    retry_factor = rng.uniform(0.8, 1.2)
    throttle = server.throttle if server.throttle is not None else base["throttle"]
    warning = server.warning if server.warning is not None else base["warning"]
    caution = server.caution if server.caution is not None else base["caution"]
    critical = server.critical if server.critical is not None else base["critical"]
    if not throttle <= warning <= caution < critical:
        raise ValueError(
            f"server {name!r}: thresholds must satisfy throttle <= warning <= caution < "
            f"critical (got {throttle}, {warning}, {caution}, {critical})"
        )
    return Profile(
        name=name,
        server_class=server.server_class,
        offset=round(server.rack_offset + offset_jitter, 3),
        heat_share=server.heat_share if server.heat_share is not None else default_share,
        throttle=throttle,
        warning=warning,
        caution=caution,
        critical=critical,
        shutdown_after=server.shutdown_after,
        restart_below=round(warning - server.hysteresis, 3),
        retry_s=round(server.retry_interval * retry_factor, 3),
        hardware_loss_after=server.hardware_loss_after,
        on_critical=server.on_critical,
    )


def resolve(spec: HeatFaultSpec) -> tuple[Room, dict[str, Profile]]:
    """The room and the server profiles a spec describes."""
    room = resolve_room(spec.room)
    share = (1.0 - room.other_load) / len(spec.servers)
    profiles = {
        name: resolve_profile(name, s, seed=spec.seed, jitter=spec.jitter, default_share=share)
        for name, s in sorted(spec.servers.items())
    }
    return room, profiles


# --- simulation ---------------------------------------------------------------------------


@dataclass
class _Server:
    """Mutable per-server bookkeeping during one simulation."""

    state: str = "normal"
    caution_since: float | None = None
    off_since: float | None = None
    critical_s: float = 0.0


def simulate(spec: HeatFaultSpec, horizon_s: float | None = None) -> Schedule:
    """Run the model over ``horizon_s`` model seconds (default: the fault's whole span)."""
    room, profiles = resolve(spec)
    dt = spec.tick
    horizon = spec.horizon_model_s if horizon_s is None else horizon_s
    steps = math.floor(horizon / dt + 1e-9)
    scale = spec.time_scale
    servers = {name: _Server() for name in profiles}
    events: list[HeatEvent] = []
    samples: list[Sample] = []
    temp = room.initial
    tau = room.tau_s
    cooling_marks: list[tuple[float, str]] = [(room.lost_at, "cooling_lost")]
    if room.restored_at is not None:
        cooling_marks.append((room.restored_at, "cooling_restored"))

    def emit(t: float, action: str, server: str | None, state: str | None, prev: str | None,
             inlet: float) -> None:  # fmt: skip
        events.append(
            HeatEvent(t, t / scale, action, server, state, prev, round(inlet, 3), round(temp, 3))
        )

    for k in range(steps + 1):
        t = k * dt
        if k > 0:
            # Exact first-order step over [t - dt, t) with the load and cooling at its start.
            t_prev = t - dt
            if room.cooling_works(t_prev):
                t_eq = room.initial
            else:
                load = room.other_load + sum(
                    p.heat_share for n, p in profiles.items() if servers[n].state in ON_STATES
                )
                t_eq = room.initial + (room.ceiling - room.initial) * min(load, 1.5)
            new = t_eq + (temp - t_eq) * math.exp(-dt / tau)
            if room.cooling_works(t_prev) and t_prev >= room.lost_at and new < temp:
                # A controlled re-cool: never faster than recool_rate (ASHRAE 20 °C/h).
                new = max(new, temp - room.recool_c_per_h * dt / 3600.0)
            temp = new
        # Cooling events at their exact model time, reported at the tick that applies them.
        while cooling_marks and cooling_marks[0][0] <= t:
            at, what = cooling_marks.pop(0)
            if at <= horizon:
                emit(at, what, None, None, None, temp)
        inlets: dict[str, float] = {}
        for name, prof in profiles.items():
            srv = servers[name]
            # Decisions use the reported (rounded) reading, so tables and checks agree.
            inlet = round(temp + prof.offset, 3)
            inlets[name] = inlet
            if k > 0 and inlet >= prof.critical:
                srv.critical_s += dt
            prev = srv.state
            if prev in ON_STATES:
                if inlet >= prof.critical:
                    new_state = "power-off" if prof.on_critical == "power-off" else "shutdown"
                else:
                    band = prof.band(inlet)
                    if STATE_CODE[band] < STATE_CODE[prev]:
                        band = prof.band(inlet + BAND_HYSTERESIS_C)
                    new_state = band
                    if band == "caution":
                        if srv.caution_since is None:
                            srv.caution_since = t
                        elif t - srv.caution_since >= prof.shutdown_after - 1e-9:
                            new_state = "shutdown"
                    else:
                        srv.caution_since = None
                if new_state in OFF_STATES:
                    srv.off_since = t
                    srv.caution_since = None
                if new_state != prev:
                    srv.state = new_state
                    emit(t, new_state, name, new_state, prev, inlet)
            else:
                if (
                    prev != "lost"
                    and prof.hardware_loss_after is not None
                    and srv.critical_s >= prof.hardware_loss_after - 1e-9
                ):
                    srv.state = "lost"
                    emit(t, "lost", name, "lost", prev, inlet)
                elif (
                    prev != "lost"
                    and srv.off_since is not None
                    and inlet < prof.restart_below
                    and t - srv.off_since >= prof.retry_s - 1e-9
                ):
                    srv.state = "normal"
                    srv.off_since = None
                    srv.caution_since = None
                    emit(t, "restart", name, "normal", prev, inlet)
        samples.append(Sample(t, round(temp, 3), inlets, {n: servers[n].state for n in profiles}))
    events.sort(key=lambda e: (e.model_s, 0 if e.server is None else 1, e.server or ""))
    return Schedule(scale, dt, horizon, room, profiles, events, samples)


# --- what the plan and the report show ----------------------------------------------------


def format_model_time(model_s: float) -> str:
    """``1h02m05s`` style, to the second."""
    total = round(model_s)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def schedule_table(schedule: Schedule) -> list[str]:
    """The schedule as fixed-width text rows (model time, real time, temperatures, state)."""
    rows = [
        f"{'model':>10}  {'real':>8}  {'room °C':>7}  {'server':<14} {'inlet °C':>8}  change",
    ]
    for e in schedule.events:
        change = e.action if e.server is None else f"{e.previous} -> {e.state}"
        if e.action == "restart":
            change = f"{e.previous} -> restart"
        rows.append(
            f"{format_model_time(e.model_s):>10}  {e.real_s:7.2f}s  {e.room_c:7.1f}  "
            f"{e.server or '(room)':<14} {e.inlet_c if e.server else e.room_c:8.1f}  {change}"
        )
    return rows


def scaling_warnings(schedule: Schedule, restart_time_s: float) -> list[str]:
    """Where a scaled interval is shorter than the real time a server takes to restart.

    Real restarts do not shrink with the time scale: such a server will lag its plan (the
    report shows model and real times side by side instead of scaling what was measured).
    """
    warnings: list[str] = []
    for name in schedule.profiles:
        evs = schedule.server_events(name)
        for a, b in itertools.pairwise(evs):
            gap = b.real_s - a.real_s
            off_then_on = a.state in OFF_STATES and b.action == "restart"
            on_then_off = a.action == "restart" and b.state in OFF_STATES
            if (off_then_on or on_then_off) and gap < restart_time_s:
                warnings.append(
                    f"server {name!r}: {a.action} at {a.real_s:.2f}s then {b.action} at "
                    f"{b.real_s:.2f}s real ({format_model_time(b.model_s - a.model_s)} model) "
                    f"is shorter than its restart time {restart_time_s:g}s: it will lag the plan"
                )
    prof_min = min((p.shutdown_after for p in schedule.profiles.values()), default=0.0)
    if prof_min and schedule.real(schedule.tick_s) > 1.0:
        warnings.append(
            f"one model tick is {schedule.real(schedule.tick_s):.2f}s real: state changes are "
            "at least that coarse"
        )
    if schedule.room.restored_at is not None and schedule.room.restored_at > schedule.horizon_s:
        warnings.append("cooling is restored after the fault ends: raise duration or time_scale")
    return warnings


def series(
    schedule: Schedule,
    resolution_s: float = 0.1,
    *,
    start_s: float = 0.0,
    n_buckets: int | None = None,
) -> dict[str, dict[str, object]]:
    """The planned room/inlet temperatures and server states per ``resolution_s`` bucket.

    Keys and shapes are the report's (docs/reports.md, ``resildrill.report.model.Series``):
    ``heat.room`` and ``heat.<server>.temp_c`` in °C, ``heat.<server>.state`` as
    ``REPORT_CODE`` values with ``labels`` a dict naming each value. Bucket ``i`` covers real
    time ``[i * resolution_s, (i + 1) * resolution_s)`` of a timeline in which the fault was
    injected at ``start_s``; buckets before the injection or after the fault's span are None.
    ``n_buckets`` defaults to the end of the fault's span.
    """
    end_s = start_s + schedule.real(schedule.horizon_s)
    n = n_buckets if n_buckets is not None else math.floor(end_s / resolution_s + 1e-9) + 1
    picks: list[Sample | None] = []
    for i in range(n):
        real = i * resolution_s - start_s
        if real < -1e-9 or real > schedule.real(schedule.horizon_s) + 1e-9:
            picks.append(None)
        else:
            picks.append(schedule.sample_at(max(0.0, real) * schedule.time_scale))
    out: dict[str, dict[str, object]] = {
        "heat.room": {"unit": "°C", "values": [s and s.room_c for s in picks]}
    }
    for name in schedule.profiles:
        out[f"heat.{name}.temp_c"] = {
            "unit": "°C",
            "values": [s and s.inlet_c[name] for s in picks],
        }
        out[f"heat.{name}.state"] = {
            "unit": "state",
            "labels": dict(REPORT_LABELS),
            "values": [None if s is None else REPORT_CODE[s.state[name]] for s in picks],
        }
    return out


def observed_states(
    actions: list[dict[str, object]], n_buckets: int, resolution_s: float = 0.1
) -> dict[str, dict[str, object]]:
    """What the servers really did, per bucket, from a run's ``faults[].actions``.

    Each action carrying ``server``, ``state`` and the runner's ``at_s`` sets that server's
    state from its bucket on (an ``up`` action marks a restart done, a ``held`` one changes
    nothing); before its first action a server is ``normal``.
    """
    out: dict[str, dict[str, object]] = {}
    servers = sorted({str(a["server"]) for a in actions if a.get("server")})
    for name in servers:
        values: list[float | None] = [REPORT_CODE["normal"]] * n_buckets
        for a in sorted(
            (a for a in actions if a.get("server") == name and a.get("state") in REPORT_CODE),
            key=lambda a: float(a.get("at_s") or 0.0),  # type: ignore[arg-type]
        ):
            first = math.floor(float(a.get("at_s") or 0.0) / resolution_s + 1e-9)  # type: ignore[arg-type]
            code = REPORT_CODE[str(a["state"])]
            for i in range(max(0, first), n_buckets):
                values[i] = code
        out[f"heat.{name}.observed_state"] = {
            "unit": "state",
            "labels": dict(REPORT_LABELS),
            "values": values,
        }
    return out
