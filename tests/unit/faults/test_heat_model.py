"""Unit and property tests of the pure heat model (faults/heat/model.py)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from resildrill.faults.heat import heat_series
from resildrill.faults.heat.model import (
    BAND_HYSTERESIS_C,
    OFF_STATES,
    ON_STATES,
    REPORT_CODE,
    REPORT_LABELS,
    STATE_CODE,
    STATES,
    THROTTLED_STATES,
    Schedule,
    scaling_warnings,
    schedule_table,
    simulate,
)
from resildrill.faults.heat.spec import HeatFaultSpec


def make_spec(**over: Any) -> HeatFaultSpec:
    """A heat spec with a London-like room and three servers, fields overridable."""
    doc: dict[str, Any] = {
        "id": "hw",
        "kind": "heat",
        "at": "1s",
        "duration": "240s",
        "time_scale": 60,
        "seed": 7,
        "room": {"preset": "london-2022", "cooling_restored_at": "150m"},
        "servers": {
            "a": {"class": "a2-volume", "rack_offset": 2},
            "b": {"class": "a2-volume"},
            "c": {"class": "a1-enterprise", "rack_offset": -4},
        },
    }
    for key, value in over.items():
        if key == "room" and isinstance(value, dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return HeatFaultSpec.model_validate(doc)


def transitions(schedule: Schedule, server: str) -> list[tuple[float, str, str]]:
    """(model time, previous, new) for each state change of one server."""
    return [(e.model_s, e.previous or "", e.state or "") for e in schedule.server_events(server)]


# --- examples -----------------------------------------------------------------------------


def test_room_rises_at_the_preset_rate_then_falls_no_faster_than_recool() -> None:
    """The first minute rises by about the preset rate; after restore the fall is <= 20 °C/h."""
    spec = make_spec(room={"rate": "medium", "initial": 22, "ceiling": 48}, tick="1s")
    s = simulate(spec)
    first_minute = s.sample_at(60).room_c - s.samples[0].room_c
    # full load at the start: slope = rate (1 °C/min), a little less over a whole minute
    assert 0.9 < first_minute <= 1.0
    restored = s.room.restored_at
    assert restored is not None
    after = [x for x in s.samples if x.model_s >= restored]
    for a, b in itertools.pairwise(after):
        assert a.room_c - b.room_c <= 20.0 * s.tick_s / 3600.0 + 1e-3


def test_a_hot_server_throttles_warns_cautions_and_shuts_down_after_60s() -> None:
    """The hottest server climbs every band in order and shuts down 60 s after caution."""
    s = simulate(make_spec())
    states = [new for _, _, new in transitions(s, "a")]
    assert states[:4] == ["throttled", "warning", "caution", "shutdown"]
    times = {new: t for t, _, new in transitions(s, "a")}
    assert times["shutdown"] - times["caution"] == pytest.approx(60.0)


def test_critical_means_hard_power_off() -> None:
    """A fast chiller trip takes a server past critical straight to power-off."""
    spec = make_spec(
        room={"preset": "chiller-trip", "rate": "high-density", "cooling_restored_at": None},
        duration="60s",
        servers={"a": {"class": "a2-volume", "shutdown_after": "10m"}},
    )
    s = simulate(spec)
    assert "power-off" in [new for _, _, new in transitions(s, "a")]


def test_servers_flap_when_cooling_is_short() -> None:
    """Without restored cooling, shut-down servers cool the room, restart and trip again."""
    spec = make_spec(
        room={"cooling_restored_at": None, "ceiling": 46, "other_load": 0.1},
        duration="480s",
        servers={
            "a": {"rack_offset": 2, "retry_interval": "2m", "heat_share": 0.7},
            "b": {"retry_interval": "2m", "heat_share": 0.2},
        },
    )
    s = simulate(spec)
    restarts = [e for e in s.events if e.action == "restart"]
    assert restarts, schedule_table(s)
    relapsed = [
        r
        for r in restarts
        if any(
            e.model_s > r.model_s and e.state in OFF_STATES for e in s.server_events(r.server or "")
        )
    ]
    assert relapsed, "\n".join(schedule_table(s))


def test_hardware_loss_after_long_critical_exposure() -> None:
    """A server long above critical is lost and never restarts within the fault."""
    spec = make_spec(
        room={
            "preset": "chiller-trip",
            "ceiling": 60,
            "other_load": 0.9,
            "cooling_restored_at": "40m",
        },
        duration="120s",
        servers={"a": {"class": "a2-volume", "hardware_loss_after": "2m"}},
    )
    s = simulate(spec)
    states = [new for _, _, new in transitions(s, "a")]
    assert "lost" in states
    assert "normal" not in states[states.index("lost") :]


def test_cooling_restored_is_an_event_at_its_exact_model_time() -> None:
    """The cooling_restored event sits at the configured model time, scaled exactly."""
    s = simulate(make_spec())
    restored = [e for e in s.events if e.action == "cooling_restored"]
    assert [e.model_s for e in restored] == [9000.0]
    assert restored[0].real_s == 9000.0 / 60


def test_table_and_warnings_and_series_shapes() -> None:
    """The plan table has a row per event; series cover the fault at 100 ms."""
    spec = make_spec(restart_time="30s")
    s = simulate(spec)
    rows = schedule_table(s)
    assert len(rows) == len(s.events) + 1
    series = heat_series(spec)
    assert len(series["heat.room"]["values"]) == 2401  # type: ignore[arg-type]
    assert set(series) >= {"heat.room", "heat.a.temp_c", "heat.a.state"}
    assert isinstance(scaling_warnings(s, 1e6), list)


def test_series_are_the_report_timeline_shape() -> None:
    """Planned and observed heat series load as the report's timeline series, as documented.

    docs/reports.md: ``heat.<server>.temp_c`` in °C, ``heat.<server>.state`` 0 normal, from 1
    to 2 running but slowed, 2 and above off, ``labels`` a dict of value -> name.
    """
    from resildrill.report.model import Timeline

    spec = make_spec()
    actions: list[dict[str, object]] = [
        {"at_s": 3.0, "server": "a", "state": "throttled", "action": "throttled"},
        {"at_s": 5.0, "server": "a", "state": "lost", "action": "lost"},
    ]
    raw = heat_series(spec, start_s=1.0, n_buckets=2500, actions=actions)
    timeline = Timeline.model_validate({"resolution_s": 0.1, "series": raw})
    names = set(timeline.series)
    assert {f"heat.{n}.temp_c" for n in "abc"} <= names
    assert not any(k.endswith(".inlet") for k in names)
    state = timeline.series["heat.a.state"]
    assert state.unit == "state" and state.labels == REPORT_LABELS
    assert set(REPORT_LABELS.values()) == set(STATES)
    seen = {v for v in state.values if v is not None}
    assert {0.0, 1.0} <= seen and max(seen) >= 2.0, "a reaches an off state in the example"
    for v in seen:
        assert state.labels[f"{v:g}"] in STATES  # the chart looks labels up this way
    # the report's meaning of a value: 0 normal, [1, 2) on but slowed, >= 2 off
    for name, code in REPORT_CODE.items():
        assert (code == 0) == (name == "normal")
        assert (1 <= code < 2) == (name in THROTTLED_STATES)
        assert (code >= 2) == (name in OFF_STATES)
    assert [REPORT_CODE[s] for s in STATES] == sorted(REPORT_CODE.values())
    observed = timeline.series["heat.a.observed_state"]
    assert observed.labels == REPORT_LABELS
    assert observed.values[29] == 0.0 and observed.values[30] == 1.0
    assert observed.values[50] == REPORT_CODE["lost"]


def test_short_scaled_intervals_are_warned() -> None:
    """A restart followed by a re-trip faster than the restart time is flagged."""
    spec = make_spec(
        room={"cooling_restored_at": None, "ceiling": 46, "other_load": 0.1},
        duration="480s",
        servers={
            "a": {"rack_offset": 2, "retry_interval": "2m", "heat_share": 0.7},
            "b": {"retry_interval": "2m", "heat_share": 0.2},
        },
    )
    s = simulate(spec)
    assert scaling_warnings(s, 1e6)
    assert not [w for w in scaling_warnings(s, 0.0) if "restart time" in w]


def test_bad_thresholds_and_missing_duration_are_refused() -> None:
    """Out-of-order thresholds and a heat fault without a duration do not validate."""
    with pytest.raises(ValidationError, match="thresholds must satisfy"):
        make_spec(servers={"a": {"warning": 50}})
    with pytest.raises(ValidationError, match="must be above its initial"):
        make_spec(room={"initial": 30, "ceiling": 25})
    with pytest.raises(ValidationError):
        make_spec(duration=None)


# --- properties ---------------------------------------------------------------------------

server_st = st.fixed_dictionaries(
    {
        "class": st.sampled_from(["a1-enterprise", "a2-volume", "a3-fresh-air"]),
        "rack_offset": st.floats(-3, 8),
        "retry_interval": st.sampled_from(["30s", "2m", "5m"]),
        "hysteresis": st.floats(0.5, 6),
    }
)
spec_st = st.builds(
    lambda servers, ceiling, rate, other, restore, seed, tick: make_spec(
        servers=servers,
        room={
            "preset": None,
            "initial": 22,
            "ceiling": ceiling,
            "rate": rate,
            "other_load": other,
            "cooling_restored_at": restore,
        },
        seed=seed,
        tick=tick,
        duration="200s",
    ),
    st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), server_st, min_size=1, max_size=4),
    st.floats(35, 60),
    st.sampled_from(["low-density", "medium", "hosting365", "high-density", 0.7]),
    st.floats(0, 0.8),
    st.sampled_from([None, "30m", "1h", "2h"]),
    st.integers(0, 2**32),
    st.sampled_from(["2s", "5s", "10s"]),
)
prop = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@prop
@given(spec_st)
def test_thresholds_are_crossed_in_order(spec: HeatFaultSpec) -> None:
    """Bands are first reached in threshold order; shutdowns follow caution, power-offs critical."""
    s = simulate(spec)
    for name, prof in s.profiles.items():
        first: dict[str, float] = {}
        for e in s.server_events(name):
            new, prev = e.state or "", e.previous or ""
            first.setdefault(new, e.model_s)
            if prev in ON_STATES and new in ON_STATES and STATE_CODE[new] > STATE_CODE[prev]:
                assert prof.band(e.inlet_c) == new
            if new == "shutdown" and prev in ON_STATES:
                assert prev == "caution" or e.inlet_c >= prof.critical
            if new == "power-off":
                assert e.inlet_c >= prof.critical
        reached = [first[b] for b in ("throttled", "warning", "caution") if b in first]
        assert reached == sorted(reached)
        # a band is never entered without its threshold being met at that tick
        for sample in s.samples:
            if sample.state[name] in THROTTLED_STATES:
                assert sample.inlet_c[name] >= prof.throttle - BAND_HYSTERESIS_C


@prop
@given(spec_st)
def test_no_restart_while_above_the_restart_threshold(spec: HeatFaultSpec) -> None:
    """Every restart happens below warning - hysteresis, after the retry interval."""
    s = simulate(spec)
    for name, prof in s.profiles.items():
        off_at: float | None = None
        for e in s.server_events(name):
            if e.state in OFF_STATES and e.action != "lost":
                off_at = e.model_s
            if e.action == "restart":
                assert e.inlet_c < prof.restart_below + 1e-6
                assert off_at is not None and e.model_s - off_at >= prof.retry_s - 1e-6
                assert e.previous != "lost"


@prop
@given(spec_st)
def test_hysteresis_is_respected(spec: HeatFaultSpec) -> None:
    """A server drops out of a band only once its inlet is 1 °C below that band's threshold."""
    s = simulate(spec)
    for name, prof in s.profiles.items():
        thresholds = {"throttled": prof.throttle, "warning": prof.warning, "caution": prof.caution}
        for e in s.server_events(name):
            prev, new = e.previous or "", e.state or ""
            if prev in thresholds and new in ON_STATES and STATE_CODE[new] < STATE_CODE[prev]:
                assert e.inlet_c < thresholds[prev] - 1.0 + 1e-6


