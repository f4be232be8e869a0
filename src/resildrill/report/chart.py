"""The HTML report's timeline chart: one inline SVG drawn from ``timeline`` as it is.

Owns page-only downsampling and drawing. Long series are reduced to at most
``MAX_POINTS`` display bins, keeping what a reader must not miss (the worst latency, the
lowest probe success, any breach), and the reduction never reaches report.json. It reads
the series names documented in :mod:`resildrill.report.model` and draws:

* line panels: p95 latency per workflow (and probe latency, dashed), error rate and
  throughput per workflow, heat temperatures when present (each server's inlet,
  ``heat.<server>.temp_c``, and the room, ``heat.room``, dashed);
* status strips: probe health, each SLO's breaches, outage, degraded, heat states
  (``heat.<server>.state``);
* one shaded ``.fault-band`` per fault (``data-fault-id``) across every panel, and one
  ``.recovery-marker`` per recovered fault.

No script and no external resource: the SVG is plain markup with ``<title>`` tooltips.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from resildrill.report.model import DrillReport, Series

__all__ = ["MAX_POINTS", "PALETTE", "ChartLegend", "render_timeline_svg"]

#: Display bins per series; 600 keeps a one-hour drill legible and the page small.
MAX_POINTS = 600

#: Okabe-Ito colours, distinguishable with the common colour-vision deficiencies.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#8C6D1F",
    "#444444",
)

_W = 1000.0
_LEFT = 120.0
_RIGHT = 14.0
_PLOT_W = _W - _LEFT - _RIGHT
_PANEL_H = 96.0
_PANEL_GAP = 34.0
_STRIP_H = 13.0
_STRIP_GAP = 3.0

#: Display bins without a sample that a line or strip bridges (probes sample less often
#: than the timeline's buckets); a longer gap is shown as a gap.
_MAX_BRIDGE = 5

#: The room's temperature line (dashed), apart from the servers' palette colours.
ROOM_COLOUR = "#555555"

_Reducer = Callable[[list[float]], float]


@dataclass(frozen=True)
class ChartLegend:
    """Colour of each workflow, probe and server, for the legend printed under the chart.

    ``room`` is the colour of the room temperature line when the chart draws one.
    """

    workflows: list[tuple[str, str]]
    probes: list[tuple[str, str]]
    servers: list[tuple[str, str]]
    room: str | None = None


def _names(series: dict[str, Series], prefix: str, suffix: str) -> list[str]:
    """Names ``X`` of series ``<prefix>.X.<suffix>``, in the report's order."""
    out: list[str] = []
    for key in series:
        if key.startswith(prefix + ".") and key.endswith("." + suffix):
            name = key[len(prefix) + 1 : -len(suffix) - 1]
            if name and name not in out:
                out.append(name)
    return out


