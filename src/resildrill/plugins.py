"""Discovery of fault kinds through the ``resildrill.faults`` entry-point group.

Built-in kinds are registered the same way as third-party ones (see pyproject.toml), so
``resildrill plugins`` shows where each came from. Loading checks each class meets the
:class:`~resildrill.faults.base.FaultBackend` contract; a broken plugin is reported, not fatal.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from resildrill.drill.model import FaultSpec

GROUP = "resildrill.faults"
_REQUIRED = ("preflight", "prepare", "inject", "revert", "is_injected", "self_heals", "undo_hint")


@dataclass(frozen=True)
class PluginInfo:
    """One discovered fault kind and where it came from."""

    kind: str
    value: str
    distribution: str
    error: str | None = None


class FaultRegistry:
    """Name -> backend class, filled from entry points (or given directly in tests)."""

    def __init__(self, backends: dict[str, Any] | None = None) -> None:
        self._backends: dict[str, Any] = dict(backends or {})
        self.infos: list[PluginInfo] = []

    @classmethod
    def discover(cls) -> FaultRegistry:
        """Load every backend registered under ``resildrill.faults``."""
        registry = cls()
        for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "?"
            try:
                backend = ep.load()
                problem = _check_backend(ep.name, backend)
            except Exception as exc:  # a broken plugin must not break the tool
                problem = f"cannot load: {exc}"
                backend = None
            registry.infos.append(PluginInfo(ep.name, ep.value, dist, problem))
            if problem is None:
                registry._backends[ep.name] = backend
        return registry

    @property
    def kinds(self) -> list[str]:
        """Registered kind names, sorted."""
        return sorted(self._backends)

    def spec_models(self) -> list[type[FaultSpec]]:
        """The spec model of each registered kind."""
        return [self._backends[k].spec_model for k in self.kinds]

    def backend(self, kind: str) -> Any:
        """A fresh backend instance for ``kind``; raises KeyError with a suggestion."""
        if kind not in self._backends:
            raise KeyError(unknown_kind_message(kind, self.kinds))
        return self._backends[kind]()


def unknown_kind_message(kind: str, known: list[str]) -> str:
    """'unknown fault kind X (did you mean Y?)'."""
    close = difflib.get_close_matches(kind, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
    return f"unknown fault kind {kind!r}{hint}"


def _check_backend(name: str, backend: Any) -> str | None:
    missing = [m for m in _REQUIRED if not callable(getattr(backend, m, None))]
    if missing:
        return f"missing methods: {', '.join(missing)}"
    if getattr(backend, "kind", None) != name:
        return f"class declares kind {getattr(backend, 'kind', None)!r}, entry point says {name!r}"
    spec = getattr(backend, "spec_model", None)
    if not (isinstance(spec, type) and issubclass(spec, FaultSpec)):
        return "spec_model must subclass resildrill.drill.model.FaultSpec"
    return None
