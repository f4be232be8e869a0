"""A tiny FHIR-ish aiohttp server for load tests: CRUD, a few searches, optional lost writes.

Run as its own process (``python fhir_stub.py --port 0 [--drop-every 20]``); it prints
``READY <port>`` when listening. Write faults, each counted at ``GET /_stub/stats`` so
the integrity check can be compared with the truth: ``--drop-every N`` acknowledges every
write but forgets every Nth; ``--duplicate-every N`` stores every Nth create twice;
``--commit-then-fail-every N`` stores every Nth MedicationAdministration and answers 503
(a client that retries makes a double-dose record); ``--stale-updates`` acknowledges
updates with a new version but keeps the old resource (a lost update).

Every request outside ``/_stub/`` is logged with when it arrived (``time.monotonic()``,
the same clock as the test's on this host), its ``Authorization`` and ``X-Worker``
headers: ``GET /_stub/requests`` returns ``[[t, authorization, worker], ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import ssl
import sys
import time
from typing import Any

from aiohttp import web

Resource = dict[str, Any]


class Store:
    """Resources by type and id, plus the drop bookkeeping."""

    def __init__(self, drop_every: int) -> None:
        self.data: dict[str, dict[str, Resource]] = {}
        self.ids = itertools.count(1)
        self.drop_every = drop_every
        self.acked = 0
        self.dropped = 0
        self.token: str | None = None
        self.seen_tokens: dict[str, int] = {}
        self.requests: list[tuple[float, str | None, str | None]] = []
        self.duplicate_every = 0
        self.commit_fail_every = 0
        self.stale_updates = False
        self.creates = 0
        self.admins = 0
        self.counts = {"duplicated": 0, "commit_then_fail": 0, "stale": 0}

    def put(self, rtype: str, res: Resource) -> Resource:
        """Store (or, every Nth acknowledged write, pretend to) and return the stored body."""
        res = dict(res)
        res.setdefault("id", f"s{next(self.ids)}")
        old = self.data.get(rtype, {}).get(res["id"])
        version = int((old or {}).get("meta", {}).get("versionId", "0")) + 1
        res["meta"] = {"versionId": str(version)}
        self.acked += 1
        if self.drop_every and self.acked % self.drop_every == 0:
            self.dropped += 1
            return res
        self.data.setdefault(rtype, {})[res["id"]] = res
        return res


def _matches(res: Resource, key: str, value: str) -> bool:
    if key == "identifier":
        system, _, val = value.rpartition("|")
        return any(
            i.get("value") == val and (not system or i.get("system") == system)
            for i in res.get("identifier", [])
        )
    if key == "status":
        return bool(res.get("status") == value)
    if key == "patient":
        return str(res.get("subject", {}).get("reference", "")).endswith(f"/{value}")
    return True  # category, date, location...: accepted, not filtered


def seed(store: Store) -> None:
    """A small ward: 10 patients in beds, encounters, an active and a draft prescription."""
    for n in range(10):
        pid = f"p{n}"
        store.data.setdefault("Patient", {})[pid] = {"resourceType": "Patient", "id": pid}
        store.data.setdefault("Location", {})[f"bed{n}"] = {
            "resourceType": "Location",
            "id": f"bed{n}",
            "status": "active",
        }
        store.data.setdefault("Encounter", {})[f"e{n}"] = {
            "resourceType": "Encounter",
            "id": f"e{n}",
            "status": "in-progress",
            "subject": {"reference": f"Patient/{pid}"},
        }
        for k, status in enumerate(("active", "draft")):
            store.data.setdefault("MedicationRequest", {})[f"m{n}{k}"] = {
                "resourceType": "MedicationRequest",
                "id": f"m{n}{k}",
                "status": status,
                "intent": "order",
                "subject": {"reference": f"Patient/{pid}"},
                "meta": {"versionId": "1"},
            }


def make_app(store: Store) -> web.Application:
    """Routes: search, read, create, update, stats."""

    async def search(request: web.Request) -> web.Response:
        rtype = request.match_info["type"]
        found = [
            r
            for r in store.data.get(rtype, {}).values()
            if all(_matches(r, k, v) for k, v in request.query.items() if not k.startswith("_"))
        ]
        count = int(request.query.get("_count", "50"))
        return web.json_response(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(found),
                "entry": [{"resource": r} for r in found[:count]],
            }
        )

    async def read(request: web.Request) -> web.Response:
        res = store.data.get(request.match_info["type"], {}).get(request.match_info["id"])
        if res is None:
            return web.json_response({"resourceType": "OperationOutcome"}, status=404)
        return web.json_response(res)

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        body.pop("id", None)
        rtype = request.match_info["type"]
        stored = store.put(rtype, body)
        store.creates += 1
        if store.duplicate_every and store.creates % store.duplicate_every == 0:
            store.put(rtype, {k: v for k, v in body.items() if k != "id"})
            store.counts["duplicated"] += 1
        if rtype == "MedicationAdministration" and store.commit_fail_every:
            store.admins += 1
            if store.admins % store.commit_fail_every == 0:
                store.counts["commit_then_fail"] += 1
                return web.json_response({"resourceType": "OperationOutcome"}, status=503)
        return web.json_response(stored, status=201)

    async def update(request: web.Request) -> web.Response:
        body = await request.json()
        rtype, rid = request.match_info["type"], request.match_info["id"]
        body["id"] = rid
        old = store.data.get(rtype, {}).get(rid)
        if store.stale_updates and old is not None:
            store.counts["stale"] += 1
            version = int(old.get("meta", {}).get("versionId", "1")) + 1
            return web.json_response({**body, "meta": {"versionId": str(version)}})
        return web.json_response(store.put(rtype, body), status=200)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"acked": store.acked, "dropped": store.dropped, **store.counts})

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/_stub/"):
            headers = request.headers
            store.requests.append(
                (time.monotonic(), headers.get("Authorization"), headers.get("X-Worker"))
            )
        if store.token and not request.path.startswith("/_stub/"):
            given = request.headers.get("Authorization", "")
            store.seen_tokens[given] = store.seen_tokens.get(given, 0) + 1
            if given != f"Bearer {store.token}":
                return web.json_response({"resourceType": "OperationOutcome"}, status=401)
        return await handler(request)

    async def rotate(request: web.Request) -> web.Response:
        store.token = (await request.json())["token"]
        return web.json_response({})

    async def tokens(request: web.Request) -> web.Response:
        return web.json_response(store.seen_tokens)

    async def requests(request: web.Request) -> web.Response:
        return web.json_response(store.requests)

    app = web.Application(middlewares=[auth])
    app.router.add_post("/_stub/token", rotate)
    app.router.add_get("/_stub/tokens", tokens)
    app.router.add_get("/_stub/requests", requests)
    app.router.add_get("/_stub/stats", stats)
    app.router.add_get("/{type}", search)
    app.router.add_post("/{type}", create)
    app.router.add_get("/{type}/{id}", read)
    app.router.add_put("/{type}/{id}", update)
    return app


async def _main(args: argparse.Namespace) -> None:
    store = Store(args.drop_every)
    store.token = args.token
    store.duplicate_every = args.duplicate_every
    store.commit_fail_every = args.commit_then_fail_every
    store.stale_updates = args.stale_updates
    tls = args.tls
    port = args.port
    seed(store)
    runner = web.AppRunner(make_app(store), access_log=None)
    await runner.setup()
    ctx = None
    if tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls[0], tls[1])
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"READY {bound}", flush=True)
    # Die with the test that started us: stdin closes when it exits.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--drop-every", type=int, default=0)
    ap.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN'")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), default=None)
    ap.add_argument("--duplicate-every", type=int, default=0)
    ap.add_argument("--commit-then-fail-every", type=int, default=0)
    ap.add_argument("--stale-updates", action="store_true")
    asyncio.run(_main(ap.parse_args()))