def _heat_names(series: dict[str, Series]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Heat servers and rooms as (label, key stem), in the report's order.

    A server's stem ``heat.<server>`` carries ``.temp_c`` and ``.state``; a room's stem is
    ``heat.room`` itself. With several heat faults each key starts with its fault id
    (``<fault>.heat.<server>.temp_c``) and the label names the fault too.
    """
    servers: list[tuple[str, str]] = []
    rooms: list[tuple[str, str]] = []
    for key in series:
        if key.startswith("heat."):
            prefix = ""
        elif ".heat." in key and not key.startswith(("probe.", "workflow.", "slo.")):
            prefix = key[: key.index(".heat.") + 1]
        else:
            continue
        rest = key[len(prefix) + len("heat.") :]
        owner = f"{prefix[:-1]} " if prefix else ""
        if rest == "room":
            rooms.append((f"{owner}room", key))
            continue
        for suffix in (".temp_c", ".state"):
            if rest.endswith(suffix) and len(rest) > len(suffix):
                name = rest[: -len(suffix)]
                entry = (owner + name, f"{prefix}heat.{name}")
                if entry not in servers:
                    servers.append(entry)
    return servers, rooms


def _bins(values: Sequence[float | None], k: int, reduce: _Reducer) -> list[float | None]:
    """Reduce consecutive groups of ``k`` buckets; a group with no sample stays ``None``."""
    if k == 1:
        return list(values)
    out: list[float | None] = []
    for start in range(0, len(values), k):
        chunk = values[start : start + k]
        if None in chunk:  # filtering only where needed keeps an hour's chart fast
            chunk = [v for v in chunk if v is not None]
        out.append(reduce(chunk) if chunk else None)  # type: ignore[arg-type]
    return out


def _ratio_bins(
    num: Sequence[float | None], den: Sequence[float | None], k: int
) -> list[float | None]:
    """Failures over requests per display bin (a ratio is only downsampled from its parts)."""
    out: list[float | None] = []
    for start in range(0, min(len(num), len(den)), k):
        n = sum(v for v in num[start : start + k] if v is not None)
        d = sum(v for v in den[start : start + k] if v is not None)
        out.append(n / d if d else None)
    return out


class _Svg:
    """A tiny SVG writer: collects elements, escapes text."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def text(self, x: float, y: float, body: str, cls: str = "", anchor: str = "start") -> None:
        klass = f' class="{cls}"' if cls else ""
        self.parts.append(
            f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}>{escape(body)}</text>'
        )


def _fmt_clock(seconds: float, span: float) -> str:
    """Axis label: m:ss for short drills, h:mm:ss for long ones."""
    whole = round(seconds)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    if span >= 3600:
        return f"{h}:{m:02d}:{s:02d}"
    return f"{m + 60 * h}:{s:02d}"


