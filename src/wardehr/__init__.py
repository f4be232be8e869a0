"""The bundled staging clinical system: a small FHIR R4 ward EHR to rehearse drills on.

It owns every process of the bundled target and how they are started and stopped:

    clients -> gateway (health checks, failover) -> replica-a, replica-b (FHIR R4 API)
                                                  -> store (SQLite file, or PostgreSQL)
    supervisor: starts all of the above, restarts a dead one after ``restart_delay``

Each component runs as its own OS process (``python -m wardehr.<module>``) bound
to 127.0.0.1, with a pidfile and a log under the target's run folder. The population is
synthetic and seeded: it is never real patient data.

Public entry points: :func:`wardehr.stack.up`, :func:`~wardehr.stack.down`
and :func:`~wardehr.stack.status`, and :func:`~wardehr.stack.write_target`
to write a target file with free ports (tests, demo).
"""

from __future__ import annotations

__all__: list[str] = []
