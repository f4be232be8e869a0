"""The Markdown renderer: summary.md, a short summary fit for a pull-request comment.

Owns the PR-comment form: the verdict in one line, the headline figures, one table row
per fault, the gates that did not hold, and integrity, all in GitHub-flavoured Markdown
that also reads well as plain text. The full story is in report.html.
"""

from __future__ import annotations

from pathlib import Path

from resildrill.report import format as fmt
from resildrill.report.model import DrillReport

__all__ = ["FILENAME", "render", "render_text"]

FILENAME = "summary.md"
_ICON = {"passed": "✅", "failed": "❌", "aborted": "⚠️", "not_ready": "⚠️", "error": "🛑"}


def _cell(text: str) -> str:
    """Table-safe text inside a code span: a pipe or a newline would break the row."""
    return text.replace("|", "\\|").replace("\n", " ")


#: Characters that make Markdown (or the HTML a renderer lets through) out of plain text.
_MARKUP = set("\\`*_[]()<>!|~")


def _text(text: str) -> str:
    """Prose from a run (reasons, messages) as plain text: every Markdown and HTML special
    escaped, so a drill-supplied string cannot become an image, a link or a tag in a
    pull-request comment."""
    escaped = "".join(f"\\{c}" if c in _MARKUP else c for c in text)
    return escaped.replace("\n", " ").replace("\r", " ")


def render_text(report: DrillReport) -> str:
    """The summary as Markdown text."""
    word, sentence = fmt.verdict(report)
    icon = _ICON.get(report.outcome, "")
    lines = [
        f"### {icon} resildrill: `{report.drill.name}` {word} (exit code {report.exit_code})",
        "",
        f"{sentence}" + (f" **Reason:** {_text(report.reason)}" if report.reason else ""),
    ]
    if report.partial:
        lines += ["", "> **Partial report**: the run stopped before it finished."]
    figures = [
        f"target `{report.target.name}` ({report.target.environment})",
        f"ran {fmt.secs(report.duration_s)}",
    ]
    if report.summary is not None:
        figures += [
            f"outage **{fmt.secs(report.summary.outage_s)}**",
            f"degraded **{fmt.secs(report.summary.degraded_s)}**",
            f"availability **{fmt.pct(report.summary.availability)}**",
        ]
    lines += ["", " · ".join(figures)]
    if report.faults:
        lines += [
            "",
            "| Fault | Detect | Recover | Recovered | Outage | Degraded | Relapses |",
            "|---|--:|--:|:-:|--:|--:|--:|",
        ]
        for f in report.faults:
            rec = f.recovery
            if rec is None:
                lines.append(
                    f"| `{_cell(f.id)}` ({_cell(f.kind)}) | {_text(fmt.fault_reason(f))} |"
                )
                continue
            lines.append(
                f"| `{_cell(f.id)}` ({_cell(f.kind)}) | {fmt.secs(rec.time_to_detect_s)} | "
                f"{fmt.secs(rec.time_to_recover_s)} | {'yes' if rec.recovered else '**no**'} | "
                f"{fmt.secs(rec.outage_s)} | {fmt.secs(rec.degraded_s)} | {rec.relapses} |"
            )
    failed = [g for g in report.gates if not g.passed]
    if report.gates:
        held = len(report.gates) - len(failed)
        lines += ["", f"**Gates:** {held} of {len(report.gates)} held."]
        lines += [f"- ❌ `{_cell(g.name)}`: {_text(fmt.gate_reason(g))}" for g in failed]
    if report.integrity is not None:
        i = report.integrity
        lines += [
            "",
            f"**Integrity:** {fmt.num(i.writes_lost)} lost, {fmt.num(i.writes_duplicated)} "
            f"duplicated, {fmt.num(i.writes_unverifiable)} unverifiable of "
            f"{fmt.num(i.writes_acknowledged)} acknowledged writes.",
        ]
    if report.delivery is not None:
        d = report.delivery
        drains = ", ".join(
            f"`{_cell(fid)}` {fmt.secs(b.drain_s) if b.drain_s is not None else '**not drained**'}"
            f" ({fmt.num(b.backlog_at_end)} queued)"
            for fid, b in d.by_fault.items()
        )
        lines += [
            "",
            f"**HL7 delivery:** {fmt.num(d.lost)} lost, {fmt.num(d.duplicated)} duplicated, "
            f"{fmt.num(d.unverifiable)} unverifiable of {fmt.num(d.accepted)} accepted messages; "
            f"delay p95 {fmt.ms(d.delay_ms.p95)}, max {fmt.ms(d.delay_ms.max)}."
            + (f" Backlog drain: {drains}." if drains else ""),
        ]
        if d.ward is not None:
            w = d.ward
            lines.append(
                f"On the ward: results for {fmt.num(w.patients_late)} patients arrived more than "
                f"{fmt.secs(w.late_after_s)} late; results for {fmt.num(w.patients_never_arrived)}"
                " patients never arrived."
            )
    if report.blind_spots is not None and report.blind_spots.total_s > 0:
        lines += [
            "",
            f"**Blind spots:** probes passed for {fmt.secs(report.blind_spots.total_s)} while "
            "a workflow breached its objective.",
        ]
    lines += [
        "",
        f"<sub>run `{report.run_id}` · resildrill {report.provenance.tool_version}"
        + (f" · commit `{report.provenance.git_commit}`" if report.provenance.git_commit else "")
        + " · full report: report.html</sub>",
    ]
    return "\n".join(lines) + "\n"


def render(report: DrillReport, out: Path) -> Path:
    """Write summary.md to ``out`` (a file, or a directory to hold summary.md)."""
    target = out / FILENAME if out.is_dir() else out
    target.write_text(render_text(report), encoding="utf-8")
    return target
