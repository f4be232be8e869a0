"""A small Toxiproxy HTTP client for the runner path: a deadline on every call, ints only.

The ``toxiproxy-python`` client sets no timeouts, keeps host and port in class attributes
and sends Python floats (which a real Toxiproxy refuses); the runner must never hang on a
proxy server, so it talks through this one instead. Every socket operation of a call is
bounded by ``timeout_s``; connection failures and timeouts raise :class:`ProxyUnreachable`.
"""

from __future__ import annotations

import http.client
import json
import os
from typing import Any
from urllib.parse import quote, urlsplit

from resildrill import __version__
from resildrill.errors import ToolFailed

DEFAULT_TIMEOUT_S = 2.0


class ProxyUnreachable(ToolFailed):
    """The Toxiproxy API did not answer (refused, reset or timed out)."""

    def __init__(self, message: str, refused: bool) -> None:
        super().__init__(message)
        #: True when nothing listens at the address (so no toxic can be in place there).
        self.refused = refused


def q(name: str) -> str:
    """A proxy or toxic name as one URL path segment."""
    return quote(name, safe="")


def as_int_attributes(attributes: dict[str, Any]) -> dict[str, int]:
    """Attributes as JSON integers: a real Toxiproxy refuses ``100.0`` with 400."""
    out: dict[str, int] = {}
    for key, value in attributes.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"attribute {key} must be an integer, not {value!r}")
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"attribute {key} must be an integer, not {value!r}")
        out[key] = int(value)
    return out


class ToxiproxyClient:
    """Calls to one Toxiproxy API at ``url`` (``http://host:port``)."""

    def __init__(
        self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S, token_env: str | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ToolFailed(f"Toxiproxy URL must look like http://host:port, not {url!r}")
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 8474
        self.timeout_s = timeout_s
        #: the variable holding the API's bearer token (its value is read per call, never kept
        #: in a recipe or journal)
        self.token_env = token_env

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON body or None); raises ProxyUnreachable."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        headers = {"User-Agent": f"resildrill/{__version__}", "Accept": "application/json"}
        token = os.environ.get(self.token_env) if self.token_env else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except ConnectionRefusedError:
            raise ProxyUnreachable(f"Toxiproxy API {self.url}: connection refused", True) from None
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            detail = str(exc) or type(exc).__name__
            raise ProxyUnreachable(f"Toxiproxy API {self.url}: {detail}", False) from None
        finally:
            conn.close()
        try:
            decoded = json.loads(raw) if raw.strip() else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        return response.status, decoded

    @staticmethod
    def error_text(status: int, body: Any) -> str:
        """The server's error message, or the status."""
        if isinstance(body, dict) and "error" in body:
            return f"HTTP {status}: {body['error']}"
        return f"HTTP {status}"

    # -- the calls the backend makes ---------------------------------------------------

    def version(self) -> str:
        """The server's version string."""
        status, body = self.call("GET", "/version")
        if status != 200:
            raise ToolFailed(f"{self.url}/version: {self.error_text(status, body)}")
        return str(body.get("version")) if isinstance(body, dict) else str(body).strip()

    def get_proxy(self, name: str) -> dict[str, Any] | None:
        """The proxy object, or None if the server has no such proxy."""
        status, body = self.call("GET", f"/proxies/{q(name)}")
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict):
            raise ToolFailed(f"proxy {name}: {self.error_text(status, body)}")
        return body

    def proxies(self) -> dict[str, Any]:
        """Every proxy by name."""
        status, body = self.call("GET", "/proxies")
        if status != 200 or not isinstance(body, dict):
            raise ToolFailed(f"{self.url}/proxies: {self.error_text(status, body)}")
        return body

    def set_enabled(self, name: str, enabled: bool) -> int:
        """Enable or disable a proxy (POST works on every 2.x release); returns the status."""
        status, body = self.call("POST", f"/proxies/{q(name)}", {"enabled": enabled})
        if status not in (200, 404):
            raise ToolFailed(f"proxy {name}: {self.error_text(status, body)}")
        return status

    def populate(self, proxies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """POST /populate; raises ToolFailed with the server's message on failure."""
        status, body = self.call("POST", "/populate", proxies)
        if status != 201:
            raise ToolFailed(f"{self.url}/populate: {self.error_text(status, body)}")
        return list((body or {}).get("proxies") or [])

    def get_toxic(self, proxy: str, toxic: str) -> dict[str, Any] | None:
        """The toxic, or None when the proxy or the toxic does not exist."""
        status, body = self.call("GET", f"/proxies/{q(proxy)}/toxics/{q(toxic)}")
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict):
            raise ToolFailed(f"toxic {toxic}: {self.error_text(status, body)}")
        return body

    def add_toxic(self, proxy: str, toxic: dict[str, Any]) -> tuple[int, Any]:
        """POST a toxic; returns (status, body) for the caller to judge (409 may be ours)."""
        body = dict(toxic)
        body["attributes"] = as_int_attributes(body.get("attributes") or {})
        return self.call("POST", f"/proxies/{q(proxy)}/toxics", body)

    def delete_toxic(self, proxy: str, toxic: str) -> int:
        """DELETE a toxic; returns 204, or 404 when it (or its proxy) is already gone."""
        status, body = self.call("DELETE", f"/proxies/{q(proxy)}/toxics/{q(toxic)}")
        if status not in (204, 404):
            raise ToolFailed(f"toxic {toxic}: {self.error_text(status, body)}")
        return status
