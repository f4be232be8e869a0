"""The example report in docs/ is a valid report that every renderer can render."""

from __future__ import annotations

from pathlib import Path

from resildrill.report import FORMATS, load_report, render_all

EXAMPLE_DIR = Path(__file__).resolve().parents[3] / "docs" / "example-report"


def test_docs_example_renders_every_format(tmp_path: Path) -> None:
    """docs/example-report/report.json loads and renders in every format."""
    report = load_report(EXAMPLE_DIR)
    assert report.faults, "the example should show at least one fault"
    paths = render_all(report, tmp_path, FORMATS)
    assert sorted(p.name for p in paths) == [
        "junit.xml",
        "report.html",
        "report.json",
        "summary.md",
    ]
    html = (tmp_path / "report.html").read_text()
    assert html.count('class="fault-band"') == len(report.faults)


def test_docs_example_files_are_committed_together() -> None:
    """The rendered example files sit beside the report.json they came from."""
    for name in ("report.json", "report.html", "junit.xml", "summary.md", "drill.yaml"):
        assert (EXAMPLE_DIR / name).is_file(), name
