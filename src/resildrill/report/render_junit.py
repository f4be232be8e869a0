"""The JUnit renderer: junit.xml, the drill as test results a CI server already shows.

Owns the JUnit XML (the Jenkins/Ant form that Jenkins, GitLab, GitHub reporters and
``junitparser`` read): one ``<testcase>`` per gate and per fault, ``classname`` = the
drill's name, ``name`` = the gate's name or the fault's id, so a test's history follows it
from run to run. No timestamps and no durations, so two runs with the same results give
the same cases. A failed gate or an unrecovered fault carries its reason in ``<failure>``.

A drill that did not complete (aborted, not ready, tool error) adds one case named
``run`` with an ``<error>``, so CI never shows green for a drill that did not run.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from resildrill.report import format as fmt
from resildrill.report.model import DrillReport, Fault, Gate

__all__ = ["FILENAME", "render", "render_text"]

FILENAME = "junit.xml"
_INCOMPLETE = ("aborted", "not_ready", "error")


def _gate_case(report: DrillReport, gate: Gate) -> ET.Element:
    case = ET.Element("testcase", classname=report.drill.name, name=gate.name)
    if not gate.passed:
        failure = ET.SubElement(case, "failure", message=fmt.gate_reason(gate), type="gate")
        failure.text = (
            f"gate: {gate.name} ({fmt.gate_label(gate)})\n"
            f"limit: {fmt.gate_limit(gate)}\nmeasured: {fmt.gate_value(gate)}"
        )
    return case


def _fault_case(report: DrillReport, fault: Fault) -> ET.Element:
    case = ET.Element("testcase", classname=report.drill.name, name=fault.id)
    rec = fault.recovery
    if rec is None:
        error = ET.SubElement(case, "error", message=fmt.fault_reason(fault), type="not_analysed")
        error.text = f"fault: {fault.id} ({fault.kind})"
        return case
    details = (
        f"fault: {fault.id} ({fault.kind})\n"
        f"injected: {fmt.clock(fault.injected_at_s)}, reverted: {fmt.clock(fault.reverted_at_s)}\n"
        f"time to detect: {fmt.secs(rec.time_to_detect_s)}\n"
        f"time to recover: {fmt.secs(rec.time_to_recover_s)}\n"
        f"outage: {fmt.secs(rec.outage_s)}, degraded: {fmt.secs(rec.degraded_s)}, "
        f"relapses: {rec.relapses}"
    )
    if fault.injected_at_s is None:
        error = ET.SubElement(case, "error", message=fmt.fault_reason(fault), type="not_injected")
        error.text = details
    elif not rec.recovered:
        failure = ET.SubElement(
            case, "failure", message=fmt.fault_reason(fault), type="not_recovered"
        )
        failure.text = details
    else:
        out = ET.SubElement(case, "system-out")
        out.text = details
    return case


def render_text(report: DrillReport) -> str:
    """The JUnit XML document as a string."""
    cases = [_gate_case(report, g) for g in report.gates]
    cases += [_fault_case(report, f) for f in report.faults]
    if report.outcome in _INCOMPLETE:
        word, sentence = fmt.verdict(report)
        case = ET.Element("testcase", classname=report.drill.name, name="run")
        error = ET.SubElement(case, "error", message=report.reason or sentence, type=report.outcome)
        error.text = f"{word}: {sentence} (exit code {report.exit_code})"
        cases.append(case)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": str(errors)}
    root = ET.Element("testsuites", {"name": "resildrill", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": report.drill.name, **counts, "skipped": "0"})
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("run_id", report.run_id),
        ("outcome", report.outcome),
        ("exit_code", str(report.exit_code)),
        ("partial", "true" if report.partial else "false"),
        ("target", f"{report.target.name} ({report.target.environment})"),
        ("drill_sha256", report.drill.sha256),
        ("tool_version", report.provenance.tool_version),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    suite.extend(cases)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def render(report: DrillReport, out: Path) -> Path:
    """Write junit.xml to ``out`` (a file, or a directory to hold junit.xml)."""
    target = out / FILENAME if out.is_dir() else out
    target.write_text(render_text(report), encoding="utf-8")
    return target
