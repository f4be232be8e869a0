"""Locustfile that adds only the resildrill timeline plugin and the drill's load shape.

Given first in ``locust -f plugin.py,<yours>.py`` when a drill brings its own locustfile:
the user's users run, and their requests are still bucketed at 100 ms and streamed.
"""

from resildrill.load import worker
from resildrill.load.shape import DrillPhaseShape

worker.install()

__all__ = ["DrillPhaseShape"]
