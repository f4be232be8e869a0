"""Webhooks let no one in (issue 19): http(s) only, redirects refused, URLs shown by scheme
and host only, the URL from an environment variable. Every server here is on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from resildrill.drill.model import TargetSpec, Webhook
from resildrill.runner.safety import notify, redacted

SECRET = "T0KEN-s3cr3t"


@pytest.fixture
def servers() -> Iterator[tuple[str, list[str]]]:
    """A hook that redirects to a second server; the paths each server was asked for."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.startswith("/redirect"):
                self.send_response(307)
                self.send_header("Location", f"http://127.0.0.1:{port}/landed")
            else:
                self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        server.shutdown()
        server.server_close()


def target_with(hook: dict[str, object]) -> TargetSpec:
    return TargetSpec.model_validate(
        {
            "apiVersion": "resildrill/v1",
            "kind": "Target",
            "name": "t",
            "environment": "test",
            "probes": [{"name": "p", "tcp": {"host": "127.0.0.1", "port": 9}}],
            "notify": [hook],
        }
    )


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/", "127.0.0.1/x"]
)
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(ValidationError, match="http:// or https://"):
        Webhook(url=url)


def test_a_redirect_is_refused_not_followed(servers: tuple[str, list[str]]) -> None:
    base, hits = servers
    failures = notify(target_with({"url": f"{base}/redirect/{SECRET}"}), "start", {})
    assert hits == [f"/redirect/{SECRET}"]  # never /landed
    [failure] = failures
    assert "307" in failure and SECRET not in failure and base in failure


def test_the_url_from_an_environment_variable_and_never_shown(
    servers: tuple[str, list[str]],
) -> None:
    base, hits = servers
    os.environ["ONCALL_HOOK"] = f"{base}/hook/{SECRET}"
    assert notify(target_with({"url_env": "ONCALL_HOOK"}), "start", {}) == []
    assert hits == [f"/hook/{SECRET}"]
    os.environ["ONCALL_HOOK"] = f"http://127.0.0.1:9/hook/{SECRET}"  # nothing listens
    [failure] = notify(target_with({"url_env": "ONCALL_HOOK"}), "end", {})
    assert SECRET not in failure and "http://127.0.0.1:9" in failure
    del os.environ["ONCALL_HOOK"]
    [unset] = notify(target_with({"url_env": "ONCALL_HOOK"}), "end", {})
    assert "${ONCALL_HOOK}" in unset and "not sent" in unset


def test_redacted_keeps_scheme_and_host_only() -> None:
    assert redacted(f"https://hooks.example.invalid:8443/services/{SECRET}?t={SECRET}") == (
        "https://hooks.example.invalid:8443"
    )
