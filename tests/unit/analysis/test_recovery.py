"""Recovery as DESIGN.md defines it, on small hand-made series (one test per edge case)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resildrill.analysis import (
    FaultWindow,
    analyse_fault,
    baseline_value,
    degraded_flags,
    outage_flags,
    slo_breaches,
    steady_state_holds,
    summarise,
)
from resildrill.drill.model import parse_slo
from resildrill.observe.metrics import SourceSeries

ALL_OK = parse_slo("success_rate >= 1.0")


def series(pattern: str, *, name: str = "ehr", latency_s: float = 0.01) -> SourceSeries:
    """A probe series, one character per 100 ms bucket.

    ``.`` one success, ``x`` one failure, ``_`` no sample, ``h`` one success and one failure.
    """
    s = SourceSeries(name=name, source="probe", role="clinical")
    for i, ch in enumerate(pattern):
        t = i * 0.1 + 0.01
        if ch in ".h":
            s.add(t, True, latency_s)
        if ch in "xh":
            s.add(t, False, latency_s)
    s.padded(len(pattern))
    return s


def latency_series(per_bucket: list[list[float]]) -> SourceSeries:
    """A workflow series whose bucket ``i`` holds successful samples with these latencies."""
    s = SourceSeries(name="chart-obs", source="workflow")
    for i, lats in enumerate(per_bucket):
        for lat in lats:
            s.add(i * 0.1 + 0.01, True, lat)
    s.padded(len(per_bucket))
    return s


def on(flags: list[bool]) -> list[int]:
    """Indexes of the flagged buckets."""
    return [i for i, f in enumerate(flags) if f]


def flags(spec: str) -> list[bool]:
    """Flags from a string: ``#`` flagged, anything else not."""
    return [c == "#" for c in spec]


def window(
    requested: float,
    *,
    injected: float | None = None,
    reverted: float | None = None,
    counted_from: str = "revert",
    watch_end: float,
    truncated_by: str | None = None,
) -> FaultWindow:
    """A fault window with sensible defaults (injected 10 ms after the request)."""
    return FaultWindow(
        id="f1",
        kind="process",
        inject_requested_at_s=requested,
        injected_at_s=requested + 0.01 if injected is None else injected,
        reverted_at_s=reverted,
        counted_from="revert" if counted_from == "revert" else "inject",
        watch_end_s=watch_end,
        truncated_by=truncated_by,
    )


# ---------------------------------------------------------------------------------------
# SLO judgement and dating back


def test_healthy_series_never_breaches() -> None:
    """A series with only successes gives no breached bucket."""
    s = series("." * 40)
    assert on(slo_breaches(s, ALL_OK, window_buckets=10, min_samples=1, n_buckets=40)) == []


def test_onset_and_end_are_dated_back_with_a_one_second_window() -> None:
    """With a 1 s window the raw breach [11, 24) is dated back to the failures [10, 15)."""
    s = series("." * 10 + "x" * 5 + "." * 25)
    slo = parse_slo("success_rate >= 0.9")  # breaches from the 2nd failure in a window
    got = slo_breaches(s, slo, window_buckets=10, min_samples=1, n_buckets=40)
    assert on(got) == [10, 11, 12, 13, 14]


def test_onset_is_dated_back_to_the_first_bad_bucket_of_the_window() -> None:
    """A breach first seen at bucket 14 starts at the window's earliest failure (bucket 8)."""
    s = series("." * 8 + "x" + "." * 5 + "x" + "." * 25)
    slo = parse_slo("success_rate >= 0.85")  # needs 2 failures in 10 samples
    got = slo_breaches(s, slo, window_buckets=10, min_samples=1, n_buckets=40)
    assert on(got) == list(range(8, 15))


def test_breach_end_keeps_the_unknown_gap_until_the_next_sample() -> None:
    """Buckets without samples after the last failure stay breached until fresh evidence."""
    s = series("." * 10 + "x" + "_" * 4 + "." * 25)
    got = slo_breaches(s, ALL_OK, window_buckets=10, min_samples=1, n_buckets=40)
    assert on(got) == [10, 11, 12, 13, 14]


def test_breach_still_open_at_the_end_lasts_to_the_last_bucket() -> None:
    """A breach that never ends is breached through the last bucket."""
    s = series("." * 10 + "x" * 10)
    got = slo_breaches(s, ALL_OK, window_buckets=10, min_samples=1, n_buckets=25)
    assert on(got) == list(range(10, 25))