def _nice_step(span: float, target: int = 8) -> float:
    """A round tick interval giving about ``target`` ticks over ``span`` seconds."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if span / step <= target:
            return float(step)
    return float(math.ceil(span / target / 3600) * 3600)


class _Chart:
    """Lays out panels top to bottom on one shared time axis."""

    def __init__(self, report: DrillReport) -> None:
        self.report = report
        self.timeline = report.timeline
        self.res = self.timeline.resolution_s or 0.1
        lengths = [len(s.values) for s in self.timeline.series.values()]
        self.n = max(lengths, default=0)
        self.span = max(report.duration_s, self.n * self.res, 1e-9)
        self.k = max(1, math.ceil(self.n / MAX_POINTS))
        self.svg = _Svg()
        self.room_drawn = False
        self.y = 54.0  # room above the first panel for the fault labels
        self.top = self.y
        self.workflows = _names(self.timeline.series, "workflow", "requests") or _names(
            self.timeline.series, "workflow", "p95_ms"
        )
        self.probes = _names(self.timeline.series, "probe", "success")
        self.heat, self.rooms = _heat_names(self.timeline.series)
        self.servers = [label for label, _ in self.heat]
        self.colour: dict[str, str] = {}
        for i, name in enumerate(self.workflows):
            self.colour["workflow." + name] = PALETTE[i % len(PALETTE)]
        for i, name in enumerate(self.probes):
            self.colour["probe." + name] = PALETTE[(len(self.workflows) + i) % len(PALETTE)]
        for i, name in enumerate(self.servers):
            self.colour["heat." + name] = PALETTE[i % len(PALETTE)]

    def x(self, at_s: float) -> float:
        return _LEFT + _PLOT_W * min(max(at_s / self.span, 0.0), 1.0)

    def bin_x(self, index: int) -> float:
        return self.x((index * self.k + self.k / 2) * self.res)

    def values(self, name: str) -> list[float | None] | None:
        series = self.timeline.series.get(name)
        return series.values if series is not None else None

    # -- panels -------------------------------------------------------------------------

    def _frame(self, title: str, ticks: Iterable[tuple[float, str]]) -> None:
        top, bottom = self.y, self.y + _PANEL_H
        self.svg.text(_LEFT, top - 8, title, "panel-title")
        self.svg.add(
            f'<rect class="plot-bg" x="{_LEFT}" y="{top:.1f}" width="{_PLOT_W}" '
            f'height="{_PANEL_H}"/>'
        )
        for y, label in ticks:
            self.svg.add(
                f'<line class="grid" x1="{_LEFT}" x2="{_LEFT + _PLOT_W}" '
                f'y1="{y:.1f}" y2="{y:.1f}"/>'
            )
            self.svg.text(_LEFT - 6, y + 3.5, label, "tick", "end")
        self.y = bottom

    def _path(self, points: Sequence[float | None], scale: Callable[[float], float]) -> str:
        """SVG path data; a bin without data breaks the line rather than inventing one."""
        out: list[str] = []
        pen_up = True
        gap = 0
        for i, v in enumerate(points):
            if v is None:
                gap += 1
                # Probes sample less often than buckets: bridge short gaps, break long ones.
                pen_up = pen_up or gap > _MAX_BRIDGE
                continue
            gap = 0
            out.append(f"{'M' if pen_up else 'L'}{self.bin_x(i):.1f} {scale(v):.1f}")
            pen_up = False
        return "".join(out)

    def _line(
        self,
        points: Sequence[float | None],
        scale: Callable[[float], float],
        colour: str,
        label: str,
        dashed: bool = False,
    ) -> None:
        data = self._path(points, scale)
        if not data:
            return
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        self.svg.add(
            f'<path class="series" d="{data}" stroke="{colour}"{dash}>'
            f"<title>{escape(label)}</title></path>"
        )

    def latency_panel(self) -> None:
        lines: list[tuple[list[float | None], str, str, bool]] = []
        for name in self.workflows:
            values = self.values(f"workflow.{name}.p95_ms")
            if values is not None:
                lines.append(
                    (
                        _bins(values, self.k, max),
                        self.colour["workflow." + name],
                        f"{name} p95 (ms)",
                        False,
                    )
                )
        for name in self.probes:
            values = self.values(f"probe.{name}.latency_ms")
            if values is not None:
                lines.append(
                    (
                        _bins(values, self.k, max),
                        self.colour["probe." + name],
                        f"probe {name} latency (ms)",
                        True,
                    )
                )
        if not lines:
            return
        peak = max((v for pts, *_ in lines for v in pts if v is not None), default=1.0)
        # A log scale keeps a 200 ms baseline readable next to 10 s timeouts.
        lo_exp = 0
        hi_exp = max(1, math.ceil(math.log10(max(peak, 10.0))))
        top = self.y

        def scale(v: float) -> float:
            lv = math.log10(max(v, 1.0))
            return top + _PANEL_H * (1 - (lv - lo_exp) / (hi_exp - lo_exp))

        ticks = [(scale(10.0**e), _ms_label(10.0**e)) for e in range(lo_exp, hi_exp + 1)]
        self._frame("Response time (p95 per workflow; probes dashed), log scale", ticks)
        for pts, colour, label, dashed in lines:
            self._line(pts, scale, colour, label, dashed)
        self.y += _PANEL_GAP

    def error_panel(self) -> None:
        lines: list[tuple[list[float | None], str, str]] = []
        for name in self.workflows:
            fails = self.values(f"workflow.{name}.failures")
            reqs = self.values(f"workflow.{name}.requests")
            if fails is not None and reqs is not None:
                lines.append(
                    (
                        _ratio_bins(fails, reqs, self.k),
                        self.colour["workflow." + name],
                        f"{name} error rate",
                    )
                )
        if not lines:
            return
        top = self.y

        def scale(v: float) -> float:
            return top + _PANEL_H * (1 - v)

        ticks = [(scale(f), f"{int(f * 100)}%") for f in (0.0, 0.5, 1.0)]
        self._frame("Error rate (failed requests per workflow)", ticks)
        for pts, colour, label in lines:
            self._line(pts, scale, colour, label)
        self.y += _PANEL_GAP

    def throughput_panel(self) -> None:
        per_s = 1.0 / (self.k * self.res)
        lines: list[tuple[list[float | None], str, str]] = []
        for name in self.workflows:
            reqs = self.values(f"workflow.{name}.requests")
            if reqs is not None:
                binned = _bins(reqs, self.k, sum)
                rate = [None if v is None else v * per_s for v in binned]
                lines.append((rate, self.colour["workflow." + name], f"{name} requests/s"))
        if not lines:
            return
        peak = max((v for pts, *_ in lines for v in pts if v is not None), default=1.0) or 1.0
        top_value = _nice_ceiling(peak)
        top = self.y

        def scale(v: float) -> float:
            return top + _PANEL_H * (1 - v / top_value)

        ticks = [(scale(f * top_value), f"{f * top_value:g}/s") for f in (0.0, 0.5, 1.0)]
        self._frame("Throughput (requests per second per workflow)", ticks)
        for pts, colour, label in lines:
            self._line(pts, scale, colour, label)
        self.y += _PANEL_GAP

    def heat_panel(self) -> None:
        lines: list[tuple[list[float | None], str, str, bool]] = []
        for label, stem in self.heat:
            temps = self.values(f"{stem}.temp_c")
            if temps is not None:
                lines.append(
                    (
                        _bins(temps, self.k, max),
                        self.colour["heat." + label],
                        f"{label} inlet °C",
                        False,
                    )
                )
        for label, key in self.rooms:
            temps = self.values(key)
            if temps is not None:
                lines.append((_bins(temps, self.k, max), ROOM_COLOUR, f"{label} °C", True))
        if not lines:
            return
        self.room_drawn = any(dashed for *_, dashed in lines)
        vals = [v for pts, *_ in lines for v in pts if v is not None]
        lo = math.floor(min(vals, default=0.0) / 5) * 5
        hi = max(lo + 5, math.ceil(max(vals, default=40.0) / 5) * 5)
        top = self.y

        def scale(v: float) -> float:
            return top + _PANEL_H * (1 - (v - lo) / (hi - lo))

        ticks = [(scale(t), f"{t:g} °C") for t in (lo, (lo + hi) / 2, hi)]
        self._frame("Server inlet temperature (room dashed)", ticks)
        for pts, colour, label, dashed in lines:
            self._line(pts, scale, colour, label, dashed)
        self.y += _PANEL_GAP

    def delivery_panel(self) -> None:
        """HL7 results reaching the ward: delivery delay by send time, log scale, with the
        usual delay drawn; and the engine's backlog (accepted, not yet filed) below it."""
        lines = []
        for key, colour, label, dashed in (
            ("delivery.delay_p95_ms", PALETTE[0], "delivery delay p95 (ms)", False),
            ("delivery.delay_max_ms", PALETTE[5], "delivery delay max (ms)", True),
        ):
            values = self.values(key)
            if values is not None and any(v is not None for v in values):
                lines.append((_bins(values, self.k, max), colour, label, dashed))
        if lines:
            peak = max(v for pts, *_ in lines for v in pts if v is not None)
            hi_exp = max(1, math.ceil(math.log10(max(peak, 10.0))))
            top = self.y

            def scale(v: float) -> float:
                return top + _PANEL_H * (1 - math.log10(max(v, 1.0)) / hi_exp)

            ticks = [(scale(10.0**e), _ms_label(10.0**e)) for e in range(0, hi_exp + 1)]
            self._frame("HL7 results: delay from send to filed in the EHR (p95; max dashed)", ticks)
            usual = self.report.delivery.usual_delay_s if self.report.delivery else None
            if usual:
                y = scale(usual * 1000)
                self.svg.add(
                    f'<line class="threshold" x1="{_LEFT}" x2="{_LEFT + _PLOT_W}" y1="{y:.1f}" '
                    f'y2="{y:.1f}" stroke="#777" stroke-dasharray="2 3"><title>usual delay '
                    f"{escape(_ms_label(usual * 1000))}</title></line>"
                )
            for pts, colour, label, dashed in lines:
                self._line(pts, scale, colour, label, dashed)
            self.y += _PANEL_GAP
        backlog = self.values("delivery.backlog")
        if backlog is None or not any(backlog):
            return
        pts = _bins(backlog, self.k, max)
        top_value = _nice_ceiling(max(v for v in pts if v is not None) or 1.0)
        top = self.y

        def scale_n(v: float) -> float:
            return top + _PANEL_H * (1 - v / top_value)

        ticks = [(scale_n(f * top_value), f"{f * top_value:g}") for f in (0.0, 0.5, 1.0)]
        self._frame("HL7 backlog: messages accepted by the engine, not yet filed", ticks)
        self._line(pts, scale_n, PALETTE[2], "backlog (messages)")
        self.y += _PANEL_GAP

    # -- strips ---------------------------------------------------------------------------

    def _strip(self, label: str, cells: Sequence[tuple[str, str] | None]) -> None:
        """One row of coloured runs: ``cells[i]`` is (css class, tooltip) or None (no data)."""
        y = self.y
        self.svg.text(_LEFT - 6, y + _STRIP_H - 3, _short(label), "tick", "end")
        self.svg.add(
            f'<rect class="strip-bg" x="{_LEFT}" y="{y:.1f}" width="{_PLOT_W}" '
            f'height="{_STRIP_H}"/>'
        )
        cells = _bridge(cells)
        start = 0
        for i in range(1, len(cells) + 1):
            if i < len(cells) and cells[i] == cells[start]:
                continue
            cell = cells[start]
            if cell is not None:
                x0 = self.x(start * self.k * self.res)
                x1 = self.x(i * self.k * self.res)
                cls, tip = cell
                t0 = _fmt_clock(start * self.k * self.res, self.span)
                t1 = _fmt_clock(i * self.k * self.res, self.span)
                self.svg.add(
                    f'<rect class="{cls}" x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0, 0.6):.1f}"'
                    f' height="{_STRIP_H}"><title>{escape(f"{label}: {tip}, {t0}–{t1}")}</title>'
                    "</rect>"
                )
            start = i
        self.y += _STRIP_H + _STRIP_GAP

    def strips(self) -> None:
        rows: list[tuple[str, list[tuple[str, str] | None]]] = []
        for name in self.probes:
            values = self.values(f"probe.{name}.success")
            if values is not None:
                rows.append(
                    (f"probe {name}", [_health_cell(v) for v in _bins(values, self.k, min)])
                )
        slo_names = [
            k for k in self.timeline.series if k.startswith("slo.") and k.endswith(".breached")
        ]
        for key in slo_names:
            values = self.timeline.series[key].values
            rows.append(
                (
                    f"SLO {key[4:-9]}",
                    [_flag_cell(v, "breached") for v in _bins(values, self.k, max)],
                )
            )
        for key, word in (("outage", "outage"), ("degraded", "degraded")):
            values = self.values(key)
            if values is not None:
                rows.append((key, [_flag_cell(v, word) for v in _bins(values, self.k, max)]))
        for name, stem in self.heat:
            series = self.timeline.series.get(f"{stem}.state")
            if series is not None:
                labels = series.labels or {"0": "normal", "1": "throttled", "2": "shut down"}
                rows.append(
                    (
                        f"{name} state",
                        [_state_cell(v, labels) for v in _bins(series.values, self.k, max)],
                    )
                )
        if not rows:
            return
        self.svg.text(
            _LEFT, self.y - 8, "Status (red: failing or breached; grey: no sample)", "panel-title"
        )
        for label, cells in rows:
            self._strip(label, cells)
        self.y += _PANEL_GAP - _STRIP_GAP

    # -- time axis, faults, marks ---------------------------------------------------------

    def time_axis(self) -> None:
        bottom = self.y - _PANEL_GAP + 6
        step = _nice_step(self.span)
        t = 0.0
        while t <= self.span + 1e-9:
            x = self.x(t)
            self.svg.add(
                f'<line class="tick-line" x1="{x:.1f}" x2="{x:.1f}" y1="{self.top:.1f}" '
                f'y2="{bottom:.1f}"/>'
            )
            self.svg.text(x, bottom + 12, _fmt_clock(t, self.span), "tick", "middle")
            t += step
        self.svg.text(
            _LEFT + _PLOT_W,
            bottom + 26,
            "time since the drill started (m:ss)"
            if self.span < 3600
            else "time since the drill started (h:mm:ss)",
            "axis-title",
            "end",
        )
        self.bottom = bottom

    def faults_and_marks(self) -> list[str]:
        """Fault bands and recovery markers; drawn after the panels so they span all of them."""
        overlay: list[str] = []
        top, bottom = self.top - 42, self.bottom
        for fault in self.report.faults:
            start = (
                fault.injected_at_s
                if fault.injected_at_s is not None
                else fault.inject_requested_at_s
            )
            if start is None:  # never requested (the run ended first): no window to shade
                continue
            end = fault.reverted_at_s if fault.reverted_at_s is not None else self.span
            x0, x1 = self.x(start), self.x(end)
            tip = f"fault {fault.id} ({fault.kind}): {_fmt_clock(start, self.span)}–" + (
                _fmt_clock(end, self.span)
                if fault.reverted_at_s is not None
                else "end (not reverted)"
            )
            overlay.append(
                f'<g class="fault-band" data-fault-id={quoteattr(fault.id)}>'
                f'<rect x="{x0:.1f}" y="{top:.1f}" width="{max(x1 - x0, 1.0):.1f}" '
                f'height="{bottom - top:.1f}"/>'
                f'<text x="{x0 + 3:.1f}" y="{top + 11:.1f}">{escape(fault.id)}</text>'
                f"<title>{escape(tip)}</title></g>"
            )
        for fault in self.report.faults:
            if fault.recovery is None or not fault.recovery.recovered:
                continue
            at = fault.recovered_at_s
            if at is None:  # recovered without a breach: the marker sits where the fault ended
                at = fault.reverted_at_s if fault.reverted_at_s is not None else fault.injected_at_s
            if at is None:
                at = fault.inject_requested_at_s
            if at is None:
                continue
            x = self.x(at)
            ttr = fault.recovery.time_to_recover_s
            tip = f"{fault.id} recovered at {_fmt_clock(at, self.span)}" + (
                f" (time to recover {ttr:g} s)" if ttr is not None else ""
            )
            overlay.append(
                f'<g class="recovery-marker" data-fault-id={quoteattr(fault.id)}>'
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top:.1f}" y2="{bottom:.1f}"/>'
                f'<path d="M{x - 5:.1f} {top:.1f}L{x + 5:.1f} {top:.1f}L{x:.1f} {top + 8:.1f}Z"/>'
                f"<title>{escape(tip)}</title></g>"
            )
        for mark in self.timeline.marks:
            if mark.kind in ("baseline_end", "manual_start", "manual_end"):
                x = self.x(mark.at_s)
                label = {
                    "baseline_end": "baseline ends",
                    "manual_start": "manual step",
                    "manual_end": "manual step done",
                }[mark.kind]
                what = ", ".join(x for x in (mark.fault_id, mark.detail) if x)
                when = _fmt_clock(mark.at_s, self.span)
                tip = f"{label}{': ' + what if what else ''} at {when}"
                overlay.append(
                    f'<g class="mark mark-{mark.kind}"><line x1="{x:.1f}" x2="{x:.1f}" '
                    f'y1="{top:.1f}" y2="{bottom:.1f}"/><title>{escape(tip)}</title></g>'
                )
        return overlay

    def draw(self) -> str:
        self.latency_panel()
        self.error_panel()
        self.throughput_panel()
        self.heat_panel()
        self.delivery_panel()
        self.strips()
        if self.y == self.top:  # nothing to plot: still show the fault windows on a time axis
            self._frame("No timeline series in this report", [])
            self.y += _PANEL_GAP
        self.time_axis()
        overlay = self.faults_and_marks()
        height = self.bottom + 34
        note = (
            f"Each point summarises {self.k} buckets of {self.res:g} s (worst value shown)"
            if self.k > 1
            else f"One point per {self.res:g} s bucket"
        )
        head = (
            f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W:.0f} '
            f'{height:.0f}" role="img" aria-label="Drill timeline with fault windows shaded">'
            f"<desc>{escape(note)}</desc>"
        )
        # Overlays go last so the translucent bands show over every panel's background.
        return head + "".join(self.svg.parts) + "".join(overlay) + "</svg>"


