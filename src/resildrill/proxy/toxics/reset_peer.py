"""The ``reset_peer`` toxic: the first chunk is dropped and the connection reset (RST).

The toxic waits for the first chunk (or EOF) to reach it, drops it, waits ``timeout`` ms and
then closes both sockets with ``SO_LINGER`` 0, so both peers see ``ECONNRESET``. An idle
connection is never reset. Unlike Toxiproxy, a toxic added to an already open connection
also resets it (the real server closes those with a FIN), and a toxic removed while waiting
resets at once instead of blocking the API call.
"""

from __future__ import annotations

from typing import ClassVar

from resildrill.proxy.toxics.base import CLOSE, RESET, Chunk, Stub, Toxic


class ResetPeerToxic(Toxic):
    """Reset the connection ``timeout`` ms after its first chunk."""

    type_name: ClassVar[str] = "reset_peer"
    go_name: ClassVar[str] = "ResetToxic"
    attributes: ClassVar[tuple[str, ...]] = ("timeout",)

    async def pipe(self, stub: Stub, attrs: dict[str, int]) -> None:
        chunk = await stub.recv()
        if chunk is None:
            return
        if chunk.kind in (CLOSE, RESET):
            stub.emit(chunk)
            return
        stub.drop(len(chunk.data))
        await stub.sleep_until(stub.loop.time() + attrs.get("timeout", 0) / 1000.0)
        stub.emit(Chunk(b"", stub.loop.time(), RESET))
