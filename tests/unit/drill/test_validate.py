"""Semantic checks: references resolve, ids are unique, the timeline makes sense."""

from __future__ import annotations

from pathlib import Path

import pytest

from resildrill.drill.loader import load_drill, load_target
from resildrill.drill.validate import MAX_DRILL_S, SUSPICIOUS_OFFSET_S
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


def fault(fid: str, at: str, duration: str | None = "3s", action: str = "kill") -> str:
    """One process fault as a flow mapping line under ``faults:``."""
    extra = f", duration: {duration}" if duration else ""
    return f"  - {{id: {fid}, kind: process, service: api, action: {action}, at: {at}{extra}}}\n"


@pytest.fixture
def registry() -> FaultRegistry:
    """Only the built-in process kind."""
    return FaultRegistry({"process": ProcessFaultBackend})


def load(tmp_path: Path, registry: FaultRegistry, text: str) -> list[Problem]:
    """Load a drill (next to the fixture target) and return every problem and warning."""
    (tmp_path / "target.yaml").write_text(TARGET)
    (tmp_path / "drill.yaml").write_text(text)
    try:
        return load_drill(tmp_path / "drill.yaml", registry).warnings
    except InvalidInput as exc:
        return exc.problems


def summary(problems: list[Problem]) -> list[tuple[int, str, str]]:
    """(line, path, severity) of each problem."""
    return [(p.line, p.path, p.severity) for p in problems]


def test_unknown_probe_suggests_the_target_probe(tmp_path: Path, registry: FaultRegistry) -> None:
    """An SLO naming a probe the target lacks is an error at ``probe``, with a suggestion."""
    problems = load(tmp_path, registry, HEAD.replace("probe: api-health", "probe: api-helth"))
    assert summary(problems) == [(6, "slos[0].probe", "error")]
    assert "did you mean 'api-health'?" in problems[0].message


def test_unknown_service_lists_the_target_services(tmp_path: Path, registry: FaultRegistry) -> None:
    """A fault naming a service the target lacks is an error at ``service``."""
    text = HEAD + "faults:\n" + fault("a", "1s").replace("service: api", "service: db")
    problems = load(tmp_path, registry, text)
    assert summary(problems) == [(9, "faults[0].service", "error")]
    assert problems[0].message == "unknown service 'db' (the target has: api)"


