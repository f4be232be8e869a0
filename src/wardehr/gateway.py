"""The gateway in front of the API replicas: health checks, load balancing, failover.

Owns the clients -> replicas hop. Requests go round-robin to the replicas marked healthy;
each upstream request has a deadline (``--timeout``), so a frozen (SIGSTOP'd) replica costs a
request at most that long. A replica is marked down as soon as a request to it fails, or by
its health check (``GET /healthz`` every ``--health-interval`` with a short deadline): at once
when the check is refused or answers non-200, but only after ``TIMEOUTS_TO_MARK_DOWN`` checks
in a row time out (like HAProxy's ``fall``), because a busy host can answer one check late
and marking every replica down at once would turn clinicians away from a working system.
It is marked up again by the next passing health check.

Failover rules (why: a read can be repeated safely, a write cannot):

* GET/HEAD are retried on the next replica after any failure (refused, reset, timeout, 5xx).
* POST/PUT are retried only when the connection was refused (nothing was sent). Otherwise
  the client gets a 502/504 OperationOutcome: the write may or may not have happened, and it
  was never acknowledged.

``GET /livez`` answers from the gateway itself (the supervisor's liveness check);
``GET /gateway/status`` answers with the gateway's own view (replica health, transitions,
counters); every other path is forwarded. Run as ``python -m wardehr.gateway
--listen 127.0.0.1:18080 --upstream replica-a=127.0.0.1:18081 --upstream ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from wardehr import fhir
from wardehr._proc import serve, setup_logging

__all__ = ["Gateway", "Upstream", "main"]

log = logging.getLogger("gateway")

_FORWARD_REQUEST_HEADERS = ("Content-Type", "Accept", "If-Match", "Prefer", "Authorization")
_FORWARD_RESPONSE_HEADERS = (
    "Content-Type",
    "Location",
    "ETag",
    "Last-Modified",
    "Retry-After",
    "X-Replica",
)
_RETRYABLE_STATUS = (502, 503, 504)
_IDEMPOTENT = ("GET", "HEAD")


#: Health checks in a row that must time out before a replica is marked down by them.
TIMEOUTS_TO_MARK_DOWN = 2


@dataclass
class Upstream:
    """One replica as the gateway sees it."""

    name: str
    address: str
    healthy: bool = True
    since: float = field(default_factory=time.monotonic)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    failures: int = 0
    #: Health checks in a row that timed out (see TIMEOUTS_TO_MARK_DOWN).
    check_timeouts: int = 0

    @property
    def url(self) -> str:
        """Base URL of the replica."""
        return f"http://{self.address}"

    def mark(self, healthy: bool, reason: str) -> None:
        """Record a health change (kept short: the last 50)."""
        if healthy == self.healthy:
            return
        self.healthy = healthy
        self.since = time.monotonic()
        self.transitions.append({"at_monotonic": self.since, "healthy": healthy, "reason": reason})
        del self.transitions[:-50]
        level = logging.INFO if healthy else logging.WARNING
        log.log(
            level, "%s (%s) is %s: %s", self.name, self.address, "UP" if healthy else "DOWN", reason
        )


class Gateway:
    """Forwards requests to healthy upstreams and fails over between them."""

    def __init__(
        self,
        upstreams: list[Upstream],
        timeout_s: float,
        health_interval_s: float,
        health_timeout_s: float,
    ) -> None:
        self.upstreams = upstreams
        self.timeout_s = timeout_s
        self.health_interval_s = health_interval_s
        self.health_timeout_s = health_timeout_s
        self._next = 0
        self._session: aiohttp.ClientSession | None = None
        self.counters = {"requests": 0, "retries": 0, "failed": 0}

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared client session (created at startup)."""
        assert self._session is not None
        return self._session

    def order(self) -> list[Upstream]:
        """Healthy replicas round-robin first, then the others (a stale health view must not
        turn away a request a replica could still serve)."""
        n = len(self.upstreams)
        start = self._next
        self._next = (self._next + 1) % n
        rotated = [self.upstreams[(start + i) % n] for i in range(n)]
        return [u for u in rotated if u.healthy] + [u for u in rotated if not u.healthy]

    async def health_loop(self) -> None:
        """Check every replica's /healthz at a fixed cadence, concurrently."""
        while True:
            started = time.monotonic()
            await asyncio.gather(*(self._check(u) for u in self.upstreams))
            await asyncio.sleep(max(0.0, self.health_interval_s - (time.monotonic() - started)))

    async def _check(self, upstream: Upstream) -> None:
        timeout = aiohttp.ClientTimeout(total=self.health_timeout_s)
        try:
            async with self.session.get(f"{upstream.url}/healthz", timeout=timeout) as resp:
                await resp.read()
                ok = resp.status == 200
                reason = f"health check answered {resp.status}"
        except TimeoutError:
            upstream.check_timeouts += 1
            if upstream.check_timeouts >= TIMEOUTS_TO_MARK_DOWN:
                upstream.mark(False, f"{upstream.check_timeouts} health checks timed out")
            return
        except aiohttp.ClientError as exc:
            ok, reason = False, f"health check failed: {type(exc).__name__} {exc}".strip()
        upstream.check_timeouts = 0
        upstream.mark(ok, reason)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Forward one request, failing over as the module docstring describes."""
        if request.path == "/gateway/status":
            return web.json_response(self.status())
        if request.path == "/livez":
            return web.json_response({"status": "live"})
        self.counters["requests"] += 1
        body = await request.read()
        headers = {h: request.headers[h] for h in _FORWARD_REQUEST_HEADERS if h in request.headers}
        headers["Host"] = request.host
        idempotent = request.method in _IDEMPOTENT
        last_error = "no replica configured"
        last_status = 503
        for attempt, upstream in enumerate(self.order()):
            if attempt:
                self.counters["retries"] += 1
            # a replica already marked down gets a short deadline: it is tried only in case
            # the health view is stale, and must not hold the request up
            deadline = self.timeout_s if upstream.healthy else self.health_timeout_s
            timeout = aiohttp.ClientTimeout(total=deadline, sock_connect=self.health_timeout_s)
            upstream.requests += 1
            try:
                async with self.session.request(
                    request.method,
                    f"{upstream.url}{request.path_qs}",
                    data=body or None,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                ) as resp:
                    payload = await resp.read()
                    if resp.status in _RETRYABLE_STATUS and idempotent:
                        upstream.failures += 1
                        last_error = f"{upstream.name} answered {resp.status}"
                        last_status = resp.status
                        if resp.status != 503 or request.path == "/healthz":
                            upstream.mark(False, last_error)
                        continue
                    out = web.Response(body=payload, status=resp.status)
                    for h in _FORWARD_RESPONSE_HEADERS:
                        if h in resp.headers:
                            out.headers[h] = resp.headers[h]
                    return out
            except aiohttp.ClientConnectorError as exc:
                # refused: nothing was sent, so any method can go to the next replica
                upstream.failures += 1
                upstream.mark(False, f"connect failed: {exc.os_error}")
                last_error, last_status = f"{upstream.name}: connect failed", 502
                continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                upstream.failures += 1
                kind = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
                upstream.mark(False, f"request {kind} after sending")
                last_error = f"{upstream.name}: {kind}"
                last_status = 504 if isinstance(exc, TimeoutError) else 502
                if idempotent:
                    continue
                break
        self.counters["failed"] += 1
        if not idempotent and last_status in (502, 504):
            detail = (
                f"{last_error}; the write was not acknowledged and may or may not have "
                "been applied: read it back before retrying"
            )
        else:
            detail = f"no replica could answer: {last_error}"
        return web.Response(
            body=json.dumps(fhir.operation_outcome("transient", detail)).encode(),
            status=last_status,
            content_type=fhir.JSON_TYPE,
            headers={"Retry-After": "1"},
        )

    def status(self) -> dict[str, Any]:
        """The gateway's view: replicas, health since when, counters."""
        return {
            "now_monotonic": time.monotonic(),
            "counters": dict(self.counters),
            "upstreams": [
                {
                    "name": u.name,
                    "address": u.address,
                    "healthy": u.healthy,
                    "since_monotonic": u.since,
                    "requests": u.requests,
                    "failures": u.failures,
                    "transitions": u.transitions,
                }
                for u in self.upstreams
            ],
        }


