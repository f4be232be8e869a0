"""Running a drill's steps in order on the monotonic clock and deciding how the run ended.

preflight -> baseline (steady state checked) -> inject / revert / manual steps at their
offsets -> recovery window -> revert anything left -> verify nothing is still injected.

The runner owns *when*. Backends own *how* (through the FaultBackend contract), the
sampler owns *what was seen*; whether the steady state held is asked of a function the
composition root passes in, so the runner never does the analysis itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from resildrill.clock import Clock, MonotonicClock, iso_utc
from resildrill.drill.loader import LoadedDrill
from resildrill.drill.model import FaultSpec
from resildrill.errors import InjectionFailed, InvalidInput, ToolProblem
from resildrill.faults.base import AdvancingFault, FaultContext
from resildrill.faults.process import proc_start_time
from resildrill.observe.metrics import TimeSeries
from resildrill.observe.probes import Probe
from resildrill.observe.sampler import Sampler
from resildrill.plugins import FaultRegistry
from resildrill.runner import registry as run_registry
from resildrill.runner.halt import check_halts
from resildrill.runner.journal import Journal, PendingFault
from resildrill.runner.operator import OperatorChannel
from resildrill.runner.rollback import confirm_revert, issue_revert
from resildrill.runner.safety import TargetLock, check_identity, notify, stale_journals
from resildrill.runner.signals import AbortSignals
from resildrill.runner.timeline import Mark, TimelineStream
from resildrill.runner.watchdog import start_watchdog, wait_watching

CRASH_POINTS = ("intent_written", "injected", "outcome_written", "revert_issued")
_TICK_S = 0.02


@dataclass
class FaultRun:
    """One fault as it happened."""

    spec: FaultSpec
    counted_from: str  # "revert" or "inject"
    inject_requested_at_s: float | None = None
    injected_at_s: float | None = None
    revert_requested_at_s: float | None = None
    reverted_at_s: float | None = None
    recipe: dict[str, Any] | None = None
    error: str | None = None
    revert_detail: str | None = None
    still_injected: str | None = None  # undo hint when a revert could not be confirmed
    active: bool = False
    actions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunRecord:
    """Everything a run measured and did: the input of analysis and the report."""

    run_id: str
    run_dir: Path
    drill: LoadedDrill
    monotonic_t0: float
    wall_t0: float
    started_at: str
    series: TimeSeries
    marks: list[Mark] = field(default_factory=list)
    faults: list[FaultRun] = field(default_factory=list)
    manual: list[dict[str, Any]] = field(default_factory=list)
    baseline_end_s: float = 0.0
    end_s: float = 0.0
    status: str = "completed"  # completed | aborted | not_ready | error
    reason: str | None = None
    load: Any = None
    integrity: Any = None
    halted_at_s: float | None = None
    notices: list[str] = field(default_factory=list)


@dataclass
class RunStatus:
    """What the live view shows each tick."""

    phase: str
    elapsed_s: float
    total_s: float
    active_faults: list[str]
    probe_health: dict[str, bool | None]


SteadyStateCheck = Callable[[RunRecord], str | None]
"""Returns None when the steady state held through the baseline, else why it did not."""


def new_run_id(drill_name: str, wall: float) -> str:
    """``<drill>-<UTC time>-<4 hex>``: sortable, unique, safe as a folder name."""
    stamp = iso_utc(wall).replace("-", "").replace(":", "").replace(".", "")[:15]
    return f"{drill_name}-{stamp}Z-{uuid.uuid4().hex[:4]}"


def _maybe_crash(point: str) -> None:
    """Die like a killed runner at a named point (tests force each one)."""
    if os.environ.get("RESILDRILL_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def scheduled_revert_offset(spec: FaultSpec, backend: Any, ctx: FaultContext) -> float | None:
    """When (offset from baseline end) the drill ends this fault, or None if it never does."""
    if spec.duration is not None:
        return spec.at + spec.duration
    delay = getattr(backend, "revert_delay", None)
    if callable(delay):
        d = delay(spec, ctx)
        if d is not None:
            return float(spec.at + d)
    return None


class DrillRunner:
    """Runs one loaded drill against its target."""

    def __init__(
        self,
        drill: LoadedDrill,
        *,
        registry: FaultRegistry,
        out_dir: Path,
        steady_state: SteadyStateCheck | None = None,
        clock: Clock | None = None,
        yes: bool = False,
        on_status: Callable[[RunStatus], None] | None = None,
        on_message: Callable[[str], None] | None = None,
        terminal: TextIO | None = None,
    ) -> None:
        self.drill = drill
        self.spec = drill.spec
        self.registry = registry
        self.out_dir = out_dir
        self.clock = clock or MonotonicClock()
        self.steady_state = steady_state
        self.yes = yes
        self.on_status = on_status or (lambda s: None)
        self.say = on_message or (lambda m: None)
        # where an operator may press Enter to answer a manual step (runner/operator.py)
        self.terminal = terminal
        self.ctx_base = dict(target=drill.target.spec, target_dir=drill.target.path.parent)

    # -- preflight ---------------------------------------------------------------------

    def _ctx(self, run_id: str) -> FaultContext:
        own = {os.getpid(), os.getppid()}
        return FaultContext(
            target=self.drill.target.spec,
            target_dir=self.drill.target.path.parent,
            run_id=run_id,
            clock=self.clock,
            protected_pids=frozenset(own),
        )

    def preflight(self) -> list[str]:
        """Problems that would stop any fault being injected and reverted; touches nothing."""
        ctx = self._ctx("preflight")
        problems = []
        for spec in self.spec.faults:
            backend = self.registry.backend(spec.kind)
            for p in backend.preflight(spec, ctx):
                where = f"faults[{spec.id}]: {p}"
                problems.append(ToolProblem(where) if isinstance(p, ToolProblem) else where)
        return problems

    # -- load --------------------------------------------------------------------------

    def _make_load(self, run_dir: Path, t0: float) -> Any:
        """The Locust driver for the drill's ``load`` section, or None (never imports locust)."""
        if self.spec.load is None:
            return None
        from resildrill.load.driver import LoadDriver

        host = self.spec.load.host or default_api_base(self.drill.target.spec)
        return LoadDriver(
            self.spec.load,
            host=host,
            run_dir=run_dir,
            monotonic_t0=t0,
            drill_dir=self.drill.path.resolve().parent,
        )

    def _finish_load(self, load: Any, record: RunRecord, pump: Callable[[], None]) -> None:
        """Stop the clinicians, take their last buckets, then read back every write."""
        try:
            load.stop()
            pump()
            record.load = load.summary()
            self.say("checking every acknowledged write (integrity read-back)")
            record.integrity = load.integrity_check().to_json()
        except Exception as exc:  # a load failure must not lose the drill's measurements
            record.notices.append(f"load: {type(exc).__name__}: {exc}")
            load.stop()

    # -- run ---------------------------------------------------------------------------

    def run(self) -> RunRecord:
        """Run the drill. Always reverts what it injected; never raises for a fault's failure."""
        wall_t0 = self.clock.wall()
        run_id = new_run_id(self.spec.name, wall_t0)
        target_spec = self.drill.target.spec
        lock = TargetLock(target_spec.name)
        lock.acquire(run_id)
        try:
            stale = stale_journals(self.out_dir, target_spec.name)
            if stale:
                raise InvalidInput(
                    f"an earlier run against {target_spec.name!r} left faults injected; "
                    f"undo them first: resildrill rollback {stale[0]}"
                    + (
                        f" (and {len(stale) - 1} more: resildrill rollback --all)"
                        if len(stale) > 1
                        else ""
                    )
                )
            if target_spec.identity is not None:
                why = check_identity(target_spec.identity)
                if why:
                    raise InvalidInput(
                        f"{self.drill.target.path}: identity: {why}; nothing injected"
                    )
            return self._run(run_id, wall_t0)
        finally:
            lock.release()

    def _run(self, run_id: str, wall_t0: float) -> RunRecord:
        run_dir = self.out_dir / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        ctx = self._ctx(run_id)
        probes = [Probe(p) for p in self.drill.target.spec.probes]
        series = TimeSeries()
        for p in probes:
            series.source(p.name, "probe", p.spec.role)
        t0 = self.clock.monotonic() + 0.05
        record = RunRecord(
            run_id=run_id,
            run_dir=run_dir,
            drill=self.drill,
            monotonic_t0=t0,
            wall_t0=wall_t0 + 0.05,
            started_at=iso_utc(wall_t0 + 0.05),
            series=series,
        )
        baseline = self.spec.phases.baseline
        record.baseline_end_s = baseline
        journal = Journal(run_dir / "journal.jsonl")
        journal.append(
            "run_start",
            run_id=run_id,
            drill=str(self.drill.path),
            target=str(self.drill.target.path),
            target_name=self.drill.target.spec.name,
            pid=os.getpid(),
            started_at=record.started_at,
        )
        stream = TimelineStream(
            run_dir / "timeline.jsonl",
            {
                "run_id": run_id,
                "drill": str(self.drill.path),
                "monotonic_t0": t0,
                "wall_t0": record.wall_t0,
                "started_at": record.started_at,
                "baseline_end_s": baseline,
            },
        )
        run_registry.register_run(
            run_id,
            run_dir=str(run_dir),
            drill=str(self.drill.path),
            target=self.drill.target.spec.name,
            manual=[m.id for m in self.spec.manual],
        )
        heartbeat = run_dir / "heartbeat"
        beat_tmp = run_dir / "heartbeat.tmp"
        heartbeat.write_text(f"{self.clock.monotonic()}")
        # Docker reverts are confirmed within 15 s: a runner silent for longer is stuck.
        # It starts up while the baseline runs; the first injection waits until it watches.
        # (Tests shorten the limit to show that slow-by-design calls keep the beat.)
        stale_after = float(os.environ.get("RESILDRILL_TEST_STALE_AFTER", "20"))
        watchdog = start_watchdog(run_dir, stale_after=stale_after, wait=False)
        sampler = Sampler(probes)
        health: dict[str, bool | None] = {p.name: None for p in probes}
        fenced_file = run_dir / "FENCED"
        last_beat = [0.0]
        beat_lock = threading.Lock()

        def beat() -> None:
            with beat_lock:
                mono = self.clock.monotonic()
                beat_tmp.write_text(f"{mono}")
                beat_tmp.replace(heartbeat)  # atomic: the watchdog never reads a torn beat
                last_beat[0] = mono

        @contextlib.contextmanager
        def beating() -> Iterator[None]:
            """Keep the heartbeat going through a call that blocks for seconds by design and
            is bounded in time (Locust's start, webhooks, confirming reverts, the integrity
            read-back): slow, not stuck, so the watchdog must not fence the run meanwhile."""
            stop = threading.Event()
            # well inside the watchdog's limit, however short a test makes it
            every = min(1.0, stale_after / 4)

            def keep_beating() -> None:
                while not stop.wait(every):
                    beat()

            thread = threading.Thread(target=keep_beating, name="heartbeat", daemon=True)
            thread.start()
            try:
                yield
            finally:
                stop.set()
                thread.join()

        runs: list[FaultRun] = []
        for spec in self.spec.faults:
            backend = self.registry.backend(spec.kind)
            counted = "inject" if backend.self_heals(spec, ctx) else "revert"
            runs.append(FaultRun(spec=spec, counted_from=counted))
        record.faults = runs
        steps: list[tuple[float, int, str, Any]] = []
        timing = {"baseline_end": baseline, "last": baseline, "end": baseline}

        def plan_steps(base_end: float) -> None:
            """The step plan: (offset from t0, order, action, fault run or manual step)."""
            for fr in runs:
                backend = self.registry.backend(fr.spec.kind)
                steps.append((base_end + fr.spec.at, 1, "inject", fr))
                revert_at = scheduled_revert_offset(fr.spec, backend, ctx)
                if revert_at is not None:
                    steps.append((base_end + revert_at, 0, "revert", fr))
            for step in self.spec.manual:
                steps.append((base_end + step.at, 2, "manual", step))
            steps.sort(key=lambda s: (s[0], s[1]))
            timing["baseline_end"] = base_end
            timing["last"] = max((s[0] for s in steps), default=base_end)
            timing["end"] = timing["last"] + self.spec.phases.recovery
            record.baseline_end_s = round(base_end, 4)

        load = self._make_load(run_dir, t0)
        started_backends: list[Any] = []

        def now_s() -> float:
            return self.clock.monotonic() - t0

        def mark(kind: str, fault_id: str | None = None, detail: str | None = None) -> None:
            m = Mark(round(now_s(), 4), kind, fault_id, detail)
            record.marks.append(m)
            stream.mark(m)

        def pump() -> None:
            if load is not None:
                from resildrill.load.driver import apply_buckets

                buckets = load.poll()
                apply_buckets(series, buckets)
                for b in buckets:
                    stream.load_bucket(b)
            for s in sampler.drain():
                at = s.at - t0
                series.sources[s.probe].add(at, s.ok, s.latency_s)
                stream.sample(s.probe, at, s.ok, s.latency_s)
                health[s.probe] = s.ok
            stream.flush()

        abort_file = run_dir / "ABORT"

        def abort_reason(signals: AbortSignals) -> str | None:
            if signals.requested.is_set():
                return signals.reason or "signal"
            if abort_file.exists():
                why = abort_file.read_text().strip() or "no reason given"
                return f"aborted by 'resildrill abort' ({why})"
            return None

        def phase_name(t: float) -> str:
            if t < timing["baseline_end"]:
                return "baseline"
            if any(f.active for f in runs):
                return "fault"
            return "recovery" if t >= timing["last"] else "drill"

        def advance_active() -> None:
            for fr in runs:
                if not fr.active or fr.recipe is None or fr.injected_at_s is None:
                    continue
                backend = self.registry.backend(fr.spec.kind)
                if not isinstance(backend, AdvancingFault):
                    continue
                elapsed = now_s() - fr.injected_at_s
                recipe, actions = backend.advance(fr.spec, fr.recipe, elapsed, ctx)
                if actions or recipe != fr.recipe:
                    fr.recipe = recipe
                    journal.append("updated", fault_id=fr.spec.id, recipe=recipe)
                    for action in actions:
                        action = {"at_s": round(now_s(), 4), **action}
                        fr.actions.append(action)
                        # e.g. heat's "cooling restored": recovery is counted from here.
                        if action.get("ends_fault") and fr.reverted_at_s is None:
                            fr.reverted_at_s = action["at_s"]
                        mark("action", fr.spec.id, str(action.get("action", "")))

        armed: list[float] = []
        halt_notices: list[dict[str, Any]] = []

        def wait_until(
            target_s: float, signals: AbortSignals, stop_when: Callable[[], bool] | None = None
        ) -> str | None:
            """Tick until ``target_s`` (or ``stop_when()``): samples, heartbeat, halts, heat,
            aborts; the reason when the run must stop, else None."""
            while True:
                pump()
                mono = self.clock.monotonic()
                if mono - last_beat[0] >= 0.1:
                    beat()
                if fenced_file.exists():
                    return "fenced by the watchdog: " + fenced_file.read_text().strip()
                halt = check_halts(self.spec.abort_when, series, armed[0] if armed else None)
                if halt:
                    record.halted_at_s = round(now_s(), 4)
                    mark("halt", None, halt)
                    # told once the reverts are issued: a slow webhook must not delay them
                    halt_notices.append({"run_id": run_id, "reason": halt})
                    return halt
                advance_active()
                reason = abort_reason(signals)
                if reason:
                    return reason
                if stop_when is not None and stop_when():
                    return None
                t = now_s()
                self.on_status(
                    RunStatus(
                        phase_name(t),
                        t,
                        timing["end"],
                        [f.spec.id for f in runs if f.active],
                        dict(health),
                    )
                )
                if t >= target_s:
                    return None
                self.clock.sleep(min(_TICK_S, target_s - t))

        def inject(fr: FaultRun) -> None:
            backend = self.registry.backend(fr.spec.kind)
            if fenced_file.exists():
                raise InjectionFailed("fenced by the watchdog; nothing more is injected")
            with beating():  # a watchdog slow to start must not find the beat stale
                watching = wait_watching(run_dir, watchdog)
            if not watching:
                raise InjectionFailed("the watchdog did not start; nothing injected")
            fr.inject_requested_at_s = round(now_s(), 4)
            if not armed:
                armed.append(fr.inject_requested_at_s)
            mark("inject_requested", fr.spec.id)
            try:
                recipe = backend.prepare(fr.spec, ctx)
            except InjectionFailed as exc:
                fr.error = str(exc)
                mark("inject_failed", fr.spec.id, str(exc))
                raise
            # The watchdog reverts a fault past this point even if the runner is alive.
            recipe["_expires_at"] = self.clock.monotonic() + self.spec.max_fault_lifetime
            journal.append("intent", fault_id=fr.spec.id, kind=fr.spec.kind, recipe=recipe)
            fr.recipe = recipe
            fr.active = True
            _maybe_crash("intent_written")
            try:
                recipe = backend.inject(fr.spec, recipe, ctx)
            except Exception as exc:
                fr.error = str(exc)
                journal.append("inject_failed", fault_id=fr.spec.id, error=str(exc))
                mark("inject_failed", fr.spec.id, str(exc))
                raise InjectionFailed(f"fault {fr.spec.id}: {exc}") from exc
            fr.injected_at_s = round(now_s(), 4)
            fr.recipe = recipe
            _maybe_crash("injected")
            journal.append("injected", fault_id=fr.spec.id, recipe=recipe)
            mark("injected", fr.spec.id)
            self.say(f"injected {fr.spec.id} ({fr.spec.kind}) at {fr.injected_at_s:.1f}s")
            _maybe_crash("outcome_written")

        def issue(fr: FaultRun) -> tuple[PendingFault, tuple[bool, str]]:
            """Send a fault's undo (journalled), not yet confirmed."""
            assert fr.recipe is not None
            fr.revert_requested_at_s = round(now_s(), 4)
            mark("revert_requested", fr.spec.id)
            pending = PendingFault(fr.spec.id, fr.spec.kind, fr.recipe, True)
            beat()
            issued = issue_revert(pending, self.registry, journal)
            # the undo has been sent, its outcome not yet journalled
            _maybe_crash("revert_issued")
            return pending, issued

        def settle(
            fr: FaultRun, pending: PendingFault, issued: tuple[bool, str], cleanup: bool
        ) -> None:
            """Confirm an issued undo took effect, and record how it ended."""
            with beating():
                ok, detail = confirm_revert(pending, self.registry, journal, issued)
            fr.active = False
            fr.revert_detail = detail
            if ok:
                # A self-healing fault is only checked at the end, not ended by the drill.
                if cleanup and fr.counted_from == "inject":
                    mark("checked", fr.spec.id, detail)
                    self.say(f"checked {fr.spec.id}: nothing left injected")
                else:
                    if fr.reverted_at_s is None:
                        fr.reverted_at_s = fr.revert_requested_at_s
                    mark("reverted", fr.spec.id, detail)
                    self.say(f"reverted {fr.spec.id}: {detail}")
            else:
                hint = self.registry.backend(fr.spec.kind).undo_hint(fr.recipe)
                fr.still_injected = hint
                mark("revert_failed", fr.spec.id, detail)
                self.say(f"could not revert {fr.spec.id}: {detail}; undo with: {hint}")

        def revert(fr: FaultRun) -> None:
            """End one fault on schedule."""
            if fr.active and fr.recipe is not None:
                settle(fr, *issue(fr), cleanup=False)

        def revert_everything() -> None:
            """At the end, on abort, halt or error: issue every undo first (newest first),
            then confirm each, so a halt has them all issued within a second."""
            active = [fr for fr in reversed(runs) if fr.active and fr.recipe is not None]
            issued = [(fr, *issue(fr)) for fr in active]
            for fr, pending, sent in issued:
                settle(fr, pending, sent, cleanup=True)

        operator = OperatorChannel(
            run_dir, run_id, yes=self.yes, say=self.say, terminal=self.terminal
        )

        def manual(step: Any, signals: AbortSignals) -> str | None:
            """Hold the schedule until the operator answers or the step times out, while
            the loop keeps ticking (heartbeat, samples, heat, aborts); the abort reason, if
            the run was stopped meanwhile."""
            mark("manual_start", step.id)
            start = now_s()
            operator.ask(step.id, step.prompt, step.timeout)
            answer: list[str] = []

            def answered() -> bool:
                how = operator.answered(step.id)
                if how is not None:
                    answer.append(how)
                return how is not None

            # answered at once (--yes, or confirmed ahead): no wait, so no abort can overtake it
            reason = None if answered() else wait_until(start + step.timeout, signals, answered)
            if answer:
                how = answer[0]
            else:
                how = "timed out" if reason is None else f"interrupted: {reason}"
            record.manual.append(
                {
                    "id": step.id,
                    "prompt": step.prompt,
                    "duration_s": round(now_s() - start, 3),
                    "completed": bool(answer),
                    "how": how,
                    "at_s": round(start, 4),
                }
            )
            mark("manual_end", step.id, how)
            self.say(f"manual step {step.id}: {how}")
            return reason

        with AbortSignals() as signals:
            try:
                with beating():
                    record.notices += notify(
                        self.drill.target.spec,
                        "start",
                        {
                            "run_id": run_id,
                            "drill": self.spec.name,
                            "target": self.drill.target.spec.name,
                        },
                    )
                for kind in sorted({f.spec.kind for f in runs}):
                    backend = self.registry.backend(kind)
                    setup = getattr(backend, "setup_run", None)
                    if callable(setup):
                        # e.g. the embedded Toxiproxy server: its own process, journalled so
                        # the watchdog can stop it if this runner dies.
                        with beating():
                            children = setup(ctx, run_dir)
                        for child in children:
                            journal.append("child", **child)
                        started_backends.append(backend)
                if load is not None:
                    self.say(f"starting clinician load ({load.spec.workers} Locust worker(s))")
                    with beating():
                        load.start()
                    for pid in load.pids:
                        journal.append(
                            "child",
                            role="load",
                            pid=pid,
                            start_time=proc_start_time(pid),
                            group=True,
                        )
                    mark("load_started")
                lead = max(0.0, now_s())
                plan_steps(lead + baseline)
                sampler.start(t0 + lead)
                mark("baseline_start")
                self.say(f"run {run_id}: baseline {baseline:g}s, report in {run_dir}")
                reason = wait_until(timing["baseline_end"], signals)
                mark("baseline_end")
                if reason:
                    record.status, record.reason = "aborted", reason
                elif self.steady_state is not None:
                    record.end_s = round(now_s(), 4)
                    why = self.steady_state(record)
                    if why:
                        record.status, record.reason = "not_ready", why
                if record.status == "completed":
                    for at, _order, action, obj in steps:
                        reason = wait_until(at, signals)
                        if reason:
                            record.status, record.reason = "aborted", reason
                            break
                        if action == "inject":
                            inject(obj)
                        elif action == "revert":
                            revert(obj)
                        else:
                            reason = manual(obj, signals)
                            if reason:
                                record.status, record.reason = "aborted", reason
                                break
                    # A manual step holds the schedule: keep the whole recovery window
                    # after the last step, however late the operator answered.
                    late = now_s() - timing["last"]
                    if record.manual and late > 0:
                        timing["last"] += late
                        timing["end"] += late
                    if record.status == "completed":
                        reason = wait_until(timing["end"], signals)
                        if reason:
                            record.status, record.reason = "aborted", reason
            except InjectionFailed as exc:
                record.status, record.reason = "error", str(exc)
            except Exception as exc:  # the runner must still revert and report
                record.status, record.reason = "error", f"{type(exc).__name__}: {exc}"
            finally:
                revert_everything()
                for payload in halt_notices:
                    with beating():
                        record.notices += notify(self.drill.target.spec, "halt", payload)
                for backend in started_backends:
                    try:
                        backend.teardown_run(run_dir)
                    except Exception as exc:  # teardown must not lose the report
                        record.notices.append(f"teardown {backend.kind}: {exc}")
                # Collect samples still in flight so the last buckets are complete.
                sampler.stop()
                pump()
                record.end_s = round(now_s(), 4)
                if load is not None:
                    with beating():
                        self._finish_load(load, record, pump)
                mark("end", None, record.status)
                journal.append("run_end", status=record.status, reason=record.reason)
                journal.close()
                try:
                    watchdog.wait(timeout=3)
                except Exception:
                    watchdog.kill()
                record.notices += notify(
                    self.drill.target.spec,
                    "end",
                    {"run_id": run_id, "status": record.status, "reason": record.reason},
                )
                stream.close()
                run_registry.unregister_run(run_id)
        return record


def default_api_base(target: Any) -> str:
    """The origin of the target's clinical probe: where clinician load is sent by default."""
    from urllib.parse import urlsplit

    for probe in target.probes:
        if probe.role == "clinical" and probe.http is not None:
            parts = urlsplit(probe.http.url)
            return f"{parts.scheme}://{parts.netloc}"
    raise InvalidInput("load: set 'load.host' (the target has no clinical HTTP probe)")
