"""Blind spots: probes green while a clinician workflow breaches its SLO, as report.json
carries them (total, per workflow, windows) and as the report model reads them back."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from resildrill.pipeline import Analysis, blind_spots
from resildrill.report.model import BlindSpots


def slo(label: str, workflow: str | None = None, probe: str | None = None) -> Any:
    return SimpleNamespace(label=label, workflow=workflow, probe=probe)


def analysis(n: int, breaches: dict[str, list[bool]], outage: list[bool]) -> Analysis:
    return Analysis(
        n_buckets=n,
        breaches=breaches,
        degraded=[False] * n,
        outage=outage,
        baselines={},
        faults=[],
        summary=None,  # type: ignore[arg-type]
        gates=[],
        warnings=[],
    )


def record(*slos: Any) -> Any:
    return SimpleNamespace(drill=SimpleNamespace(spec=SimpleNamespace(slos=list(slos))))


def flags(n: int, *ranges: tuple[int, int]) -> list[bool]:
    return [any(a <= i < b for a, b in ranges) for i in range(n)]


def test_blind_time_excludes_outage_and_merges_workflows() -> None:
    """Buckets 10-29 the drug round breaches, 20-39 the obs round; 25-34 is a clinical
    outage (probes failing, not blind): blind = 10-24 and 35-39 overall."""
    n = 60
    rec = record(
        slo("gateway up", probe="gateway"),
        slo("drug p95", workflow="drug_round"),
        slo("obs p95", workflow="obs_round"),
        slo("obs errors", workflow="obs_round"),
    )
    an = analysis(
        n,
        {
            "gateway up": flags(n, (25, 35)),
            "drug p95": flags(n, (10, 30)),
            "obs p95": flags(n, (20, 30)),
            "obs errors": flags(n, (28, 40)),
        },
        outage=flags(n, (25, 35)),
    )
    out = blind_spots(rec, an)
    assert out is not None
    assert out["total_s"] == 2.0  # 10-24 and 35-39: 20 buckets of 0.1 s
    assert out["by_workflow"] == {"drug_round": 1.5, "obs_round": 1.0}
    assert out["windows"] == [
        {"workflow": "drug_round", "start_s": 1.0, "end_s": 2.5},
        {"workflow": "obs_round", "start_s": 2.0, "end_s": 2.5},
        {"workflow": "obs_round", "start_s": 3.5, "end_s": 4.0},
    ]
    # what the HTML and Markdown reports read
    model = BlindSpots.model_validate(out)
    assert model.total_s == 2.0 and len(model.windows) == 3


def test_no_workflow_slo_means_not_measured() -> None:
    """Without a workflow SLO nothing was compared: no figure, not a reassuring 0 s."""
    rec = record(slo("gateway up", probe="gateway"))
    assert blind_spots(rec, analysis(10, {"gateway up": [False] * 10}, [False] * 10)) is None
