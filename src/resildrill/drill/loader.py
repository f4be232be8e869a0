"""File -> YAML nodes -> models, with every problem located as file:line:col.

(Placeholder: the full loader with located errors is being built; the signatures below
are the contract other modules rely on.)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from resildrill.drill.model import DrillSpec, TargetSpec
from resildrill.errors import InvalidInput, Problem


@dataclass(frozen=True)
class LoadedTarget:
    """A validated target and where it came from."""

    spec: TargetSpec
    path: Path
    sha256: str


@dataclass(frozen=True)
class LoadedDrill:
    """A validated drill, its target, checksums and any warnings."""

    spec: DrillSpec
    path: Path
    sha256: str
    target: LoadedTarget
    warnings: list[Problem] = field(default_factory=list)


def _read(path: Path) -> tuple[bytes, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}:1:1: <root>: cannot read: {exc.strerror}") from None
    return raw, yaml.safe_load(raw)


def load_target(path: str | Path) -> LoadedTarget:
    """Load and validate a ``kind: Target`` file."""
    p = Path(path).resolve()
    raw, data = _read(p)
    spec = TargetSpec.model_validate(data)
    return LoadedTarget(spec, p, hashlib.sha256(raw).hexdigest())


def load_drill(path: str | Path, registry: Any = None) -> LoadedDrill:
    """Load and validate a ``kind: Drill`` file and the target it names."""
    p = Path(path).resolve()
    raw, data = _read(p)
    spec = DrillSpec.model_validate(data)
    target = load_target(p.parent / spec.target)
    return LoadedDrill(spec, p, hashlib.sha256(raw).hexdigest(), target)
