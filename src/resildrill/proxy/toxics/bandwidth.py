"""The ``bandwidth`` toxic: the stream moves at most ``rate`` KB/s (1 KB = 1000 bytes).

Chunks larger than 100 ms worth of bytes are cut into 100 ms slices, as Toxiproxy does. The
pacing follows an absolute schedule, so timer lateness does not accumulate into a lower rate.
A ``rate`` of 0 or less is refused (the real server stalls on 0 and crashes on a negative).
"""

from __future__ import annotations

from typing import ClassVar

from resildrill.proxy.toxics.base import DATA, AttributeError400, Chunk, Stub, Toxic


class BandwidthToxic(Toxic):
    """Pace the stream to ``rate`` kilobytes per second."""

    type_name: ClassVar[str] = "bandwidth"
    go_name: ClassVar[str] = "BandwidthToxic"
    attributes: ClassVar[tuple[str, ...]] = ("rate",)

    @classmethod
    def check(cls, attrs: dict[str, int]) -> None:
        if attrs.get("rate", 0) <= 0:
            raise AttributeError400(
                "attribute rate of a bandwidth toxic must be > 0 (KB/s); "
                "use a timeout toxic to stall a stream"
            )

    async def pipe(self, stub: Stub, attrs: dict[str, int]) -> None:
        per_s = attrs["rate"] * 1000.0
        slice_len = max(1, attrs["rate"] * 100)
        next_t = stub.loop.time()
        while True:
            chunk = await stub.recv()
            if chunk is None:
                return
            if chunk.kind != DATA:
                stub.emit(chunk)
                continue
            data = chunk.data
            next_t = max(next_t, stub.loop.time())
            for start in range(0, len(data), slice_len):
                piece = data[start : start + slice_len]
                next_t += len(piece) / per_s
                if not await stub.sleep_until(next_t):
                    stub.emit(Chunk(data[start:], chunk.t))
                    return
                stub.emit(Chunk(piece, chunk.t))
