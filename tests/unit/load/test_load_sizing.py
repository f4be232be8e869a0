"""Unit tests of load sizing: users from beds, persona weights, and the shapes' phases."""

from __future__ import annotations

from resildrill.drill.model import BUILTIN_WORKFLOWS, LoadSpec
from resildrill.load.sizing import PERSONAS, phases_for, users_at, users_for, weights_for


def test_users_from_beds_follow_the_staffing_ratio() -> None:
    """120 beds at 0.4 active users per bed is 48 users (clinical.md 3b, derived)."""
    assert users_for(LoadSpec(beds=120)) == 48
    assert users_for(LoadSpec(beds=120, users_per_bed=0.35)) == 42


def test_given_users_win_and_small_wards_keep_every_persona() -> None:
    """An explicit user count is used as given; a tiny ward still gets every persona a user."""
    assert users_for(LoadSpec(users=7)) == 7
    assert users_for(LoadSpec(beds=2)) == sum(p.weight for p in PERSONAS) == 13
    assert users_for(LoadSpec(beds=2, workflows={"doctor": 1, "pharmacist": 1})) == 2


def test_persona_weights_are_a_30_bed_ward_day_shift() -> None:
    """The built-in weights sum to 13 people per 30 beds, 0.43 per bed (within 0.35-0.45)."""
    total = sum(weights_for(LoadSpec()).values())
    assert 0.35 <= total / 30 <= 0.45
    assert weights_for(LoadSpec(workflows={"doctor": 2})) == {"doctor": 2}


def test_handover_doubles_users_for_the_surge() -> None:
    """The handover shape steps from N to 2N at surge_at and back after surge_for."""
    phases = phases_for(LoadSpec(users=10, shape="handover", surge_at="5s", surge_for="10s"))
    assert phases == [(0.0, 10), (5.0, 20), (15.0, 10)]
    assert [users_at(phases, t) for t in (-1, 0, 4.9, 5, 14, 15, 99)] == [0, 10, 10, 20, 20, 10, 10]


def test_ward_round_ramps_up_and_down() -> None:
    """The ward round shape rises to its peak over steps and returns to steady state."""
    phases = phases_for(LoadSpec(users=10, shape="ward_round", surge_at="0s", surge_for="10s"))
    counts = [n for _, n in phases]
    assert max(counts) == 20 and counts[0] == 10 and counts[-1] == 10
    assert counts == sorted(counts[:5]) + sorted(counts[5:], reverse=True)


def test_drill_model_knows_the_built_in_workflows() -> None:
    """The drill model checks gate workflow names against the personas the load plays."""
    assert tuple(p.workflow for p in PERSONAS) == BUILTIN_WORKFLOWS