def _bridge(cells: Sequence[tuple[str, str] | None]) -> list[tuple[str, str] | None]:
    """Fill short runs of ``None`` lying between two equal cells, for strips."""
    out = list(cells)
    last: int | None = None
    for i, cell in enumerate(out):
        if cell is None:
            continue
        if last is not None and 1 < i - last <= _MAX_BRIDGE + 1 and out[last] == cell:
            for j in range(last + 1, i):
                out[j] = cell
        last = i
    return out


def _nice_ceiling(value: float) -> float:
    """The next round number above ``value`` for an axis top."""
    exp = 10 ** math.floor(math.log10(value))
    for f in (1, 2, 5, 10):
        if value <= f * exp:
            return float(f * exp)
    return float(10 * exp)


def _ms_label(ms: float) -> str:
    return f"{ms:g} ms" if ms < 1000 else f"{ms / 1000:g} s"


def _short(label: str, width: int = 17) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _health_cell(v: float | None) -> tuple[str, str] | None:
    """A probe's success ratio as one of five shades (a quantised colour, not a verdict)."""
    if v is None:
        return None
    if v >= 1.0:
        return ("ok", "all probes passed")
    if v <= 0.0:
        return ("bad", "all probes failed")
    level = min(3, max(1, math.ceil((1.0 - v) * 4)))
    return (f"warn{level}", f"{v:.0%} passed (lowest in this span)")


