"""How much clinician load a drill makes: personas' weights, users from beds, load phases.

Owns the arithmetic behind ``LoadSpec`` (pure, locust-free, so the runner and ``plan`` can
show it): which personas exist and in what proportion, how many users a ward of ``beds``
keeps busy, and the user count over time for the steady, handover and ward-round shapes.
Facts and sources: shared/reference/clinical.md section 3.
"""

from __future__ import annotations

from dataclasses import dataclass

from resildrill.drill.model import LoadSpec

__all__ = ["PERSONAS", "Persona", "phases_for", "users_at", "users_for", "weights_for"]


@dataclass(frozen=True, slots=True)
class Persona:
    """One clinician role: its workflow name, weight and what it stands for."""

    workflow: str
    weight: int
    who: str


#: Weights are head counts per 30-bed ward on a day shift (clinical.md 3b "Concurrent users
#: per bed", derived): ~4 RNs + 3 HCAs + 2-4 doctors + pharmacist/ward clerk, i.e. 0.35-0.45
#: active users per bed. HCAs and one RN do observations, three RNs run drug rounds; the
#: ED triage nurse is the ward's share of the front door (Manchester Triage System, 3b).
PERSONAS: tuple[Persona, ...] = (
    Persona("obs_round", 4, "ward nurse / HCA recording NEWS2 vital signs"),
    Persona("drug_round", 3, "nurse giving medicines against active prescriptions"),
    Persona("doctor", 3, "doctor reviewing results and ordering tests and medicines"),
    Persona("pharmacist", 1, "pharmacist verifying the queue of new prescriptions"),
    Persona("ed_triage", 1, "ED triage nurse registering and assessing arrivals"),
    Persona("bed_manager", 1, "bed manager / ward clerk tracking occupancy"),
)

#: Handover (07:30/19:30) and the morning ward round (08:00-11:00) double the active users
#: for their duration (clinical.md 3b, derived).
SURGE_FACTOR = 2.0


def weights_for(spec: LoadSpec) -> dict[str, float]:
    """Workflow -> weight: the drill's own choice, else every built-in persona."""
    if spec.workflows:
        return dict(spec.workflows)
    return {p.workflow: float(p.weight) for p in PERSONAS}


def users_for(spec: LoadSpec) -> int:
    """Steady-state users: given, or ``beds * users_per_bed``; sized ones play every persona.

    Locust hands users to classes by smooth weighted round robin, so only a multiple of the
    summed weights (13 for the built-in ward) is sure to give every persona a user: a
    ward sized from beds never gets fewer.
    """
    weights = [max(1, round(w)) for w in weights_for(spec).values() if w > 0]
    minimum = sum(weights) if not spec.locustfile else 1
    if spec.users is not None:
        return spec.users
    if spec.beds is not None:
        return max(minimum, round(spec.beds * spec.users_per_bed))
    # No size given: one 30-bed ward.
    return max(minimum, round(30 * spec.users_per_bed))


def phases_for(spec: LoadSpec) -> list[tuple[float, int]]:
    """``(seconds from load start, users)`` steps for the drill's shape."""
    n = users_for(spec)
    if spec.shape == "steady":
        return [(0.0, n)]
    surge = max(n + 1, round(n * SURGE_FACTOR))
    start, length = spec.surge_at, spec.surge_for
    if spec.shape == "handover":
        # Handover is a step: both shifts are logged in at once for its 30-60 min.
        return [(0.0, n), (start, surge), (start + length, n)]
    # The ward round builds up as the team moves bed to bed, holds, then tails off:
    # a ramp over its first and last fifths, in steps the shape can tick through.
    steps = 4
    out = [(0.0, n)]
    for k in range(1, steps + 1):
        out.append((start + length * 0.2 * k / steps, n + round((surge - n) * k / steps)))
    for k in range(1, steps + 1):
        at = start + length * 0.8 + length * 0.2 * k / steps
        out.append((at, surge - round((surge - n) * k / steps)))
    return out


def users_at(phases: list[list[float]] | list[tuple[float, int]], at_s: float) -> int:
    """Users of the last phase that started at or before ``at_s`` (0 before the first)."""
    users = 0
    for start, n in phases:
        if start <= at_s:
            users = int(n)
    return users
