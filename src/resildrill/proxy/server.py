"""Proxies and their listeners: the state behind the API, in one asyncio event loop.

:class:`ProxyServer` holds every :class:`Proxy` by name. A proxy owns its listening socket,
the connections it accepted and its two toxic chains (upstream, downstream); API changes to
toxics are applied to every live connection before the call returns.

Differences from Toxiproxy 2.12 (documented in docs/proxy.md):

* a ``listen`` that is omitted or empty binds ``127.0.0.1:0``, not every interface;
* randomness (toxicity draws, jitter, slicer splits) comes from ``--seed``: connection N of a
  proxy gets the same draws for the same seed, whatever other connections do;
* each toxic can carry a lifetime, ``attributes.resildrill_lifetime_ms``, after which the
  server removes it by itself; toxics named ``resildrill-*`` without one get the server's
  ``--toxic-max-lifetime`` (default one hour), so a crashed drill cannot leave a toxic behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resildrill.proxy.link import Connection, ToxicLike
from resildrill.proxy.toxics import Toxic

log = logging.getLogger("resildrill.proxy")

#: How long dialling an upstream may take before the client connection is closed.
UPSTREAM_CONNECT_TIMEOUT_S = 10.0
#: Lifetime given to toxics named ``resildrill-*`` that carry none.
DEFAULT_TOXIC_MAX_LIFETIME_S = 3600.0
#: The attribute that sets a toxic's lifetime in milliseconds (a resildrill extension).
LIFETIME_ATTRIBUTE = "resildrill_lifetime_ms"
STREAMS = ("upstream", "downstream")


class ApiError(Exception):
    """An error the API reports as ``{"error": message, "status": status}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _listen_error(addr: str, message: str) -> ApiError:
    return ApiError(500, f"listen tcp{(' ' + addr) if addr else ''}: {message}")


def split_host_port(addr: str) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port`` as Go's ``net.SplitHostPort`` does."""
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0:
            raise _listen_error("", f"address {addr}: missing ']' in address")
        host, rest = addr[1:end], addr[end + 1 :]
        if not rest.startswith(":"):
            raise _listen_error("", f"address {addr}: missing port in address")
        port_text = rest[1:]
    else:
        if ":" not in addr:
            raise _listen_error("", f"address {addr}: missing port in address")
        host, port_text = addr.rsplit(":", 1)
        if ":" in host:
            raise _listen_error("", f"address {addr}: too many colons in address")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise _listen_error("", f"address {port_text}: invalid port")
    return host, int(port_text)


