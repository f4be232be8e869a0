"""Print how long each area of the test suite took, from pytest's JUnit XML.

    python scripts/test_times.py test-artifacts/pytest-junit.xml

Areas are test files grouped by the issue they serve, so the CI log shows each part's
share of the time budget.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

#: (substring of the test's classname, area) in order; the first match wins.
AREAS = [
    ("test_remote_", "remote hosts (issue 13)"),
    ("unit.remote", "remote hosts (issue 13)"),
    ("hl7", "HL7 over MLLP (issue 15)"),
    ("dicom", "DICOM and the PACS (issue 14)"),
    ("journal_trust", "security (issue 19)"),
    ("pidfile_identity", "security (issue 19)"),
    ("foreign_target", "foreign systems (issue 14)"),
    ("integrity_any_system", "foreign systems (issue 14)"),
    ("wall_clock", "foreign systems (issue 14)"),
    ("test_drill_run", "core (issue 17)"),
    ("test_outcome", "core (issue 17)"),
    ("test_public_api", "core (issue 17)"),
    ("test_layers", "core (issue 17)"),
    ("demo_bundle", "core (issue 17)"),
    ("docker", "docker (issue 5)"),
    ("proxy", "proxy + network (issue 4)"),
    ("network_drill", "proxy + network (issue 4)"),
    ("load", "clinician load (issue 7)"),
    ("wardehr", "ward EHR (issue 3)"),
    ("heat", "heat (issue 6)"),
    ("report", "reports (issue 8)"),
    ("history", "history + CI gates (issue 9)"),
    ("safety", "safety (issue 10)"),
    ("crash_cleanup", "safety (issue 10)"),
    ("fuzz", "safety (issue 10)"),
    ("drill", "runner + loader (issue 2)"),
    ("run_process", "runner + loader (issue 2)"),
    ("rollback", "runner + loader (issue 2)"),
    ("accuracy", "runner + loader (issue 2)"),
    ("analysis", "runner + loader (issue 2)"),
    ("runner", "runner + loader (issue 2)"),
    ("demo", "runner + loader (issue 2)"),
    ("manual_steps", "runner + loader (issue 2)"),
    ("preflight", "runner + loader (issue 2)"),
    ("signals", "runner + loader (issue 2)"),
]


def area_of(classname: str) -> str:
    for key, area in AREAS:
        if key in classname:
            return area
    return "other"


def main() -> None:
    root = ET.parse(sys.argv[1]).getroot()
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for case in root.iter("testcase"):
        area = area_of(case.get("classname", ""))
        totals[area] += float(case.get("time", "0"))
        counts[area] += 1
    print("=== test time by area")
    for area, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"    {area:30} {counts[area]:4} tests {seconds:7.1f}s")


if __name__ == "__main__":
    main()
