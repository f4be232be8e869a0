"""The ResildrillError tree and the exit code each class maps to.

    ResildrillError (6: the tool failed)
    ├── InvalidInput (2)            bad drill/target/option; carries every Problem found
    │   ├── ProductionRefused (2)
    │   └── JournalUnreadable (2)
    ├── TargetNotReady (5)          baseline steady state did not hold, nothing injected
    ├── DrillAborted (3)            halt condition or `resildrill abort`; faults reverted
    ├── RevertIncomplete (4)        something is still injected; says how to undo it
    └── ToolFailed (6)              a backend unreachable, an injection refused
        └── InjectionFailed (6)

The CLI maps an exception to its exit code and prints its message; it never shows a traceback.
How a run that went ahead ended (and the precedence of codes) is decided in outcome.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One located problem in an input file: printed as ``file:line:col: path: message``."""

    file: str
    line: int
    col: int
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return (
            f"{self.file}:{self.line}:{self.col}: {self.path or '<root>'}: {prefix}{self.message}"
        )


class ResildrillError(Exception):
    """Base of every error resildrill reports to a user."""

    exit_code: int = 6


class InvalidInput(ResildrillError):
    """The drill, target, journal or an option is wrong; nothing was touched."""

    exit_code = 2

    def __init__(self, message: str = "", problems: list[Problem] | None = None) -> None:
        self.problems = list(problems or [])
        if not message:
            message = "\n".join(str(p) for p in self.problems) or "invalid input"
        super().__init__(message)


class ProductionRefused(InvalidInput):
    """The target is a production system and the drill was not explicitly allowed there."""


class JournalUnreadable(InvalidInput):
    """A journal file cannot be read or parsed."""


class ToolProblem(str):
    """A preflight problem that is the tool's, not the target's: a backend it cannot reach
    (the Docker engine, an external Toxiproxy). A preflight with one exits 6, not 5."""

    __slots__ = ()


class TargetNotReady(ResildrillError):
    """The baseline steady state did not hold; nothing was injected."""

    exit_code = 5


class DrillAborted(ResildrillError):
    """A halt condition, a signal or ``resildrill abort`` stopped the drill; faults reverted."""

    exit_code = 3


class RevertIncomplete(ResildrillError):
    """A fault could not be reverted; the message says what is still injected and how to undo it."""

    exit_code = 4


class ToolFailed(ResildrillError):
    """resildrill itself, or a backend it relies on, failed."""

    exit_code = 6


class InjectionFailed(ToolFailed):
    """A fault backend refused or failed to inject a fault."""
