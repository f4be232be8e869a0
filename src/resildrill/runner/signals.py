"""Scoped SIGINT/SIGTERM handling: the first signal asks for a graceful abort, the second exits.

The first signal only sets a flag; the runner's loop sees it, reverts every fault and
writes its report (exit 3). A second signal means the operator insists: the process exits
at once, leaving the journal for ``resildrill rollback``. Handlers are restored on exit.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType


class AbortSignals:
    """Context manager installing the two-stage handlers for SIGINT and SIGTERM."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.reason: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested.is_set():
            os.write(2, b"resildrill: second signal, exiting now; run 'resildrill rollback'\n")
            os._exit(130)
        self.reason = f"received {signal.Signals(signum).name}"
        self.requested.set()

    def __enter__(self) -> AbortSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
