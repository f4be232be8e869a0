"""What a toxic sees: chunks, the interruptible stub between two stages, and the toxic base.

A link (see ``proxy/link.py``) runs each toxic of its stream as one asyncio task. The task
reads :class:`Chunk` values from its stub's input channel and emits them to its output
channel, which the link may re-point at any time (a toxic added or removed behind it). The
link interrupts a stub to update or remove its toxic: ``recv`` and ``sleep_until`` then
return at once, and the toxic must emit whatever it holds before returning, so no byte is
ever dropped by an API change (Toxiproxy's ``TestNoDataDropped``).
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

DATA = 0
#: The source half-closed: shut down the write side of the destination.
EOF = 1
#: A toxic ends the connection: close both sockets normally (FIN).
CLOSE = 2
#: A toxic resets the connection: close both sockets with SO_LINGER 0 (RST).
RESET = 3

# epoll rounds its timeout up to whole milliseconds, so a timer wakes up to 1 ms late.
# Sleeping until shortly before the deadline and then yielding to the loop until it passes
# keeps a latency toxic within a few tenths of a millisecond of its setting.
_SPIN_S = 0.0012


class Chunk:
    """Bytes read from a socket at ``t`` (loop time), or an end-of-stream marker."""

    __slots__ = ("data", "kind", "t")

    def __init__(self, data: bytes, t: float, kind: int = DATA) -> None:
        self.data = data
        self.t = t
        self.kind = kind


class Channel:
    """An unbounded FIFO between two stages; its reader can be woken without an item."""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: deque[Chunk] = deque()
        self.waiter: asyncio.Future[None] | None = None

    def put(self, chunk: Chunk) -> None:
        """Append a chunk and wake the reader."""
        self.items.append(chunk)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Stub:
    """One toxic's place in one link: its input, its (movable) output, and its state."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        input_: Channel,
        output: Channel,
        rng: random.Random,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.loop = loop
        self._on_drop = on_drop
        self.input = input_
        self.output = output
        self.rng = rng
        self.interrupted = False
        #: Per-link state of a stateful toxic (limit_data), kept across restarts.
        self.state: dict[str, Any] = {}
        self._waiter: asyncio.Future[None] | None = None

    def emit(self, chunk: Chunk) -> None:
        """Pass a chunk to the next stage."""
        self.output.put(chunk)

    def drop(self, n: int) -> None:
        """Tell the link ``n`` bytes were discarded (they no longer count as buffered)."""
        if self._on_drop is not None and n:
            self._on_drop(n)

    def interrupt(self) -> None:
        """Ask the running toxic to return (update or removal)."""
        self.interrupted = True
        if self._waiter is not None:
            _wake(self._waiter)

    async def _wait(self, fut: asyncio.Future[None]) -> None:
        self._waiter = fut
        try:
            await fut
        finally:
            self._waiter = None

    async def recv(self) -> Chunk | None:
        """The next chunk, or None when interrupted."""
        while True:
            if self.interrupted:
                return None
            if self.input.items:
                return self.input.items.popleft()
            fut = self.loop.create_future()
            self.input.waiter = fut
            try:
                await self._wait(fut)
            finally:
                self.input.waiter = None

    async def sleep_until(self, deadline: float) -> bool:
        """Wait until loop time ``deadline``; False if interrupted first."""
        loop = self.loop
        while True:
            if self.interrupted:
                return False
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            if remaining > _SPIN_S + 0.0003:
                fut = loop.create_future()
                handle = loop.call_at(deadline - _SPIN_S, _wake, fut)
                try:
                    await self._wait(fut)
                finally:
                    handle.cancel()
            else:
                await asyncio.sleep(0)

    async def recv_until(self, deadline: float | None) -> Chunk | None:
        """The next chunk if one comes before ``deadline``; None on timeout or interrupt."""
        if deadline is None:
            return await self.recv()
        loop = self.loop
        while True:
            if self.interrupted:
                return None
            if self.input.items:
                return self.input.items.popleft()
            if loop.time() >= deadline:
                return None
            fut = loop.create_future()
            handle = loop.call_at(deadline, _wake, fut)
            self.input.waiter = fut
            try:
                await self._wait(fut)
            finally:
                self.input.waiter = None
                handle.cancel()


class AttributeError400(ValueError):
    """An attribute value the server refuses (the API answers 400 with this message)."""


class Toxic:
    """Base of every toxic type: its attribute names, their checks, and its behaviour."""

    #: The type name clients send (``"latency"``).
    type_name: ClassVar[str] = ""
    #: Go struct name, used in error messages the way the real server words them.
    go_name: ClassVar[str] = ""
    #: Integer attributes with their zero values, in the order they are echoed.
    attributes: ClassVar[tuple[str, ...]] = ()
    #: Whether each link keeps state for this toxic across restarts.
    stateful: ClassVar[bool] = False

    @classmethod
    def check(cls, attrs: dict[str, int]) -> None:
        """Raise :class:`AttributeError400` for values the server must refuse."""
        for key in cls.attributes:
            if attrs.get(key, 0) < 0:
                raise AttributeError400(f"attribute {key} of a {cls.type_name} toxic must be >= 0")

    async def pipe(self, stub: Stub, attrs: dict[str, int]) -> None:
        """Move chunks from input to output until interrupted."""
        await passthrough(stub)

    def cleanup(self, stub: Stub) -> None:
        """Called once when the toxic is removed from a live link."""


async def passthrough(stub: Stub) -> None:
    """Forward every chunk unchanged until interrupted."""
    while True:
        chunk = await stub.recv()
        if chunk is None:
            return
        stub.emit(chunk)
