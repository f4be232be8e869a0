"""Property-based fuzzing of the drill loader (hostile input, issue 10).

Valid drills are mutated (bytes replaced, lines deleted, duplicated or re-indented, YAML
syntax and hostile tokens inserted) and random YAML documents and raw bytes are generated.
For every case the loader either returns a drill or raises InvalidInput whose problems
all carry a line, a column and a path, within one second; never any other exception.
Hypothesis runs derandomized, so every run tries the same ~1,400 cases (drills and targets).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resildrill.drill.loader import LoadedDrill, LoadedTarget, load_drill, load_target
from resildrill.errors import InvalidInput
from resildrill.faults.process import ProcessFaultBackend
from resildrill.plugins import FaultRegistry

ROOT = Path(__file__).resolve().parents[2]
DRILLS = ROOT / "tests" / "drills"
LINE = re.compile(r"^[^:]+:\d+:\d+: \S+: .+$")
REGISTRY = FaultRegistry({"process": ProcessFaultBackend})

RICH = """\
apiVersion: resildrill/v1
kind: Drill
name: rich
description: every section, so mutations reach every model
target: target.yaml
slos:
  - probe: api-health
    expect: success_rate >= 0.99
    min_samples: 3
  - workflow: obs_round
    expect: p95 <= 2x baseline
slo_window: 1s
stability_window: 2s
phases: {baseline: 5s, recovery: 20s}
faults:
  - id: freeze-api
    kind: process
    service: api
    action: freeze
    at: 2s
    duration: 3s
  - {id: kill-api, kind: process, service: api, action: kill, at: 10s}
manual:
  - id: page-oncall
    at: 12s
    prompt: "Page the on-call engineer (token ${TOKEN})"
    timeout: 30s
gates:
  all_faults_recovered: true
  max_time_to_recover: 10s
  min_availability: 0.9
load:
  users: 5
  workflows: {obs_round: 1.0}
"""

SEEDS = [RICH.encode()] + [
    p.read_bytes().replace(b"../target.yaml", b"target.yaml")
    for p in sorted((DRILLS / "valid").glob("*.yaml"))
]
TOKENS = [
    b": ",
    b"- ",
    b"&a ",
    b"*a",
    b"!!python/object:os.system ",
    b"!foo ",
    b"[",
    b"]",
    b"{",
    b"}",
    b"'",
    b'"',
    b"\t",
    b"\n",
    b"---\n",
    b"1:30",
    b"-5s",
    b"999999h",
    b"0s",
    b"~",
    b"null",
    b"\xff",
    b"\xc3",
    b"\x00",
    b"${X}",
    b"<<: ",
    b"kind: ",
    b"  ",
    b"? ",
    b"#",
    b"!!bool ",
    b"!!int ",
    b"!!float ",
    b"!!null ",
    b"!!str ",
    b"!!binary ",
    b"!!timestamp ",
    b"1e999",
    b"9" * 5000,
    b"[" * 60,
    b"%YAML 1.1\n",
    b"|\n",
    b">-\n",
    b"\xef\xbb\xbf",
]
FIELDS = [
    "apiVersion",
    "kind",
    "name",
    "target",
    "slos",
    "probe",
    "workflow",
    "expect",
    "faults",
    "id",
    "at",
    "duration",
    "service",
    "action",
    "phases",
    "baseline",
    "recovery",
    "manual",
    "prompt",
    "timeout",
    "gates",
    "load",
    "stability_window",
    "slo_window",
    "users",
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes] | None = None) -> bytes:
    """A valid drill with one to four random edits."""
    data = bytearray(draw(st.sampled_from(seeds or SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "dup", "indent", "value"]))
        lines = bytes(data).split(b"\n")
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if op == "replace" and data:
            pos = draw(st.integers(0, len(data) - 1))
            size = draw(st.integers(1, 8))
            data[pos : pos + size] = draw(st.binary(min_size=0, max_size=8))
        elif op == "insert":
            pos = draw(st.integers(0, len(data)))
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "delete" and lines:
            del lines[i]
            data = bytearray(b"\n".join(lines))
        elif op == "dup" and lines:
            lines.insert(i, lines[i])
            data = bytearray(b"\n".join(lines))
        elif op == "indent" and lines:
            delta = draw(st.sampled_from([b"  ", b" ", b"\t"]))
            lines[i] = delta + lines[i] if draw(st.booleans()) else lines[i].lstrip(b" ")
            data = bytearray(b"\n".join(lines))
        elif op == "value" and lines and b": " in lines[i]:
            key = lines[i].split(b": ", 1)[0]
            scalar = draw(yaml_scalars)
            text = yaml.safe_dump(scalar, default_flow_style=True).strip()
            text = text.removesuffix("...").strip()
            tag = draw(st.sampled_from([b"", b"", b"!!bool ", b"!!int ", b"!!float ", b"!!null "]))
            lines[i] = key + b": " + tag + text.encode("utf-8", "surrogatepass")
            data = bytearray(b"\n".join(lines))
    return bytes(data)


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["2s", "500ms", "1:30", "-1s", "25h", "0s", "process", "api", "api-health"]),
    st.text(max_size=20),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


@st.composite
def random_documents(draw: st.DrawFn) -> bytes:
    """A random YAML document, usually shaped like a drill so validation goes deep."""
    body: Any = draw(yaml_values)
    if draw(st.booleans()):
        body = {
            "apiVersion": "resildrill/v1",
            "kind": "Drill",
            "name": "r",
            "target": "target.yaml",
            **(body if isinstance(body, dict) else {"faults": body}),
        }
    flow = draw(st.sampled_from([None, True, False]))
    return yaml.safe_dump(body, default_flow_style=flow, allow_unicode=True).encode(
        "utf-8", "surrogatepass"
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder holding the fixture target, where each case is written as drill.yaml."""
    path = tmp_path_factory.mktemp("fuzz")
    (path / "target.yaml").write_bytes((DRILLS / "target.yaml").read_bytes())
    yield path