def test_min_samples_keeps_the_previous_verdict() -> None:
    """Windows below min_samples are not judged: False at the start, then carried."""
    s = series("x" + "_" * 12 + "x" * 4 + "_" * 12 + "." * 20)
    got = slo_breaches(s, ALL_OK, window_buckets=5, min_samples=3, n_buckets=49)
    # bucket 0's lone failure is never judged; the breach seen at 15 (3 samples) dates back to
    # 13, is carried over the unjudged empty stretch and ends at the next sample (29).
    assert on(got) == list(range(13, 29))


def test_relative_slo_uses_the_baseline() -> None:
    """``p95 <= 2x baseline`` breaches when latency triples against the measured baseline."""
    per_bucket = [[0.1]] * 20 + [[0.3]] * 5 + [[0.1]] * 20
    s = latency_series(per_bucket)
    base = baseline_value(s, "p95", 0, 20)
    assert base is not None and abs(base - 0.1) < 0.002
    slo = parse_slo("p95 <= 2x baseline")
    got = slo_breaches(s, slo, window_buckets=1, min_samples=1, n_buckets=45, baseline=base)
    assert on(got) == list(range(20, 25))


def test_relative_slo_without_baseline_is_never_breached() -> None:
    """Without a baseline a relative SLO cannot be judged, so it never breaches."""
    s = latency_series([[5.0]] * 10)
    slo = parse_slo("p95 <= 2x baseline")
    got = slo_breaches(s, slo, window_buckets=10, min_samples=1, n_buckets=10, baseline=None)
    assert got == [False] * 10


def test_latency_percentile_slo() -> None:
    """``p95 <= 300ms`` breaches over the slow buckets, dated to their own p95, not a stray."""
    fast = [0.05] * 19
    per_bucket = [[*fast, 0.5]] * 10 + [[0.8] * 20] * 3 + [[*fast, 0.05]] * 20
    s = latency_series(per_bucket)
    slo = parse_slo("p95 <= 300ms")
    got = slo_breaches(s, slo, window_buckets=10, min_samples=1, n_buckets=33)
    assert on(got) == [10, 11, 12]


def test_error_rate_slo_and_baseline_values() -> None:
    """``error_rate <= 0.2`` over 1 s breaches on a burst; baseline rates are measured."""
    s = series("h" * 3 + "." * 7 + "x" * 3 + "." * 20)
    assert baseline_value(s, "error_rate", 0, 10) == 3 / 13
    assert baseline_value(s, "success_rate", 0, 10) == 1 - 3 / 13
    assert baseline_value(s, "p95", 40, 50) is None
    got = slo_breaches(
        s, parse_slo("error_rate <= 0.2"), window_buckets=10, min_samples=1, n_buckets=33
    )
    assert got[0] and got[10] and not got[30]


def test_inputs_are_not_mutated() -> None:
    """Judging a series shorter than n_buckets leaves the series untouched."""
    s = series("..xx.")
    before = copy.deepcopy(s)
    slo_breaches(s, ALL_OK, window_buckets=3, min_samples=1, n_buckets=20)
    slo_breaches(s, parse_slo("p95 <= 1ms"), window_buckets=3, min_samples=1, n_buckets=20)
    outage_flags([s], 20)
    assert s.counts == before.counts and s.failures == before.failures
    assert [h.bins if h else None for h in s.latency] == [
        h.bins if h else None for h in before.latency
    ]


# ---------------------------------------------------------------------------------------
# Outage, degraded, steady state, summary


def test_outage_inherits_over_empty_buckets() -> None:
    """An empty bucket keeps the clinical probe's previous state, up or down."""
    s = series("._x__.__")
    assert on(outage_flags([s], 10)) == [2, 3, 4]


def test_outage_needs_every_sample_of_a_bucket_failed_in_any_clinical_probe() -> None:
    """A mixed bucket is not outage; either probe being down is."""
    a = series("h.x..", name="a")
    b = series("...x.", name="b")
    assert on(outage_flags([a, b], 5)) == [2, 3]


def test_degraded_is_any_breach() -> None:
    """Degraded ORs the breach lists, shorter lists reading as not breached."""
    got = degraded_flags([flags("#..."), flags(".#"), flags("...#")], 5)
    assert on(got) == [0, 1, 3]


def test_steady_state_holds_only_without_degraded_buckets() -> None:
    """Steady state fails when any baseline bucket is degraded, and only then."""
    deg = flags("....#.....")
    assert steady_state_holds(deg, 0, 4)
    assert not steady_state_holds(deg, 0, 5)
    assert steady_state_holds(deg, 5, 50)


