"""How an operator answers a drill's manual step without stopping the drill's clock.

A manual step waits for a person (a ward manager confirms the paper downtime procedure, an
engineer replaces a disk), but while it waits the runner must keep beating its heartbeat (or
the watchdog fences the run and reverts everything), keep sampling, keep heat's duty cycle
ticking and keep honouring Ctrl-C and ``resildrill abort``. So the question is asked once
and the answer is *polled* from the runner's loop, never waited for in a blocking read.

An operator answers a step in one of three ways:

- **Enter** on the terminal the run started from (only when stdin is a terminal);
- ``resildrill confirm RUN [STEP]`` from any other terminal: it writes
  ``confirm/<step-id>`` in the run folder, which works for runs with no terminal at all;
- ``--yes`` answers every step the moment it starts (CI).

A step nobody answers ends at its ``timeout`` and is reported as not completed.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

__all__ = ["OperatorChannel", "confirm_file"]


def confirm_file(run_dir: Path, step_id: str) -> Path:
    """The file ``resildrill confirm`` writes to answer ``step_id`` of the run in ``run_dir``."""
    return run_dir / "confirm" / step_id


class OperatorChannel:
    """Asks manual steps and polls for their answers; one per run."""

    def __init__(
        self,
        run_dir: Path,
        run_id: str,
        *,
        yes: bool,
        say: Callable[[str], None],
        terminal: TextIO | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.run_id = run_id
        self.yes = yes
        self.say = say
        # Enter answers only on a terminal: a pipe or /dev/null would "answer" every step
        # at once with its end of file.
        self.terminal = terminal if terminal is not None and _is_terminal(terminal) else None

    def ask(self, step_id: str, prompt: str, timeout_s: float) -> None:
        """Show the step and how to answer it."""
        if self.yes:
            return
        ways = [f"resildrill confirm {self.run_id} {step_id}"]
        if self.terminal is not None:
            ways.insert(0, "press Enter")
        self.say(
            f">>> MANUAL STEP {step_id}: {prompt}\n"
            f"    when done: {' or '.join(ways)} (timeout {timeout_s:g}s)"
        )

    def answered(self, step_id: str) -> str | None:
        """How the step was answered, or None while it waits; never blocks."""
        if self.yes:
            return "answered by --yes"
        if confirm_file(self.run_dir, step_id).exists():
            return "confirmed with 'resildrill confirm'"
        if self.terminal is not None and _line_ready(self.terminal):
            self.terminal.readline()
            return "operator confirmed"
        return None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):  # closed, or no file behind it
        return False


def _line_ready(stream: TextIO) -> bool:
    try:
        ready, _, _ = select.select([stream], [], [], 0)
    except (ValueError, OSError):
        return False
    return bool(ready)
