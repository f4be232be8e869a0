"""The Toxiproxy 2.x HTTP API (``/proxies``, ``/proxies/{p}/toxics``, ``/populate``,
``/reset``, ``/version``) over a :class:`~resildrill.proxy.server.ProxyServer`.

Paths, methods, status codes, JSON shapes and error bodies follow Toxiproxy 2.12 as
shared/reference/toxiproxy-api.md describes it, including Go's decoding rules (keys matched
case-insensitively, ``null`` keeps the default, integer attributes refuse ``100.0``), because
clients depend on them. Where the real server crashes or stalls on a bad attribute, this one
answers 400; bodies over 1 MiB get 413. Routing is done here rather than by aiohttp's router
so that unknown paths and wrong methods answer exactly as gorilla/mux does.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from resildrill import __version__
from resildrill.proxy.server import (
    LIFETIME_ATTRIBUTE,
    STREAMS,
    ApiError,
    Proxy,
    ProxyServer,
    ToxicState,
    resolved_listen,
)
from resildrill.proxy.toxics import REGISTRY, AttributeError400

#: The Toxiproxy release whose API this server speaks, and ours, in ``/version``.
VERSION = f"2.12.0+resildrill.{__version__}"
MAX_BODY = 1024 * 1024
HANDLER_TIMEOUT_S = 25.0
_INT64 = (-(2**63), 2**63 - 1)

Handler = Callable[[web.Request, list[str]], Awaitable[web.StreamResponse]]


# -- Go-like JSON decoding ---------------------------------------------------------------


class _Float(float):
    """A JSON number written with a fraction or exponent; keeps its text for messages."""

    text: str

    def __new__(cls, text: str) -> _Float:
        value = super().__new__(cls, text)
        value.text = text
        return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


_DECODER = json.JSONDecoder(parse_float=_Float, parse_constant=_reject_constant)


class BadBody(ApiError):
    """``bad request body: ...`` (400)."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, f"bad request body: {detail}")


def decode_body(raw: bytes) -> Any:
    """The first JSON value of a body, as Go's ``json.Decoder.Decode`` reads it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("invalid UTF-8 in request body") from None
    text = text.lstrip(" \t\r\n")
    if not text:
        raise BadBody("EOF")
    try:
        value, _ = _DECODER.raw_decode(text)
    except ValueError as exc:
        raise BadBody(str(exc).split(":")[0] if ": line" in str(exc) else str(exc)) from None
    return value


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, _Float):
        return f"number {value.text}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _fields(obj: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Values of ``names`` from a JSON object, keys matched as Go does (exact, else folded)."""
    found: dict[str, Any] = {}
    for name in names:
        if name in obj:
            found[name] = obj[name]
            continue
        for key, value in obj.items():
            if key.casefold() == name.casefold():
                found[name] = value
    return found


