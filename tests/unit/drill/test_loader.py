"""The loader: YAML read safely, every problem located as file:line:col: path."""

from __future__ import annotations

import re
import time
import tracemalloc
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from pydantic import Field

from resildrill.drill.loader import (
    MAX_BYTES,
    LoadedDrill,
    LoadedTarget,
    format_path,
    load_document,
    load_drill,
    load_target,
)
from resildrill.drill.model import FaultSpec
from resildrill.errors import InvalidInput, Problem
from resildrill.faults.process import ProcessFaultBackend, ProcessFaultSpec
from resildrill.plugins import FaultRegistry

ROOT = Path(__file__).resolve().parents[3]
TARGET = (ROOT / "tests" / "drills" / "target.yaml").read_text()
LINE = re.compile(r"^[^:]+:\d+:\d+: \S+: .+$")

DRILL = """\
apiVersion: resildrill/v1
kind: Drill
name: unit
target: target.yaml
slos:
  - probe: api-health
    expect: success_rate >= 0.99
faults:
  - id: kill-api
    kind: process
    service: api
    action: kill
    at: 2s
    duration: 3s
"""


@pytest.fixture
def registry() -> FaultRegistry:
    """Only the built-in process kind, without entry-point discovery."""
    return FaultRegistry({"process": ProcessFaultBackend})


def write(tmp_path: Path, text: str | bytes, name: str = "drill.yaml") -> Path:
    """Write a drill next to a copy of the fixture target."""
    (tmp_path / "target.yaml").write_text(TARGET)
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def problems_of(path: Path, registry: FaultRegistry) -> list[Problem]:
    """The problems loading ``path`` raises (the test fails if it loads)."""
    with pytest.raises(InvalidInput) as info:
        load_drill(path, registry)
    for problem in info.value.problems:
        assert LINE.match(str(problem)), str(problem)
        assert problem.line >= 1 and problem.col >= 1 and problem.path
    return info.value.problems


def brief(problems: list[Problem]) -> list[tuple[int, int, str]]:
    """(line, col, path) of each problem, the way fixtures state them."""
    return [(p.line, p.col, p.path) for p in problems]


