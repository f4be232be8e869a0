"""The pytest plugin (entry point ``pytest11``): run a drill as a test and fail on its gates.

Two ways in:

* the ``resildrill_drill`` fixture, a callable: ``resildrill_drill("drills/x.yaml")``
  runs the drill and returns a :class:`DrillResult` (the report, exit code, run folder);
  a failed gate or any other non-zero exit fails the test, naming the gates;
* the marker ``@pytest.mark.resildrill("drills/x.yaml")`` runs the drill before the
  test's body, with the same checks.

By default the drill runs as ``python -m resildrill run`` in a child process, so a
crashing drill cannot take the test session down and ``--resildrill-timeout`` can abort
it; with ``--resildrill-in-process`` it runs through the library API
(``resildrill.run_drill``) in the test process (Locust and gevent stay in their own
processes either way). Each drill's figures are added to
the test report: a ``resildrill <drill>`` section (``-rA`` shows it for passing tests) and
``user_properties`` (JUnit XML ``<property>`` elements).

Options: ``--resildrill-out DIR`` (default: pytest's temporary folder),
``--resildrill-no-history`` (do not append the runs to the run history),
``--resildrill-timeout SECONDS`` (default 900; the drill is aborted, and so rolled back,
when it runs longer), ``--resildrill-in-process``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["DrillFailed", "DrillResult", "run_drill"]

_RESULTS = pytest.StashKey[list["DrillResult"]]()
_OUT = pytest.StashKey[Path]()
#: Exit codes of ``resildrill run`` (DESIGN.md), for failure messages.
_MEANING = {
    1: "a gate failed",
    2: "bad input",
    3: "aborted",
    4: "a fault could not be reverted",
    5: "target not ready",
    6: "tool failure",
}


class DrillFailed(AssertionError):
    """A drill run as a test did not pass (its message names the failed gates)."""


@dataclass
class DrillResult:
    """One drill run: its exit code, run folder and report.json (None if none was written)."""

    drill: Path
    exit_code: int
    run_dir: Path | None
    report: dict[str, Any] | None
    stderr: str = field(default="", repr=False)

    @property
    def name(self) -> str:
        """The drill's name (from the report), else its file name."""
        if self.report:
            return str(self.report["drill"]["name"])
        return self.drill.stem

    @property
    def failed_gates(self) -> list[dict[str, Any]]:
        """The report's gates that did not pass."""
        gates = (self.report or {}).get("gates") or []
        return [g for g in gates if not g.get("passed")]

    def figures(self) -> dict[str, Any]:
        """Flat figures for ``user_properties`` (name -> value)."""
        r = self.report or {}
        out: dict[str, Any] = {
            "outcome": r.get("outcome"),
            "exit_code": self.exit_code,
            "run_dir": str(self.run_dir) if self.run_dir else None,
        }
        for key, value in (r.get("summary") or {}).items():
            out[key] = value
        for fault in r.get("faults") or []:
            for key, value in (fault.get("recovery") or {}).items():
                if key != "truncated_by":
                    out[f"{fault['id']}.{key}"] = value
        for gate in r.get("gates") or []:
            out[f"gate.{gate['name']}"] = "pass" if gate.get("passed") else "FAIL"
        return out

    def summary(self) -> str:
        """The figures as text for the test report."""
        r = self.report or {}
        lines = [
            f"drill {self.name}: {r.get('outcome', 'no report')} (exit {self.exit_code})",
            f"run folder: {self.run_dir}",
        ]
        s = r.get("summary") or {}
        if s:
            lines.append(
                f"outage {s.get('outage_s')} s, degraded {s.get('degraded_s')} s, "
                f"availability {s.get('availability')}"
            )
        for fault in r.get("faults") or []:
            rec = fault.get("recovery") or {}
            lines.append(
                f"fault {fault['id']} ({fault['kind']}): detect {rec.get('time_to_detect_s')} s, "
                f"recover {rec.get('time_to_recover_s')} s, recovered {rec.get('recovered')}, "
                f"outage {rec.get('outage_s')} s, relapses {rec.get('relapses')}"
            )
        for gate in r.get("gates") or []:
            verdict = "pass" if gate.get("passed") else "FAIL"
            lines.append(
                f"gate {gate['name']}: {verdict} (value {gate.get('value')}, "
                f"limit {gate.get('limit')})"
            )
        if r.get("reason"):
            lines.append(f"reason: {r['reason']}")
        return "\n".join(lines)

    def check(self) -> None:
        """Raise :class:`DrillFailed` unless the drill passed every gate (exit 0)."""
        if self.exit_code == 0:
            return
        meaning = _MEANING.get(self.exit_code, "unexpected exit code")
        if self.failed_gates:
            gates = ", ".join(
                f"{g['name']} (value {g.get('value')}, limit {g.get('limit')})"
                for g in self.failed_gates
            )
            message = f"drill {self.name} failed gate(s): {gates}"
        else:
            reason = (self.report or {}).get("reason") or self.stderr.strip()[-2000:]
            message = f"drill {self.name}: exit {self.exit_code} ({meaning}): {reason}"
        raise DrillFailed(message)


