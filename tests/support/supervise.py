"""A minimal process supervisor: restarts its child after a delay whenever it dies.

    python tests/support/supervise.py --delay 0.5 --pidfile sup.pid -- python service.py ...
Stops (and stops its child) on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    with open(args.pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")
    child: subprocess.Popen[bytes] | None = None
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.kill()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    deadline = time.monotonic() + 3600  # a test supervisor never outlives an hour
    while not stopping and time.monotonic() < deadline:
        child = subprocess.Popen(command)
        child.wait()
        if stopping:
            break
        time.sleep(args.delay)
    sys.exit(0)


if __name__ == "__main__":
    main()
