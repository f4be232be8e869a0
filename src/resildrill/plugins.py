"""Discovery of fault kinds through the ``resildrill.faults`` entry-point group.

Built-in kinds are registered the same way as third-party ones (see pyproject.toml), so
``resildrill plugins`` shows where each came from. Loading checks each class meets the
:class:`~resildrill.faults.base.FaultBackend` contract and that every optional hook it
defines (:class:`~resildrill.faults.base.BackendHooks`) takes the declared parameters; a
broken plugin is reported with its name, not fatal. Callers get a typed
:class:`~resildrill.faults.base.Backend` with every hook present.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, cast

from resildrill.drill.model import FaultSpec
from resildrill.faults.base import OPTIONAL_HOOKS, Backend, BackendHooks

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

    def __init__(self, backends: dict[str, type[Any]] | None = None) -> None:
        self._backends: dict[str, type[Any]] = {
            kind: with_default_hooks(cls) for kind, cls in (backends or {}).items()
        }
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
                registry._backends[ep.name] = with_default_hooks(backend)
        return registry

    @property
    def kinds(self) -> list[str]:
        """Registered kind names, sorted."""
        return sorted(self._backends)

    def classes(self) -> dict[str, type[Any]]:
        """Kind -> backend class (to build a registry with one more kind, in tests)."""
        return dict(self._backends)

    def spec_models(self) -> list[type[FaultSpec]]:
        """The spec model of each registered kind."""
        return [self._backends[k].spec_model for k in self.kinds]

    def backend(self, kind: str) -> Backend:
        """A fresh backend instance for ``kind``; raises KeyError with a suggestion."""
        if kind not in self._backends:
            raise KeyError(unknown_kind_message(kind, self.kinds))
        return cast(Backend, self._backends[kind]())


def with_default_hooks(cls: type[Any]) -> type[Any]:
    """``cls`` with :class:`BackendHooks`' defaults for the optional hooks it leaves out."""
    if issubclass(cls, BackendHooks):
        return cls
    return type(cls.__name__, (cls, BackendHooks), {"__module__": cls.__module__})


def _hook_mismatches(backend: type[Any]) -> list[str]:
    """Optional hooks ``backend`` defines whose parameters differ from the declared ones."""
    wrong = []
    for hook in OPTIONAL_HOOKS:
        mine = getattr(backend, hook, None)
        declared = getattr(BackendHooks, hook)
        if mine is None or mine is declared:
            continue
        try:
            got, want = inspect.signature(mine), inspect.signature(declared)
        except (TypeError, ValueError):
            continue
        if [(p.name, p.kind) for p in got.parameters.values()] != [
            (p.name, p.kind) for p in want.parameters.values()
        ]:
            wrong.append(f"hook {hook}{got} does not match {hook}{want} (faults/base.py)")
    return wrong


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
    wrong = _hook_mismatches(backend)
    return "; ".join(wrong) if wrong else None
