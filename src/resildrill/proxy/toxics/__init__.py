"""The toxic types the proxy knows, by the name clients send (``"latency"`` ...).

One module per toxic; this registry is the only place that lists them. There is no ``down``
toxic: taking a link down is ``enabled: false`` on the proxy, as in Toxiproxy.
"""

from __future__ import annotations

from resildrill.proxy.toxics.bandwidth import BandwidthToxic
from resildrill.proxy.toxics.base import AttributeError400, Chunk, Stub, Toxic
from resildrill.proxy.toxics.latency import LatencyToxic
from resildrill.proxy.toxics.limit_data import LimitDataToxic
from resildrill.proxy.toxics.noop import NoopToxic
from resildrill.proxy.toxics.reset_peer import ResetPeerToxic
from resildrill.proxy.toxics.slicer import SlicerToxic
from resildrill.proxy.toxics.slow_close import SlowCloseToxic
from resildrill.proxy.toxics.timeout import TimeoutToxic

__all__ = ["REGISTRY", "AttributeError400", "Chunk", "Stub", "Toxic", "toxic_type"]

REGISTRY: dict[str, type[Toxic]] = {
    cls.type_name: cls
    for cls in (
        LatencyToxic,
        BandwidthToxic,
        SlowCloseToxic,
        TimeoutToxic,
        ResetPeerToxic,
        SlicerToxic,
        LimitDataToxic,
        NoopToxic,
    )
}


def toxic_type(name: str) -> type[Toxic] | None:
    """The toxic class registered under ``name``, or None."""
    return REGISTRY.get(name)
