"""The clinical gates in a drill file: their syntax, and located errors when the drill
cannot measure them (no load, an unknown workflow, no workflow SLO)."""

from __future__ import annotations

from pathlib import Path

import pytest

from resildrill.drill.loader import load_drill
from resildrill.drill.model import Gates
from resildrill.errors import InvalidInput, Problem
from resildrill.faults.process import ProcessFaultBackend
from resildrill.plugins import FaultRegistry

ROOT = Path(__file__).resolve().parents[3]
TARGET = (ROOT / "tests" / "drills" / "target.yaml").read_text()

HEAD = """\
apiVersion: resildrill/v1
kind: Drill
name: unit
target: target.yaml
slos:
  - probe: api-health
    expect: success_rate >= 0.99
"""
LOAD = "load:\n  users: 13\n"


def problems_of(tmp_path: Path, text: str) -> list[Problem]:
    """Load a drill next to the fixture target; every problem (or warning) found."""
    (tmp_path / "target.yaml").write_text(TARGET)
    (tmp_path / "drill.yaml").write_text(text)
    registry = FaultRegistry({"process": ProcessFaultBackend})
    try:
        return load_drill(tmp_path / "drill.yaml", registry).warnings
    except InvalidInput as exc:
        return exc.problems


def located(problems: list[Problem]) -> list[tuple[int, int, str]]:
    """(line, column, path) of each problem."""
    return [(p.line, p.col, p.path) for p in problems]


def test_clinical_gates_syntax(tmp_path: Path) -> None:
    """Counts, one number or a workflow mapping for failed actions, a duration for waits."""
    text = (
        HEAD.replace("slos:\n", "slos:\n  - {workflow: obs_round, expect: p95 <= 2s}\n")
        + LOAD
        + "gates:\n"
        "  max_writes_lost: 0\n"
        "  max_writes_duplicated: 0\n"
        "  max_failed_actions: {obs_round: 3, drug_round: 0}\n"
        "  max_wait_beyond_slo: 1500ms\n"
    )
    (tmp_path / "target.yaml").write_text(TARGET)
    (tmp_path / "drill.yaml").write_text(text)
    gates = load_drill(tmp_path / "drill.yaml", FaultRegistry({})).spec.gates
    assert (gates.max_writes_lost, gates.max_writes_duplicated) == (0, 0)
    assert gates.max_failed_actions == {"obs_round": 3, "drug_round": 0}
    assert gates.max_wait_beyond_slo == 1.5
    assert Gates.model_validate({"max_failed_actions": 4}).max_failed_actions == 4


def test_unknown_workflow_in_the_mapping_names_the_known_ones(tmp_path: Path) -> None:
    """A mapping key the load does not play is an error at that key, listing what it plays
    (the built-in personas, or the drill's own ``load.workflows``)."""
    text = HEAD + LOAD + "gates:\n  max_failed_actions:\n    obs_rnd: 3\n    doctor: 1\n"
    problems = problems_of(tmp_path, text)
    assert located(problems) == [(12, 14, "gates.max_failed_actions.obs_rnd")]
    assert problems[0].severity == "error"
    assert problems[0].message == (
        "unknown workflow 'obs_rnd' (did you mean 'obs_round'?); the load plays: "
        "bed_manager, doctor, drug_round, ed_triage, obs_round, pharmacist"
    )
    own = text.replace(LOAD, "load:\n  users: 4\n  workflows: {obs_round: 1, drug_round: 1}\n")
    problems = problems_of(tmp_path, own)
    assert [p.path for p in problems] == [
        "gates.max_failed_actions.obs_rnd",
        "gates.max_failed_actions.doctor",
    ]
    assert problems[1].message == "unknown workflow 'doctor'; the load plays: drug_round, obs_round"


def test_a_badly_written_mapping_is_located(tmp_path: Path) -> None:
    """A negative or non-numeric limit is an error at its key, not a union dump."""
    text = HEAD + LOAD + "gates:\n  max_failed_actions: {obs_round: -1, doctor: many}\n"
    problems = problems_of(tmp_path, text)
    assert [(p.path, p.message) for p in problems] == [
        ("gates.max_failed_actions.obs_round", "must be >= 0, got -1"),
        ("gates.max_failed_actions.doctor", "expected a whole number, got 'many'"),
    ]
    assert all(p.line == 11 for p in problems)


@pytest.mark.parametrize(
    "gate",
    ["max_failed_actions: 0", "max_failed_actions: {obs_round: 1}", "max_writes_lost: 0"],
)
def test_clinical_gate_without_load_is_an_error(tmp_path: Path, gate: str) -> None:
    """Failed actions and writes are measured from clinician load: without it, an error at
    the gate (file:line:col), never a gate that passes on nothing."""
    problems = problems_of(tmp_path, HEAD + f"gates:\n  {gate}\n")
    name = gate.split(":")[0]
    assert len(problems) == 1 and problems[0].severity == "error"
    assert (problems[0].line, problems[0].path) == (9, f"gates.{name}")
    assert problems[0].message == f"{name} is measured from clinician load: add a 'load' section"
    assert str(problems[0]).startswith(f"{tmp_path / 'drill.yaml'}:9:")


def test_wait_gate_needs_a_workflow_slo(tmp_path: Path) -> None:
    """Wait beyond the SLO is judged against workflow SLOs: none is an error at the gate."""
    problems = problems_of(tmp_path, HEAD + LOAD + "gates:\n  max_wait_beyond_slo: 5s\n")
    assert located(problems) == [(11, 24, "gates.max_wait_beyond_slo")]
    assert "add one to slos" in problems[0].message
