"""One run of a drill as an object whose methods are its phases.

    open -> set up backends -> start load -> baseline (steady state) -> steps (inject,
    revert, manual) -> recovery window -> close (revert everything, last probes, teardown,
    load and integrity, journal end, watchdog, notices)

:class:`DrillRun` holds the run's state; each phase is a method, and every fault action
goes through the fsynced journal. The collaborators that touch time and processes (clock,
sampler, watchdog) come in :class:`RunParts`, so ``resildrill.testing`` can run a drill
in-process on a fake clock.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from resildrill.clock import Clock, MonotonicClock, iso_utc
from resildrill.drill.loader import LoadedDrill
from resildrill.drill.model import ManualStep
from resildrill.errors import InjectionFailed
from resildrill.faults.base import AdvancingFault, FaultContext
from resildrill.faults.process import proc_start_time
from resildrill.observe.metrics import TimeSeries
from resildrill.observe.probes import Probe, Sample
from resildrill.observe.sampler import Sampler
from resildrill.plugins import FaultRegistry
from resildrill.runner import registry as run_registry
from resildrill.runner.halt import check_halts
from resildrill.runner.heartbeat import Heartbeat
from resildrill.runner.journal import Journal, PendingFault
from resildrill.runner.operator import OperatorChannel
from resildrill.runner.plan import StepPlan, build_plan
from resildrill.runner.record import FaultRun, RunRecord, RunStatus
from resildrill.runner.rollback import confirm_revert, issue_revert
from resildrill.runner.safety import notify
from resildrill.runner.signals import AbortSignals
from resildrill.runner.timeline import Mark, TimelineStream
from resildrill.runner.watchdog import ProcessWatchdog

CRASH_POINTS = ("intent_written", "injected", "outcome_written", "revert_issued")
_TICK_S = 0.02
#: Docker reverts are confirmed within 15 s: a runner silent for longer is stuck.
DEFAULT_STALE_AFTER_S = 20.0


class SamplerLike(Protocol):
    """What the run needs of a sampler (observe/sampler.py, or a fake in tests)."""

    def start(self, t0: float) -> None: ...

    def drain(self) -> list[Sample]: ...

    def stop(self) -> None: ...


class WatchdogLike(Protocol):
    """What the run needs of its watchdog (runner/watchdog.py, or a fake in tests)."""

    def watching(self) -> bool: ...

    def finish(self) -> None: ...


@dataclass
class RunParts:
    """The collaborators of a run that touch time and processes."""

    clock: Clock = field(default_factory=MonotonicClock)
    make_sampler: Callable[[list[Probe]], SamplerLike] = Sampler
    start_watchdog: Callable[[Path, float], WatchdogLike] = ProcessWatchdog.start
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    #: called at each of CRASH_POINTS; tests kill the process there (never set in the product)
    checkpoint: Callable[[str], None] = lambda point: None


@dataclass
class RunOptions:
    """How the caller wants the run to behave."""

    yes: bool = False
    on_status: Callable[[RunStatus], None] = lambda s: None
    on_message: Callable[[str], None] = lambda m: None
    terminal: TextIO | None = None  # where an operator may press Enter for a manual step
    steady_state: Callable[[RunRecord], str | None] | None = None


class DrillRun:
    """The state of one run and its phases."""

    def __init__(
        self,
        drill: LoadedDrill,
        run_id: str,
        run_dir: Path,
        registry: FaultRegistry,
        parts: RunParts,
        options: RunOptions,
        make_load: Callable[[Path, float], Any],
    ) -> None:
        self.drill, self.spec, self.run_id, self.run_dir = drill, drill.spec, run_id, run_dir
        self.registry, self.parts, self.options = registry, parts, options
        self.clock = parts.clock
        self.say = options.on_message
        self.ctx = fault_context(drill, run_id, self.clock, run_dir)
        self.probes = [Probe(p) for p in drill.target.spec.probes]
        self.health: dict[str, bool | None] = {p.name: None for p in self.probes}
        self.faults = [self._fault_run(f) for f in self.spec.faults]
        self.by_id = {fr.spec.id: fr for fr in self.faults}
        self.manual_steps = {m.id: m for m in self.spec.manual}
        self.started_backends: list[Any] = []
        self.halt_notices: list[dict[str, Any]] = []
        self.armed_at_s: float | None = None
        self.plan = build_plan(self.spec, registry, self.ctx)
        self._make_load = make_load
        self.load: Any = None

    def _fault_run(self, spec: Any) -> FaultRun:
        heals = self.registry.backend(spec.kind).self_heals(spec, self.ctx)
        return FaultRun(spec=spec, counted_from="inject" if heals else "revert")

    # -- open and close ------------------------------------------------------------------

    def open(self) -> None:
        """Create the run folder, pair the clocks, start the journal, timeline and watchdog."""
        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(mode=0o700)  # journal, heartbeat, logs: this user's only
        # One pairing of the two clocks, read back to back after everything slow before
        # the run (lock, stale-journal scan, identity check), so report times line up
        # with other evidence by wall clock.
        mono, wall = self.clock.monotonic(), self.clock.wall()
        self.t0 = mono + 0.05
        series = TimeSeries()
        for p in self.probes:
            series.source(p.name, "probe", p.spec.role)
        self.record = RunRecord(
            run_id=self.run_id,
            run_dir=self.run_dir,
            drill=self.drill,
            monotonic_t0=self.t0,
            wall_t0=wall + 0.05,
            started_at=iso_utc(wall + 0.05),
            series=series,
            faults=self.faults,
            baseline_end_s=self.plan.baseline_end_s,
        )
        self.journal = Journal(self.run_dir / "journal.jsonl")
        self.journal.append(
            "run_start",
            run_id=self.run_id,
            drill=str(self.drill.path),
            target=str(self.drill.target.path),
            target_name=self.drill.target.spec.name,
            pid=os.getpid(),
            started_at=self.record.started_at,
            monotonic_t0=self.t0,
        )
        self.stream = TimelineStream(self.run_dir / "timeline.jsonl", self._timeline_header())
        run_registry.register_run(
            self.run_id,
            run_dir=str(self.run_dir),
            drill=str(self.drill.path),
            target=self.drill.target.spec.name,
            manual=[m.id for m in self.spec.manual],
        )
        self.heartbeat = Heartbeat(self.run_dir, self.clock, self.parts.stale_after_s)
        self.heartbeat.beat()
        # It starts up while the baseline runs; the first injection waits until it watches.
        self.watchdog = self.parts.start_watchdog(self.run_dir, self.parts.stale_after_s)
        self.sampler = self.parts.make_sampler(self.probes)
        self.operator = OperatorChannel(
            self.run_dir,
            self.run_id,
            yes=self.options.yes,
            say=self.say,
            terminal=self.options.terminal,
        )
        self.load = self._make_load(self.run_dir, self.t0)

    def _timeline_header(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "drill": str(self.drill.path),
            "monotonic_t0": self.t0,
            "wall_t0": self.record.wall_t0,
            "started_at": self.record.started_at,
            "baseline_end_s": self.plan.baseline_end_s,
        }

    def execute(self) -> RunRecord:
        """Every phase in order; always reverts what it injected; never raises for a
        fault's failure (the record says how the run ended)."""
        record = self.record
        with AbortSignals() as self.signals:
            try:
                self._start()
                self._baseline()
                if record.status == "completed":
                    self._steps()
                if record.status == "completed":
                    self._stop_if(self._wait_until(self.plan.end_s))
            except InjectionFailed as exc:
                record.status, record.reason = "error", str(exc)
            except Exception as exc:  # the runner must still revert and report
                record.status, record.reason = "error", f"{type(exc).__name__}: {exc}"
            finally:
                self._close()
        return record

    def _stop_if(self, reason: str | None) -> bool:
        """Record an abort reason; True when the run must stop."""
        if reason:
            self.record.status, self.record.reason = "aborted", reason
        return reason is not None

    def _close(self) -> None:
        """Revert everything, take the last samples, tear down, finish load, end the journal."""
        self._revert_everything()
        for payload in self.halt_notices:
            self._notify("halt", payload)
        # Collect samples still in flight so the last buckets are complete; only then tear
        # down, so nothing a teardown does is measured as the system's.
        self.sampler.stop()
        self._pump()
        self.record.end_s = round(self.now_s(), 4)
        for backend in self.started_backends:
            try:
                with self.heartbeat.beating():
                    self.record.notices += backend.teardown_run(self.ctx, self.run_dir)
            except Exception as exc:  # teardown must not lose the report
                self.record.notices.append(f"teardown {backend.kind}: {exc}")
        if self.load is not None:
            with self.heartbeat.beating():
                self._finish_load()
        self._mark("end", None, self.record.status)
        self.journal.append("run_end", status=self.record.status, reason=self.record.reason)
        self.journal.close()
        self.watchdog.finish()
        end = {"run_id": self.run_id, "status": self.record.status, "reason": self.record.reason}
        self._notify("end", end)
        self.stream.close()
        run_registry.unregister_run(self.run_id)

    def _notify(self, event: str, payload: dict[str, Any]) -> None:
        with self.heartbeat.beating():  # a slow webhook must not look like a stuck runner
            self.record.notices += notify(self.drill.target.spec, event, payload)

    # -- start: backends, load, baseline -------------------------------------------------

    def _start(self) -> None:
        self._notify(
            "start",
            {"run_id": self.run_id, "drill": self.spec.name, "target": self.drill.target.spec.name},
        )
        self._set_up_backends()
        self._start_load()
        lead = max(0.0, self.now_s())
        self.plan = build_plan(self.spec, self.registry, self.ctx, lead_s=lead)
        self.record.baseline_end_s = round(self.plan.baseline_end_s, 4)
        self.sampler.start(self.t0 + lead)

    def _set_up_backends(self) -> None:
        """Run-scoped set-up of each fault kind once; its records go to the journal."""
        for kind in sorted({fr.spec.kind for fr in self.faults}):
            backend = self.registry.backend(kind)
            with self.heartbeat.beating():
                records = backend.setup_run(self.ctx, self.run_dir)
            for rec in records:
                fields = {k: v for k, v in rec.items() if k != "type"}
                self.journal.append(str(rec["type"]), **fields)
            self.started_backends.append(backend)

    def _start_load(self) -> None:
        if self.load is None:
            return
        self.say(f"starting clinician load ({self.load.spec.workers} Locust worker(s))")
        with self.heartbeat.beating():
            self.load.start()
        for pid in self.load.pids:
            self.journal.append(
                "child", role="load", pid=pid, start_time=proc_start_time(pid), group=True
            )
        self._mark("load_started")

    def _baseline(self) -> None:
        self._mark("baseline_start")
        self.say(
            f"run {self.run_id}: baseline {self.spec.phases.baseline:g}s, report in {self.run_dir}"
        )
        reason = self._wait_until(self.plan.baseline_end_s)
        self._mark("baseline_end")
        if self._stop_if(reason) or self.options.steady_state is None:
            return
        self.record.end_s = round(self.now_s(), 4)
        why = self.options.steady_state(self.record)
        if why:
            self.record.status, self.record.reason = "not_ready", why

    def _finish_load(self) -> None:
        """Stop the clinicians, take their last buckets, then read back every write."""
        try:
            self.load.stop()
            self._pump()
            self.record.load = self.load.summary()
            self.say("checking every acknowledged write (integrity read-back)")
            self.record.integrity = self.load.integrity_check().to_json()
        except Exception as exc:  # a load failure must not lose the drill's measurements
            self.record.notices.append(f"load: {type(exc).__name__}: {exc}")
            self.load.stop()
        if self.load.spec.hl7 is None:
            return
        try:
            self.say("reading every HL7 message back from the EHR (delivery)")
            with self.heartbeat.beating():
                self.record.delivery = self.load.delivery_check(self.record.wall_t0)
        except Exception as exc:  # nor may the delivery read-back's own failure
            self.record.notices.append(f"HL7 delivery read-back: {type(exc).__name__}: {exc}")

    # -- the steps -----------------------------------------------------------------------

    def _steps(self) -> None:
        steps = list(self.plan.steps)
        while steps:
            step = steps.pop(0)
            if self._stop_if(self._wait_until(step.at_s)):
                return
            if step.action == "inject":
                group = [self.by_id[step.ref]]
                # faults on remote hosts due at the same moment land together (in parallel)
                while steps and steps[0].action == "inject" and steps[0].at_s == step.at_s:
                    group.append(self.by_id[steps.pop(0).ref])
                self._inject_all(group)
            elif step.action == "revert":
                self._revert(self.by_id[step.ref])
            elif self._stop_if(self._manual(self.manual_steps[step.ref])):
                return
        # A manual step holds the schedule: keep the whole recovery window after it.
        if self.record.manual:
            self.plan = self.plan.held_by(self.now_s() - self.plan.last_step_s)

    def _manual(self, step: ManualStep) -> str | None:
        """Hold the schedule until the operator answers or the step times out, while the
        loop keeps ticking; the abort reason, if the run was stopped meanwhile."""
        self._mark("manual_start", step.id)
        start = self.now_s()
        self.operator.ask(step.id, step.prompt, step.timeout)
        answers: list[str] = []

        def answered() -> bool:
            how = self.operator.answered(step.id)
            if how is not None:
                answers.append(how)
            return how is not None

        # answered at once (--yes, or confirmed ahead): no wait, so no abort can overtake it
        reason = None if answered() else self._wait_until(start + step.timeout, answered)
        how = answers[0] if answers else "timed out" if reason is None else f"interrupted: {reason}"
        self.record.manual.append(
            {
                "id": step.id,
                "prompt": step.prompt,
                "duration_s": round(self.now_s() - start, 3),
                "completed": bool(answers),
                "how": how,
                "at_s": round(start, 4),
            }
        )
        self._mark("manual_end", step.id, how)
        self.say(f"manual step {step.id}: {how}")
        return reason

    # -- the tick ------------------------------------------------------------------------

    def now_s(self) -> float:
        return self.clock.monotonic() - self.t0

    def _mark(self, kind: str, fault_id: str | None = None, detail: str | None = None) -> None:
        m = Mark(round(self.now_s(), 4), kind, fault_id, detail)
        self.record.marks.append(m)
        self.stream.mark(m)

    def _wait_until(
        self, target_s: float, stop_when: Callable[[], bool] | None = None
    ) -> str | None:
        """Tick until ``target_s`` (or ``stop_when()``): samples, heartbeat, halts, faults
        acting over time, aborts; the reason when the run must stop, else None."""
        while True:
            reason = self._tick()
            if reason:
                return reason
            if stop_when is not None and stop_when():
                return None
            t = self.now_s()
            active = [fr.spec.id for fr in self.faults if fr.active]
            phase = self.plan.phase_at(t, bool(active))
            self.options.on_status(RunStatus(phase, t, self.plan.end_s, active, dict(self.health)))
            if t >= target_s:
                return None
            self.clock.sleep(min(_TICK_S, target_s - t))

    def _tick(self) -> str | None:
        """One tick's work; why the run must stop, or None."""
        self._pump()
        self.heartbeat.beat_if_due()
        fenced = self.run_dir / "FENCED"
        if fenced.exists():
            return "fenced by the watchdog: " + fenced.read_text().strip()
        halt = check_halts(self.spec.abort_when, self.record.series, self.armed_at_s)
        halt = halt or next(
            (why for b in self.started_backends if (why := b.halt_reason(self.ctx))), None
        )
        if halt:
            self.record.halted_at_s = round(self.now_s(), 4)
            self._mark("halt", None, halt)
            # told once the reverts are issued: a slow webhook must not delay them
            self.halt_notices.append({"run_id": self.run_id, "reason": halt})
            return halt
        self._advance_active()
        return self._abort_reason()

    def _abort_reason(self) -> str | None:
        if self.signals.requested.is_set():
            return self.signals.reason or "signal"
        abort_file = self.run_dir / "ABORT"
        if abort_file.exists():
            why = abort_file.read_text().strip() or "no reason given"
            return f"aborted by 'resildrill abort' ({why})"
        return None

    def _pump(self) -> None:
        """Move what the sampler and the load measured into the series and the timeline."""
        if self.load is not None:
            from resildrill.load.driver import apply_buckets

            buckets = self.load.poll()
            apply_buckets(self.record.series, buckets)
            for b in buckets:
                self.stream.load_bucket(b)
        for s in self.sampler.drain():
            at = s.at - self.t0
            self.record.series.sources[s.probe].add(at, s.ok, s.latency_s)
            self.stream.sample(s.probe, at, s.ok, s.latency_s)
            self.health[s.probe] = s.ok
        self.stream.flush()

    def _advance_active(self) -> None:
        """Let faults that act over time (heat) act; journal what they did."""
        for fr in self.faults:
            backend = self.registry.backend(fr.spec.kind)
            if not (fr.active and fr.recipe and fr.injected_at_s is not None):
                continue
            if not isinstance(backend, AdvancingFault):
                continue
            elapsed = self.now_s() - fr.injected_at_s
            recipe, actions = backend.advance(fr.spec, fr.recipe, elapsed, self.ctx)
            if actions or recipe != fr.recipe:
                fr.recipe = recipe
                self.journal.append("updated", fault_id=fr.spec.id, recipe=recipe)
            for action in actions:
                action = {"at_s": round(self.now_s(), 4), **action}
                fr.actions.append(action)
                # e.g. heat's "cooling restored": recovery is counted from here.
                if action.get("ends_fault") and fr.reverted_at_s is None:
                    fr.reverted_at_s = action["at_s"]
                self._mark("action", fr.spec.id, str(action.get("action", "")))

    # -- injecting and reverting ---------------------------------------------------------

    def _remote(self, fr: FaultRun) -> bool:
        backend = self.registry.backend(fr.spec.kind)
        hosts = getattr(backend, "remote_hosts", None)
        return bool(hosts and hosts(fr.spec, self.ctx))

    def _inject_all(self, group: list[FaultRun]) -> None:
        """Inject faults due at the same moment: one after the other, except faults acting
        on remote hosts, which are prepared and journalled in turn, then injected in
        parallel (the report gives each host's time and the spread)."""
        if len(group) == 1 or not all(self._remote(fr) for fr in group):
            for fr in group:
                self._inject(fr)
            return
        from concurrent.futures import ThreadPoolExecutor

        ready = [(fr, *self._prepare_intent(fr)) for fr in group]
        # slow by design and bounded (each call has its deadline): beat meanwhile, so the
        # watchdog does not take a long fan-out for a stuck runner
        with self.heartbeat.beating(), ThreadPoolExecutor(max_workers=min(32, len(ready))) as pool:
            calls = [
                (fr, pool.submit(self._call_inject, fr, backend, recipe))
                for fr, backend, recipe in ready
            ]
            failures = []
            for fr, future in calls:
                try:
                    self._record_injected(fr, *future.result())
                except InjectionFailed as exc:
                    failures.append(exc)
        if failures:
            raise failures[0]

    def _inject(self, fr: FaultRun) -> None:
        """Prepare, journal the intent (fsynced), act; stamped at the backend call."""
        backend, recipe = self._prepare_intent(fr)
        self._act_inject(fr, backend, recipe)

    def _prepare_intent(self, fr: FaultRun) -> tuple[Any, dict[str, Any]]:
        """Resolve the fault and journal the intent (fsynced) before anything acts."""
        backend = self.registry.backend(fr.spec.kind)
        if (self.run_dir / "FENCED").exists():
            raise InjectionFailed("fenced by the watchdog; nothing more is injected")
        with self.heartbeat.beating():  # a watchdog slow to start must not find the beat stale
            if not self.watchdog.watching():
                raise InjectionFailed("the watchdog did not start; nothing injected")
        began = self.clock.monotonic()
        try:
            recipe = backend.prepare(fr.spec, self.ctx)
        except InjectionFailed as exc:
            fr.error = str(exc)
            self._mark("inject_failed", fr.spec.id, str(exc))
            raise
        # The watchdog reverts a fault past this point even if the runner is alive.
        recipe["_expires_at"] = self.clock.monotonic() + self.spec.max_fault_lifetime
        prepared = self.clock.monotonic()
        self.journal.append("intent", fault_id=fr.spec.id, kind=fr.spec.kind, recipe=recipe)
        fr.recipe, fr.active = recipe, True
        self.parts.checkpoint("intent_written")
        # stamped after the fsynced intent, at the call: a slow disk is not time to detect
        fr.inject_requested_at_s = round(self.now_s(), 4)
        if self.armed_at_s is None:
            self.armed_at_s = fr.inject_requested_at_s
        self._mark("inject_requested", fr.spec.id)
        fr.timing["prepare_s"] = round(prepared - began, 4)
        fr.timing["journal_s"] = round(self.clock.monotonic() - prepared, 4)
        return backend, recipe

    def _act_inject(self, fr: FaultRun, backend: Any, recipe: dict[str, Any]) -> None:
        with self.heartbeat.beating():  # a remote apply may take seconds, bounded
            outcome = self._call_inject(fr, backend, recipe)
        self._record_injected(fr, *outcome)

    def _call_inject(
        self, fr: FaultRun, backend: Any, recipe: dict[str, Any]
    ) -> tuple[dict[str, Any] | Exception, float, float]:
        """The backend's inject call alone (safe on a worker thread): (result, start, end)."""
        acting = self.clock.monotonic()
        try:
            result: dict[str, Any] | Exception = backend.inject(fr.spec, recipe, self.ctx)
        except Exception as exc:
            result = exc
        return result, acting, self.clock.monotonic()

    def _record_injected(
        self, fr: FaultRun, result: dict[str, Any] | Exception, acting: float, done: float
    ) -> None:
        if isinstance(result, Exception):
            fr.error = str(result)
            self.journal.append("inject_failed", fault_id=fr.spec.id, error=str(result))
            self._mark("inject_failed", fr.spec.id, str(result))
            raise InjectionFailed(f"fault {fr.spec.id}: {result}") from result
        recipe = result
        fr.injected_at_s = round(done - self.t0, 4)
        fr.timing["inject_call_s"] = round(done - acting, 4)
        fr.recipe = recipe
        self.parts.checkpoint("injected")
        self.journal.append("injected", fault_id=fr.spec.id, recipe=recipe)
        self._mark("injected", fr.spec.id)
        self.say(f"injected {fr.spec.id} ({fr.spec.kind}) at {fr.injected_at_s:.1f}s")
        self.parts.checkpoint("outcome_written")

    def _issue(self, fr: FaultRun) -> tuple[PendingFault, tuple[bool, str]]:
        """Send a fault's undo (intent journalled first), not yet confirmed; the revert is
        stamped at the backend call, after the fsynced intent."""
        assert fr.recipe is not None
        fr.revert_requested_at_s = round(self.now_s(), 4)
        self._mark("revert_requested", fr.spec.id)
        pending = PendingFault(fr.spec.id, fr.spec.kind, fr.recipe, True)
        self.heartbeat.beat()
        stamps: list[float] = []
        with self.heartbeat.beating():  # a remote undo may reconnect for up to 30 s, bounded
            issued = issue_revert(
                pending, self.registry, self.journal, acting=lambda: stamps.append(self.now_s())
            )
        if stamps:
            fr.timing["revert_journal_s"] = round(stamps[0] - fr.revert_requested_at_s, 4)
            fr.timing["revert_at_s"] = round(stamps[0], 4)
        # the undo has been sent, its outcome not yet journalled
        self.parts.checkpoint("revert_issued")
        return pending, issued

    def _settle(
        self, fr: FaultRun, pending: PendingFault, issued: tuple[bool, str], cleanup: bool
    ) -> None:
        """Confirm an issued undo took effect, and record how it ended."""
        with self.heartbeat.beating():
            ok, detail = confirm_revert(
                pending, self.registry, self.journal, issued, clock=self.clock
            )
        fr.active, fr.revert_detail = False, detail
        if not ok:
            hint = self.registry.backend(fr.spec.kind).undo_hint(fr.recipe or {})
            fr.still_injected = hint
            self._mark("revert_failed", fr.spec.id, detail)
            self.say(f"could not revert {fr.spec.id}: {detail}; undo with: {hint}")
        elif cleanup and fr.counted_from == "inject":
            # A self-healing fault is only checked at the end, not ended by the drill.
            self._mark("checked", fr.spec.id, detail)
            self.say(f"checked {fr.spec.id}: nothing left injected")
        else:
            if fr.reverted_at_s is None:
                fr.reverted_at_s = fr.timing.get("revert_at_s", fr.revert_requested_at_s)
            self._mark("reverted", fr.spec.id, detail)
            self.say(f"reverted {fr.spec.id}: {detail}")

    def _revert(self, fr: FaultRun) -> None:
        """End one fault on schedule."""
        if fr.active and fr.recipe is not None:
            self._settle(fr, *self._issue(fr), cleanup=False)

    def _revert_everything(self) -> None:
        """At the end, on abort, halt or error: issue every undo first (newest first), then
        confirm each, so a halt has them all issued within a second."""
        active = [fr for fr in reversed(self.faults) if fr.active and fr.recipe is not None]
        issued = [(fr, *self._issue(fr)) for fr in active]
        for fr, pending, sent in issued:
            self._settle(fr, pending, sent, cleanup=True)


def fault_context(
    drill: LoadedDrill, run_id: str, clock: Clock, run_dir: Path | None = None
) -> FaultContext:
    """What a backend may know of the run; the runner's own processes are protected."""
    return FaultContext(
        target=drill.target.spec,
        target_dir=drill.target.path.parent,
        run_id=run_id,
        clock=clock,
        protected_pids=frozenset({os.getpid(), os.getppid()}),
        report_dir=run_dir,
        faults=tuple(drill.spec.faults),
    )


__all__ = ["CRASH_POINTS", "DrillRun", "RunOptions", "RunParts", "StepPlan", "fault_context"]
