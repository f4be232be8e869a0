"""Terminal presentation: the live view of a running drill and result summaries.

The only module that imports rich. On a terminal the live view redraws the phase, the
active faults and each probe's health; elsewhere (CI logs) it prints one line per event.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from resildrill.runner.runner import RunStatus

console = Console(stderr=True, highlight=False)


class LiveView:
    """Shows RunStatus updates (at most ~8 per second) and runner messages."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._live: Live | None = None
        self._last = 0.0

    def __enter__(self) -> LiveView:
        if self.enabled:
            self._live = Live(console=console, refresh_per_second=8, transient=True)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)

    def status(self, s: RunStatus) -> None:
        if self._live is None or s.elapsed_s - self._last < 0.12:
            return
        self._last = s.elapsed_s
        table = Table.grid(padding=(0, 2))
        pct = min(100, int(100 * s.elapsed_s / max(s.total_s, 0.001)))
        table.add_row(
            "phase", f"[bold]{s.phase}[/]", f"{s.elapsed_s:6.1f}s / {s.total_s:.1f}s ({pct}%)"
        )
        table.add_row("faults", ", ".join(s.active_faults) or "none active", "")
        for name, ok in s.probe_health.items():
            mark = "[green]up[/]" if ok else ("[red]DOWN[/]" if ok is False else "[dim]…[/]")
            table.add_row("probe", name, mark)
        self._live.update(table)

    def message(self, text: str) -> None:
        # runner messages carry the drill author's text (prompts, ids): print it verbatim
        console.print(text, markup=False)


def print_result(report: dict[str, Any]) -> None:
    """A short human summary of a finished run."""
    colour = {"passed": "green", "failed": "red"}.get(report["outcome"], "yellow")
    console.print(
        f"[bold {colour}]{report['outcome'].upper()}[/] (exit {report['exit_code']})"
        + (f": {report['reason']}" if report.get("reason") else "")
    )
    table = Table(show_header=True, header_style="bold")
    for col in ("fault", "detect", "recover", "outage", "degraded", "relapses", "recovered"):
        table.add_column(col)

    def fmt(x: Any) -> str:
        return "-" if x is None else f"{x:.1f}s"

    for f in report["faults"]:
        r = f.get("recovery") or {}
        table.add_row(
            f["id"],
            fmt(r.get("time_to_detect_s")),
            fmt(r.get("time_to_recover_s")),
            fmt(r.get("outage_s")),
            fmt(r.get("degraded_s")),
            str(r.get("relapses", "-")),
            str(r.get("recovered", "-")),
        )
    console.print(table)
    s = report["summary"]
    console.print(
        f"outage {s['outage_s']:.1f}s, degraded {s['degraded_s']:.1f}s, "
        f"availability {100 * s['availability']:.2f}%"
    )
    d = report.get("delivery")
    if d:
        drains = ", ".join(
            f"{fid} {fmt(b['drain_s']) if b['drain_s'] is not None else 'NOT drained'}"
            f" ({b['backlog_at_end']} queued)"
            for fid, b in d["by_fault"].items()
        )
        worst = d["delay_ms"]["max"]
        console.print(
            f"HL7: {d['accepted']} accepted, {d['lost']} lost, {d['duplicated']} duplicated, "
            f"{d['unverifiable']} unverifiable; slowest "
            + ("-" if worst is None else f"{worst / 1000:.2f}s")
            + (f"; backlog drain: {drains}" if drains else ""),
            markup=False,
            soft_wrap=True,
        )
    for g in report["gates"]:
        # a failed gate's own sentence says why (e.g. writes that could not be read back)
        why = f": {g['reason']}" if not g["passed"] and g.get("reason") else ""
        console.print(
            f"  gate {g['name']}: {'pass' if g['passed'] else 'FAIL'} "
            f"(value {g['value']}, limit {g['limit']}){why}",
            markup=False,
            soft_wrap=True,  # one line per gate, whatever the terminal's width
        )
