"""Benchmark: the remote dead man's switch over 21 trials (7 each: freeze, CPU hog, disk fill).

Starts its own estate of SSH hosts (containers; needs the Docker engine of
scripts/start-docker.sh), SIGKILLs the runner (no watchdog) at random moments while the fault
is held, and prints how long each host's guard took to revert by itself, as seen by a poller
inside the host, with p50 and max. Issue 13's bound: every fault reverted within 5 s.

    .venv/bin/python benchmarks/remote_deadman.py [--per-kind 7] [--seed 13]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/wardehr.py would shadow the wardehr package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path[:0] = [str(ROOT / "tests" / "integration" / "docker"), str(ROOT)]

from remote_deadman import FAULTS, prepare_victim, run_deadman_trial, summary  # noqa: E402
from remote_support import down_estate, up_estate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-kind", type=int, default=7)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        estate = up_estate(out / "estate", f"bd-{uuid.uuid4().hex[:6]}")
        try:
            prepare_victim(estate)
            trials = []
            for _ in range(args.per_kind):
                for kind in FAULTS:
                    t = run_deadman_trial(estate, kind, rng, out)
                    trials.append(t)
                    print(f"trial {len(trials):2d} {kind:6s} killed {t.killed_after_s:5.2f}s "
                          f"after start, reverted on the host {t.reverted_after_kill_s}s after the "
                          f"kill, rollback exit {t.rollback_exit}", flush=True)  # fmt: skip
        finally:
            down_estate(estate)
    print(json.dumps(summary(trials), indent=2))


if __name__ == "__main__":
    main()