@prop
@given(spec_st)
def test_same_seed_same_schedule(spec: HeatFaultSpec) -> None:
    """The model is deterministic: the same spec gives the same events and samples."""
    a, b = simulate(spec), simulate(spec)
    assert a.events == b.events
    assert a.samples == b.samples


@prop
@given(spec_st, st.sampled_from([1.0, 7.5, 60.0, 600.0, 3600.0]))
def test_time_scaling_is_exact(spec: HeatFaultSpec, scale: float) -> None:
    """Scaling changes only real times, each exactly model time / scale."""
    horizon = spec.horizon_model_s
    base = simulate(spec, horizon)
    scaled = simulate(spec.model_copy(update={"time_scale": scale}), horizon)
    assert [(e.model_s, e.action, e.server) for e in base.events] == [
        (e.model_s, e.action, e.server) for e in scaled.events
    ]
    for e in scaled.events:
        assert e.real_s == e.model_s / scale


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 2**32))
def test_seed_changes_only_jitter(seed_a: int, seed_b: int) -> None:
    """Different seeds move rack offsets by at most the jitter, never the thresholds."""
    a = simulate(make_spec(seed=seed_a, duration="30s"))
    b = simulate(make_spec(seed=seed_b, duration="30s"))
    for name in a.profiles:
        pa, pb = a.profiles[name], b.profiles[name]
        assert abs(pa.offset - pb.offset) <= 2 * 0.5 + 1e-6
        assert (pa.throttle, pa.warning, pa.caution, pa.critical) == (
            pb.throttle,
            pb.warning,
            pb.caution,
            pb.critical,
        )


