"""A Locust ``LoadTestShape`` whose ``tick()`` follows the drill's load phases.

Owns turning ``[(seconds from monotonic_t0, users), ...]`` (computed by the driver from
the drill's plan, or by ``sizing.phases_for`` from the LoadSpec's shape) into the user
count Locust should run now. It reads the plan and never changes it: fault timing is the
runner's. Runs on the Locust master only.
"""

from __future__ import annotations

import time

from locust import LoadTestShape  # noqa: TID251 - runs only inside the Locust master

from resildrill.load import worker
from resildrill.load.sizing import users_at


class DrillPhaseShape(LoadTestShape):
    """Users over time as the drill's phases say; the driver stops the test, not the shape."""

    def tick(self) -> tuple[int, float] | None:
        cfg = worker.config()
        phases = cfg.get("phases") or [[0.0, 1]]
        t0 = float(cfg.get("t0", 0.0))
        users = users_at(phases, time.monotonic() - t0)
        # Spawn a phase's users within about half a second: a surge at handover is
        # everyone logging in at once, and a slow ramp would blur the baseline.
        return users, float(max(1, users) * 2)