def test_availability_counts_each_bucket_once() -> None:
    """Availability is one minus the outage share of the range; an empty range is 1.0."""
    out = flags("..##......")
    deg = flags(".####.....")
    got = summarise(out, deg, 0, 10)
    assert (got.outage_s, got.degraded_s, got.availability) == (0.2, 0.4, 0.8)
    assert summarise(out, deg, 4, 4).availability == 1.0


# ---------------------------------------------------------------------------------------
# Per fault


def test_no_breach_means_recovered_with_zero_time() -> None:
    """A fault that never degrades has no detection time, recovers in 0 s, no relapses."""
    deg = flags("." * 50)
    got = analyse_fault(window(1.0, reverted=2.0, watch_end=5.0), deg, deg, stability_buckets=10)
    assert got.time_to_detect_s is None
    assert got.time_to_recover_s == 0.0
    assert got.recovered and got.recovered_at_s is None and got.relapses == 0


def test_detect_and_recover_counted_from_revert() -> None:
    """Detection runs from the request; recovery from the revert to the stable run's start."""
    deg = flags("." * 12 + "#" * 8 + "." * 30)
    w = window(1.05, reverted=1.5, watch_end=5.0)
    got = analyse_fault(w, deg, deg, stability_buckets=10)
    assert got.time_to_detect_s == 0.15
    assert got.recovered and got.recovered_at_s == 2.0
    assert got.time_to_recover_s == 0.5
    assert got.outage_s == 0.8 and got.degraded_s == 0.8


def test_recovery_counted_from_injection_for_self_healing() -> None:
    """Without a revert (a supervisor restarts), recovery counts from the injection."""
    deg = flags("." * 10 + "#" * 15 + "." * 30)
    w = window(1.0, injected=1.02, counted_from="inject", watch_end=5.5)
    got = analyse_fault(w, deg, deg, stability_buckets=10)
    assert got.recovered_at_s == 2.5 and got.time_to_recover_s == 1.48


def test_healthy_before_the_revert_recovers_at_the_revert_bucket() -> None:
    """A stable run already under way when the fault is reverted gives a recovery time of 0."""
    deg = flags("." * 10 + "##" + "." * 40)
    got = analyse_fault(window(1.0, reverted=3.04, watch_end=5.0), deg, deg, stability_buckets=5)
    assert got.recovered_at_s == 3.0 and got.time_to_recover_s == 0.0


def test_no_recovery_when_the_window_ends_first() -> None:
    """A healthy run shorter than the stability window at the end of the run is no recovery."""
    deg = flags("." * 10 + "#" * 30 + "." * 5)
    got = analyse_fault(window(1.0, reverted=2.0, watch_end=4.5), deg, deg, stability_buckets=10)
    assert not got.recovered
    assert got.time_to_recover_s is None and got.recovered_at_s is None
    assert got.time_to_detect_s == 0.0


def test_relapse_after_recovery_is_counted() -> None:
    """Breaches after a stable recovery count as relapses, one per degraded run."""
    deg = flags("." * 10 + "#" * 5 + "." * 10 + "##" + "." * 3 + "#" + "." * 10)
    got = analyse_fault(window(1.0, reverted=1.2, watch_end=4.1), deg, deg, stability_buckets=5)
    assert got.recovered and got.recovered_at_s == 1.5
    assert got.relapses == 2
    assert got.degraded_s == 0.8


def test_overlapping_faults_truncate_the_watch() -> None:
    """A watch cut by the next injection accepts a short healthy run reaching its end."""
    deg = flags("." * 10 + "#" * 10 + "." * 3 + "#" * 10 + "." * 20)
    first = window(1.0, reverted=1.5, watch_end=2.3, truncated_by="f2")
    got = analyse_fault(first, deg, deg, stability_buckets=10)
    assert got.recovered and got.recovered_at_s == 2.0 and got.truncated_by == "f2"
    assert got.degraded_s == 1.0  # the next fault's breach is not counted here
    untruncated = window(1.0, reverted=1.5, watch_end=2.3)
    assert not analyse_fault(untruncated, deg, deg, stability_buckets=10).recovered


def test_truncated_while_still_degraded_is_no_recovery() -> None:
    """A watch cut short while the system is still degraded does not recover."""
    deg = flags("." * 10 + "#" * 20)
    w = window(1.0, reverted=1.5, watch_end=2.3, truncated_by="f2")
    got = analyse_fault(w, deg, deg, stability_buckets=10)
    assert not got.recovered and got.truncated_by == "f2"


