"""One API replica of the ward EHR: the FHIR R4 REST interactions over a shared store.

Owns the HTTP surface: ``GET /metadata``, ``GET /healthz``, read, vread, create, update
(``meta.versionId`` / ``If-Match``) and search on the resource types of
:data:`wardehr.fhir.SEARCH_PARAMS`; every error is an OperationOutcome.
A response is sent only after the store committed, so a 2xx is a durable write.

Run as ``python -m wardehr.server --name replica-a --listen 127.0.0.1:18081
--store sqlite --db PATH [--seed 42] [--pidfile PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any, TypeVar

from aiohttp import web

from wardehr import fhir, seed
from wardehr._proc import serve, setup_logging
from wardehr.fhir import FhirError, Resource
from wardehr.store import Criterion, Store, StoreUnavailable, open_store

__all__ = ["build_app", "main"]

VERSION = "0.1.0"
T = TypeVar("T")
_DATE_PREFIXES = ("eq", "gt", "lt", "ge", "le")
_UNSUPPORTED_PREFIXES = ("ne", "sa", "eb", "ap")

log = logging.getLogger("replica")


def _json(body: Resource, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type=fhir.JSON_TYPE,
        headers=headers,
    )


def _outcome(status: int, code: str, diagnostics: str) -> web.Response:
    headers = {"Retry-After": "1"} if status == 503 else None
    return _json(fhir.operation_outcome(code, diagnostics), status, headers)


def _resource_headers(resource: Resource) -> dict[str, str]:
    meta = resource.get("meta", {})
    return {
        "ETag": f'W/"{meta.get("versionId", "")}"',
        "Last-Modified": meta.get("lastUpdated", ""),
    }


#: Store threads per replica, each with its own database session.
POOL_SIZE = 4


class Replica:
    """Request handlers bound to one store and a thread pool that runs its calls."""

    def __init__(self, name: str, store: Store, population: list[Resource] | None) -> None:
        self.name = name
        self.store = store
        self.population = population
        self.ready = False
        self.executor = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="store")

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store call on the pool (store calls block)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def prepare_store(self) -> None:
        """Create the schema and seed once; retry until the database answers (bounded by
        the process's life: the supervisor restarts a replica that exits)."""
        delay = 0.2
        while not self.ready:
            try:
                seeded = await self.call(self.store.ensure_ready, self.population)
                await self.open_sessions()
                self.ready = True
                log.info("store ready (%s)%s", self.store.name, ", seeded" if seeded else "")
            except StoreUnavailable as exc:
                log.warning("store not ready: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def open_sessions(self) -> None:
        """Open a database session on every pool thread now, as a connection pool does,
        not on a thread's first request: a thread first used while the database is frozen
        would hang in connect, and requests sent to it fail although the replica's other
        sessions still work (measured in drills/database-freeze.yaml)."""
        barrier = threading.Barrier(POOL_SIZE, timeout=10)

        def open_one() -> None:
            # every task waits for the others, so each runs on a thread of its own
            with suppress(threading.BrokenBarrierError):
                barrier.wait()
            self.store.ping()

        await asyncio.gather(*(self.call(open_one) for _ in range(POOL_SIZE)))

    # -- middleware ---------------------------------------------------------------

    @web.middleware
    async def errors(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        """Map every failure to an OperationOutcome; nothing leaks a traceback."""
        try:
            response: web.StreamResponse = await handler(request)
        except FhirError as exc:
            return _outcome(exc.status, exc.code, exc.diagnostics)
        except StoreUnavailable as exc:
            log.warning("%s %s: %s", request.method, request.path, exc)
            return _outcome(503, "transient", f"the database is unavailable: {exc}")
        except web.HTTPMethodNotAllowed:
            return _outcome(405, "not-supported", f"{request.method} is not supported here")
        except web.HTTPNotFound:
            return _outcome(404, "not-found", f"no route for {request.path}")
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return _outcome(500, "exception", "internal error (see the replica's log)")
        response.headers["X-Replica"] = self.name
        return response

    # -- handlers -----------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        """200 when this replica can query its store within a second, else 503."""
        if not self.ready:
            return _outcome(503, "transient", "store not ready")
        try:
            await asyncio.wait_for(self.call(self.store.ping), timeout=1.0)
        except (StoreUnavailable, TimeoutError) as exc:
            return _outcome(503, "transient", f"store unavailable: {exc}")
        return web.json_response({"status": "ok", "replica": self.name, "store": self.store.name})

    async def livez(self, request: web.Request) -> web.Response:
        """200 while the event loop runs (the supervisor's liveness check; no store access,
        so a database outage never gets a healthy replica killed)."""
        return web.json_response({"status": "live", "replica": self.name})

    async def store_settings(self, request: web.Request) -> web.Response:
        """The live durability settings of the store (read back, not configured)."""
        settings = await self.call(self.store.settings)
        return web.json_response({"store": self.store.name, "settings": settings})

    async def metadata(self, request: web.Request) -> web.Response:
        """The CapabilityStatement."""
        return _json(fhir.capability_statement(VERSION))

    def _type(self, request: web.Request) -> str:
        type_ = request.match_info["type"]
        if type_ not in fhir.SEARCH_PARAMS:
            raise FhirError(404, "not-supported", f"resource type {type_!r} is not supported")
        if not self.ready:
            raise StoreUnavailable("store not ready")
        return type_

    async def _body(self, request: web.Request) -> Any:
        try:
            return json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise FhirError(400, "structure", f"the body is not JSON: {exc}") from exc

    async def read(self, request: web.Request) -> web.Response:
        """GET /{type}/{id}."""
        type_ = self._type(request)
        resource = await self.call(self.store.read, type_, request.match_info["id"])
        if resource is None:
            raise FhirError(404, "not-found", f"{type_}/{request.match_info['id']} is not known")
        return _json(resource, headers=_resource_headers(resource))

    async def vread(self, request: web.Request) -> web.Response:
        """GET /{type}/{id}/_history/{vid}."""
        type_ = self._type(request)
        vid = request.match_info["vid"]
        if not vid.isdigit():
            raise FhirError(404, "not-found", f"version {vid!r} is not known")
        resource = await self.call(self.store.vread, type_, request.match_info["id"], int(vid))
        if resource is None:
            raise FhirError(404, "not-found", f"{type_}/{request.match_info['id']} has no v{vid}")
        return _json(resource, headers=_resource_headers(resource))

    async def create(self, request: web.Request) -> web.Response:
        """POST /{type}: 201 with Location, ETag and the stored resource."""
        type_ = self._type(request)
        resource = fhir.validate_resource(type_, await self._body(request))
        stored = await self.call(self.store.create, type_, resource)
        headers = _resource_headers(stored)
        headers["Location"] = f"{_base(request)}/{type_}/{stored['id']}/_history/1"
        return _json(stored, 201, headers)

    async def update(self, request: web.Request) -> web.Response:
        """PUT /{type}/{id}: a new version (200), or a create with this id (201)."""
        type_ = self._type(request)
        id_ = request.match_info["id"]
        if not fhir.valid_id(id_):
            raise FhirError(400, "invalid", f"{id_!r} is not a valid id")
        resource = fhir.validate_resource(type_, await self._body(request), id_)
        if_match = _parse_if_match(request.headers.get("If-Match"))
        stored, created = await self.call(self.store.update, type_, id_, resource, if_match)
        headers = _resource_headers(stored)
        version = stored["meta"]["versionId"]
        headers["Location"] = f"{_base(request)}/{type_}/{id_}/_history/{version}"
        return _json(stored, 201 if created else 200, headers)

    async def search(self, request: web.Request) -> web.Response:
        """GET /{type}?params: a searchset Bundle."""
        type_ = self._type(request)
        strict = "handling=strict" in request.headers.get("Prefer", "")
        criteria, sort, count, include = parse_search(type_, request.query, strict)
        result = await self.call(self.store.search, type_, criteria, sort, count, include)
        self_url = f"{_base(request)}{request.path_qs}"
        body = fhir.bundle(result.matches, result.total, self_url, _base(request), result.included)
        return _json(body)


def _base(request: web.Request) -> str:
    return f"http://{request.host}"


def _parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise FhirError(400, "invalid", f'If-Match {value!r} is not a version like W/"3"')
    return int(raw)


def parse_search(
    type_: str, query: Any, strict: bool = False
) -> tuple[list[Criterion], list[tuple[str, bool]], int, list[str]]:
    """Turn query parameters into criteria, sort keys, a count and ``_include`` specs."""
    params = fhir.SEARCH_PARAMS[type_]
    criteria: list[Criterion] = []
    sort: list[tuple[str, bool]] = []
    count = 50
    include: list[str] = []
    for key, raw in query.items():
        name = key.split(":", 1)[0]
        if name == "_count":
            if not raw.isdigit():
                raise FhirError(400, "invalid", f"_count={raw!r} is not a number")
            count = int(raw)
        elif name == "_sort":
            for item in raw.split(","):
                descending = item.startswith("-")
                sort_key = item.lstrip("-")
                if sort_key not in fhir.SORT_KEYS or (sort_key == "date" and "date" not in params):
                    raise FhirError(400, "not-supported", f"_sort={item} is not supported")
                sort.append((sort_key, descending))
        elif name == "_include":
            include.append(raw)
        elif name in ("_format", "_pretty", "_summary", "_elements", "_total"):
            continue
        elif name == "_id":
            criteria.append(Criterion("_id", "in", tuple(raw.split(","))))
        elif name == "_lastUpdated":
            criteria.append(_date_criterion("_lastUpdated", raw))
        elif name in params:
            param = params[name]
            if param.type == "date":
                criteria.append(_date_criterion(name, raw))
            elif param.type == "string":
                criteria.append(Criterion(name, "prefix", tuple(v.lower() for v in raw.split(","))))
            elif param.type == "reference":
                values = tuple(_reference(v, param.target) for v in raw.split(","))
                criteria.append(Criterion(name, "in", values))
            else:
                criteria.append(Criterion(name, "in", tuple(raw.split(","))))
        elif strict:
            raise FhirError(400, "not-supported", f"search parameter {key!r} is not supported")
    return criteria, sort, count, include


def _reference(value: str, target: str | None) -> str:
    if "/" in value:
        parts = value.rstrip("/").split("/")
        return f"{parts[-2]}/{parts[-1]}"
    return f"{target}/{value}" if target else value


def _date_criterion(name: str, raw: str) -> Criterion:
    prefix, value = raw[:2], raw[2:]
    if prefix in _UNSUPPORTED_PREFIXES:
        raise FhirError(400, "not-supported", f"date prefix {prefix!r} is not supported")
    if prefix not in _DATE_PREFIXES:
        prefix, value = "eq", raw
    if not value[:4].isdigit():
        raise FhirError(400, "invalid", f"{name}={raw!r} is not a date")
    return Criterion(name, prefix, (fhir.normalize_date(value),))


def build_app(name: str, store: Store, population: list[Resource] | None) -> web.Application:
    """The aiohttp application of one replica."""
    replica = Replica(name, store, population)
    app = web.Application(middlewares=[replica.errors], client_max_size=1024 * 1024)
    app["replica"] = replica
    app.router.add_get("/healthz", replica.healthz)
    app.router.add_get("/livez", replica.livez)
    app.router.add_get("/_admin/store", replica.store_settings)
    app.router.add_get("/metadata", replica.metadata)
    app.router.add_get("/{type}", replica.search)
    app.router.add_post("/{type}", replica.create)
    app.router.add_get("/{type}/{id}", replica.read)
    app.router.add_put("/{type}/{id}", replica.update)
    app.router.add_get("/{type}/{id}/_history/{vid}", replica.vread)

    async def start_background(app: web.Application) -> Any:
        task = asyncio.create_task(replica.prepare_store())
        yield
        task.cancel()
        replica.executor.shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(start_background)
    return app


def main(argv: list[str] | None = None) -> None:
    """Command line of a replica process."""
    parser = argparse.ArgumentParser(prog="python -m wardehr.server")
    parser.add_argument("--name", required=True)
    parser.add_argument("--listen", required=True, help="host:port to bind")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--db", required=True, help="SQLite file, or a PostgreSQL DSN")
    parser.add_argument("--seed", type=int, default=None, help="seed the population if empty")
    parser.add_argument("--beds-per-ward", type=int, default=12)
    parser.add_argument("--pidfile", default=None)
    parser.add_argument(
        "--mllp-listen", default=None, help="host:port for HL7 v2 over MLLP (results, ADT)"
    )
    args = parser.parse_args(argv)
    setup_logging(args.name)
    population = (
        seed.population(args.seed, beds_per_ward=args.beds_per_ward)
        if args.seed is not None
        else None
    )
    store = open_store(args.store, args.db)
    log.info("listening on %s, store %s", args.listen, args.store)
    app = build_app(args.name, store, population)
    on_started = None
    if args.mllp_listen:
        from wardehr import hl7_inbound

        async def on_started() -> None:
            replica: Replica = app["replica"]
            inbound = hl7_inbound.Inbound(replica.store, replica.call)
            app["mllp"] = await hl7_inbound.start(args.mllp_listen, inbound)
            log.info("MLLP on %s", args.mllp_listen)

    serve(app, args.listen, args.pidfile, on_started)


if __name__ == "__main__":
    main()
