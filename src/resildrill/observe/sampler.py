"""Fixed-cadence probe scheduling: every probe fires on its interval, whatever came before.

A frozen server makes requests hang until their timeout; a sampler that waited for each
answer would then sample only once per timeout and blur the edges of an outage. Here each
probe has a scheduler thread that fires at ``interval`` on the monotonic clock and hands
each check to a small pool, so in-flight checks overlap and every 100 ms bucket is sampled.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from resildrill.observe.probes import Probe, Sample


class Sampler:
    """Runs probes on their cadence and queues their samples for the runner to drain."""

    def __init__(self, probes: list[Probe]) -> None:
        self.probes = probes
        self.samples: queue.SimpleQueue[Sample] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pools: list[ThreadPoolExecutor] = []

    def start(self, t0: float) -> None:
        """Start every probe; the first fires at ``t0`` (monotonic)."""
        for probe in self.probes:
            in_flight = math.ceil(probe.spec.timeout / probe.spec.interval) + 2
            pool = ThreadPoolExecutor(
                max_workers=in_flight, thread_name_prefix=f"probe-{probe.name}"
            )
            self._pools.append(pool)
            thread = threading.Thread(
                target=self._schedule,
                args=(probe, pool, t0),
                name=f"sched-{probe.name}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def _schedule(self, probe: Probe, pool: ThreadPoolExecutor, t0: float) -> None:
        interval = probe.spec.interval
        n = 0
        while not self._stop.is_set():
            due = t0 + n * interval
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            if time.monotonic() - due > interval:
                # Fell behind (a stalled machine): skip missed ticks instead of bursting.
                n = int((time.monotonic() - t0) / interval)
                continue
            try:
                pool.submit(self._one, probe)
            except RuntimeError:
                break  # pool shut down
            n += 1

    def _one(self, probe: Probe) -> None:
        self.samples.put(probe.check())

    def drain(self) -> list[Sample]:
        """Samples completed since the last drain."""
        out: list[Sample] = []
        while True:
            try:
                out.append(self.samples.get_nowait())
            except queue.Empty:
                return out

    def stop(self) -> None:
        """Stop scheduling and wait (bounded by the probes' timeouts) for in-flight checks."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)
