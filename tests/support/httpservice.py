"""A tiny HTTP service for drills to break: answers /healthz with 200, writes its pidfile.

Run as its own process (tests kill, freeze and restart it):
    python tests/support/httpservice.py --port 18555 --pidfile /tmp/x.pid
"""

from __future__ import annotations

import argparse
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status":"ok"}' if self.path.startswith("/healthz") else b"{}"
        self.send_response(200 if self.path.startswith("/healthz") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Service", "tiny-test-service")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pidfile", required=True)
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    tmp = args.pidfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, args.pidfile)
    server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