def run_drill(
    drill: str | Path,
    *,
    out: Path,
    history: bool = True,
    timeout_s: float = 900.0,
    args: Sequence[str] = (),
    in_process: bool = False,
) -> DrillResult:
    """Run ``resildrill run DRILL`` in a child process (or, ``in_process``, through the
    library API in this one) and read its report."""
    if in_process:
        return _run_in_process(drill, out=out, history=history)
    cmd = [sys.executable, "-m", "resildrill", "run", str(drill), "--out", str(out), "--yes"]
    if not history:
        cmd.append("--no-history")
    cmd += list(args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except BaseException:
        # SIGINT is the runner's graceful abort: it reverts every fault before exiting.
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        raise
    lines = stdout.strip().splitlines()
    run_dir = Path(lines[-1]) if lines and Path(lines[-1]).is_dir() else None
    report = None
    if run_dir is not None and (run_dir / "report.json").exists():
        with contextlib.suppress(OSError, ValueError):
            report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    return DrillResult(Path(drill), proc.returncode, run_dir, report, stderr)


def _run_in_process(drill: str | Path, *, out: Path, history: bool) -> DrillResult:
    """``resildrill.run_drill`` in this process: no child, no timeout (the drill's own
    phases bound it), bad input and failed preflights as their exit codes."""
    from resildrill.api import run_drill as api_run_drill
    from resildrill.errors import ResildrillError

    try:
        done = api_run_drill(drill, out=out, yes=True, history=history)
    except ResildrillError as exc:
        return DrillResult(Path(drill), exc.exit_code, None, None, str(exc))
    assert done is not None
    report = json.loads(done.report_path.read_text(encoding="utf-8"))
    return DrillResult(Path(drill), done.exit_code, done.run_dir, report)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options of the plugin."""
    group = parser.getgroup("resildrill", "resilience drills as tests")
    group.addoption("--resildrill-out", default=None, help="folder for the drills' run folders")
    group.addoption(
        "--resildrill-no-history",
        action="store_true",
        help="do not append the drills' runs to the run history",
    )
    group.addoption(
        "--resildrill-in-process",
        action="store_true",
        help="run drills through the library API in the test process (no child process; "
        "--resildrill-timeout does not apply)",
    )
    group.addoption(
        "--resildrill-timeout",
        type=float,
        default=900.0,
        help="seconds a drill may run before it is aborted (and rolled back)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker."""
    config.addinivalue_line(
        "markers",
        "resildrill(drill): run the drill file before the test and fail on its gates",
    )


def _resolve(drill: str | Path, item: pytest.Item) -> Path:
    path = Path(drill)
    if path.is_absolute():
        return path
    for base in (item.path.parent, item.config.rootpath):
        if (base / path).exists():
            return base / path
    return path


class _Runner:
    """What the ``resildrill_drill`` fixture returns: call it with a drill file."""

    def __init__(self, item: pytest.Item, out: Path) -> None:
        self._item = item
        self._out = out

    def __call__(
        self,
        drill: str | Path,
        *,
        check: bool = True,
        history: bool | None = None,
        args: Sequence[str] = (),
    ) -> DrillResult:
        """Run ``drill``; with ``check`` (default) a drill that did not pass fails the test."""
        return _run_for(self._item, self._out, drill, check=check, history=history, args=args)


def _out_dir(config: pytest.Config, factory: pytest.TempPathFactory) -> Path:
    opt = config.getoption("--resildrill-out")
    if opt:
        path = Path(opt)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return factory.mktemp("resildrill", numbered=True)


def _run_for(
    item: pytest.Item,
    out: Path,
    drill: str | Path,
    *,
    check: bool,
    history: bool | None,
    args: Sequence[str],
) -> DrillResult:
    config = item.config
    keep = not config.getoption("--resildrill-no-history") if history is None else history
    result = run_drill(
        _resolve(drill, item),
        out=out,
        history=keep,
        timeout_s=float(config.getoption("--resildrill-timeout")),
        args=args,
        in_process=bool(config.getoption("--resildrill-in-process")) and not args,
    )
    item.stash.setdefault(_RESULTS, []).append(result)
    for key, value in result.figures().items():
        item.user_properties.append((f"resildrill.{result.name}.{key}", value))
    if check:
        failure = None
        try:
            result.check()
        except DrillFailed as exc:
            failure = str(exc)
        # Failed outside the except block, so the report shows one message, not a chain.
        if failure is not None:
            pytest.fail(failure, pytrace=False)
    return result


@pytest.fixture
def resildrill_drill(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> _Runner:
    """A callable that runs a drill file as part of the test (see the module docstring)."""
    return _Runner(request.node, _out_dir(request.config, tmp_path_factory))


@pytest.fixture(autouse=True)
def _resildrill_marker_out(request: pytest.FixtureRequest) -> None:
    """For tests marked ``resildrill``: where their drills write (the marker runs later)."""
    if request.node.get_closest_marker("resildrill") is not None:
        factory = request.getfixturevalue("tmp_path_factory")
        request.node.stash[_OUT] = _out_dir(request.config, factory)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Run the drills of ``@pytest.mark.resildrill(...)`` markers before the test body."""
    for marker in item.iter_markers("resildrill"):
        if not marker.args:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.resildrill needs a drill file")
        _run_for(
            item,
            item.stash[_OUT],
            marker.args[0],
            check=bool(marker.kwargs.get("check", True)),
            history=marker.kwargs.get("history"),
            args=marker.kwargs.get("args", ()),
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add each drill's figures to the call phase's report as a section."""
    report = yield
    if call.when == "call":
        for result in item.stash.get(_RESULTS, []):
            report.sections.append((f"resildrill {result.name}", result.summary()))
    return report
