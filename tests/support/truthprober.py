"""An independent prober, in its own process: the ground truth for accuracy tests.

Fires an HTTP GET every ``--interval`` (default 10 ms) on the shared monotonic clock, each
on its own thread so a hung server does not slow the cadence, and writes one line per
request: ``<start monotonic> <1|0> <start wall clock>`` (the wall time read with the
monotonic one, so a test can compare with a report on the wall clock too). A request
counts as ok only if it answered 200 within ``--timeout`` (the same rule resildrill's
probes use). Stops after ``--duration``, or earlier on SIGTERM (the test is done with
it); either way it writes what it saw.
"""

from __future__ import annotations

import argparse
import http.client
import signal
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--timeout", type=float, default=0.3)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    results: list[tuple[float, int, float]] = []
    lock = threading.Lock()

    def one(start: float, wall: float) -> None:
        ok = 0
        try:
            c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=args.timeout)
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            c.close()
            ok = int(r.status == 200 and time.monotonic() - start <= args.timeout)
        except OSError:
            ok = 0
        with lock:
            results.append((start, ok, wall))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    t0 = time.monotonic()
    n = 0
    threads: list[threading.Thread] = []
    while not stop.is_set():
        due = t0 + n * args.interval
        if due > t0 + args.duration:
            break
        delay = due - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        start, wall = time.monotonic(), time.time()
        t = threading.Thread(target=one, args=(start, wall), daemon=True)
        t.start()
        threads.append(t)
        threads = [x for x in threads if x.is_alive()]
        n += 1
    deadline = time.monotonic() + args.timeout + 1
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    with lock:
        rows = sorted(results)
    with open(args.out, "w") as f:
        for start, ok, wall in rows:
            f.write(f"{start:.6f} {ok} {wall:.6f}\n")


if __name__ == "__main__":
    main()
