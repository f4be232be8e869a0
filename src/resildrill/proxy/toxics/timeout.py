"""The ``timeout`` toxic: the stream is black-holed, then closed ``timeout`` ms later.

While active every byte of the stream is discarded. With ``timeout`` > 0 the connection is
closed that long after the toxic started on the link (connection start, or the toxic's add or
update for live connections), whatever the traffic; with 0 it is held open forever. Removing
the toxic closes the connection, as Toxiproxy's cleanup hook does.
"""

from __future__ import annotations

from typing import ClassVar

from resildrill.proxy.toxics.base import CLOSE, RESET, Chunk, Stub, Toxic


class TimeoutToxic(Toxic):
    """Drop all data; close the connection after ``timeout`` ms (never when 0)."""

    type_name: ClassVar[str] = "timeout"
    go_name: ClassVar[str] = "TimeoutToxic"
    attributes: ClassVar[tuple[str, ...]] = ("timeout",)

    async def pipe(self, stub: Stub, attrs: dict[str, int]) -> None:
        timeout = attrs.get("timeout", 0)
        deadline = stub.loop.time() + timeout / 1000.0 if timeout > 0 else None
        while True:
            chunk = await stub.recv_until(deadline)
            if chunk is None:
                if not stub.interrupted:
                    stub.emit(Chunk(b"", stub.loop.time(), CLOSE))
                return
            if chunk.kind in (CLOSE, RESET):
                stub.emit(chunk)
            else:
                stub.drop(len(chunk.data))

    def cleanup(self, stub: Stub) -> None:
        stub.emit(Chunk(b"", stub.loop.time(), CLOSE))