def format_addr(host: str, port: int) -> str:
    """``host:port``, with brackets around IPv6 addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve_listen(addr: str) -> tuple[int, str, int]:
    """(address family, IP, port) a ``listen`` value binds to."""
    if not addr:
        return socket.AF_INET, "127.0.0.1", 0
    host, port = split_host_port(addr)
    if host in ("", "0.0.0.0"):  # an explicit request to listen on every interface
        return socket.AF_INET, "0.0.0.0", port
    try:
        ip = ipaddress.ip_address(host)
        return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), str(ip), port
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise _listen_error("", f"lookup {host}: no such host") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)  # IPv4 first, as Go does
    family, _, _, _, sockaddr = infos[0]
    return family, str(sockaddr[0]), port


def resolved_listen(addr: str) -> str:
    """The string a running proxy would report for ``addr`` (port 0 stays 0)."""
    _, ip, port = resolve_listen(addr)
    return format_addr(ip, port)


@dataclass
class ToxicState:
    """A toxic as the API holds it; links read its settings when it (re)starts."""

    name: str
    type: str
    stream: str
    direction: str
    toxicity: float
    attributes: dict[str, int]
    behaviour: Toxic
    lifetime_ms: int | None = None
    expiry: asyncio.TimerHandle | None = None

    def to_json(self) -> dict[str, Any]:
        """The toxic object, keys in the order Toxiproxy sends them."""
        attrs: dict[str, int] = {k: self.attributes.get(k, 0) for k in self.behaviour.attributes}
        if LIFETIME_ATTRIBUTE in self.attributes:
            attrs[LIFETIME_ATTRIBUTE] = self.attributes[LIFETIME_ATTRIBUTE]
        tox = self.toxicity
        return {
            "attributes": attrs,
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": int(tox) if float(tox).is_integer() else tox,
        }


@dataclass
class Proxy:
    """One listener forwarding every accepted connection to ``upstream``."""

    server: ProxyServer
    name: str
    listen: str
    upstream: str
    enabled: bool = False
    toxics: dict[str, list[ToxicState]] = field(default_factory=lambda: {s: [] for s in STREAMS})
    connections: set[Connection] = field(default_factory=set)
    _sock: socket.socket | None = None
    _accept: asyncio.Task[None] | None = None
    _counter: int = 0
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        """The proxy object (without Toxiproxy's ``"Logger":{}`` artifact)."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for s in STREAMS for t in self.toxics[s]],
        }

    def find_toxic(self, name: str) -> ToxicState | None:
        """The toxic called ``name`` on either stream."""
        for stream in STREAMS:
            for toxic in self.toxics[stream]:
                if toxic.name == name:
                    return toxic
        return None

    # -- listening -------------------------------------------------------------------

    def start(self) -> None:
        """Bind and start accepting; raises ApiError(500) as Toxiproxy words it."""
        if self.enabled:
            return
        family, ip, port = resolve_listen(self.listen)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ip, port))
            sock.listen(1024)
        except OSError as exc:
            sock.close()
            text = (exc.strerror or str(exc)).lower()
            raise _listen_error(format_addr(ip, port), f"bind: {text}") from None
        sock.setblocking(False)
        self._sock = sock
        self.listen = format_addr(*sock.getsockname()[:2])
        self.enabled = True
        self._accept = asyncio.get_running_loop().create_task(self._accept_loop(sock))
        log.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    def stop(self) -> None:
        """Close the listener and every connection (new connects are refused)."""
        self.enabled = False
        if self._accept is not None:
            self._accept.cancel()
            self._accept = None
        for task in list(self._pending):
            task.cancel()
        if self._sock is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for conn in list(self.connections):
            conn.abort()
        self.connections.clear()

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("proxy %s: accept failed: %s", self.name, exc)
                    await asyncio.sleep(0.05)
                    continue
                return
            self._counter += 1
            task = loop.create_task(self._serve(client, self._counter))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _serve(self, client: socket.socket, index: int) -> None:
        loop = asyncio.get_running_loop()
        client.setblocking(False)
        with contextlib.suppress(OSError):
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream: socket.socket | None = None
        try:
            host, port = split_host_port(self.upstream)
            family, addr = await self._resolve_upstream(host, port)
            upstream = socket.socket(family, socket.SOCK_STREAM)
            upstream.setblocking(False)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            async with asyncio.timeout(UPSTREAM_CONNECT_TIMEOUT_S):
                await loop.sock_connect(upstream, addr)
        except (OSError, ApiError, TimeoutError) as exc:
            # As Toxiproxy: the client's connect succeeded; it now sees EOF.
            log.info("proxy %s: upstream %s unreachable: %s", self.name, self.upstream, exc)
            client.close()
            if upstream is not None:
                upstream.close()
            return
        except asyncio.CancelledError:
            client.close()
            if upstream is not None:
                upstream.close()
            raise
        conn = Connection(
            loop, client, upstream, f"{self.server.seed}/{self.name}/{index}", self._forget
        )
        self.connections.add(conn)
        conn.start({s: list[ToxicLike](self.toxics[s]) for s in STREAMS})

    def _forget(self, conn: Connection) -> None:
        self.connections.discard(conn)

    async def _resolve_upstream(self, host: str, port: int) -> tuple[int, tuple[Any, ...]]:
        try:
            ip = ipaddress.ip_address(host)
            return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), (str(ip), port)
        except ValueError:
            pass
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        return infos[0][0], infos[0][4]

    # -- toxics on live connections --------------------------------------------------

    def add_toxic(self, toxic: ToxicState) -> None:
        """Append a toxic and install it on every live connection."""
        self.toxics[toxic.direction].append(toxic)
        for conn in list(self.connections):
            conn.links[toxic.direction].add_toxic(toxic)

    async def update_toxic(self, toxic: ToxicState) -> None:
        """Restart a toxic with its new settings on every live connection."""
        await asyncio.gather(
            *(c.links[toxic.direction].update_toxic(toxic.name) for c in list(self.connections))
        )

    async def remove_toxic(self, toxic: ToxicState) -> None:
        """Take a toxic out of the proxy and of every live connection."""
        if toxic.expiry is not None:
            toxic.expiry.cancel()
            toxic.expiry = None
        chain = self.toxics[toxic.direction]
        if toxic in chain:
            chain.remove(toxic)
        await asyncio.gather(
            *(c.links[toxic.direction].remove_toxic(toxic.name) for c in list(self.connections))
        )