def test_breach_before_injection_detects_at_zero() -> None:
    """A system already degraded when the fault is requested is detected at 0 s."""
    deg = flags("." * 5 + "#" * 10 + "." * 30)
    w = window(1.03, reverted=1.2, watch_end=4.5)
    got = analyse_fault(w, deg, deg, stability_buckets=10)
    assert got.time_to_detect_s == 0.0
    assert got.recovered_at_s == 1.5 and got.time_to_recover_s == 0.3
    assert not steady_state_holds(deg, 0, 10)


def test_failed_injection_counts_from_the_request() -> None:
    """With neither injection nor revert times, recovery counts from the request."""
    deg = flags("." * 10 + "###" + "." * 20)
    w = FaultWindow("f1", "process", 1.0, None, None, "inject", 3.3, None)
    got = analyse_fault(w, deg, deg, stability_buckets=5)
    assert got.recovered_at_s == 1.3 and got.time_to_recover_s == 0.3


def test_watch_is_clipped_to_the_observed_buckets() -> None:
    """Buckets past the flags given are never taken as a healthy recovery."""
    deg = flags("." * 10 + "#" * 5 + "." * 3)
    got = analyse_fault(window(1.0, reverted=1.2, watch_end=9.0), deg, deg, stability_buckets=5)
    assert not got.recovered


# ---------------------------------------------------------------------------------------
# Properties

buckets = st.lists(st.sampled_from("._xh"), min_size=1, max_size=80).map("".join)


@settings(max_examples=200, deadline=None)
@given(pattern=buckets, window_buckets=st.integers(1, 15))
def test_outage_is_inside_the_probe_success_breach(pattern: str, window_buckets: int) -> None:
    """With the clinical probe's ``success_rate >= 1.0`` as SLO, every outage bucket is degraded."""
    s = series(pattern)
    n = len(pattern)
    deg = degraded_flags(
        [slo_breaches(s, ALL_OK, window_buckets=window_buckets, min_samples=1, n_buckets=n)], n
    )
    out = outage_flags([s], n)
    assert all(d for d, o in zip(deg, out, strict=True) if o)
    total = summarise(out, deg, 0, n)
    assert total.outage_s <= total.degraded_s


@settings(max_examples=300, deadline=None)
@given(
    deg_pattern=st.lists(st.booleans(), min_size=0, max_size=80),
    requested=st.floats(0.0, 8.0),
    inject_delay=st.floats(0.0, 0.5),
    revert_after=st.one_of(st.none(), st.floats(0.0, 4.0)),
    watch_len=st.floats(0.0, 8.0),
    stability=st.integers(0, 20),
    truncated=st.booleans(),
)
def test_recovery_times_are_never_negative(
    deg_pattern: list[bool],
    requested: float,
    inject_delay: float,
    revert_after: float | None,
    watch_len: float,
    stability: int,
    truncated: bool,
) -> None:
    """Detection and recovery times are never negative, and recovery follows detection."""
    injected = requested + inject_delay
    w = FaultWindow(
        "f1",
        "process",
        requested,
        injected,
        None if revert_after is None else injected + revert_after,
        "revert",
        requested + watch_len,
        "f2" if truncated else None,
    )
    got = analyse_fault(w, deg_pattern, deg_pattern, stability_buckets=stability)
    assert got.time_to_detect_s is None or got.time_to_detect_s >= 0.0
    assert got.time_to_recover_s is None or got.time_to_recover_s >= 0.0
    assert got.recovered == (got.time_to_recover_s is not None)
    assert got.relapses >= 0 and got.outage_s >= 0.0
    if got.recovered_at_s is not None and got.time_to_detect_s is not None:
        assert got.recovered_at_s > requested + got.time_to_detect_s - 0.1


def test_inverted_rate_slo_counts_successes_against_it() -> None:
    """For ``error_rate >= 0.5`` the buckets with successes are the ones dated as causing it."""
    s = series("x" * 10 + "." * 3 + "x" * 20)
    slo = parse_slo("error_rate >= 0.5")
    got = slo_breaches(s, slo, window_buckets=4, min_samples=1, n_buckets=33)
    assert on(got) == [10, 11, 12]


def test_unknown_metric_is_refused() -> None:
    """A metric the analysis does not know is an error, not a silent pass."""
    s = series("...")
    with pytest.raises(ValueError, match="unknown SLO metric"):
        baseline_value(s, "p42", 0, 3)
