"""A small non-FHIR clinical-ish HTTP API for integrity tests: lab items in memory.

POST   /items            {"client_id": ..., "value": ...} -> 201 {"id": N}
GET    /items/N          200 the item | 404
GET    /items?client_id= 200 {"matches": k, "ids": [...]}
DELETE /items/N          204 (a write lost behind the tool's back)

python tests/support/itemserver.py --port PORT
"""

from __future__ import annotations

import argparse
import http.server
import json
import threading
import urllib.parse

ITEMS: dict[int, dict[str, object]] = {}
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def _send(self, status: int, body: object | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _item_id(self) -> int | None:
        parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
        return int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with LOCK:
            new = max(ITEMS, default=0) + 1
            ITEMS[new] = {"id": new, **body}
        self._send(201, {"id": new})

    def do_GET(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        if split.path == "/healthz":
            self._send(200, {"status": "up"})
            return
        if split.path == "/items":
            wanted = urllib.parse.parse_qs(split.query).get("client_id", [""])[0]
            with LOCK:
                ids = [i for i, item in ITEMS.items() if item.get("client_id") == wanted]
            self._send(200, {"matches": len(ids), "ids": ids})
            return
        with LOCK:
            item = ITEMS.get(self._item_id() or -1)
        self._send(200, item) if item is not None else self._send(404, {"error": "no item"})

    def do_DELETE(self) -> None:
        with LOCK:
            ITEMS.pop(self._item_id() or -1, None)
        self._send(204)

    def log_message(self, *args: object) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
