"""The runner's heartbeat: the file its watchdog reads to tell a live runner from a stuck one.

The runner beats every tick (at most every 100 ms). Through a call that blocks for seconds
by design and is bounded in time (Locust's start, webhooks, confirming reverts, the
integrity read-back) :meth:`Heartbeat.beating` keeps beating from a thread: slow, not
stuck, so the watchdog must not fence the run meanwhile.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from resildrill.clock import Clock

#: The runner beats at most this often from its loop.
BEAT_EVERY_S = 0.1


class Heartbeat:
    """Writes ``run_dir/heartbeat`` (a monotonic time) atomically."""

    def __init__(self, run_dir: Path, clock: Clock, stale_after_s: float) -> None:
        self.path = run_dir / "heartbeat"
        self._tmp = run_dir / "heartbeat.tmp"
        self.clock = clock
        self.stale_after_s = stale_after_s
        self._last = 0.0
        self._lock = threading.Lock()

    def beat(self) -> None:
        """Beat now."""
        with self._lock:
            mono = self.clock.monotonic()
            self._tmp.write_text(f"{mono}")
            self._tmp.replace(self.path)  # atomic: the watchdog never reads a torn beat
            self._last = mono

    def beat_if_due(self) -> None:
        """Beat if the last beat is :data:`BEAT_EVERY_S` old."""
        if self.clock.monotonic() - self._last >= BEAT_EVERY_S:
            self.beat()

    @contextlib.contextmanager
    def beating(self) -> Iterator[None]:
        """Keep beating from a thread while the body blocks (bounded, by design)."""
        stop = threading.Event()
        # well inside the watchdog's limit, however short it is
        every = min(1.0, self.stale_after_s / 4)

        def keep_beating() -> None:
            while not stop.wait(every):
                self.beat()

        thread = threading.Thread(target=keep_beating, name="heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
