"""The contract every fault backend meets, and the values it exchanges with the runner.

A backend is a class registered under the entry-point group ``resildrill.faults``. The
runner owns *when*; the backend owns *how*. Every injection goes through three steps, so
that a crash at any moment can be undone from the journal alone:

1. ``prepare(spec)`` returns a *recipe*: a JSON-serialisable dict holding everything needed
   to undo the fault (absolute paths, pids with their start times, restart commands). The
   runner fsyncs it to the journal as an intent *before* acting.
2. ``inject(spec, recipe)`` acts and returns the recipe completed with what it learnt.
3. ``revert(recipe)`` undoes it, idempotently, using the recipe only; ``is_injected(recipe)``
   checks independently whether the fault is still in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from resildrill.clock import Clock
from resildrill.drill.model import FaultSpec, TargetSpec

Recipe = dict[str, Any]


@dataclass(frozen=True)
class FaultContext:
    """What a backend may know of the run it serves."""

    target: TargetSpec
    target_dir: Path
    run_id: str
    clock: Clock
    #: Paths the runner itself runs under, which no fault may ever touch.
    protected_pids: frozenset[int] = field(default_factory=frozenset)
    #: The run's own folder (reports/<run id>/), where a backend may keep logs of what it
    #: ran (a restart command's output); None outside a run (plan, preflight).
    report_dir: Path | None = None
    #: The drill's faults (every kind), so run-scoped set-up can prepare what they will need
    #: (the guards on the hosts they act on) before the baseline.
    faults: tuple[FaultSpec, ...] = ()

    @property
    def run_dir(self) -> Path:
        """The target's run folder (pidfiles, logs), absolute; the target's folder if unset."""
        run_dir = self.target.run_dir
        if run_dir is None:
            return self.target_dir
        path = Path(run_dir)
        return path if path.is_absolute() else self.target_dir / path


@runtime_checkable
class FaultBackend(Protocol):
    """A fault kind: how to check, inject, revert and inspect one kind of fault."""

    kind: ClassVar[str]
    spec_model: ClassVar[type[FaultSpec]]

    def preflight(self, spec: FaultSpec, ctx: FaultContext) -> list[str]:
        """Problems that would stop ``spec`` being injected and reverted; touches nothing."""
        ...

    def prepare(self, spec: FaultSpec, ctx: FaultContext) -> Recipe:
        """Resolve the fault against the live system and describe how to undo it."""
        ...

    def inject(self, spec: FaultSpec, recipe: Recipe, ctx: FaultContext) -> Recipe:
        """Inject the fault; return the recipe with anything learnt while doing it."""
        ...

    def revert(self, recipe: Recipe) -> str:
        """Undo the fault from its recipe alone; idempotent. Returns what was done."""
        ...

    def is_injected(self, recipe: Recipe) -> bool:
        """Whether the fault is still in place, judged from the live system."""
        ...

    def self_heals(self, spec: FaultSpec, ctx: FaultContext) -> bool:
        """True when the system, not the drill, ends this fault (recovery from injection)."""
        ...

    def undo_hint(self, recipe: Recipe) -> str:
        """A command a human can run to undo the fault by hand."""
        ...


@runtime_checkable
class AdvancingFault(Protocol):
    """Optional capability: a fault that acts over time while injected (heat, flapping).

    The runner calls :meth:`advance` on every tick (about 20 ms) while the fault is active.
    It returns the recipe as it now stands (what is applied *now*, so a crash can be undone
    from the journal) and the actions it took since the last call; the runner journals the
    recipe before the next tick and lists the actions in the report's ``faults[].actions``.
    An action with ``"ends_fault": True`` (heat's "cooling restored") sets the fault's
    ``reverted_at_s``: recovery is counted from it, while the fault goes on acting (servers
    restarting as they cool) until its scheduled revert.
    """

    def advance(
        self, spec: FaultSpec, recipe: Recipe, elapsed_s: float, ctx: FaultContext
    ) -> tuple[Recipe, list[dict[str, Any]]]:
        """Act for ``elapsed_s`` seconds since injection; return (recipe, actions taken)."""
        ...


@runtime_checkable
class RunScopedBackend(Protocol):
    """Optional capability: a backend that needs something in place for the whole drill.

    ``setup_run`` is called once before the baseline (the network backend makes sure the
    target's Toxiproxy API answers, starting the embedded server *for the target* when
    nothing does) and returns journal records, each a dict with a ``type``: a ``child``
    (``role``, ``pid``, ``start_time``) is a helper process that dies with the run (the
    watchdog stops it if the runner dies); anything else is kept for ``rollback`` (the
    network backend's ``proxy_paths``). ``teardown_run`` is called after every fault is
    reverted and the last probe taken; it returns problems for the report's notices.
    """

    def setup_run(self, ctx: FaultContext, run_dir: Path) -> list[dict[str, Any]]: ...

    def teardown_run(self, ctx: FaultContext, run_dir: Path) -> list[str]: ...


class BackendHooks:
    """The optional hooks of a fault backend, declared in one place with their defaults.

    A backend class may define any of these; the registry checks, when it loads a plugin,
    that each one it defines takes the parameters declared here (the plugin's name is in
    the error), and gives a backend that defines none of them these defaults, so callers
    never look hooks up by name.
    """

    def revert_delay(self, spec: FaultSpec, ctx: FaultContext) -> float | None:
        """For a fault without ``duration``: seconds after injection at which the drill ends
        it anyway (a ``recovery: restart`` service is restarted), or None."""
        return None

    def setup_run(self, ctx: FaultContext, run_dir: Path) -> list[dict[str, Any]]:
        """Before the baseline (see :class:`RunScopedBackend`): journal records."""
        return []

    def teardown_run(self, ctx: FaultContext, run_dir: Path) -> list[str]:
        """After the last probe (see :class:`RunScopedBackend`): problems for the report."""
        return []

    def halt_reason(self, ctx: FaultContext) -> str | None:
        """Asked on every tick of a run: why the drill must halt now (contact with a remote
        host's guard lost), or None."""
        return None

    def plan_table(self, spec: FaultSpec, ctx: FaultContext, offset_s: float) -> list[str]:
        """Extra lines ``resildrill plan`` prints for this fault (heat: its schedule)."""
        return []

    def timeline_series(
        self,
        spec: FaultSpec,
        *,
        start_s: float,
        n_buckets: int,
        actions: list[dict[str, object]],
    ) -> dict[str, Any]:
        """Series this fault adds to report.json's timeline (heat: temperatures)."""
        return {}


class Backend(FaultBackend, Protocol):
    """What the registry hands out: the contract plus every optional hook of
    :class:`BackendHooks` (defaults filled in by the registry)."""

    def revert_delay(self, spec: FaultSpec, ctx: FaultContext) -> float | None: ...

    def setup_run(self, ctx: FaultContext, run_dir: Path) -> list[dict[str, Any]]: ...

    def teardown_run(self, ctx: FaultContext, run_dir: Path) -> list[str]: ...

    def halt_reason(self, ctx: FaultContext) -> str | None: ...

    def plan_table(self, spec: FaultSpec, ctx: FaultContext, offset_s: float) -> list[str]: ...

    def timeline_series(
        self,
        spec: FaultSpec,
        *,
        start_s: float,
        n_buckets: int,
        actions: list[dict[str, object]],
    ) -> dict[str, Any]: ...


#: The optional hooks by name (the registry checks a plugin's against these).
OPTIONAL_HOOKS: tuple[str, ...] = (
    "revert_delay",
    "setup_run",
    "teardown_run",
    "halt_reason",
    "plan_table",
    "timeline_series",
)