class ProxyServer:
    """Every proxy by name, the lock serialising API changes, and the run's seed."""

    def __init__(
        self,
        seed: int | None = None,
        toxic_max_lifetime_s: float = DEFAULT_TOXIC_MAX_LIFETIME_S,
        upstreams_file: Path | None = None,
    ) -> None:
        self.seed = seed if seed is not None else int.from_bytes(os.urandom(4), "big")
        self.toxic_max_lifetime_s = toxic_max_lifetime_s
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()
        #: a JSON list of the upstreams the target declares, re-read at each change: the
        #: embedded server is no relay to anywhere else (None: unrestricted, as Toxiproxy)
        self.upstreams_file = upstreams_file

    def check_upstream(self, upstream: str) -> None:
        """ApiError 403 when an allow-list is set and does not hold ``upstream``."""
        if self.upstreams_file is None:
            return
        try:
            allowed = set(json.loads(self.upstreams_file.read_text()))
        except (OSError, ValueError, TypeError):
            allowed = set()
        if upstream not in allowed:
            raise ApiError(403, f"upstream {upstream} is not one the target declares")

    def get(self, name: str) -> Proxy:
        """The proxy called ``name``; ApiError 404 otherwise."""
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(404, "proxy not found")
        return proxy

    def create(self, name: str, listen: str, upstream: str, enabled: bool) -> Proxy:
        """Add a proxy, binding it when enabled; nothing is stored if binding fails."""
        if name in self.proxies:
            raise ApiError(409, "proxy already exists")
        self.check_upstream(upstream)
        proxy = Proxy(self, name, listen, upstream)
        if enabled:
            proxy.start()
        self.proxies[name] = proxy
        return proxy

    def delete(self, name: str) -> None:
        """Stop a proxy and forget it with its toxics."""
        proxy = self.get(name)
        for stream in STREAMS:
            for toxic in proxy.toxics[stream]:
                if toxic.expiry is not None:
                    toxic.expiry.cancel()
        proxy.stop()
        del self.proxies[name]

    def update(self, proxy: Proxy, listen: str, upstream: str, enabled: bool) -> None:
        """Apply new settings; a new listen or upstream restarts it (connections dropped)."""
        # As Toxiproxy's Differs: the new listen is resolved, the stored one is compared as
        # it is; an identical string never counts as a change (Toxiproxy would restart a
        # disabled ``localhost:0`` proxy here).
        listen_changed = listen != proxy.listen and resolved_listen(listen) != proxy.listen
        if upstream != proxy.upstream:
            self.check_upstream(upstream)
        if listen_changed or upstream != proxy.upstream:
            was_enabled = proxy.enabled
            proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
            if enabled:
                try:
                    proxy.start()
                except ApiError:
                    if was_enabled:
                        log.warning("proxy %s stays stopped after a failed update", proxy.name)
                    raise
            return
        if enabled and not proxy.enabled:
            proxy.start()
        elif not enabled and proxy.enabled:
            proxy.stop()

    def schedule_expiry(self, proxy: Proxy, toxic: ToxicState) -> None:
        """Arm the toxic's lifetime: its own, or the default for ``resildrill-*`` names."""
        if toxic.expiry is not None:
            toxic.expiry.cancel()
            toxic.expiry = None
        lifetime_s: float | None = None
        if toxic.lifetime_ms is not None:
            lifetime_s = toxic.lifetime_ms / 1000.0
        elif toxic.name.startswith("resildrill-"):
            lifetime_s = self.toxic_max_lifetime_s
        if lifetime_s is None:
            return
        loop = asyncio.get_running_loop()
        toxic.expiry = loop.call_later(
            lifetime_s, lambda: loop.create_task(self._expire(proxy.name, toxic))
        )

    async def _expire(self, proxy_name: str, toxic: ToxicState) -> None:
        async with self.lock:
            proxy = self.proxies.get(proxy_name)
            if proxy is not None and proxy.find_toxic(toxic.name) is toxic:
                log.warning("toxic %s on %s reached its lifetime: removed", toxic.name, proxy_name)
                toxic.expiry = None
                await proxy.remove_toxic(toxic)

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (connections stay open)."""
        for name in sorted(self.proxies):
            proxy = self.proxies[name]
            if not proxy.enabled:
                proxy.start()
            for stream in STREAMS:
                for toxic in list(proxy.toxics[stream]):
                    await proxy.remove_toxic(toxic)

    def shutdown(self) -> None:
        """Stop every proxy (process exit)."""
        for proxy in self.proxies.values():
            proxy.stop()
