"""resildrill: resilience drills for clinical IT, with recovery measured to a tenth of a second.

The library API (the CLI is built on it)::

    from resildrill import run_drill
    result = run_drill("drills/gateway-loss.yaml")
    print(result.exit_code, result.report.summary)

Names are imported on first use, so ``import resildrill`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that owns it
_EXPORTS: dict[str, str] = {
    "run_drill": "resildrill.api",
    "DrillResult": "resildrill.api",
    "load_drill": "resildrill.drill.loader",
    "DrillReport": "resildrill.report.model",
    "FaultRegistry": "resildrill.plugins",
    "Outcome": "resildrill.outcome",
    "ResildrillError": "resildrill.errors",
    "InvalidInput": "resildrill.errors",
    "ProductionRefused": "resildrill.errors",
    "TargetNotReady": "resildrill.errors",
    "ToolFailed": "resildrill.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'resildrill' has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(__all__)
