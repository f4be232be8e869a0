"""The ``noop`` toxic: forwards everything unchanged (useful to test the API itself)."""

from __future__ import annotations

from typing import ClassVar

from resildrill.proxy.toxics.base import Toxic


class NoopToxic(Toxic):
    """Pass-through."""

    type_name: ClassVar[str] = "noop"
    go_name: ClassVar[str] = "NoopToxic"
