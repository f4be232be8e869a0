"""The ``limit_data`` toxic: at most ``bytes`` bytes pass, then the connection is closed.

The count is per connection and per stream, and survives updates of the toxic (Toxiproxy's
stateful toxics). The chunk that crosses the limit is truncated to what is left.
"""

from __future__ import annotations

from typing import ClassVar

from resildrill.proxy.toxics.base import CLOSE, DATA, Chunk, Stub, Toxic


class LimitDataToxic(Toxic):
    """Forward ``bytes`` bytes, then close."""

    type_name: ClassVar[str] = "limit_data"
    go_name: ClassVar[str] = "LimitDataToxic"
    attributes: ClassVar[tuple[str, ...]] = ("bytes",)
    stateful: ClassVar[bool] = True

    async def pipe(self, stub: Stub, attrs: dict[str, int]) -> None:
        limit = attrs.get("bytes", 0)
        while True:
            chunk = await stub.recv()
            if chunk is None:
                return
            if chunk.kind != DATA:
                stub.emit(chunk)
                continue
            sent = int(stub.state.get("bytes", 0))
            piece = chunk.data[: max(0, limit - sent)]
            stub.drop(len(chunk.data) - len(piece))
            if piece:
                stub.emit(Chunk(piece, chunk.t))
                sent += len(piece)
                stub.state["bytes"] = sent
            if sent >= limit:
                stub.emit(Chunk(b"", stub.loop.time(), CLOSE))
                return
