"""report.html: self-contained, complete, and faithful to the report's figures."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from resildrill.report import render_html
from resildrill.report.chart import MAX_POINTS
from resildrill.report.model import DrillReport


class _Page(HTMLParser):
    """Collects every start tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def with_class(self, cls: str) -> list[dict[str, str]]:
        return [a for _, a in self.tags if cls in a.get("class", "").split()]


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def html(example: DrillReport, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The example report rendered once for the module."""
    path = render_html.render(example, tmp_path_factory.mktemp("html"))
    assert path.name == "report.html"
    return path.read_text()


def test_one_band_per_fault_and_one_marker_per_recovered_fault(html: str) -> None:
    """The chart shades each fault once and marks only the fault that recovered."""
    page = parse(html)
    bands = [a["data-fault-id"] for a in page.with_class("fault-band")]
    markers = [a["data-fault-id"] for a in page.with_class("recovery-marker")]
    assert bands == ["gateway-latency", "db-kill"]
    assert markers == ["gateway-latency"]


def test_page_is_self_contained(html: str) -> None:
    """No script, no stylesheet link, no URL a browser would fetch."""
    page = parse(html)
    assert not [t for t, _ in page.tags if t in ("script", "iframe", "img", "object")]
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith(("#", "data:")), (tag, name, value)
    assert "url(" not in html and "@import" not in html
    assert "@media print" in html


def test_every_section_is_present(html: str) -> None:
    """Verdict, faults, timeline, impact, blind spots, restore order, integrity, gates,
    reviewers, provenance and the drill as run all appear."""
    page = parse(html)
    ids = {a.get("id") for _, a in page.tags}
    assert {
        "verdict",
        "faults",
        "timeline",
        "impact",
        "blind-spots",
        "restore",
        "integrity",
        "gates",
        "reviewers",
        "provenance",
        "drill",
    } <= ids
    text = " ".join(page.text)
    assert "FAILED" in text and "1 of 2" in text
    assert "14.2 s" in text  # blind spots
    assert "fhir-db" in text and "not restored" in text  # restore order
    assert "CHG-2026-1142" in text and "j.smith" in text  # provenance


def test_fault_figures_are_shown_as_recorded(html: str) -> None:
    """Each fault's window and recovery figures appear, formatted, not recomputed."""
    text = " ".join(parse(html).text)
    for figure in ("+0:10.1", "+0:25.0", "0.8 s", "2.3 s", "16.5 s", "+0:35.2", "24.5 s"):
        assert figure in text


def test_reviewer_rows_cite_a_figure_and_disclaim(html: str) -> None:
    """Every reviewer row names its standard, cites report.json and is marked as evidence."""
    section = html.split('id="reviewers"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r"<tr><td>(.*?)</tr>", section, flags=re.S)
    assert len(rows) >= 6
    for row in rows:
        assert "Evidence, not a compliance claim." in row
        assert re.search(r'class="mono cite">[a-z_\[\]. ,]+</td>', row), row
    joined = " ".join(rows)
    for standard in ("ISO 22301", "RTO", "RPO", "DSPT", "B5.a", "D1.c", "DCB0160"):
        assert standard in joined


def test_drill_as_run_keeps_secret_references(html: str) -> None:
    """The drill text is shown with ${VAR} references as the producer wrote them."""
    assert "${WARD_EHR_TOKEN}" in html
    assert "expect: success_rate &gt;= 0.99" in html


def test_text_from_the_report_is_escaped(example_data: dict[str, Any]) -> None:
    """A fault id carrying markup shows as text, never as an element."""
    example_data["faults"][0]["id"] = "<script>alert(1)</script>"
    html = render_html.render_text(DrillReport.model_validate(example_data))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_long_series_are_downsampled_for_the_page_only(example_data: dict[str, Any]) -> None:
    """An hour of 0.1 s buckets draws at most MAX_POINTS points a line; the report keeps all."""
    n = 36_000
    series = example_data["timeline"]["series"]
    series["workflow.nurse_observations.p95_ms"]["values"] = [200.0 + i % 7 for i in range(n)]
    series["workflow.nurse_observations.requests"]["values"] = [100.0] * n
    series["workflow.nurse_observations.failures"]["values"] = [0.0] * n
    example_data["duration_s"] = n / 10
    report = DrillReport.model_validate(example_data)
    html = render_html.render_text(report)
    for data in re.findall(r'<path class="series" d="([^"]+)"', html):
        assert len(re.findall(r"[ML]", data)) <= MAX_POINTS
    assert "summarises 60 buckets" in html
    assert len(report.timeline.series["workflow.nurse_observations.p95_ms"].values) == n


def _heat_spec(**over: Any) -> Any:
    """A 40 s chiller trip: both servers throttle and shut down, rack-a1 is then lost."""
    from resildrill.faults.heat.spec import HeatFaultSpec

    doc: dict[str, Any] = {
        "id": "hw",
        "kind": "heat",
        "at": "0s",
        "duration": "40s",
        "time_scale": 60,
        "room": {
            "preset": "chiller-trip",
            "rate": "high-density",
            "other_load": 0.9,
            "cooling_restored_at": "20m",
        },
        "servers": {
            "rack-a1": {"class": "a2-volume", "rack_offset": 3, "hardware_loss_after": "2m"},
            "rack-b2": {"class": "a2-volume", "rack_offset": -1},
        },
    }
    return HeatFaultSpec.model_validate({**doc, **over})


def test_heat_curves_and_states_are_drawn(example_data: dict[str, Any]) -> None:
    """A heat fault's own series (as the pipeline stores them) draw the temperature panel,
    room and inlet curves, and a state strip per server naming the model's states."""
    from resildrill.faults.heat import heat_series
    from resildrill.faults.heat.model import simulate

    spec = _heat_spec()
    series = example_data["timeline"]["series"]
    series.update(heat_series(spec, start_s=10.0, n_buckets=600))
    html = render_html.render_text(DrillReport.model_validate(example_data))
    assert "Server inlet temperature" in html
    titles = re.findall(r'<path class="series" d="[^"]+"[^>]*><title>([^<]+)</title>', html)
    assert {"rack-a1 inlet °C", "rack-b2 inlet °C", "room °C"} <= set(titles)
    assert re.search(r'stroke="#555555" stroke-dasharray="4 3"><title>room °C', html)
    assert "rack-a1 state" in html and "rack-b2 state" in html
    states = {e.state for e in simulate(spec).events if e.server == "rack-a1"}
    assert states == {"throttled", "warning", "caution", "shutdown", "lost"}
    strips = re.findall(r'<rect class="(\w+)"[^>]*><title>rack-a1 state: ([\w-]+),', html)
    shown = dict((state, cls) for cls, state in strips)
    assert shown == {
        "normal": "ok",
        "throttled": "warn1",
        "warning": "warn2",
        "caution": "warn3",
        "shutdown": "bad",
        "lost": "bad",
    }
    assert "room temperature" in " ".join(parse(html).text)  # its legend entry


def test_two_heat_faults_each_get_their_curves(example_data: dict[str, Any]) -> None:
    """With two heat faults the pipeline prefixes each key with the fault id."""
    from resildrill.faults.heat import heat_series

    series = example_data["timeline"]["series"]
    for fid, start in (("hw1", 5.0), ("hw2", 30.0)):
        for key, value in heat_series(_heat_spec(id=fid), start_s=start, n_buckets=600).items():
            series[f"{fid}.{key}"] = value
    html = render_html.render_text(DrillReport.model_validate(example_data))
    titles = set(re.findall(r'<path class="series" d="[^"]+"[^>]*><title>([^<]+)</title>', html))
    assert {"hw1 rack-a1 inlet °C", "hw2 rack-b2 inlet °C", "hw1 room °C", "hw2 room °C"} <= titles
    assert "hw2 rack-a1 state" in html


def test_state_strip_without_labels_uses_the_documented_codes(
    example_data: dict[str, Any],
) -> None:
    """A producer's state series without labels reads 0 normal, 1 throttled, 2 shut down."""
    series = example_data["timeline"]["series"]
    series["heat.pump.state"] = {"unit": "state", "values": [0.0] * 300 + [1.0] * 200 + [2.0] * 100}
    html = render_html.render_text(DrillReport.model_validate(example_data))
    assert re.search(r'<rect class="bad"[^>]*><title>pump state: shut down,', html)
    assert "Server inlet temperature" not in html  # no temperatures: no panel


def test_fault_recovered_without_breach_still_gets_a_marker(
    example_data: dict[str, Any],
) -> None:
    """A fault that caused no breach counts as recovered and is marked at its end."""
    fault = example_data["faults"][1]
    fault["recovered_at_s"] = None
    fault["recovery"].update(recovered=True, time_to_detect_s=None, time_to_recover_s=0.0)
    page = parse(render_html.render_text(DrillReport.model_validate(example_data)))
    markers = [a["data-fault-id"] for a in page.with_class("recovery-marker")]
    assert markers == ["gateway-latency", "db-kill"]


def test_not_ready_run_renders(not_ready: DrillReport) -> None:
    """A run with no faults, load or gates still gives a readable page."""
    html = render_html.render_text(not_ready)
    page = parse(html)
    assert not page.with_class("fault-band")
    text = " ".join(page.text)
    assert "NOT READY" in text and "No fault was injected in this run." in text


def test_partial_report_is_flagged(example_data: dict[str, Any], tmp_path: Path) -> None:
    """A partial report says so at the top."""
    example_data["partial"] = True
    html = render_html.render_text(DrillReport.model_validate(example_data))
    assert "Partial report." in html


def test_fault_that_was_never_analysed(example_data: dict[str, Any]) -> None:
    """A fault whose injection failed shows its error instead of recovery figures."""
    fault = example_data["faults"][1]
    fault.update(injected_at_s=None, recovery=None, error="docker: container not found")
    html = render_html.render_text(DrillReport.model_validate(example_data))
    assert "db-kill was not injected: docker: container not found" in html


def test_fault_never_requested_has_no_band(example_data: dict[str, Any]) -> None:
    """A fault the run never reached (aborted first) has no window to shade."""
    fault = example_data["faults"][1]
    fault.update(inject_requested_at_s=None, injected_at_s=None, reverted_at_s=None)
    fault["recovery"] = None
    page = parse(render_html.render_text(DrillReport.model_validate(example_data)))
    assert [a["data-fault-id"] for a in page.with_class("fault-band")] == ["gateway-latency"]


def test_remote_hosts_are_shown_with_their_times(example_data: dict[str, Any]) -> None:
    """A fault that acted on hosts of the estate lists each host, its times, who reverted it
    (the host's guard after lost contact), and the spread between hosts."""
    example_data["faults"][0]["remote"] = {
        "hosts": [
            {"host": "app-1", "injected_at_s": 5.0, "reverted_at_s": 15.0,
             "reverted_by": "runner", "clock_uncertainty_s": 0.0002, "error": None},
            {"host": "app-<2>", "injected_at_s": 5.3, "reverted_at_s": 12.1,
             "reverted_by": "guard", "clock_uncertainty_s": 0.0004, "error": None},
        ],
        "injection_spread_s": 0.3,
        "revert_spread_s": 2.9,
    }  # fmt: skip
    import html as entities

    html = render_html.render_text(DrillReport.model_validate(example_data))
    text = entities.unescape(re.sub(r"<[^>]+>", " ", html))
    assert "acted on" in text and "app-1" in text and "app-&lt;2&gt;" in html
    assert "the host's guard (contact lost)" in text
    assert "injection 0.3 s" in text and "revert 2.9 s" in text
