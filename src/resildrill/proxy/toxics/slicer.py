"""The ``slicer`` toxic: chunks are cut into small pieces sent ``delay`` µs apart.

Each chunk is split roughly in half, the split point moved by up to ± ``size_variation``,
until every piece is at most ``average_size + size_variation`` bytes; bytes are never changed
or reordered. ``average_size`` must be at least 1 (the real server recurses forever on 0).
"""

from __future__ import annotations

import random
from typing import ClassVar

from resildrill.proxy.toxics.base import DATA, AttributeError400, Chunk, Stub, Toxic


def split_points(length: int, average: int, variation: int, rng: random.Random) -> list[int]:
    """Offsets where the pieces of a ``length``-byte chunk start, in order."""
    limit = average + variation
    starts: list[int] = []
    stack = [(0, length)]
    while stack:
        start, end = stack.pop()
        if end - start <= limit:
            starts.append(start)
            continue
        mid = start + (end - start) // 2
        if variation > 0:
            mid += rng.randint(-variation, variation)
        mid = min(max(mid, start + 1), end - 1)
        # Right half first on the stack, so the left half is handled (and listed) first.
        stack.append((mid, end))
        stack.append((start, mid))
    return starts


class SlicerToxic(Toxic):
    """Slice every chunk into pieces around ``average_size`` bytes."""

    type_name: ClassVar[str] = "slicer"
    go_name: ClassVar[str] = "SlicerToxic"
    attributes: ClassVar[tuple[str, ...]] = ("average_size", "size_variation", "delay")

    @classmethod
    def check(cls, attrs: dict[str, int]) -> None:
        super().check(attrs)
        if attrs.get("average_size", 0) < 1:
            raise AttributeError400("attribute average_size of a slicer toxic must be >= 1")

    async def pipe(self, stub: Stub, attrs: dict[str, int]) -> None:
        average, variation = attrs["average_size"], attrs.get("size_variation", 0)
        delay = attrs.get("delay", 0) / 1_000_000.0
        while True:
            chunk = await stub.recv()
            if chunk is None:
                return
            if chunk.kind != DATA:
                stub.emit(chunk)
                continue
            data = chunk.data
            starts = split_points(len(data), average, variation, stub.rng)
            ends = [*starts[1:], len(data)]
            for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
                stub.emit(Chunk(data[start:end], chunk.t))
                last = i + 1 == len(starts)
                if delay > 0 and not last and not await stub.sleep_until(stub.loop.time() + delay):
                    stub.emit(Chunk(data[end:], chunk.t))
                    return