def build_app(gateway: Gateway) -> web.Application:
    """The gateway's aiohttp application (everything routes to :meth:`Gateway.handle`)."""
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", gateway.handle)

    async def lifecycle(app: web.Application) -> Any:
        connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=15)
        gateway._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        task = asyncio.create_task(gateway.health_loop())
        yield
        task.cancel()
        await gateway.session.close()

    app.cleanup_ctx.append(lifecycle)
    return app


def main(argv: list[str] | None = None) -> None:
    """Command line of the gateway process."""
    parser = argparse.ArgumentParser(prog="python -m wardehr.gateway")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--upstream", action="append", required=True, help="NAME=HOST:PORT")
    parser.add_argument("--timeout", type=float, default=2.0, help="per upstream request, s")
    parser.add_argument("--health-interval", type=float, default=0.5)
    parser.add_argument("--health-timeout", type=float, default=0.5)
    parser.add_argument("--pidfile", default=None)
    args = parser.parse_args(argv)
    setup_logging("gateway")
    upstreams = []
    for item in args.upstream:
        name, sep, address = item.partition("=")
        if not sep:
            parser.error(f"--upstream {item!r} is not NAME=HOST:PORT")
        upstreams.append(Upstream(name, address))
    gateway = Gateway(upstreams, args.timeout, args.health_interval, args.health_timeout)
    log.info(
        "listening on %s, upstreams %s",
        args.listen,
        ", ".join(f"{u.name}={u.address}" for u in upstreams),
    )
    serve(build_app(gateway), args.listen, args.pidfile)


if __name__ == "__main__":
    main()