def test_valid_drill_loads_with_its_target_and_typed_faults(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """A valid drill loads; its fault is the process kind's own spec model."""
    loaded = load_drill(write(tmp_path, DRILL), registry)
    assert isinstance(loaded, LoadedDrill)
    fault = loaded.spec.faults[0]
    assert isinstance(fault, ProcessFaultSpec)
    assert (fault.service, fault.action, fault.at, fault.duration) == ("api", "kill", 2.0, 3.0)
    assert loaded.target.spec.name == "fixture-ward"
    assert loaded.warnings == []
    assert len(loaded.sha256) == 64 and loaded.path.is_absolute()


def test_bare_number_duration_is_located(tmp_path: Path, registry: FaultRegistry) -> None:
    """``at: 2`` is reported at its value with the field's path and a hint about units."""
    problems = problems_of(write(tmp_path, DRILL.replace("at: 2s", "at: 2")), registry)
    assert brief(problems) == [(13, 9, "faults[0].at")]
    assert "needs a unit" in problems[0].message


def test_sexagesimal_duration_keeps_what_was_written(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """``1:30`` (YAML 1.1 reads 90) is refused quoting the text the user wrote."""
    problems = problems_of(
        write(tmp_path, DRILL.replace("duration: 3s", "duration: 1:30")), registry
    )
    assert brief(problems) == [(14, 15, "faults[0].duration")]
    assert "'1:30'" in problems[0].message


def test_unknown_keys_suggest_the_closest_field(tmp_path: Path, registry: FaultRegistry) -> None:
    """Misspelt keys are located at the key and name the field they probably meant."""
    text = DRILL.replace("duration: 3s", "duraton: 3s").replace("slos:", "sloz: 1\nslos:")
    problems = problems_of(write(tmp_path, text), registry)
    assert [(p.line, p.path, p.message) for p in problems] == [
        (5, "sloz", "unknown key 'sloz' (did you mean 'slos'?)"),
        (15, "faults[0].duraton", "unknown key 'duraton' (did you mean 'duration'?)"),
    ]


def test_unknown_fault_kind_suggests_a_registered_one(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """An unregistered kind is reported at ``kind``, with the closest registered kind."""
    problems = problems_of(
        write(tmp_path, DRILL.replace("kind: process", "kind: proces")), registry
    )
    assert brief(problems) == [(10, 11, "faults[0].kind")]
    assert problems[0].message == "unknown fault kind 'proces' (did you mean 'process'?)"


def test_every_problem_is_collected_and_sorted(tmp_path: Path, registry: FaultRegistry) -> None:
    """Several problems come out together, one per line, in file order."""
    text = (
        DRILL.replace("name: unit", "name: 5")
        .replace("at: 2s", "at: 2")
        .replace("action: kill", "action: kil")
    )
    problems = problems_of(write(tmp_path, text), registry)
    assert brief(problems) == [
        (3, 7, "name"),
        (12, 13, "faults[0].action"),
        (13, 9, "faults[0].at"),
    ]


def test_missing_key_is_located_at_its_parent(tmp_path: Path, registry: FaultRegistry) -> None:
    """A missing required key points at the mapping that lacks it, with the key's path."""
    problems = problems_of(write(tmp_path, DRILL.replace("    action: kill\n", "")), registry)
    assert brief(problems) == [(9, 5, "faults[0].action")]
    assert problems[0].message == "missing required key 'action'"


def test_plugin_kind_fields_are_validated_by_their_own_model(tmp_path: Path) -> None:
    """With two kinds registered, each fault is checked against its own kind's fields."""

    class LatencySpec(FaultSpec):
        kind: Literal["latency"]
        proxy: str
        latency: int = Field(ge=0)
        from_: Literal["client", "server"] = Field(default="client", alias="from")

    class LatencyBackend(ProcessFaultBackend):
        kind: ClassVar[str] = "latency"
        spec_model: ClassVar[type[FaultSpec]] = LatencySpec

    registry = FaultRegistry({"process": ProcessFaultBackend, "latency": LatencyBackend})
    text = DRILL + (
        "  - {id: slow, kind: latency, proxy: db, latency: -1, at: 1s, proxi: x,"
        " from: up, frm: client}\n"
    )
    problems = problems_of(write(tmp_path, text), registry)
    assert [(p.path, p.message[:30]) for p in problems] == [
        ("faults[1].latency", "must be >= 0, got -1"),
        ("faults[1].proxi", "unknown key 'proxi' (did you m"),
        ("faults[1].from", "Input should be 'client' or 's"),
        ("faults[1].frm", "unknown key 'frm' (did you mea"),
    ]
    assert problems[-1].message == "unknown key 'frm' (did you mean 'from'?)"
    assert all(p.line == 15 for p in problems)


def test_target_problems_carry_the_target_file_name(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """A broken target named by the drill is reported under the target's own file name."""
    drill = write(tmp_path, DRILL)
    (tmp_path / "target.yaml").write_text(TARGET.replace("environment: test", "environment: qa"))
    problems = problems_of(drill, registry)
    assert [(Path(p.file).name, p.line, p.path) for p in problems] == [
        ("target.yaml", 5, "environment")
    ]


def test_missing_target_is_located_at_the_reference(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """A target file that does not exist is reported at the drill's ``target:`` value."""
    problems = problems_of(write(tmp_path, DRILL.replace("target.yaml", "nope.yaml")), registry)
    assert brief(problems) == [(4, 9, "target")]


def test_env_references_stay_literal(
    tmp_path: Path, registry: FaultRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``${VAR}`` is never substituted, so a secret's value cannot leak into a drill."""
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    text = DRILL.replace("name: unit", "name: unit\ndescription: token ${SECRET_TOKEN}")
    loaded = load_drill(write(tmp_path, text), registry)
    assert loaded.spec.description == "token ${SECRET_TOKEN}"


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        (b"", (1, 1, "<root>"), "empty"),
        (b"# only a comment\n", (2, 1, "<root>"), "expected a mapping"),
        (b"- a\n- b\n", (1, 1, "<root>"), "expected a mapping"),
        (b"a: [\n", (2, 1, "<root>"), "YAML syntax"),
        (b"kind: Drill\nname: a\x07b\n", (2, 8, "<root>"), "control characters"),
        (b"kind: Drill\n---\nkind: Drill\n", (2, 1, "<root>"), "one document"),
        (b"kind: Drill\nkind: Target\n", (2, 1, "kind"), "duplicate key"),
        (b"kind: !!python/object:os.system x\n", (1, 7, "kind"), "tag"),
        (b"a: &x 1\n", (1, 4, "a"), "anchors"),
        (b"name: ok\nkind: caf\xc3\xa9\xff\n", (2, 11, "<root>"), "UTF-8"),
        (b"x: " + b"[" * 80 + b"]" * 80 + b"\n", (1, 53, ""), "nesting"),
        (b"? [a, b]\n: 1\n", (1, 3, "<root>"), "keys"),
    ],
)
def test_hostile_or_broken_yaml_is_refused_with_a_location(
    tmp_path: Path, registry: FaultRegistry, text: bytes, where: tuple[int, int, str], fragment: str
) -> None:
    """Broken and hostile YAML gives one located problem each, never another exception."""
    problems = problems_of(write(tmp_path, text), registry)
    assert len(problems) == 1, problems
    line, col, path = where
    assert (problems[0].line, problems[0].col) == (line, col)
    assert problems[0].path.startswith(path)
    assert fragment in problems[0].message


def test_yaml_bomb_is_refused_quickly_and_small(tmp_path: Path, registry: FaultRegistry) -> None:
    """A billion-laughs file is refused in well under a second and 200 MB, never expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    tracemalloc.start()
    started = time.process_time()
    try:
        problems = problems_of(path, registry)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.process_time() - started < 1.0
    assert peak < 200 * 1024 * 1024
    assert problems[0].message.startswith("YAML anchors are not allowed")
    assert any("aliases" in p.message for p in problems)
    assert len(problems) <= 51 and problems[-1].message.startswith("too many problems")


def test_huge_file_is_refused_unread(tmp_path: Path, registry: FaultRegistry) -> None:
    """A file over 1 MiB is refused at 1:1 without being parsed."""
    path = write(tmp_path, DRILL + "#" * MAX_BYTES)
    problems = problems_of(path, registry)
    assert brief(problems) == [(1, 1, "<root>")]


def test_unreadable_file_is_a_problem_not_a_traceback(registry: FaultRegistry) -> None:
    """A path that does not exist gives a located ``cannot read`` problem."""
    with pytest.raises(InvalidInput) as info:
        load_drill("no/such/drill.yaml", registry)
    assert str(info.value.problems[0]).startswith("no/such/drill.yaml:1:1: <root>: cannot read")


def test_load_target_and_load_document_detect_the_kind(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """``load_document`` returns a drill or a target according to ``kind``."""
    drill = write(tmp_path, DRILL)
    target = tmp_path / "target.yaml"
    assert isinstance(load_document(drill, registry), LoadedDrill)
    assert isinstance(load_document(target, registry), LoadedTarget)
    assert load_target(target).spec.environment == "test"
    other = write(tmp_path, "apiVersion: resildrill/v1\nkind: Workflow\n", "other.yaml")
    with pytest.raises(InvalidInput) as info:
        load_document(other, registry)
    assert brief(info.value.problems) == [(2, 7, "kind")]


def test_a_target_loaded_as_a_drill_is_an_error(tmp_path: Path, registry: FaultRegistry) -> None:
    """``load_drill`` on a target file says the kind is wrong, at ``kind``."""
    write(tmp_path, DRILL)
    problems = problems_of(tmp_path / "target.yaml", registry)
    assert (3, "kind") in [(p.line, p.path) for p in problems]


@pytest.mark.parametrize(
    ("loc", "text"),
    [
        ((), "<root>"),
        (("faults", 2, "duration"), "faults[2].duration"),
        (("services", "api", "process"), "services.api.process"),
        (("services", "my api"), 'services["my\\u0020api"]'),
    ],
)
def test_paths_are_written_like_faults_index_field(loc: tuple[Any, ...], text: str) -> None:
    """Locations print as ``faults[2].duration``, always one word."""
    assert format_path(loc) == text


def test_too_many_values_are_refused_quickly(tmp_path: Path, registry: FaultRegistry) -> None:
    """A flood of values (under 1 MiB) is cut off early instead of validated item by item."""
    path = write(
        tmp_path, DRILL.replace("faults:", "faults: [" + ",".join(["1"] * 200_000) + "]\nx:")
    )
    started = time.process_time()
    problems = problems_of(path, registry)
    assert time.process_time() - started < 1.0
    assert len(problems) == 1 and "more than 5000 values" in problems[0].message


def test_problems_are_capped_with_a_closing_line(tmp_path: Path, registry: FaultRegistry) -> None:
    """Thousands of problems print as the first 50 and one line saying the rest were cut."""
    faults = "".join("  - {kind: process}\n" for _ in range(300))
    problems = problems_of(
        write(tmp_path, DRILL.split("faults:")[0] + "faults:\n" + faults), registry
    )
    assert len(problems) == 51
    assert problems[-1].message == "too many problems: only the first 50 are shown"
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_a_blank_target_reference_is_located(tmp_path: Path, registry: FaultRegistry) -> None:
    """``target: " "`` is an error at the reference, not an unlocated failure."""
    problems = problems_of(
        write(tmp_path, DRILL.replace("target: target.yaml", 'target: " "')), registry
    )
    assert brief(problems) == [(4, 9, "target")]


def test_yaml_booleans_are_explained(tmp_path: Path, registry: FaultRegistry) -> None:
    """``name: no`` (a boolean in YAML 1.1) says what was written and how to fix it."""
    problems = problems_of(write(tmp_path, DRILL.replace("name: unit", "name: no")), registry)
    assert brief(problems) == [(3, 7, "name")]
    assert problems[0].message.endswith("got no (YAML reads it as a boolean: quote it)")


def test_explicit_core_tags_with_odd_values_keep_their_text(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """``!!bool maybe`` or ``!!int ''`` cannot crash the reader; the model rejects the text."""
    text = DRILL.replace("name: unit", "name: !!int ''").replace("at: 2s", "at: !!bool maybe")
    problems = problems_of(write(tmp_path, text), registry)
    assert brief(problems) == [(3, 7, "name"), (13, 9, "faults[0].at")]
    assert "'maybe'" in problems[1].message


WORST_CASES = {
    "faults-missing-fields": DRILL.split("faults:")[0]
    + "faults:\n"
    + "  - {kind: process}\n" * 2400,
    "flow-of-mappings": DRILL.split("faults:")[0] + "faults: [" + ",".join(["{}"] * 4900) + "]\n",
    "one-long-scalar": DRILL + "x: " + "y" * (MAX_BYTES - 400) + "\n",
    "unknown-keys": DRILL + "gates: {" + ",".join(f"k{i}: 1" for i in range(2400)) + "}\n",
}


@pytest.mark.parametrize("name", sorted(WORST_CASES))
def test_worst_case_inputs_stay_within_one_second_and_200_mb(
    tmp_path: Path, registry: FaultRegistry, name: str
) -> None:
    """The costliest inputs under the limits load or fail within 1 s and 200 MB."""
    path = write(tmp_path, WORST_CASES[name])
    assert path.stat().st_size <= MAX_BYTES
    started = time.process_time()  # CPU time: a busy shared machine is not our cost
    with pytest.raises(InvalidInput):
        load_drill(path, registry)
    assert time.process_time() - started < 1.0
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput):
            load_drill(path, registry)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 * 1024 * 1024
