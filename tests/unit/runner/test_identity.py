"""The identity check against a small local server: every rule, matched and refused."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from resildrill.drill.model import IdentityCheck
from resildrill.runner.safety import check_identity

BODY = b'{"service": {"name": "PathLab LIS", "versions": ["7.2"]}, "status": "up"}'


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-System", "pathlab")
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/about"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("rule", "ok"),
    [
        ({"header": "X-System", "value": "pathlab"}, True),
        ({"header": "X-System", "value": "radiology"}, False),
        ({"json_field": "service.name", "value": "PathLab LIS"}, True),
        ({"json_field": "service.versions.0", "value": "7.2"}, True),
        ({"json_field": "service.name", "value": "Ward EHR"}, False),
        ({"json_field": "service.missing", "value": "x"}, False),
        ({"body_pattern": r'"name":\s*"PathLab'}, True),
        ({"body_pattern": "Ward EHR"}, False),
    ],
)
def test_each_rule(url: str, rule: dict[str, str], ok: bool) -> None:
    why = check_identity(IdentityCheck.model_validate({"url": url, **rule}))
    assert (why is None) == ok, why


def test_exactly_one_rule() -> None:
    with pytest.raises(ValidationError, match="exactly one rule"):
        IdentityCheck.model_validate({"url": "http://127.0.0.1:9/", "body_pattern": "x",
                                      "fhir_software": "y"})  # fmt: skip
    with pytest.raises(ValidationError, match="need the 'value'"):
        IdentityCheck.model_validate({"url": "http://127.0.0.1:9/", "json_field": "a"})
