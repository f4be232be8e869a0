"""The ``latency`` toxic: each chunk leaves ``latency`` ± ``jitter`` ms after it was read.

Delays are counted from the moment the link read the chunk, so they are pipelined and do not
limit throughput; chunks keep their order even when jitter would let a later one overtake.
"""

from __future__ import annotations

from typing import ClassVar

from resildrill.proxy.toxics.base import DATA, Stub, Toxic


class LatencyToxic(Toxic):
    """Delay every chunk; an interrupted toxic forwards the chunk it holds at once."""

    type_name: ClassVar[str] = "latency"
    go_name: ClassVar[str] = "LatencyToxic"
    attributes: ClassVar[tuple[str, ...]] = ("latency", "jitter")

    async def pipe(self, stub: Stub, attrs: dict[str, int]) -> None:
        latency = attrs.get("latency", 0) / 1000.0
        jitter = attrs.get("jitter", 0) / 1000.0
        while True:
            chunk = await stub.recv()
            if chunk is None:
                return
            if chunk.kind == DATA:
                delay = latency
                if jitter > 0:
                    delay += stub.rng.uniform(-jitter, jitter)
                if not await stub.sleep_until(chunk.t + delay):
                    stub.emit(chunk)
                    return
            stub.emit(chunk)
