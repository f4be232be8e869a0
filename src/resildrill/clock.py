"""The Clock protocol and the monotonic clock every measurement is stamped with.

Everything inside a run is measured with ``time.monotonic()``; wall time is read only to
stamp ``started_at`` in reports. Components receive a Clock instead of calling ``time``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What a component needs from time."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` for measurement, ``time.time`` for report stamps."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def iso_utc(wall: float) -> str:
    """Format a wall-clock time as ISO 8601 UTC with milliseconds."""
    return (
        datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
