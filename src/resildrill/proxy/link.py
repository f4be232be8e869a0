"""The byte pipe of one proxied connection, per direction, chained through its toxics.

A :class:`Connection` is a client socket, the upstream socket dialled for it, and two
:class:`Link` values: ``upstream`` (client to server) and ``downstream`` (server to client).

A link with no toxic moves bytes with ``os.splice`` through a pipe, driven by the event
loop's readiness callbacks: the bytes never enter Python, which is what lets the proxy move
~10 Gbit/s on one core. When a toxic is added the link switches, atomically (the loop is
single-threaded), to the *chain* path: a readiness callback reads chunks and stamps them
with the time they were read, one task per toxic passes them on, and a writer task sends
them. Bytes already in the pipe go out first, so nothing is lost or reordered. When the last
toxic goes, the link stops reading, drains its chain and returns to splicing.

Reading is never a cancellable ``sock_recv`` task: cancelling one whose read had already
completed throws its bytes away (found by the 400 MB churn test).

Unlike Toxiproxy, an EOF is passed on as a half-close (``shutdown(SHUT_WR)``) rather than a
full close, so request/response clients that half-close still get their reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import random
import socket
import struct
from collections.abc import Callable
from typing import Protocol

from resildrill.proxy.toxics.base import (
    DATA,
    EOF,
    RESET,
    Channel,
    Chunk,
    Stub,
    Toxic,
    passthrough,
)

#: Bytes read per chunk on the chain path (Toxiproxy reads 32 KiB).
CHUNK_SIZE = 32 * 1024
#: A link stops reading once this many bytes are inside its chain (held by latency...).
MAX_BUFFERED = 16 * 1024 * 1024
#: Pipe capacity asked for on the splice path; the kernel may refuse, then 64 KiB is used.
PIPE_SIZE = 1024 * 1024

_SPLICE_FLAGS = getattr(os, "SPLICE_F_NONBLOCK", 2) | getattr(os, "SPLICE_F_MOVE", 1)
_LINGER_RST = struct.pack("ii", 1, 0)


class ToxicLike(Protocol):
    """What a link needs of a toxic the API layer holds."""

    name: str
    toxicity: float
    attributes: dict[str, int]
    behaviour: Toxic


class _Stage:
    """One toxic running on one link."""

    __slots__ = ("removed", "restarted", "stub", "task", "toxic")

    def __init__(self, toxic: ToxicLike, stub: Stub) -> None:
        self.toxic = toxic
        self.stub = stub
        self.task: asyncio.Task[None] | None = None
        self.removed = False
        self.restarted: asyncio.Future[None] | None = None


def _wake(fut: asyncio.Future[None] | None) -> None:
    if fut is not None and not fut.done():
        fut.set_result(None)


class Link:
    """One direction of a connection: ``src`` bytes go to ``dst`` through the toxics."""

    def __init__(
        self,
        conn: Connection,
        stream: str,
        src: socket.socket,
        dst: socket.socket,
        seed: str,
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.src = src
        self.dst = dst
        self.loop = conn.loop
        self._seed = seed
        self.mode = "new"
        self.done = False
        self._stages: list[_Stage] = []
        self._out = Channel()
        self._reading = False
        self._writer: asyncio.Task[None] | None = None
        self._buffered = 0
        self._src_eof = False
        self._pipe: tuple[int, int] | None = None
        self._pipe_cap = 0
        self._pending = 0
        self._rd_on = False
        self._wr_on = False
        self._states: dict[str, dict[str, object]] = {}

    # -- life cycle ------------------------------------------------------------------

    def start(self, toxics: list[ToxicLike]) -> None:
        """Begin moving bytes, through ``toxics`` if there are any."""
        if toxics:
            self._enter_chain()
            for toxic in toxics:
                self._append(toxic)
        else:
            self._enter_splice()

    def close(self) -> None:
        """Stop everything at once (the connection is being closed)."""
        self.done = True
        for fd_sock, is_reader in ((self.src, True), (self.dst, False)):
            with contextlib.suppress(ValueError, OSError):
                fd = fd_sock.fileno()
                if fd >= 0:
                    if is_reader:
                        self.loop.remove_reader(fd)
                    else:
                        self.loop.remove_writer(fd)
        current = asyncio.current_task(self.loop) if self.loop.is_running() else None
        self._reading = False
        tasks = [self._writer, *(s.task for s in self._stages)]
        for task in tasks:
            if task is not None and task is not current:
                task.cancel()
        for stage in self._stages:
            _wake(stage.restarted)
        if self._pipe is not None:
            for fd in self._pipe:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._pipe = None

    def _finish(self) -> None:
        """The source ended and everything was delivered: half-close the destination."""
        self.done = True
        with contextlib.suppress(OSError):
            self.dst.shutdown(socket.SHUT_WR)
        self.conn.link_finished()

    # -- splice path -----------------------------------------------------------------

    def _open_pipe(self) -> tuple[int, int]:
        if self._pipe is None:
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                self._pipe_cap = fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                self._pipe_cap = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
            self._pipe = (r, w)
        return self._pipe

    def _enter_splice(self) -> None:
        self.mode = "splice"
        self._open_pipe()
        self._rd_on = self._wr_on = False
        self._splice_arm()

    def _splice_arm(self) -> None:
        """Wait for what the splice path needs: room in the pipe to read, bytes in it to write.

        Reading goes on while the pipe has room even when ``dst`` is full, so a busy link
        does not swap its epoll registrations on every readiness event.
        """
        want_rd = not self._src_eof and self._pending < self._pipe_cap
        want_wr = self._pending > 0
        if want_rd != self._rd_on:
            if want_rd:
                self.loop.add_reader(self.src.fileno(), self._on_readable)
            else:
                self.loop.remove_reader(self.src.fileno())
            self._rd_on = want_rd
        if want_wr != self._wr_on:
            if want_wr:
                self.loop.add_writer(self.dst.fileno(), self._after_io)
            else:
                self.loop.remove_writer(self.dst.fileno())
            self._wr_on = want_wr

    def _on_readable(self) -> None:
        assert self._pipe is not None
        try:
            n = os.splice(
                self.src.fileno(),
                self._pipe[1],
                self._pipe_cap - self._pending,
                flags=_SPLICE_FLAGS,
            )
        except BlockingIOError:
            return
        except OSError as exc:
            self.conn.abort(reset=exc.errno == errno.ECONNRESET)
            return
        if n == 0:
            self._src_eof = True
        self._pending += n
        self._after_io()

    def _after_io(self) -> None:
        """Splice what the pipe holds to ``dst`` (until it would block), then re-arm."""
        assert self._pipe is not None
        try:
            while self._pending:
                self._pending -= os.splice(
                    self._pipe[0], self.dst.fileno(), self._pending, flags=_SPLICE_FLAGS
                )
        except BlockingIOError:
            pass
        except OSError:
            self.conn.abort()
            return
        if self._src_eof and not self._pending:
            self._src_eof_done()
            return
        self._splice_arm()

    def _src_eof_done(self) -> None:
        if self._rd_on:
            self.loop.remove_reader(self.src.fileno())
        if self._wr_on:
            self.loop.remove_writer(self.dst.fileno())
        self._rd_on = self._wr_on = False
        self._finish()

    # -- chain path ------------------------------------------------------------------

    def _enter_chain(self) -> None:
        """Leave the splice path; bytes already in the pipe are sent first."""
        previous = self.mode
        self.mode = "chain"
        if previous == "splice":
            self.loop.remove_reader(self.src.fileno())
            self.loop.remove_writer(self.dst.fileno())
            self._rd_on = self._wr_on = False
            if self._pending and self._pipe is not None:
                parts = []
                while self._pending:
                    part = os.read(self._pipe[0], self._pending)
                    self._pending -= len(part)
                    parts.append(part)
                residue = b"".join(parts)
                self._buffered += len(residue)
                self._out.put(Chunk(residue, self.loop.time()))
        if self._src_eof:
            self._out.put(Chunk(b"", self.loop.time(), EOF))
        else:
            self._start_reading()
        self._writer = self.loop.create_task(self._write_loop())

    def _start_reading(self) -> None:
        # A readiness callback, not a task: stopping it is synchronous and can never lose a
        # chunk already read (a cancelled sock_recv task can drop its completed result).
        if not self._reading and not self._src_eof and not self.done:
            self._reading = True
            self.loop.add_reader(self.src.fileno(), self._on_chain_readable)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self.loop.remove_reader(self.src.fileno())

    def _head(self) -> Channel:
        return self._stages[0].stub.input if self._stages else self._out

    def _on_chain_readable(self) -> None:
        try:
            data = self.src.recv(CHUNK_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.conn.abort(reset=exc.errno == errno.ECONNRESET)
            return
        now = self.loop.time()
        if not data:
            self._stop_reading()
            self._src_eof = True
            self._head().put(Chunk(b"", now, EOF))
            return
        self._buffered += len(data)
        self._head().put(Chunk(data, now))
        if self._buffered > MAX_BUFFERED:
            self._stop_reading()

    def _drop(self, n: int) -> None:
        self._buffered -= n
        if self._stages and self.mode == "chain" and self._buffered <= MAX_BUFFERED // 2:
            self._start_reading()

    async def _write_loop(self) -> None:
        loop, out = self.loop, self._out
        while True:
            if not out.items:
                if not self._stages and not self._reading and not self._src_eof:
                    self._enter_splice()
                    return
                fut = loop.create_future()
                out.waiter = fut
                try:
                    await fut
                finally:
                    out.waiter = None
                continue
            chunk = out.items.popleft()
            if chunk.kind == DATA:
                try:
                    await loop.sock_sendall(self.dst, chunk.data)
                except OSError:
                    self.conn.abort()
                    return
                self._drop(len(chunk.data))
            elif chunk.kind == EOF:
                self._finish()
                return
            else:
                self.conn.abort(reset=chunk.kind == RESET)
                return

    # -- toxics ----------------------------------------------------------------------

    def _append(self, toxic: ToxicLike) -> None:
        rng = random.Random(f"{self._seed}/{toxic.name}")
        stub = Stub(self.loop, Channel(), self._out, rng, self._drop)
        if toxic.behaviour.stateful:
            stub.state = self._states.setdefault(toxic.name, {})
        stage = _Stage(toxic, stub)
        if self._stages:
            self._stages[-1].stub.output = stub.input
        self._stages.append(stage)
        stage.task = self.loop.create_task(self._run_stage(stage))

    async def _run_stage(self, stage: _Stage) -> None:
        stub = stage.stub
        while True:
            toxic = stage.toxic
            if stub.rng.random() < toxic.toxicity:
                await toxic.behaviour.pipe(stub, dict(toxic.attributes))
            else:
                await passthrough(stub)
            if not stub.interrupted:
                # The toxic finished its job (a timeout fired...): let the rest flow.
                await passthrough(stub)
            if stage.removed:
                return
            stub.interrupted = False
            _wake(stage.restarted)

    def add_toxic(self, toxic: ToxicLike) -> None:
        """Append ``toxic`` to this link's chain (it applies to the next chunk read)."""
        if self.done:
            return
        if self.mode == "splice":
            self._enter_chain()
        self._append(toxic)
        if self._buffered <= MAX_BUFFERED:
            self._start_reading()

    async def update_toxic(self, name: str) -> None:
        """Restart ``name`` with its new settings; returns once it runs again."""
        for stage in self._stages:
            if stage.toxic.name == name and not self.done:
                stage.restarted = self.loop.create_future()
                stage.stub.interrupt()
                await stage.restarted
                return

    async def remove_toxic(self, name: str) -> None:
        """Take ``name`` out of the chain, passing on anything it held."""
        stage = next((s for s in self._stages if s.toxic.name == name), None)
        if stage is None or self.done:
            return
        stage.removed = True
        stage.stub.interrupt()
        assert stage.task is not None
        await asyncio.wait([stage.task])
        if self.done or stage not in self._stages:
            return
        index = self._stages.index(stage)
        after = self._stages[index + 1].stub.input if index + 1 < len(self._stages) else self._out
        while stage.stub.input.items:
            after.put(stage.stub.input.items.popleft())
        if index > 0:
            self._stages[index - 1].stub.output = after
        del self._stages[index]
        stage.stub.output = after
        stage.toxic.behaviour.cleanup(stage.stub)
        if not self._stages:
            # Back to splicing once the writer has sent what the chain passed on.
            self._stop_reading()
            _wake(self._out.waiter)


class Connection:
    """A client socket and its upstream socket, with one link each way."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: socket.socket,
        upstream: socket.socket,
        seed: str,
        on_close: Callable[[Connection], None],
    ) -> None:
        self.loop = loop
        self.client = client
        self.upstream = upstream
        self.closed = False
        self._on_close = on_close
        self._finished = 0
        self.links = {
            "upstream": Link(self, "upstream", client, upstream, f"{seed}/upstream"),
            "downstream": Link(self, "downstream", upstream, client, f"{seed}/downstream"),
        }

    def start(self, toxics: dict[str, list[ToxicLike]]) -> None:
        """Start both links with the proxy's current toxics."""
        for stream, link in self.links.items():
            link.start(toxics.get(stream, []))

    def link_finished(self) -> None:
        """One direction ended cleanly; when both have, close the connection."""
        self._finished += 1
        if self._finished >= 2:
            self.abort()

    def abort(self, reset: bool = False) -> None:
        """Close both sockets now; with ``reset``, peers see RST instead of FIN."""
        if self.closed:
            return
        self.closed = True
        for link in self.links.values():
            link.close()
        for sock in (self.client, self.upstream):
            if reset:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            sock.close()
        self._on_close(self)
