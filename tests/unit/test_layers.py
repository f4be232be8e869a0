"""Architecture: lower layers never import higher ones, and Locust stays out of the runner."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "resildrill"

#: Layer of each top-level part (STYLE.md): dependencies only point downwards.
LAYERS: dict[str, int] = {
    "errors": 0,
    "clock": 0,
    "statehome": 0,
    "drill.model": 0,
    # the package's lazy exports name the library API (api.py) by string only
    "__init__": 0,
    "outcome": 0,
    "__version__": 0,
    "drill": 1,
    "plugins": 1,
    "faults": 1,
    "observe": 1,
    "load": 1,
    "proxy": 1,
    "wardehr": 1,
    "runner": 2,
    "analysis": 3,
    "report": 4,
    "history": 4,
    "pipeline": 4,
    "api": 4,
    "testing": 4,
    "cli": 5,
    "pytest_plugin": 5,
    "__main__": 5,
}


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
    """A module imports only from its own layer or below."""
    mine = layer_of(module_name(path))
    upward = sorted(m for m in imports_of(path) if layer_of(m) > mine)
    assert not upward, f"{module_name(path)} (layer {mine}) imports higher layers: {upward}"


def test_runner_and_cli_never_import_locust() -> None:
    """Importing the CLI and runner leaves gevent and locust out of the process."""
    code = (
        "import resildrill.cli, resildrill.runner.runner, resildrill.pipeline, sys; "
        "assert not {'gevent', 'locust'} & set(sys.modules), sorted("
        "{'gevent', 'locust'} & set(sys.modules))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
