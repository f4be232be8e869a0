"""DrillReport: report.json's contract, read and written without loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resildrill.errors import InvalidInput
from resildrill.report.model import DrillReport, load_report, write_report_json

CONTRACT_TOP = {
    "schema",
    "run_id",
    "drill",
    "target",
    "provenance",
    "started_at",
    "duration_s",
    "clock",
    "outcome",
    "exit_code",
    "reason",
    "partial",
    "faults",
    "summary",
    "load",
    "integrity",
    "gates",
    "timeline",
}


def test_example_loads_with_both_faults(example: DrillReport) -> None:
    """The fixture follows the contract: two faults, the first recovered, the second not."""
    assert example.schema_ == "resildrill.report/v1"
    assert [f.id for f in example.faults] == ["gateway-latency", "db-kill"]
    assert [f.recovery.recovered for f in example.faults] == [True, False]
    assert example.timeline.series["probe.ehr-api.success"].values[1] is None


def test_round_trip_keeps_every_contract_field(example: DrillReport, tmp_path: Path) -> None:
    """Writing then reading gives the same value, with the contract's names at the top."""
    path = write_report_json(example, tmp_path)
    assert path == tmp_path / "report.json"
    data = json.loads(path.read_text())
    assert data.keys() >= CONTRACT_TOP
    assert set(data["faults"][0]["recovery"]) >= {
        "time_to_detect_s",
        "time_to_recover_s",
        "recovered",
        "outage_s",
        "degraded_s",
        "relapses",
        "truncated_by",
    }
    assert load_report(tmp_path) == example


def test_series_values_stay_on_one_line(example: DrillReport, tmp_path: Path) -> None:
    """An hour of buckets must not become millions of lines in report.json."""
    text = write_report_json(example, tmp_path / "r.json").read_text()
    assert text.count("\n") < 600
    assert '"values": [' in text


def test_extra_fields_are_kept(tmp_path: Path, example_path: Path) -> None:
    """Producers may add fields anywhere; they survive a round trip."""
    data = json.loads(example_path.read_text())
    data["heat_model"] = {"room": "DC-A"}
    data["faults"][0]["proxy"] = "fhir-gateway"
    (tmp_path / "report.json").write_text(json.dumps(data))
    report = load_report(tmp_path)
    again = json.loads(write_report_json(report, tmp_path / "again.json").read_text())
    assert again["heat_model"] == {"room": "DC-A"}
    assert again["faults"][0]["proxy"] == "fhir-gateway"


def test_minimal_report_needs_only_the_contract(tmp_path: Path, example_path: Path) -> None:
    """Optional sections may be null or absent (a not-ready run has no faults or load)."""
    data = json.loads(example_path.read_text())
    for key in ("summary", "load", "integrity", "phases", "blind_spots", "drill_as_run"):
        data[key] = None
    for key in ("slos", "probes", "manual", "warnings", "services", "faults", "gates"):
        del data[key]
    data["timeline"] = {"resolution_s": 0.1, "series": {}, "marks": []}
    (tmp_path / "report.json").write_text(json.dumps(data))
    report = load_report(tmp_path / "report.json")
    assert report.faults == [] and report.load is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such report"),
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"schema": "resildrill.report/v9"}', "is not 'resildrill.report/v1'"),
        ('{"schema": "resildrill.report/v1", "run_id": 3}', "run_id"),
    ],
)
def test_bad_files_give_one_line(tmp_path: Path, content: str | None, expected: str) -> None:
    """A missing, broken or foreign file raises InvalidInput with one line naming the file."""
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InvalidInput) as info:
        load_report(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message
    assert info.value.exit_code == 2


def test_wrong_field_is_named_by_path(tmp_path: Path, example_path: Path) -> None:
    """A validation error names the field as a path like faults[1].recovery.recovered."""
    data = json.loads(example_path.read_text())
    del data["faults"][1]["recovery"]["recovered"]
    (tmp_path / "report.json").write_text(json.dumps(data))
    with pytest.raises(InvalidInput, match=r"faults\[1\]\.recovery\.recovered: Field required"):
        load_report(tmp_path)


def test_report_is_immutable(example: DrillReport) -> None:
    """Renderers share one value; none of them can change it."""
    with pytest.raises(ValueError, match="frozen"):
        example.outcome = "passed"  # type: ignore[misc]
