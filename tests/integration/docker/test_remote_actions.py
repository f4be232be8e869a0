"""Every remote action and its revert, through real SSH to real OpenSSH hosts (containers with
their own PID namespace, targets/ward-ehr-hosts' stack), judged by the inspector inside the
host (``docker exec`` reading /proc, df, VmRSS): never the journal nor the guard's answers.

Faults are driven through the registered backends (prepare, inject, is_injected, revert), as
the runner drives them; test_remote_drills.py runs the same through the CLI.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote_support import Estate, down_estate, drill_doc, up_estate, wait_for, write_yaml

from resildrill.api import load
from resildrill.clock import MonotonicClock
from resildrill.errors import InjectionFailed
from resildrill.faults.base import FaultContext
from resildrill.plugins import FaultRegistry
from resildrill.remote.session import SESSIONS
from resildrill.runner.drill_run import fault_context

pytestmark = pytest.mark.timeout(240)

_runs = itertools.count(1)


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    made = up_estate(tmp_path_factory.mktemp("estate"), f"rt-{uuid.uuid4().hex[:6]}")
    yield made
    SESSIONS.close_all()
    down_estate(made)


class Driver:
    """Runs one fault through its backend the way the runner does."""

    def __init__(self, estate: Estate, fault: dict[str, Any], target_extra: Any = None) -> None:
        drill = write_yaml(estate.folder / "drill.yaml", drill_doc("actions", [fault]))
        self.drill = load(drill)
        self.registry = FaultRegistry.discover()
        run_id = f"test-{uuid.uuid4().hex[:8]}-{next(_runs)}"
        self.ctx: FaultContext = fault_context(self.drill, run_id, MonotonicClock())
        self.spec = self.drill.spec.faults[0]
        self.backend = self.registry.backend(self.spec.kind)
        self.recipe: dict[str, Any] = {}

    def preflight(self) -> list[str]:
        return list(self.backend.preflight(self.spec, self.ctx))

    def inject(self) -> dict[str, Any]:
        self.recipe = self.backend.prepare(self.spec, self.ctx)
        self.recipe["_expires_at"] = self.ctx.clock.monotonic() + 60
        self.recipe = self.backend.inject(self.spec, self.recipe, self.ctx)
        return self.recipe

    def revert(self) -> str:
        return str(self.backend.revert(self.recipe))

    def done(self) -> list[str]:
        return list(self.backend.teardown_run(self.ctx, self.ctx.target_dir))


def _fault(**kw: Any) -> dict[str, Any]:
    return {"id": "f", "at": "0s", "duration": "5s", **kw}


def test_freeze_by_pidfile_and_thaw(estate: Estate) -> None:
    pid = estate.pidfile_pid("replica-b", "replica-b")
    d = Driver(estate, _fault(kind="process", service="replica-b", action="freeze"))
    assert d.preflight() == []
    recipe = d.inject()
    assert [p["pid"] for p in recipe["processes"]] == [pid]
    assert estate.state_of("replica-b", pid) == "T"
    assert d.backend.is_injected(recipe)
    assert "SIGCONT" in d.revert()
    assert estate.state_of("replica-b", pid) in ("S", "R")
    assert not d.backend.is_injected(recipe)
    assert d.done() == []


def test_kill_by_pidfile_supervisor_restarts(estate: Estate) -> None:
    pid = estate.pidfile_pid("gateway", "gateway")
    d = Driver(estate, _fault(kind="process", service="gateway", action="kill"))
    d.inject()
    assert wait_for(lambda: estate.state_of("gateway", pid) is None, 5) is not None
    # the host's own supervisor brings a new process back; the fault has no undo
    assert wait_for(lambda: estate.pidfile_pid("gateway", "gateway") != pid, 10) is not None
    assert d.revert() == "nothing to restart"
    d.done()


def test_terminate_and_match_and_tree(estate: Estate) -> None:
    """A family started inside the host, found by its exact command line, terminated whole."""
    tag = f"{uuid.uuid4().int % 100000}.5"
    estate.sh(
        "replica-a",
        f"nohup /bin/sh -c 'sleep {tag} & sleep {tag} & wait' >/dev/null 2>&1 &",
    )
    wait_for(lambda: len(estate.pids_matching("replica-a", f"sleep {tag}")) == 3, 5)
    parent = f"/bin/sh -c sleep {tag} & sleep {tag} & wait"
    family = estate.pids_matching("replica-a", f"sleep {tag}")
    assert len(family) == 3
    doc = write_yaml(estate.folder / "target.yaml", _with_service(estate, "family", parent))
    assert doc.exists()
    d = Driver(
        estate,
        _fault(kind="process", service="family", action="terminate", scope="tree"),
    )
    recipe = d.inject()
    assert sorted(p["pid"] for p in recipe["processes"]) == sorted(family)
    assert wait_for(lambda: not estate.pids_matching("replica-a", f"sleep {tag}"), 5) is not None
    d.done()
    _restore_target(estate)


def test_freeze_by_systemd_unit(estate: Estate) -> None:
    """A unit's processes are those in its cgroup (systemd's name=systemd hierarchy here)."""
    hierarchy = Path("/sys/fs/cgroup/systemd")
    if not hierarchy.is_dir():
        pytest.skip("this kernel has no name=systemd cgroup hierarchy (outside the project)")
    tag = f"{uuid.uuid4().int % 100000}.25"
    estate.sh("replica-a", f"nohup sleep {tag} >/dev/null 2>&1 &")
    wait_for(lambda: bool(estate.pids_matching("replica-a", f"sleep {tag}")), 5)
    [inner] = estate.pids_matching("replica-a", f"sleep {tag}")
    outer = _host_pid_of(f"sleep {tag}")
    cid = _container_cgroup(estate.container("replica-a"))
    unit_dir = hierarchy / cid.lstrip("/") / "ward-probe.service"
    unit_dir.mkdir(exist_ok=True)
    try:
        (unit_dir / "cgroup.procs").write_text(str(outer))
        write_yaml(
            estate.folder / "target.yaml",
            _with_service(estate, "probe", None, unit="ward-probe.service"),
        )
        d = Driver(estate, _fault(kind="process", service="probe", action="freeze"))
        recipe = d.inject()
        assert [p["pid"] for p in recipe["processes"]] == [inner]
        assert estate.state_of("replica-a", inner) == "T"
        d.revert()
        assert estate.state_of("replica-a", inner) in ("S", "R")
        d.done()
    finally:
        estate.sh("replica-a", f"kill {inner} || true")
        wait_for(lambda: not (unit_dir / "cgroup.procs").read_text().strip(), 5)
        unit_dir.rmdir()
        _restore_target(estate)


def test_cpu_hog_on_host(estate: Estate) -> None:
    d = Driver(estate, _fault(kind="resource", host="replica-b", cpu={"cores": 2}))
    recipe = d.inject()
    [timing] = recipe["hosts_timing"]
    pids = timing["pids"]
    assert len(pids) == 2
    for pid in pids:
        assert estate.state_of("replica-b", pid) in ("R", "S")
    assert _cpu_ticks(estate, pids[0], after=0.5) > 0  # really burning CPU
    d.revert()
    assert all(estate.state_of("replica-b", p) is None for p in pids)
    d.done()


def test_memory_hog_on_host(estate: Estate) -> None:
    d = Driver(estate, _fault(kind="resource", host="replica-b", memory={"size": "64MiB"}))
    recipe = d.inject()
    [pid] = recipe["hosts_timing"][0]["pids"]
    assert estate.rss_mib("replica-b", pid) >= 60
    d.revert()
    assert estate.state_of("replica-b", pid) is None
    d.done()


def test_disk_fill_respects_floor_and_reverts(estate: Estate) -> None:
    """From replica-a's host (floor: min_free_disk_mib 2) the store's filesystem is filled
    to the floor and no further, though the drill asks for 100%."""
    before = estate.df_used_pct("database", "/var/lib/wardehr")
    d = Driver(
        estate,
        _fault(
            kind="resource", host="replica-a", disk={"path": "/var/lib/wardehr", "fill_to": "100%"}
        ),
    )
    assert d.preflight() == []
    d.inject()
    free_kib = int(estate.sh("database", "df -P /var/lib/wardehr | tail -1").split()[3])
    assert 1900 <= free_kib <= 2300, free_kib
    assert estate.df_used_pct("database", "/var/lib/wardehr") > 90
    d.revert()
    assert abs(estate.df_used_pct("database", "/var/lib/wardehr") - before) < 2
    d.done()


def test_disk_fill_to_the_last_byte_where_the_floor_is_zero(estate: Estate) -> None:
    d = Driver(
        estate,
        _fault(
            kind="resource", host="database", disk={"path": "/var/lib/wardehr", "fill_to": "100%"}
        ),
    )
    d.inject()
    free_kib = int(estate.sh("database", "df -P /var/lib/wardehr | tail -1").split()[3])
    assert free_kib < 100, free_kib
    d.revert()
    assert int(estate.sh("database", "df -P /var/lib/wardehr | tail -1").split()[3]) > 20000
    d.done()


def test_wrong_count_refuses_before_acting(estate: Estate) -> None:
    write_yaml(
        estate.folder / "target.yaml",
        _with_service(estate, "nobody", "no such command line anywhere"),
    )
    d = Driver(estate, _fault(kind="process", service="nobody", action="freeze"))
    assert "expected 1 process(es), found 0" in d.preflight()[0]
    with pytest.raises(InjectionFailed, match="nothing injected"):
        d.inject()
    d.done()
    _restore_target(estate)


# --- helpers -------------------------------------------------------------------------------


def _with_service(
    estate: Estate, name: str, match: str | None, unit: str | None = None
) -> dict[str, Any]:
    import yaml

    doc = yaml.safe_load(estate.target.read_text())
    locator = {"match": match} if match is not None else {"unit": unit}
    doc["services"][name] = {"host": "replica-a", "process": locator, "recovery": "none"}
    return dict(doc)


def _restore_target(estate: Estate) -> None:
    import yaml

    doc = yaml.safe_load(estate.target.read_text())
    for extra in ("family", "probe", "nobody"):
        doc["services"].pop(extra, None)
    estate.target.write_text(yaml.safe_dump(doc, sort_keys=False))


def _host_pid_of(cmdline: str) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b" ".join(raw.split(b"\0")).strip().decode(errors="replace") == cmdline:
                return int(entry.name)
    raise AssertionError(f"no host process {cmdline!r}")


def _container_cgroup(container: str) -> str:
    import subprocess

    pid = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Pid}}", container],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if ":name=systemd:" in line:
            return line.split(":", 2)[2]
    raise AssertionError("no name=systemd cgroup for the container")


def _cpu_ticks(estate: Estate, pid: int, after: float) -> int:
    import time

    def ticks() -> int:
        text = estate.sh("replica-b", f"cat /proc/{pid}/stat")
        fields = text[text.rfind(")") + 2 :].split()
        return int(fields[11]) + int(fields[12])

    first = ticks()
    time.sleep(after)
    return ticks() - first


def test_kill_with_restart_command_on_the_host(estate: Estate) -> None:
    """recovery: restart on a remote service: the command runs on the host (argv, detached),
    and the inspector finds a new process answering the locator there."""
    import yaml

    tag = f"{uuid.uuid4().int % 100000}.75"
    estate.sh("replica-b", f"nohup sleep {tag} >/dev/null 2>&1 &")
    wait_for(lambda: bool(estate.pids_matching("replica-b", f"sleep {tag}")), 5)
    [first] = estate.pids_matching("replica-b", f"sleep {tag}")
    doc = yaml.safe_load(estate.target.read_text())
    doc["services"]["probe"] = {
        "host": "replica-b",
        "process": {"match": f"sleep {tag}"},
        "recovery": "restart",
        "restart": {"command": ["/usr/bin/nohup", "sleep", tag], "cwd": "/tmp"},
    }
    estate.target.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        d = Driver(estate, {"id": "f", "at": "0s", "kind": "process", "service": "probe",
                            "action": "kill"})  # fmt: skip
        recipe = d.inject()
        assert wait_for(lambda: estate.state_of("replica-b", first) is None, 5) is not None
        assert d.backend.is_injected(recipe)  # the drill owes it a restart
        assert "ran restart command on host 'replica-b'" in d.revert()
        assert wait_for(lambda: bool(estate.pids_matching("replica-b", f"sleep {tag}")), 5)
        [second] = estate.pids_matching("replica-b", f"sleep {tag}")
        assert second != first and not d.backend.is_injected(recipe)
        d.done()
    finally:
        estate.sh("replica-b", f"pkill -f '[s]leep {tag}' || true")
        _restore_target(estate)
