"""The ``slow_close`` toxic: data passes, but the end of the stream is held ``delay`` ms."""

from __future__ import annotations

from typing import ClassVar

from resildrill.proxy.toxics.base import EOF, Stub, Toxic


class SlowCloseToxic(Toxic):
    """Delay the propagation of EOF."""

    type_name: ClassVar[str] = "slow_close"
    go_name: ClassVar[str] = "SlowCloseToxic"
    attributes: ClassVar[tuple[str, ...]] = ("delay",)

    async def pipe(self, stub: Stub, attrs: dict[str, int]) -> None:
        delay = attrs.get("delay", 0) / 1000.0
        while True:
            chunk = await stub.recv()
            if chunk is None:
                return
            if chunk.kind == EOF and not await stub.sleep_until(stub.loop.time() + delay):
                stub.emit(chunk)
                return
            stub.emit(chunk)
