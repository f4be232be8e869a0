"""Staging systems ``resildrill target up|down|status`` can start: the stack contract.

A target file may declare ``stack: {kind: NAME, ...}``; the module registered for NAME
under the entry-point group ``resildrill.stacks`` starts and stops it. ``commands``
(``stack_commands.py``) runs a foreign system's own start and stop commands. The bundled ward EHR
(package ``wardehr``, beside this one) registers ``ward-ehr`` and ``ward-ehr-docker``;
resildrill itself never imports it. A stack module provides three functions::

    up(target_path, *, timeout_s: float) -> StackStatus     # idempotent; waits for health
    down(target_path) -> list[str]                          # the services that were running
    status(target_path) -> StackStatus
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from resildrill.errors import InvalidInput

GROUP = "resildrill.stacks"


@dataclass
class ServiceStatus:
    """One service as ``target status`` shows it."""

    name: str
    pid: int | None
    state: str  # running | frozen | stopped
    healthy: bool | None
    address: str | None = None
    restarts: int | None = None
    detail: str = ""


@dataclass
class StackStatus:
    """Every service of a target, and where its files are."""

    target: str
    run_dir: Path
    services: list[ServiceStatus] = field(default_factory=list)
    #: Set by ``up``: True when this call started the stack, False when it was already
    #: running (then a caller such as the demo must not stop what someone else started).
    started: bool | None = None
    #: Where a user finds the stack's files, by label ("pidfiles", "logs" when None).
    files: dict[str, Path] | None = None

    @property
    def running(self) -> bool:
        """Whether any process of the stack is alive."""
        return any(s.pid is not None for s in self.services)

    @property
    def healthy(self) -> bool:
        """Whether every service is running and passes its health check."""
        return all(s.state == "running" and s.healthy is not False for s in self.services)


class StackDriver(Protocol):
    """What a registered stack module provides."""

    def up(self, target: Any, *, timeout_s: float = 60.0) -> StackStatus: ...

    def down(self, target: Any) -> list[str]: ...

    def status(self, target: Any, *, timeout_s: float = 0.5) -> StackStatus: ...


#: Stack kinds resildrill ships (module names: imported only when used).
BUILT_IN = {"commands": "resildrill.stack_commands"}


def stack_kinds() -> dict[str, Any]:
    """Registered stack kinds -> their entry points (built-ins by module name)."""
    return {**BUILT_IN, **{ep.name: ep for ep in entry_points(group=GROUP)}}


def stack_driver(kind: str, where: str) -> StackDriver:
    """The driver of stack ``kind``; InvalidInput (naming ``where``) when none is registered."""
    kinds = stack_kinds()
    if kind not in kinds:
        close = difflib.get_close_matches(kind, list(kinds), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(kinds))}"
        raise InvalidInput(f"{where}: stack.kind: no stack {kind!r} is installed ({hint})")
    found = kinds[kind]
    driver: StackDriver = importlib.import_module(found) if isinstance(found, str) else found.load()
    return driver
