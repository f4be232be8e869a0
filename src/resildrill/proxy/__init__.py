"""The embedded Toxiproxy-compatible proxy server (``resildrill proxy``).

It speaks the Toxiproxy 2.x HTTP API (``proxy/api.py``) so drills drive it exactly as they
drive a real Toxiproxy; proxies and their listeners live in ``proxy/server.py``, the byte
pipes in ``proxy/link.py`` and one module per toxic in ``proxy/toxics/``. It always runs as
its own process (``proxy/service.py``), never inside the runner.
"""

from __future__ import annotations

__all__ = ["main", "run"]

from resildrill.proxy.service import main, run
