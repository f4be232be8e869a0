"""The validation fixtures under tests/drills/, run through the real ``resildrill validate``.

Each fixture carries its expected problems as ``# expect: [FILE:]LINE:COL PATH [warning]``
comments; the command's output must hold exactly those lines, in the DESIGN.md format.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resildrill.cli import app

ROOT = Path(__file__).resolve().parents[3]
DRILLS = ROOT / "tests" / "drills"
LINE = re.compile(r"^[^:]+:\d+:\d+: \S+: .+$")
PARSED = re.compile(r"^([^:]+):(\d+):(\d+): (\S+): (warning: )?.+$")
EXPECT = re.compile(rb"^# expect: (?:([^:\s]+):)?(\d+):(\d+) (\S+)( warning)?\s*$")

INVALID = sorted((DRILLS / "invalid").glob("*.yaml"))
VALID = sorted((DRILLS / "valid").glob("*.yaml"))


def expectations(path: Path) -> list[tuple[str, int, int, str, bool]]:
    """The (file, line, col, path, is_warning) a fixture's ``# expect:`` comments declare."""
    found = []
    for raw in path.read_bytes().splitlines():
        match = EXPECT.match(raw)
        if match:
            file, line, col, where, warning = match.groups()
            name = file.decode() if file else path.name
            found.append((name, int(line), int(col), where.decode(), warning is not None))
    return found


def run_validate(path: Path) -> tuple[int, list[str], str]:
    """Run the command on one file named relative to the repository, as a user would."""
    rel = os.path.relpath(path, ROOT)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = CliRunner().invoke(app, ["validate", rel])
    finally:
        os.chdir(cwd)
    return result.exit_code, result.stdout.splitlines(), result.stderr


def observed(lines: list[str]) -> list[tuple[str, int, int, str, bool]]:
    """Parse output lines into the same shape as :func:`expectations`."""
    out = []
    for line in lines:
        assert LINE.match(line), f"not in file:line:col: path: message form: {line!r}"
        match = PARSED.match(line)
        assert match is not None
        file, ln, col, where, warning = match.groups()
        out.append((Path(file).name, int(ln), int(col), where, warning is not None))
    return out


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_invalid_fixture_reports_exactly_its_expected_problems(path: Path) -> None:
    """An invalid fixture exits 2 and prints exactly the problems its comments declare."""
    expected = expectations(path)
    assert any(not w for *_, w in expected), "an invalid fixture must expect an error"
    code, lines, _ = run_validate(path)
    assert code == 2
    assert sorted(observed(lines)) == sorted(expected)


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_valid_fixture_passes_with_only_its_expected_warnings(path: Path) -> None:
    """A valid fixture exits 0, says ok, and prints only the warnings it declares."""
    expected = expectations(path)
    assert all(w for *_, w in expected), "a valid fixture may only expect warnings"
    code, lines, err = run_validate(path)
    assert code == 0, lines
    assert sorted(observed(lines)) == sorted(expected)
    assert "ok: 1 file(s)" in err


def test_fixture_paths_are_printed_as_given() -> None:
    """Problems name the file exactly as it was given on the command line (relative)."""
    code, lines, _ = run_validate(DRILLS / "invalid" / "unknown-probe.yaml")
    assert code == 2
    assert lines and all(
        line.startswith("tests/drills/invalid/unknown-probe.yaml:") for line in lines
    )


def test_huge_file_is_refused_at_its_first_line(tmp_path: Path) -> None:
    """A file over 1 MiB is refused unread, located at 1:1 (generated: too big to commit)."""
    valid = (DRILLS / "valid" / "kill-and-restart.yaml").read_text()
    huge = tmp_path / "huge.yaml"
    huge.write_text(valid + ("# padding " + "x" * 100 + "\n") * 11_000)
    code, lines, _ = run_validate(huge)
    assert code == 2
    assert observed(lines) == [("huge.yaml", 1, 1, "<root>", False)]
    assert "1 MiB" in lines[0]


def test_console_script_validates_every_fixture_without_a_traceback() -> None:
    """The installed ``resildrill validate`` over all fixtures exits 2, one line per problem."""
    exe = Path(sys.executable).with_name("resildrill")
    files = [os.path.relpath(p, ROOT) for p in INVALID + VALID]
    proc = subprocess.run(
        [str(exe), "validate", *files], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stdout.splitlines()
    assert lines and all(LINE.match(line) for line in lines)
    # bad-target.yaml is reported once although bad-target-ref.yaml names it too.
    assert len(lines) == len(set(lines))


def test_console_script_says_ok_for_valid_files() -> None:
    """Valid drills and targets exit 0 with ``ok: N file(s)`` on stderr."""
    exe = Path(sys.executable).with_name("resildrill")
    files = ["tests/drills/target.yaml", "tests/drills/valid/kill-and-restart.yaml"]
    proc = subprocess.run(
        [str(exe), "validate", *files], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip() == "ok: 2 file(s)"


def test_a_folder_stands_for_its_yaml_files(tmp_path: Path) -> None:
    """``validate FOLDER`` checks every YAML file in it; an empty folder is an error."""
    code, lines, err = run_validate(DRILLS / "valid")
    assert code == 0 and "ok: 2 file(s)" in err
    assert [Path(line.split(":")[0]).name for line in lines] == ["overlap-warning.yaml"]
    empty = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert empty.exit_code == 2 and "no .yaml files" in empty.stderr
