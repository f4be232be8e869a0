"""The dead man's switch on remote hosts, through the real CLI against real OpenSSH hosts.

A runner SIGKILLed at a random moment while a fault is held (freeze, CPU hog, disk fill),
with no watchdog (so nothing on the runner's machine can undo it): the host's guard sees its
channel end without a hand-off and reverts by itself, within 5 s, observed by a poller inside
the host. ``resildrill rollback`` then reads the host's journal and exits 0. Figures go to
test-artifacts/remote-deadman.json; benchmarks/remote_deadman.py runs 21 trials.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from remote_deadman import BOUND_S, FAULTS, prepare_victim, run_deadman_trial, summary
from remote_support import Estate, down_estate, up_estate
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    made = up_estate(tmp_path_factory.mktemp("deadman"), f"rd-{uuid.uuid4().hex[:6]}")
    prepare_victim(made)
    yield made
    down_estate(made)


def test_guard_reverts_when_the_runner_is_killed(estate: Estate, tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("RESILDRILL_SEED", "13")))
    per_kind = int(os.environ.get("RESILDRILL_DEADMAN_TRIALS", "2"))
    trials = [
        run_deadman_trial(estate, kind, rng, tmp_path) for kind in FAULTS for _ in range(per_kind)
    ]
    figures = summary(trials)
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "remote-deadman.json").write_text(json.dumps(figures, indent=2))
    slow = [
        t for t in trials if t.reverted_after_kill_s is None or t.reverted_after_kill_s > BOUND_S
    ]
    assert not slow, f"not reverted by the host within {BOUND_S} s: {slow}"
    assert figures["rollback_exits"] == [0], trials
