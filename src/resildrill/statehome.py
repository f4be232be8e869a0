"""Where resildrill keeps state that outlives a run: run registry, locks, target homes.

``$RESILDRILL_STATE_DIR`` when set (tests point it at a temporary folder), else
``~/.local/state/resildrill`` (the XDG state location).
"""

from __future__ import annotations

import os
from pathlib import Path


def state_home() -> Path:
    """The state folder's root (not created here)."""
    env = os.environ.get("RESILDRILL_STATE_DIR")
    return Path(env) if env else Path.home() / ".local" / "state" / "resildrill"