def check(folder: Path, raw: bytes, name: str = "drill.yaml") -> None:
    """Load one case: a drill, or InvalidInput with every problem located, within 1 s."""
    path = folder / name
    path.write_bytes(raw)
    # CPU time, not wall time: the machine is shared, and a busy neighbour is not our cost.
    started = time.process_time()
    try:
        loaded = load_drill(path, REGISTRY) if name == "drill.yaml" else load_target(path)
    except InvalidInput as exc:
        assert exc.problems, "InvalidInput without problems"
        assert exc.exit_code == 2
        lines = raw.count(b"\n") + 2
        for problem in exc.problems:
            assert LINE.match(str(problem)), str(problem)
            assert problem.file in (str(path), str(folder / "target.yaml"))
            assert 1 <= problem.line <= lines and problem.col >= 1 and problem.path
    else:
        assert isinstance(loaded, LoadedDrill | LoadedTarget)
    assert time.process_time() - started < 1.0


FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)


@settings(FUZZ, max_examples=700)
@given(raw=mutated())
def test_mutated_drills_load_or_fail_located(folder: Path, raw: bytes) -> None:
    """Mutations of valid drills either load or fail with located problems only."""
    check(folder, raw)


@settings(FUZZ, max_examples=350)
@given(raw=random_documents())
def test_random_yaml_loads_or_fails_located(folder: Path, raw: bytes) -> None:
    """Random YAML documents either load or fail with located problems only."""
    check(folder, raw)


@settings(FUZZ, max_examples=150)
@given(
    raw=st.binary(max_size=400)
    | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
def test_random_bytes_fail_located(folder: Path, raw: bytes) -> None:
    """Arbitrary bytes and text fail with located problems, never another exception."""
    check(folder, raw)


def test_the_seed_drills_are_valid(folder: Path) -> None:
    """The unmutated seeds load, so the mutations start from valid drills."""
    for seed in SEEDS:
        path = folder / "drill.yaml"
        path.write_bytes(seed)
        assert isinstance(load_drill(path, REGISTRY), LoadedDrill)


TARGET_SEEDS = [
    (DRILLS / "target.yaml").read_bytes(),
    (DRILLS / "invalid" / "bad-target.yaml").read_bytes(),
]


@settings(FUZZ, max_examples=200)
@given(raw=mutated(TARGET_SEEDS))
def test_mutated_targets_load_or_fail_located(folder: Path, raw: bytes) -> None:
    """Mutations of target files either load or fail with located problems only."""
    check(folder, raw, "other-target.yaml")


def test_the_whole_campaign_stays_under_200_mb() -> None:
    """Every fuzz case above, run again in a process of its own: its peak memory (the
    kernel's high-water mark, so the largest case counts) stays under the issue's 200 MB."""
    # An intermediate process with no other children reads its child's peak exactly.
    measure = (
        "import resource, subprocess, sys; "
        "r = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
        "sys.exit(r.returncode)"
    )
    campaign = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                __file__, "-k", "not whole_campaign"]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", measure, *campaign], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:]
    peak_mb = int(result.stdout.strip().splitlines()[-1]) / 1024
    print(f"\nfuzz campaign peak memory: {peak_mb:.0f} MB")
    assert peak_mb < 200
