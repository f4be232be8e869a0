"""A local webhook receiver for tests: collects JSON POSTs on 127.0.0.1, optionally
answering each event late (a slow on-call system)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextlib.contextmanager
def webhook_receiver(
    delay_s: dict[str, float] | None = None,
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Yields the hook URL and the bodies received, in order (each with ``_arrived``: its
    monotonic arrival time); an event named in ``delay_s`` is answered that much later."""
    received: list[dict[str, Any]] = []
    delays = delay_s or {}

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({**body, "_arrived": time.monotonic()})
            time.sleep(delays.get(str(body.get("event")), 0.0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
