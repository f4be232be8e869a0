"""The library API: the curated names of ``resildrill`` and the plugin contract's checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import resildrill
from resildrill.drill.model import FaultSpec
from resildrill.faults.base import OPTIONAL_HOOKS, BackendHooks
from resildrill.plugins import FaultRegistry, _check_backend, with_default_hooks


def test_all_is_pinned() -> None:
    """Adding or removing a public name is a decision: change this list with it."""
    assert resildrill.__all__ == [
        "__version__",
        "DrillReport",
        "DrillResult",
        "FaultRegistry",
        "InvalidInput",
        "Outcome",
        "ProductionRefused",
        "ResildrillError",
        "TargetNotReady",
        "ToolFailed",
        "load_drill",
        "run_drill",
    ]
    for name in resildrill.__all__:
        assert getattr(resildrill, name) is not None


def test_import_is_cheap() -> None:
    """``import resildrill`` loads no runner, pydantic or Locust until a name is used."""
    code = (
        "import resildrill, sys; print(sorted(m for m in sys.modules "
        "if m.startswith(('resildrill.', 'pydantic', 'locust'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class _Spec(FaultSpec):
    kind: str = "odd"


class _Required:
    kind: ClassVar[str] = "odd"
    spec_model: ClassVar[type[FaultSpec]] = _Spec

    def preflight(self, spec: Any, ctx: Any) -> list[str]:
        return []

    prepare = inject = revert = is_injected = self_heals = undo_hint = preflight


def test_a_plugin_without_hooks_gets_the_defaults() -> None:
    assert _check_backend("odd", _Required) is None
    backend = FaultRegistry({"odd": _Required}).backend("odd")
    assert backend.revert_delay(_Spec(id="x", at="0s"), None) is None  # type: ignore[arg-type]
    assert backend.setup_run(None, Path(".")) == []  # type: ignore[arg-type]
    assert issubclass(with_default_hooks(_Required), BackendHooks)
    assert set(OPTIONAL_HOOKS) <= set(dir(backend))


def test_a_hook_with_the_wrong_parameters_is_refused_by_name() -> None:
    class Wrong(_Required):
        def revert_delay(self, spec: Any) -> float | None:  # ctx missing
            return None

    problem = _check_backend("odd", Wrong)
    assert problem is not None
    assert "revert_delay(self, spec" in problem and "faults/base.py" in problem