def test_duplicate_ids_across_faults_and_manual_steps(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """Fault and manual step ids share one namespace; each repeat is its own error."""
    text = (
        HEAD
        + "faults:\n"
        + fault("a", "1s")
        + fault("a", "30s")
        + "manual:\n  - {id: a, at: 60s, prompt: go}\n"
    )
    assert summary(load(tmp_path, registry, text)) == [
        (10, "faults[1].id", "error"),
        (12, "manual[0].id", "error"),
    ]


def test_sequential_faults_do_not_warn(tmp_path: Path, registry: FaultRegistry) -> None:
    """A fault starting when the previous one ends is not an overlap."""
    text = HEAD + "faults:\n" + fault("a", "1s", "3s") + fault("b", "4s")
    assert load(tmp_path, registry, text) == []


def test_overlapping_faults_warn_at_the_later_fault(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """A fault starting while another is active is a warning located at its ``at``."""
    text = HEAD + "faults:\n" + fault("b", "5s") + fault("a", "1s", "10s")
    problems = load(tmp_path, registry, text)
    assert summary(problems) == [(9, "faults[0].at", "warning")]
    assert "'b' starts while 'a' is active (1s to 11s)" in problems[0].message


def test_faults_without_duration_overlap_only_at_the_same_moment(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """A self-healing fault counts as an instant: only one injected with it overlaps."""
    apart = HEAD + "faults:\n" + fault("a", "1s", None) + fault("b", "2s", None)
    assert load(tmp_path, registry, apart) == []
    together = HEAD + "faults:\n" + fault("a", "1s", None) + fault("b", "1s", None)
    assert summary(load(tmp_path, registry, together)) == [(10, "faults[1].at", "warning")]


def test_recovery_shorter_than_stability_window_is_an_error(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """Recovery could never be confirmed in a window shorter than ``stability_window``."""
    text = HEAD + "stability_window: 10s\nphases: {recovery: 9s}\n"
    problems = load(tmp_path, registry, text)
    assert summary(problems) == [(9, "phases.recovery", "error")]
    equal = HEAD + "stability_window: 10s\nphases: {recovery: 10s}\n"
    assert load(tmp_path, registry, equal) == []


def test_zero_length_fault_is_an_error(tmp_path: Path, registry: FaultRegistry) -> None:
    """``duration: 0s`` is no fault at all."""
    text = HEAD + "faults:\n" + fault("a", "1s", "0s")
    assert summary(load(tmp_path, registry, text)) == [(9, "faults[0].duration", "error")]


def test_late_fault_warns_about_its_unit(tmp_path: Path, registry: FaultRegistry) -> None:
    """A fault more than an hour after the baseline is probably ``m`` written for ``s``."""
    late = f"{int(SUSPICIOUS_OFFSET_S / 60) + 30}m"
    problems = load(tmp_path, registry, HEAD + "faults:\n" + fault("a", late))
    assert summary(problems) == [(9, "faults[0].at", "warning")]
    assert "is the unit right?" in problems[0].message


def test_drill_longer_than_a_day_is_refused(tmp_path: Path, registry: FaultRegistry) -> None:
    """Offsets and durations that add up past 24h are an error, though each is legal."""
    hours = int(MAX_DRILL_S / 3600)
    text = HEAD + "faults:\n" + fault("a", f"{hours - 1}h", "2h")
    problems = load(tmp_path, registry, text)
    assert ("<root>", "error") in [(p.path, p.severity) for p in problems]
    assert "at most 24h" in " ".join(p.message for p in problems)


def test_target_checks_names_services_and_clinical_probe(tmp_path: Path) -> None:
    """A target with a duplicate probe, an unknown service and no clinical probe."""
    text = TARGET.replace("role: clinical", "role: component") + (
        "  - name: api-health\n    tcp: {host: 127.0.0.1, port: 18080}\n    service: web\n"
    )
    path = tmp_path / "target.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as info:
        load_target(path)
    assert summary(info.value.problems) == [
        (16, "probes", "warning"),
        (23, "probes[1].name", "error"),
        (25, "probes[1].service", "error"),
    ]


def test_target_warnings_do_not_stop_a_load(tmp_path: Path) -> None:
    """A target without a clinical probe loads, carrying its warning."""
    path = tmp_path / "target.yaml"
    path.write_text(TARGET.replace("role: clinical", "role: component"))
    loaded = load_target(path)
    assert [(p.path, p.severity) for p in loaded.warnings] == [("probes", "warning")]


def test_target_with_model_errors_still_checks_its_valid_probes(tmp_path: Path) -> None:
    """A broken service does not hide a duplicate probe name or an unknown probe service."""
    text = TARGET.replace("recovery: restart", "recovery: reboot") + (
        "  - name: api-health\n    tcp: {host: 127.0.0.1, port: 18080}\n    service: web\n"
    )
    path = tmp_path / "target.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as info:
        load_target(path)
    assert summary(info.value.problems) == [
        (11, "services.api.recovery", "error"),
        (23, "probes[1].name", "error"),
        (25, "probes[1].service", "error"),
    ]


def test_workflow_slos_need_load_that_plays_them(tmp_path: Path, registry: FaultRegistry) -> None:
    """A workflow SLO needs a ``load`` section, and a workflow that load plays."""
    text = HEAD + "  - workflow: obs_rounds\n    expect: p95 <= 2x baseline\n"
    assert [(p.path, p.message) for p in load(tmp_path, registry, text)] == [
        ("slos[1].workflow", "no clinician load plays a workflow: add a 'load' section")
    ]
    problems = load(tmp_path, registry, text + "load: {users: 4}\n")
    assert [(p.path, p.message) for p in problems] == [
        ("slos[1].workflow", "unknown workflow 'obs_rounds' (did you mean 'obs_round'?)")
    ]
    typo = text + "load: {users: 4, workflows: {obs_rounds: 1.0}}\n"
    assert [(p.path, p.message.split(";")[0]) for p in load(tmp_path, registry, typo)] == [
        ("load.workflows.obs_rounds", "unknown workflow 'obs_rounds' (did you mean 'obs_round'?)")
    ]
    (tmp_path / "mine.py").write_text("")
    own = text + "load: {users: 4, locustfile: mine.py, workflows: {obs_rounds: 1.0}}\n"
    assert load(tmp_path, registry, own) == []


def test_halt_conditions_name_target_probes(tmp_path: Path, registry: FaultRegistry) -> None:
    """An ``abort_when`` probe must exist in the target, like an SLO's."""
    text = HEAD + "abort_when:\n  - {probe: api-healht, when: error_rate > 0.5, for: 2s}\n"
    problems = load(tmp_path, registry, text)
    assert summary(problems) == [(9, "abort_when[0].probe", "error")]


def test_fault_longer_than_its_lifetime_is_an_error(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """A fault the watchdog would end before its ``duration`` cannot run as written."""
    text = HEAD + "max_fault_lifetime: 1m\nfaults:\n" + fault("a", "1s", "2m")
    problems = load(tmp_path, registry, text)
    assert summary(problems) == [(10, "faults[0].duration", "error")]
    assert "max_fault_lifetime 60s" in problems[0].message


def test_halt_on_a_workflow_without_load_is_a_warning(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """A halt condition that can never fire is reported, but the drill still loads."""
    text = HEAD + "abort_when:\n  - {workflow: web, failed_actions: 3}\n"
    assert summary(load(tmp_path, registry, text)) == [(9, "abort_when[0].workflow", "warning")]


def test_fault_proxy_must_be_declared_by_the_target(tmp_path: Path) -> None:
    """A fault acting through a proxy names one of the target's ``toxiproxy.proxies``."""
    registry = FaultRegistry.discover()
    if "network" not in registry.kinds:
        pytest.skip("the network fault kind is not installed")
    text = HEAD + (
        "faults:\n  - {id: cut, kind: network, proxy: db, down: true, at: 1s, duration: 2s}\n"
    )
    problems = load(tmp_path, registry, text)
    assert summary(problems) == [(9, "faults[0].proxy", "error")]
    assert problems[0].message == "unknown proxy 'db' (the target's toxiproxy.proxies has: none)"


def test_load_files_are_read_beside_the_drill(tmp_path: Path) -> None:
    """A missing bearer_token_file or locustfile is a located error; present beside the
    drill file (not the current directory), it validates."""
    folder = tmp_path / "drills"
    folder.mkdir()
    (folder / "target.yaml").write_text(
        "apiVersion: resildrill/v1\nkind: Target\nname: t\nenvironment: test\n"
        "probes:\n  - {name: api, http: {url: 'http://127.0.0.1:9/'}, role: clinical}\n"
    )
    drill = folder / "d.yaml"
    drill.write_text(
        "apiVersion: resildrill/v1\nkind: Drill\nname: d\ntarget: target.yaml\n"
        "load:\n  users: 1\n  bearer_token_file: secrets/token\n  locustfile: users.py\n"
        "slos:\n  - {probe: api, expect: 'success_rate >= 0.99'}\n"
    )
    registry = FaultRegistry.discover()
    with pytest.raises(InvalidInput) as exc:
        load_drill(drill, registry)
    lines = [str(p) for p in exc.value.problems]
    assert any(":7:22: load.bearer_token_file: no file" in line for line in lines), lines
    assert any(":8:15: load.locustfile: no file" in line for line in lines), lines
    (folder / "secrets").mkdir()
    (folder / "secrets" / "token").write_text("t0ken\n")
    (folder / "users.py").write_text("")
    assert load_drill(drill, registry).spec.load is not None


def test_load_without_a_host_is_found_by_validate(tmp_path: Path, registry: FaultRegistry) -> None:
    """What `run` would refuse after starting (load with nowhere to go) `validate` reports
    first, at ``load``: here the target's only clinical probe is TCP."""
    target = TARGET.replace(
        "    http:\n      url: http://127.0.0.1:18080/health\n",
        "    tcp: {host: 127.0.0.1, port: 18080}\n",
    )
    (tmp_path / "target.yaml").write_text(target)
    (tmp_path / "drill.yaml").write_text(HEAD + "load: {users: 2}\nfaults:\n" + fault("k", "1s"))
    with pytest.raises(InvalidInput) as info:
        load_drill(tmp_path / "drill.yaml", registry)
    [problem] = [p for p in info.value.problems if p.severity == "error"]
    assert problem.path == "load" and "set 'load.host'" in problem.message


def test_kill_of_a_service_nobody_restarts_is_warned(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """A target that never chose a service's recovery: 'supervisor' is assumed, and a kill
    drill is warned (it validates, but the user learns nothing may bring it back)."""
    target = TARGET.replace(
        "    recovery: restart\n    restart:\n"
        '      command: [python3, -m, http.server, "18080", --bind, 127.0.0.1]\n'
        "      delay: 1s\n",
        "",
    )
    assert "recovery" not in target and "restart:" not in target
    (tmp_path / "target.yaml").write_text(target)
    (tmp_path / "drill.yaml").write_text(HEAD + "faults:\n" + fault("k", "1s"))
    warnings = load_drill(tmp_path / "drill.yaml", registry).warnings
    assert [(w.path, w.severity) for w in warnings] == [("faults[0].service", "warning")]
    assert "who restarts 'api'" in warnings[0].message


def test_hl7_senders_need_an_engine_the_target_has(tmp_path: Path, registry: FaultRegistry) -> None:
    """``load.hl7`` names one destination, a service with an address or a proxy of the target;
    an HL7 sender without ``load.hl7`` has nowhere to send."""
    orphan = HEAD + "load: {users: 2, workflows: {hl7_lab: 1}}\n"
    assert [(p.path, p.message.split(":")[0]) for p in load(tmp_path, registry, orphan)] == [
        ("load.workflows.hl7_lab", "hl7_lab sends HL7 messages")
    ]
    typo = HEAD + "load: {users: 2, workflows: {hl7_lab: 1}, hl7: {service: apii}}\n"
    assert [(p.path, p.message) for p in load(tmp_path, registry, typo)] == [
        ("load.hl7.service", "unknown service 'apii' (did you mean 'api'?)")
    ]
    both = HEAD + "load: {workflows: {hl7_lab: 1}, hl7: {service: api, host: h, port: 1}}\n"
    assert [p.path for p in load(tmp_path, registry, both)] == ["load.hl7"]
    ok = HEAD + "load: {users: 2, workflows: {hl7_lab: 1}, hl7: {service: api}}\n"
    assert load(tmp_path, registry, ok) == []


def test_hl7_destination_resolves_to_the_service_or_proxy_address() -> None:
    """The runner sends to the engine's address, or the lab-to-engine proxy's listen."""
    from resildrill.drill.model import Hl7LoadSpec

    target = load_target(ROOT / "targets" / "ward-ehr" / "target-hl7.yaml").spec
    direct = Hl7LoadSpec(service="engine").resolved(target)
    via = Hl7LoadSpec(proxy="lab-to-engine").resolved(target)
    assert (direct.host, direct.port, direct.service) == ("127.0.0.1", 18495, None)
    assert (via.host, via.port, via.proxy) == ("127.0.0.1", 18497, None)
    Hl7LoadSpec.model_validate(via.model_dump())  # what a Locust worker re-reads is valid


def test_a_probe_has_exactly_one_check_dicom_included() -> None:
    """``dicom`` is a check like the others; two checks in one probe are refused."""
    from pydantic import ValidationError

    from resildrill.drill.model import ProbeSpec

    echo = {"host": "127.0.0.1", "port": 18590, "called_ae": "WARDPACS"}
    assert ProbeSpec(name="pacs", dicom=echo).dicom is not None
    with pytest.raises(ValidationError, match="exactly one of 'http', 'tcp', 'mllp' or 'dicom'"):
        ProbeSpec(name="pacs", dicom=echo, tcp={"host": "127.0.0.1", "port": 18590})
    with pytest.raises(ValidationError, match="at most 16"):
        ProbeSpec(name="pacs", dicom={**echo, "called_ae": "A" * 17})


def test_radiology_users_need_a_pacs_the_target_has(
    tmp_path: Path, registry: FaultRegistry
) -> None:
    """``dicom_*`` workflows need ``load.dicom``; its service must be one of the target's."""
    orphan = HEAD + "load: {users: 2, workflows: {dicom_modality: 1}}\n"
    assert [p.path for p in load(tmp_path, registry, orphan)] == ["load.workflows.dicom_modality"]
    typo = HEAD + (
        "load: {users: 1, workflows: {dicom_modality: 1}, dicom: {service: pacs, called_ae: X}}\n"
    )
    assert [(p.path, p.message) for p in load(tmp_path, registry, typo)] == [
        ("load.dicom.service", "unknown service 'pacs' (the target has: api)")
    ]