def _flag_cell(v: float | None, word: str) -> tuple[str, str] | None:
    if v is None:
        return None
    return ("bad", word) if v >= 1 else ("ok", f"not {word}")


def _state_cell(v: float | None, labels: dict[str, str]) -> tuple[str, str] | None:
    """A state value (docs/reports.md): 0 normal, 1 to 2 running but slowed (shades deepen
    with the value: heat's throttled, warning, caution), 2 and above off."""
    if v is None:
        return None
    key = f"{v:g}"
    label = labels.get(key, key)
    if v <= 0:
        cls = "ok"
    elif v < 2:
        cls = f"warn{min(3, max(1, 1 + math.floor((v - 1) * 4 + 1e-9)))}"
    else:
        cls = "bad"
    return (cls, label)


def render_timeline_svg(report: DrillReport) -> tuple[str, ChartLegend]:
    """The timeline as one ``<svg>`` element, and the colours its legend must show."""
    chart = _Chart(report)
    svg = chart.draw()
    legend = ChartLegend(
        workflows=[(n, chart.colour["workflow." + n]) for n in chart.workflows],
        probes=[(n, chart.colour["probe." + n]) for n in chart.probes],
        servers=[(n, chart.colour["heat." + n]) for n in chart.servers],
        room=ROOM_COLOUR if chart.room_drawn else None,
    )
    return svg, legend
