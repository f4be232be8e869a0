"""Time to clean-up after a SIGKILLed runner, with no human action (issue 10).

Runs the crash-cleanup tests with more random moments per fault kind (process, network,
Docker; 7 each by default = 21 random SIGKILLs, plus every forced crash point per kind),
then prints p50 and max of the time from the kill until the independent inspector saw
nothing injected (and no proxy process left).

    .venv/bin/python benchmarks/crash_cleanup.py [--trials 7]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/integration/test_crash_cleanup.py",
    "tests/integration/docker/test_docker_crash_cleanup.py",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=7, help="random moments per fault kind")
    args = parser.parse_args()
    env = {**os.environ, "RESILDRILL_CRASH_TRIALS": str(args.trials)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
        cwd=ROOT,
        env=env,
        timeout=1800,
        check=False,
    )
    times: list[float] = []
    random_kills = failures = 0
    for kind in ("process", "network", "docker"):
        path = ROOT / "test-artifacts" / f"crash-cleanup-{kind}.json"
        if not path.exists():
            print(f"{kind:8} no figures (tests skipped or failed)")
            continue
        data = json.loads(path.read_text())
        s = data["summary"]
        print(
            f"{kind:8} trials {s['trials']:3}  random {s['random']:3}  "
            f"p50 {s['p50_s']} s  max {s['max_s']} s  not clean in 5 s: "
            f"{s['not_clean_within_5s']}"
        )
        random_kills += s["random"]
        failures += s["not_clean_within_5s"]
        times += [t["cleanup_s"] for t in data["trials"] if t["cleanup_s"] is not None]
    times.sort()
    if times:
        print(
            f"all      trials {len(times) + failures:3}  random {random_kills:3}  "
            f"p50 {times[len(times) // 2]:.3f} s  max {times[-1]:.3f} s  "
            f"not clean in 5 s: {failures}"
        )
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
