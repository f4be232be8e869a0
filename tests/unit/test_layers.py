"""Architecture: lower layers never import higher ones, and Locust stays out of the runner."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "resildrill"

#: Layer of each part (STYLE.md): a module imports only from lower layers or from its own
#: part, so two parts of one layer never import each other (no sideways tangles).
LAYERS: dict[str, int] = {
    # values and vocabulary everyone shares
    "errors": 0,
    "clock": 0,
    "statehome": 0,
    "outcome": 0,
    "drill.model": 0,
    "__version__": 0,
    # the HL7 v2 wire format (framing, ACK meaning, messages): used by probes, load, engine
    "hl7": 0,
    # DICOM networking (C-ECHO): used by probes
    "dicom": 0,
    # the package's lazy exports name the library API by string only
    "__init__": 0,
    # leaf services: probes and buckets, the proxy server, report rendering, the fault and
    # stack contracts
    "observe": 1,
    "proxy": 1,
    "report": 1,
    "faults.base": 1,
    "stacks": 1,
    # registries and pure computations on measured data
    "plugins": 2,
    # hosts of the estate over SSH: the guard, its channel, undo from a recipe
    "remote": 2,
    "load": 2,
    "analysis": 2,
    "history": 2,
    # input and fault kinds
    "drill": 3,
    "faults": 3,
    # running a drill; starting a foreign system from its declared commands
    "runner": 4,
    "stack_commands": 4,
    # run -> analysis -> report.json
    "pipeline": 5,
    # the library API
    "api": 6,
    # its users
    "testing": 7,
    "cli": 7,
    "pytest_plugin": 7,
    "__main__": 8,
}

#: What the bundled ward EHR (package ``wardehr``, beside the product) may use of resildrill:
#: target files, errors, and the stack contract; the Docker engine connection is shared.
WARDEHR_MAY_USE = {
    "resildrill.errors",
    "resildrill.drill.loader",
    "resildrill.drill.model",
    "resildrill.stacks",
    "resildrill.faults.docker_engine",
    # the HL7 v2 wire format the engine and the EHR's inbound speak, as the drill's side does
    "resildrill.hl7.ack",
    "resildrill.hl7.mllp",
    "resildrill.dicom.echo",
}


def part_of(module: str) -> str:
    """The part (key of LAYERS) a dotted module name below ``resildrill`` belongs to."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return key
    raise KeyError(f"module {module!r} has no layer: add it to LAYERS")


def layer_of(module: str) -> int:
    """The layer of a dotted module name below ``resildrill``."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return LAYERS[key]
    raise KeyError(f"module {module!r} has no layer: add it to LAYERS")


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"] or ["__init__"]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every resildrill module a file imports, at the top or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("resildrill.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("resildrill."):
                found.add(node.module)
            elif node.module == "resildrill":
                found |= {f"resildrill.{a.name}" for a in node.names}
    return {m.removeprefix("resildrill.") for m in found}


FILES = sorted(p for p in SRC.rglob("*.py") if "locustfiles" not in p.parts)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_upward_import(path: Path) -> None:
    """A module imports only from lower layers, or from its own part."""
    me = module_name(path)
    mine, own = layer_of(me), part_of(me)
    wrong = sorted(m for m in imports_of(path) if part_of(m) != own and layer_of(m) >= mine)
    assert not wrong, f"{me} (layer {mine}) imports its own layer or higher: {wrong}"


def _all_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_product_never_imports_the_bundled_ehr() -> None:
    """resildrill reaches the ward EHR only through target files and the stack entry points."""
    for path in FILES:
        assert not any(m.split(".")[0] == "wardehr" for m in _all_imports(path)), path


@pytest.mark.parametrize(
    "path", sorted((SRC.parent / "wardehr").rglob("*.py")), ids=lambda p: p.name
)
def test_the_bundled_ehr_uses_only_public_parts(path: Path) -> None:
    used = {m for m in _all_imports(path) if m.split(".")[0] == "resildrill"}
    assert used <= WARDEHR_MAY_USE, sorted(used - WARDEHR_MAY_USE)


def test_runner_and_cli_never_import_locust() -> None:
    """Importing the CLI and runner leaves gevent and locust out of the process."""
    code = (
        "import resildrill.cli, resildrill.runner.runner, resildrill.pipeline, sys; "
        "assert not {'gevent', 'locust'} & set(sys.modules), sorted("
        "{'gevent', 'locust'} & set(sys.modules))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