def test_series_align_to_the_run_timeline_and_observed_states_follow_actions() -> None:
    """Buckets before the injection are None; observed states change at each action's at_s."""
    spec = make_spec(duration="10s")
    series = heat_series(spec, start_s=2.0, n_buckets=150)
    room = series["heat.room"]["values"]
    assert isinstance(room, list) and len(room) == 150
    assert room[0] is None and room[19] is None and room[20] == 25.0 and room[125] is None
    actions: list[dict[str, object]] = [
        {"at_s": 3.0, "server": "a", "state": "throttled", "action": "throttle"},
        {"at_s": 5.05, "server": "a", "state": "shutdown", "action": "shutdown"},
        {"at_s": 5.2, "server": "a", "action": "held"},
    ]
    observed = heat_series(spec, start_s=2.0, n_buckets=150, actions=actions)
    values = observed["heat.a.observed_state"]["values"]
    assert isinstance(values, list)
    assert values[29] == REPORT_CODE["normal"]
    assert values[30] == REPORT_CODE["throttled"]
    assert values[50] == REPORT_CODE["shutdown"] and values[-1] == REPORT_CODE["shutdown"]


def test_the_example_heatwave_drill_plays_the_story_it_tells() -> None:
    """drills/heatwave.yaml: a then b shut down, b restarts and trips again, both come back."""
    from pathlib import Path

    from resildrill.drill.loader import load_drill

    root = Path(__file__).resolve().parents[3]
    loaded = load_drill(root / "drills" / "heatwave.yaml")
    (fault,) = loaded.spec.faults
    assert isinstance(fault, HeatFaultSpec)
    story = [
        (e.server, e.action)
        for e in simulate(fault).events
        if e.action in ("shutdown", "power-off", "restart", "cooling_restored")
    ]
    assert story == [
        ("replica-a", "shutdown"),
        ("replica-b", "shutdown"),
        ("replica-b", "restart"),
        ("replica-b", "shutdown"),
        (None, "cooling_restored"),
        ("replica-b", "restart"),
        ("replica-a", "restart"),
    ]
    assert not scaling_warnings(simulate(fault), 2.0)
