"""The real ``resildrill`` CLI with the runner's test hooks, set from the environment *here*,
never in the shipped code (a product a variable can turn its watchdog off in is a hazard):

    RESILDRILL_CRASH_AT=POINT      SIGKILL this process at a crash point (runner/drill_run.py
                                   CRASH_POINTS), as a killed runner would die
    RESILDRILL_TEST_WATCHDOG=off   a watchdog that never watches: a host that lost the watchdog
                                   with the runner, so only ``resildrill rollback`` can undo
    RESILDRILL_TEST_STALE_AFTER=S  the watchdog's heartbeat limit, shortened

    python tests/support/runner_cli.py run DRILL ...    # any resildrill arguments
"""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import sys
from pathlib import Path

SWITCHES = ("RESILDRILL_CRASH_AT", "RESILDRILL_TEST_WATCHDOG", "RESILDRILL_TEST_STALE_AFTER")


class Unwatched:
    """Stands for a watchdog lost with the runner: says it watches, does nothing."""

    def __init__(self, run_dir: Path, stale_after_s: float) -> None:
        self.run_dir = run_dir

    def watching(self) -> bool:
        return True

    def finish(self) -> None:
        return None


def _crash_at(point: str) -> None:
    if os.environ.get("RESILDRILL_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def install() -> None:
    """Make every run of this process use the hooks the environment asks for."""
    import resildrill.runner.runner as runner
    from resildrill.runner.drill_run import RunParts

    changes: dict[str, object] = {"checkpoint": _crash_at}
    if os.environ.get("RESILDRILL_TEST_WATCHDOG") == "off":
        changes["start_watchdog"] = Unwatched
    if os.environ.get("RESILDRILL_TEST_STALE_AFTER"):
        changes["stale_after_s"] = float(os.environ["RESILDRILL_TEST_STALE_AFTER"])
    fields = {f.name for f in dataclasses.fields(RunParts)}
    assert set(changes) <= fields, set(changes) - fields
    runner.RunParts = functools.partial(RunParts, **changes)  # type: ignore[misc]


if __name__ == "__main__":
    install()
    from resildrill.cli import main

    sys.argv[0] = "resildrill"
    main()