def _string(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadBody(
            f"json: cannot unmarshal {_json_kind(value).split()[0]} into Go struct "
            f"field {where} of type string"
        )
    return value


def _bool(value: Any, where: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise BadBody(
            f"json: cannot unmarshal {_json_kind(value).split()[0]} into Go struct "
            f"field {where} of type bool"
        )
    return value


def _object(value: Any, go_type: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadBody(
            f"json: cannot unmarshal {_json_kind(value).split()[0]} into Go value of type {go_type}"
        )
    return value


def _attributes(value: Any, type_name: str, base: dict[str, int]) -> dict[str, int]:
    """Integer attributes of a toxic type, merged over ``base``; strict like Go's int64."""
    behaviour = REGISTRY[type_name]
    if value is None:
        return dict(base)
    obj = _object(value, f"toxics.{behaviour.go_name}")
    merged = dict(base)
    names = (*behaviour.attributes, LIFETIME_ATTRIBUTE)
    for name, raw in _fields(obj, names).items():
        if raw is None:
            continue
        if (
            isinstance(raw, bool)
            or not isinstance(raw, int)
            or isinstance(raw, _Float)
            or not _INT64[0] <= raw <= _INT64[1]
        ):
            raise BadBody(
                f"json: cannot unmarshal {_json_kind(raw)} into Go struct field "
                f"{behaviour.go_name}.attributes.{name} of type int64"
            )
        merged[name] = raw
    return merged


def _toxicity(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadBody(
            f"json: cannot unmarshal {_json_kind(value).split()[0]} into Go struct "
            "field ToxicWrapper.toxicity of type float32"
        )
    return float(value)


# -- responses ---------------------------------------------------------------------------


def _json(status: int, payload: Any) -> web.Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return web.Response(status=status, body=body, headers={"Content-Type": "application/json"})


def error_response(status: int, message: str) -> web.Response:
    """Toxiproxy's error: JSON ``{"error","status"}`` plus a newline, sent as text/plain."""
    body = json.dumps({"error": message, "status": status}, separators=(",", ":")) + "\n"
    return web.Response(
        status=status,
        body=body.encode(),
        headers={
            "Content-Type": "text/plain; charset=utf-8",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _plain(status: int, text: str) -> web.Response:
    return web.Response(
        status=status, body=text.encode(), headers={"Content-Type": "text/plain; charset=utf-8"}
    )


# -- the API -----------------------------------------------------------------------------


class ToxiproxyApi:
    """Request handlers over one ProxyServer."""

    def __init__(self, server: ProxyServer, token: str | None = None) -> None:
        self.server = server
        #: when set, every request must carry ``Authorization: Bearer <token>``
        self.token = token
        # (path shape, method) -> handler; "*" stands for one name segment.
        self.routes: dict[tuple[str, ...], dict[str, Handler]] = {
            ("proxies",): {"GET": self.proxy_index, "POST": self.proxy_create},
            ("populate",): {"POST": self.populate},
            ("reset",): {"POST": self.reset},
            ("version",): {"GET": self.version},
            ("proxies", "*"): {
                "GET": self.proxy_show,
                "POST": self.proxy_update,
                "PATCH": self.proxy_update,
                "DELETE": self.proxy_delete,
            },
            ("proxies", "*", "toxics"): {"GET": self.toxic_index, "POST": self.toxic_create},
            ("proxies", "*", "toxics", "*"): {
                "GET": self.toxic_show,
                "POST": self.toxic_update,
                "PATCH": self.toxic_update,
                "DELETE": self.toxic_delete,
            },
        }

    def app(self) -> web.Application:
        """An aiohttp application serving the API."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Route one request; every answer carries ``X-Toxiproxy-Request-Id``."""
        response = await self._dispatch(request)
        response.headers["X-Toxiproxy-Request-Id"] = secrets.token_hex(10)
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("User-Agent", "").startswith("Mozilla/"):
            return _plain(403, "User agent not allowed\n")
        if self.token is not None:
            given = request.headers.get("Authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return error_response(401, "missing or wrong bearer token")
        segments = request.rel_url.raw_path.split("/")[1:]
        if any(s == "" for s in segments):
            return _plain(404, "404 page not found\n")
        names = [unquote(s) for s in segments]
        shape = tuple(
            "*" if i % 2 == 1 and names[0] == "proxies" else s for i, s in enumerate(names)
        )
        if len(shape) > 2 and shape[2] != "toxics":
            shape = ("?",)
        methods = self.routes.get(shape)
        if methods is None:
            return _plain(404, "404 page not found\n")
        handler = methods.get(request.method)
        if handler is None:
            return web.Response(status=405)
        try:
            async with asyncio.timeout(HANDLER_TIMEOUT_S):
                return await handler(request, names)
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        except TimeoutError:
            return error_response(503, "request timed out")

    async def _body(self, request: web.Request) -> Any:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise ApiError(413, f"request body larger than {MAX_BODY} bytes")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, f"request body larger than {MAX_BODY} bytes") from None
        return decode_body(raw)

    # -- proxies -------------------------------------------------------------------

    async def proxy_index(self, request: web.Request, names: list[str]) -> web.Response:
        """GET /proxies: every proxy by name."""
        proxies = self.server.proxies
        return _json(200, {name: proxies[name].to_json() for name in sorted(proxies)})

    def _proxy_fields(self, obj: dict[str, Any]) -> dict[str, Any]:
        found = _fields(obj, ("name", "listen", "upstream", "enabled"))
        return {
            "name": _string(found.get("name"), "proxy.name"),
            "listen": _string(found.get("listen"), "proxy.listen"),
            "upstream": _string(found.get("upstream"), "proxy.upstream"),
            "enabled": _bool(found.get("enabled"), "proxy.enabled"),
        }

    async def proxy_create(self, request: web.Request, names: list[str]) -> web.Response:
        """POST /proxies: 201 with the proxy, its real port in ``listen``."""
        fields = self._proxy_fields(_object(await self._body(request), "proxy"))
        if not fields["name"]:
            raise ApiError(400, "missing required field: name")
        if not fields["upstream"]:
            raise ApiError(400, "missing required field: upstream")
        async with self.server.lock:
            enabled = True if fields["enabled"] is None else fields["enabled"]
            proxy = self.server.create(
                fields["name"], fields["listen"] or "", fields["upstream"], enabled
            )
            return _json(201, proxy.to_json())

    async def populate(self, request: web.Request, names: list[str]) -> web.Response:
        """POST /populate: create or replace each listed proxy, in order."""
        try:
            body = await self._body(request)
        except ApiError as exc:
            return _json(exc.status, {"error": exc.message, "status": exc.status, "proxies": None})
        status, payload = await self.apply_populate(body)
        return _json(status, payload)

    async def apply_populate(self, body: Any) -> tuple[int, dict[str, Any]]:
        """Populate from a decoded body (also used for ``--config``): (status, JSON body)."""
        applied: list[Proxy] = []

        def fail(status: int, message: str) -> tuple[int, dict[str, Any]]:
            listed = [p.to_json() for p in applied] or None
            return status, {"error": message, "status": status, "proxies": listed}

        try:
            if not isinstance(body, list):
                raise BadBody(
                    f"json: cannot unmarshal {_json_kind(body).split()[0]} into Go "
                    "value of type []struct { Name string; Listen string; "
                    "Upstream string; Enabled *bool }"
                )
            items = [self._proxy_fields(_object(item, "proxy")) for item in body]
        except ApiError as exc:
            return fail(exc.status, exc.message)
        for n, item in enumerate(items, start=1):
            for key in ("name", "upstream"):
                if not item[key]:
                    return fail(400, f"missing required field: {key} at proxy {n}")
        async with self.server.lock:
            for item in items:
                try:
                    applied.append(await self._populate_one(item))
                except ApiError as exc:
                    return fail(exc.status, exc.message)
        return 201, {"proxies": [p.to_json() for p in applied] or None}

    async def _populate_one(self, item: dict[str, Any]) -> Proxy:
        server = self.server
        listen = item["listen"] or ""
        enabled = True if item["enabled"] is None else item["enabled"]
        existing = server.proxies.get(item["name"])
        if existing is not None:
            if existing.upstream == item["upstream"] and (
                listen == existing.listen or resolved_listen(listen) == existing.listen
            ):
                return existing
            server.delete(existing.name)
        return server.create(item["name"], listen, item["upstream"], enabled)

    async def proxy_show(self, request: web.Request, names: list[str]) -> web.Response:
        """GET /proxies/{proxy}."""
        return _json(200, self.server.get(names[1]).to_json())

    async def proxy_update(self, request: web.Request, names: list[str]) -> web.Response:
        """POST|PATCH /proxies/{proxy}: any subset of listen, upstream, enabled."""
        proxy = self.server.get(names[1])
        fields = self._proxy_fields(_object(await self._body(request), "proxy"))
        async with self.server.lock:
            proxy = self.server.get(names[1])
            self.server.update(
                proxy,
                proxy.listen if fields["listen"] is None else fields["listen"],
                proxy.upstream if fields["upstream"] is None else fields["upstream"],
                proxy.enabled if fields["enabled"] is None else fields["enabled"],
            )
            return _json(200, proxy.to_json())

    async def proxy_delete(self, request: web.Request, names: list[str]) -> web.Response:
        """DELETE /proxies/{proxy}: 204."""
        async with self.server.lock:
            self.server.delete(names[1])
        return web.Response(status=204)

    async def reset(self, request: web.Request, names: list[str]) -> web.Response:
        """POST /reset: enable every proxy, remove every toxic."""
        async with self.server.lock:
            await self.server.reset()
        return web.Response(status=204)

    async def version(self, request: web.Request, names: list[str]) -> web.Response:
        """GET /version: ``{"version": "..."}`` and a newline, as Toxiproxy ≥ 2.7 sends it."""
        return web.Response(
            status=200,
            body=f'{{"version": "{VERSION}"}}\n'.encode(),
            headers={"Content-Type": "application/json;charset=utf-8"},
        )

    # -- toxics --------------------------------------------------------------------

    def _toxic(self, proxy: Proxy, name: str) -> ToxicState:
        toxic = proxy.find_toxic(name)
        if toxic is None:
            raise ApiError(404, "toxic not found")
        return toxic

    async def toxic_index(self, request: web.Request, names: list[str]) -> web.Response:
        """GET /proxies/{proxy}/toxics: upstream toxics first, each in insertion order."""
        proxy = self.server.get(names[1])
        return _json(200, [t.to_json() for s in STREAMS for t in proxy.toxics[s]])

    async def toxic_show(self, request: web.Request, names: list[str]) -> web.Response:
        """GET /proxies/{proxy}/toxics/{toxic}."""
        return _json(200, self._toxic(self.server.get(names[1]), names[3]).to_json())

    async def toxic_create(self, request: web.Request, names: list[str]) -> web.Response:
        """POST /proxies/{proxy}/toxics: 200 (not 201) with the toxic."""
        self.server.get(names[1])
        obj = _object(await self._body(request), "toxics.ToxicWrapper")
        found = _fields(obj, ("name", "type", "stream", "toxicity", "attributes"))
        name = _string(found.get("name"), "ToxicWrapper.name")
        type_name = _string(found.get("type"), "ToxicWrapper.type")
        stream = _string(found.get("stream"), "ToxicWrapper.stream")
        toxicity = _toxicity(found.get("toxicity"), 1.0)
        if stream is None:
            stream = "downstream"
        direction = stream.lower()
        if direction not in STREAMS:
            raise ApiError(400, "stream was invalid, can be either upstream or downstream")
        if not name:
            name = f"{type_name or ''}_{stream}"
        behaviour = REGISTRY.get(type_name or "")
        if behaviour is None or type_name is None:
            raise ApiError(400, "invalid toxic type")
        async with self.server.lock:
            proxy = self.server.get(names[1])
            if proxy.find_toxic(name) is not None:
                raise ApiError(409, "toxic already exists")
            attrs = _attributes(found.get("attributes"), type_name, {})
            toxic = self._checked(
                ToxicState(name, type_name, stream, direction, toxicity, attrs, behaviour())
            )
            proxy.add_toxic(toxic)
            self.server.schedule_expiry(proxy, toxic)
            return _json(200, toxic.to_json())

    @staticmethod
    def _checked(toxic: ToxicState) -> ToxicState:
        try:
            toxic.behaviour.check(toxic.attributes)
        except AttributeError400 as exc:
            raise ApiError(400, str(exc)) from None
        lifetime = toxic.attributes.get(LIFETIME_ATTRIBUTE)
        if lifetime is not None and lifetime <= 0:
            raise ApiError(400, f"attribute {LIFETIME_ATTRIBUTE} must be > 0 (milliseconds)")
        toxic.lifetime_ms = lifetime
        return toxic

    async def toxic_update(self, request: web.Request, names: list[str]) -> web.Response:
        """POST|PATCH /proxies/{proxy}/toxics/{toxic}: merge attributes, keep the rest."""
        proxy = self.server.get(names[1])
        self._toxic(proxy, names[3])
        obj = _object(await self._body(request), "toxics.ToxicWrapper")
        found = _fields(obj, ("toxicity", "attributes"))
        async with self.server.lock:
            proxy = self.server.get(names[1])
            toxic = self._toxic(proxy, names[3])
            attrs = _attributes(found.get("attributes"), toxic.type, toxic.attributes)
            toxicity = _toxicity(found.get("toxicity"), toxic.toxicity)
            candidate = ToxicState(
                toxic.name,
                toxic.type,
                toxic.stream,
                toxic.direction,
                toxicity,
                attrs,
                toxic.behaviour,
            )
            self._checked(candidate)
            lifetime_changed = candidate.lifetime_ms != toxic.lifetime_ms
            toxic.attributes, toxic.toxicity = attrs, toxicity
            toxic.lifetime_ms = candidate.lifetime_ms
            if lifetime_changed:
                self.server.schedule_expiry(proxy, toxic)
            await proxy.update_toxic(toxic)
            return _json(200, toxic.to_json())

    async def toxic_delete(self, request: web.Request, names: list[str]) -> web.Response:
        """DELETE /proxies/{proxy}/toxics/{toxic}: 204."""
        async with self.server.lock:
            proxy = self.server.get(names[1])
            await proxy.remove_toxic(self._toxic(proxy, names[3]))
        return web.Response(status=204)
