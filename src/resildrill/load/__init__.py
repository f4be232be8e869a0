"""Clinician load: Locust personas in their own processes, measured at 100 ms.

The public, locust-free API the runner uses (see docs/load.md): :class:`LoadDriver`,
:class:`LoadBucket`, :func:`apply_buckets`, :class:`IntegrityResult`. The Locust side
(``worker``, ``users``, ``shape``, ``locustfiles``) is only ever imported inside Locust
processes, because importing locust monkey-patches the process with gevent (P11).
"""

from resildrill.load.driver import LoadBucket, LoadDriver, WorkflowSeries, apply_buckets
from resildrill.load.integrity import IntegrityResult

__all__ = ["IntegrityResult", "LoadBucket", "LoadDriver", "WorkflowSeries", "apply_buckets"]
