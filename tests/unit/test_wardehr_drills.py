"""The bundled ward EHR targets and example drills agree with the models and with each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from resildrill.drill.loader import load_target
from resildrill.drill.model import DrillSpec, TargetSpec
from resildrill.faults.process import ProcessFaultSpec
from wardehr.fhir import capability_statement
from wardehr.stack import StackConfig, _layout, write_target

ROOT = Path(__file__).resolve().parents[2]
TARGETS = [ROOT / "targets/ward-ehr/target.yaml", ROOT / "targets/ward-ehr/target-postgres.yaml"]
ALL_TARGETS = sorted((ROOT / "targets/ward-ehr").glob("*.yaml"))
DRILLS = ["replica-loss", "gateway-loss", "total-loss", "database-freeze"]


def read(path: Path) -> Any:
    """Parse a YAML file."""
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", TARGETS, ids=lambda p: p.name)
def test_targets_are_consistent(path: Path) -> None:
    """Each target validates; locators name the pidfiles the launcher writes; probes and
    service addresses are the hops of the stack settings."""
    spec = TargetSpec.model_validate(read(path))
    assert spec.environment == "staging"
    config = StackConfig.model_validate(spec.stack)
    lay = _layout(load_target(path))
    assert set(spec.services) == set(lay.services())
    for name, service in spec.services.items():
        assert service.process is not None and service.process.pidfile is not None
        assert lay.run_dir / service.process.pidfile == lay.pidfile(name)
        assert service.recovery == ("none" if name == "supervisor" else "supervisor")
    clinical = [p for p in spec.probes if p.role == "clinical"]
    assert len(clinical) == 1 and clinical[0].http is not None
    assert clinical[0].http.url == f"http://{config.gateway.connect}/healthz"
    assert spec.services["gateway"].address == config.gateway.connect
    for name, hop in config.replicas.items():
        assert spec.services[name].address == hop.connect
    assert len(config.replicas) >= 2
    assert lay.run_dir.is_relative_to(ROOT / ".state")  # gitignored


@pytest.mark.parametrize("path", ALL_TARGETS, ids=lambda p: p.name)
def test_targets_declare_the_ward_ehr_identity(path: Path) -> None:
    """Each bundled target asks its gateway's CapabilityStatement for the software.name the
    ward EHR serves, so the runner refuses a system that answers otherwise."""
    spec = TargetSpec.model_validate(read(path))
    config = StackConfig.model_validate(spec.stack)
    assert spec.identity is not None
    assert spec.identity.url == f"http://{config.gateway.connect}/metadata"
    assert spec.identity.fhir_software == capability_statement("0")["software"]["name"]
    assert spec.identity.header is None


def test_generated_targets_declare_the_same_identity(tmp_path: Path) -> None:
    """write_target (tests, demos, benchmarks) declares the identity the bundled target does,
    on its own gateway address."""
    path = write_target(tmp_path, ports={"gateway": 1, "replica-a": 2, "replica-b": 3})
    generated = TargetSpec.model_validate(read(path)).identity
    bundled = TargetSpec.model_validate(read(TARGETS[0])).identity
    assert generated is not None and bundled is not None
    assert generated.url == "http://127.0.0.1:1/metadata"
    assert generated.fhir_software == bundled.fhir_software


@pytest.mark.parametrize("name", DRILLS)
def test_drills_load_with_the_project_loader(name: str) -> None:
    """resildrill's own loader (with the registered fault kinds) accepts each drill."""
    from resildrill.drill.loader import load_drill
    from resildrill.plugins import FaultRegistry

    loaded = load_drill(ROOT / "drills" / f"{name}.yaml", FaultRegistry.discover())
    assert loaded.target.spec.stack is not None


@pytest.mark.parametrize("name", DRILLS)
def test_drills_validate_against_their_target(name: str) -> None:
    """Each example drill is a valid DrillSpec, its faults valid process faults on services
    that exist in its target, and its SLOs name probes the target has."""
    path = ROOT / "drills" / f"{name}.yaml"
    raw = read(path)
    faults = [ProcessFaultSpec.model_validate(f) for f in raw.pop("faults")]
    drill = DrillSpec.model_validate(raw)
    target = TargetSpec.model_validate(read(path.parent / drill.target))
    probes = {p.name for p in target.probes}
    assert faults
    for spec in faults:
        assert spec.service in target.services
        assert target.services[spec.service].process is not None
    for slo in drill.slos:
        assert slo.probe in probes
    assert any(slo.probe == "gateway" for slo in drill.slos)


def test_database_freeze_uses_the_postgres_target() -> None:
    """The SQLite target has no database process: the freeze drill must use PostgreSQL."""
    raw = read(ROOT / "drills/database-freeze.yaml")
    assert raw["target"].endswith("target-postgres.yaml")
    frozen = [f for f in raw["faults"] if f["action"] == "freeze"]
    assert [f["service"] for f in frozen] == ["database"]
