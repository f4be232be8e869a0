"""Fault kind ``network``: a toxic on a proxy of the target, or the proxy taken down.

Every action goes through a Toxiproxy 2.x HTTP API (``faults/toxiproxy_client.py``): the
embedded server (``resildrill proxy``, started as its own process by
:func:`ensure_embedded_proxy`) or a real Toxiproxy the target names by URL. The backend
only ever touches what it created: a toxic named ``resildrill-<run_id>-<fault_id>`` on a
proxy the target declares, or that proxy's ``enabled`` flag for ``down: true``. Against an
external Toxiproxy it checks the declared proxies exist and never resets or replaces
anything. On the embedded server each toxic also carries a lifetime (its duration plus a
margin), so the server removes it by itself if the runner and its watchdog both die.

A drill writes::

    - id: slow-db
      kind: network
      proxy: replica-a-db          # declared under target.toxiproxy.proxies
      at: 10s
      duration: 30s
      toxic: {type: latency, stream: downstream, attributes: {latency: 800, jitter: 50}}

or ``down: true`` instead of ``toxic`` to refuse and drop every connection of the proxy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, StrictInt, model_validator

from resildrill.drill.model import FaultSpec, Frozen, TargetSpec, ToxiproxySpec
from resildrill.errors import InjectionFailed, ToolFailed, ToolProblem
from resildrill.faults.base import BackendHooks, FaultContext, Recipe
from resildrill.faults.embedded_proxy import (
    check_paths,
    ensure_embedded_proxy,
    paths_record,
    proxy_home,
)
from resildrill.faults.toxiproxy_client import ProxyUnreachable, ToxiproxyClient, q

#: Integer attributes of each Toxiproxy toxic type (Toxiproxy 2.12, README "Toxics").
TOXIC_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
    "noop": (),
}
#: Added to a fault's duration to give the embedded server's own deadline for its toxic.
LIFETIME_MARGIN_S = 30.0
#: A toxic with no duration (the system must heal itself) still dies on the server after this.
LIFETIME_WITHOUT_DURATION_S = 3600.0


class ToxicSpec(Frozen):
    """A Toxiproxy toxic: its type, integer attributes, stream and toxicity."""

    type: Literal[
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "noop",
    ]
    attributes: dict[str, StrictInt] = Field(
        default_factory=dict, description="integers, e.g. {latency: 800, jitter: 50} (ms)"
    )
    stream: Literal["upstream", "downstream"] = Field(
        default="downstream", description="upstream: client to server; downstream: back"
    )
    toxicity: float = Field(default=1.0, ge=0.0, le=1.0, description="share of connections hit")

    @model_validator(mode="after")
    def _attributes_known(self) -> ToxicSpec:
        known = TOXIC_ATTRIBUTES[self.type]
        unknown = sorted(set(self.attributes) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise ValueError(
                f"unknown attribute(s) {', '.join(unknown)} for a {self.type} toxic "
                f"(allowed: {allowed})"
            )
        negative = sorted(k for k, v in self.attributes.items() if v < 0)
        if negative:
            raise ValueError(f"attribute(s) {', '.join(negative)} must be >= 0")
        if self.type == "bandwidth" and self.attributes.get("rate", 0) <= 0:
            raise ValueError("a bandwidth toxic needs rate > 0 (KB/s); use 'timeout' to stall")
        if self.type == "slicer" and self.attributes.get("average_size", 0) < 1:
            raise ValueError("a slicer toxic needs average_size >= 1")
        return self


class NetworkFaultSpec(FaultSpec):
    """A toxic on one of the target's proxies, or ``down: true`` to disable the proxy."""

    kind: Literal["network"]
    proxy: str = Field(description="a proxy declared under the target's toxiproxy.proxies")
    toxic: ToxicSpec | None = None
    down: bool = Field(default=False, description="disable the proxy (connections refused)")

    @model_validator(mode="after")
    def _toxic_or_down(self) -> NetworkFaultSpec:
        if (self.toxic is None) == (not self.down):
            raise ValueError("a network fault needs exactly one of 'toxic' or 'down: true'")
        return self


def toxic_name(run_id: str, fault_id: str) -> str:
    """The name the runner gives its toxic: ``resildrill-<run_id>-<fault_id>``."""
    return f"resildrill-{run_id}-{fault_id}"


def _toxiproxy(target: TargetSpec) -> ToxiproxySpec:
    if target.toxiproxy is None:
        raise InjectionFailed(f"target {target.name!r} declares no toxiproxy section")
    return target.toxiproxy


class NetworkFaultBackend(BackendHooks):
    """Toxics and proxy outages through a Toxiproxy API, each call bounded in time."""

    kind: ClassVar[str] = "network"
    spec_model: ClassVar[type[FaultSpec]] = NetworkFaultSpec

    def __init__(self, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s

    def _client(self, url: str, token_env: str | None = None) -> ToxiproxyClient:
        return ToxiproxyClient(url, self.timeout_s, token_env)

    # -- checks --------------------------------------------------------------------

    def preflight(self, spec: FaultSpec, ctx: FaultContext) -> list[str]:
        assert isinstance(spec, NetworkFaultSpec)
        try:
            tp = _toxiproxy(ctx.target)
        except InjectionFailed as exc:
            return [str(exc)]
        if spec.proxy not in tp.proxies:
            known = ", ".join(sorted(tp.proxies)) or "none"
            return [f"proxy {spec.proxy!r} is not declared in the target (declared: {known})"]
        client = self._client(tp.url, tp.token_env)
        try:
            client.version()
            proxy = client.get_proxy(spec.proxy)
        except ProxyUnreachable as exc:
            if tp.embedded and exc.refused:
                return []  # the runner starts the embedded server (ensure_embedded_proxy)
            return [ToolProblem(exc)]
        except ToolFailed as exc:
            return [ToolProblem(exc)]
        if proxy is None:
            if tp.embedded:
                return []  # created from the target when the embedded server is ensured
            return [f"proxy {spec.proxy!r} does not exist on the Toxiproxy at {tp.url}"]
        return []

    # -- inject --------------------------------------------------------------------

    def prepare(self, spec: FaultSpec, ctx: FaultContext) -> Recipe:
        assert isinstance(spec, NetworkFaultSpec)
        tp = _toxiproxy(ctx.target)
        if spec.proxy not in tp.proxies:
            raise InjectionFailed(f"proxy {spec.proxy!r} is not declared in the target")
        client = self._client(tp.url, tp.token_env)
        try:
            proxy = client.get_proxy(spec.proxy)
        except ToolFailed as exc:
            raise InjectionFailed(f"{exc}; nothing injected") from None
        if proxy is None:
            raise InjectionFailed(
                f"proxy {spec.proxy!r} does not exist at {tp.url}; nothing injected"
            )
        recipe: Recipe = {
            "kind": self.kind,
            "url": tp.url,
            "embedded": tp.embedded,
            "token_env": tp.token_env,
            "proxy": spec.proxy,
            "action": "down" if spec.down else "toxic",
        }
        if spec.down:
            recipe["was_enabled"] = bool(proxy.get("enabled", True))
            return recipe
        assert spec.toxic is not None
        attributes = dict(spec.toxic.attributes)
        if tp.embedded:
            lifetime = (spec.duration or LIFETIME_WITHOUT_DURATION_S) + LIFETIME_MARGIN_S
            attributes["resildrill_lifetime_ms"] = int(lifetime * 1000)
        recipe["toxic"] = {
            "name": toxic_name(ctx.run_id, spec.id),
            "type": spec.toxic.type,
            "stream": spec.toxic.stream,
            "toxicity": spec.toxic.toxicity,
            "attributes": attributes,
        }
        return recipe

    def inject(self, spec: FaultSpec, recipe: Recipe, ctx: FaultContext) -> Recipe:
        client = self._client(recipe["url"], recipe.get("token_env"))
        proxy = recipe["proxy"]
        if recipe["action"] == "down":
            if client.set_enabled(proxy, False) == 404:
                raise InjectionFailed(f"proxy {proxy!r} vanished before it could be disabled")
            return recipe
        toxic = recipe["toxic"]
        status, body = client.add_toxic(proxy, toxic)
        if status == 200:
            return recipe
        if status == 409:
            # Ours already (a retried inject): same name, type and stream is success.
            existing = client.get_toxic(proxy, toxic["name"])
            if existing and (existing.get("type"), str(existing.get("stream")).lower()) == (
                toxic["type"],
                toxic["stream"],
            ):
                return recipe
        raise InjectionFailed(
            f"toxic {toxic['name']} on {proxy}: {client.error_text(status, body)}"
        )

    # -- undo ----------------------------------------------------------------------

    def revert(self, recipe: Recipe) -> str:
        client = self._client(recipe["url"], recipe.get("token_env"))
        proxy = recipe["proxy"]
        try:
            if recipe["action"] == "down":
                if not recipe.get("was_enabled", True):
                    return f"proxy {proxy} was disabled before the drill: left as it was"
                if client.set_enabled(proxy, True) == 404:
                    return f"proxy {proxy} no longer exists: nothing to re-enable"
                return f"re-enabled proxy {proxy}"
            name = recipe["toxic"]["name"]
            if client.delete_toxic(proxy, name) == 404:
                return f"toxic {name} already gone from {proxy}"
            return f"removed toxic {name} from {proxy}"
        except ProxyUnreachable as exc:
            if recipe.get("embedded") and exc.refused:
                return "embedded proxy server not running: nothing left injected"
            raise

    def is_injected(self, recipe: Recipe) -> bool:
        client = self._client(recipe["url"], recipe.get("token_env"))
        proxy = recipe["proxy"]
        try:
            if recipe["action"] == "down":
                if not recipe.get("was_enabled", True):
                    return False
                found = client.get_proxy(proxy)
                return found is not None and not found.get("enabled", True)
            return client.get_toxic(proxy, recipe["toxic"]["name"]) is not None
        except ProxyUnreachable as exc:
            # A stopped embedded server holds no toxic; an unanswering one might.
            return not (recipe.get("embedded") and exc.refused)

    def self_heals(self, spec: FaultSpec, ctx: FaultContext) -> bool:
        return False

    # -- run scope (faults/base.py RunScopedBackend) -------------------------------

    def setup_run(self, ctx: FaultContext, run_dir: Path) -> list[dict[str, Any]]:
        """Make the target's Toxiproxy API answer with its proxies before the baseline.

        An embedded server this call starts belongs to the target, not the run: its pidfile
        and log go to the target's home (:func:`proxy_home`) and it is *not* returned as a
        run ``child``, so neither the end of the run, nor the watchdog, nor ``rollback``
        ever stops it (they remove toxics). Returns the ``proxy_paths`` journal record that
        lets ``rollback`` check every hop still carries traffic after a crash.
        """
        tp = ctx.target.toxiproxy
        if tp is None:
            return []
        ensure_embedded_proxy(
            ctx.target, proxy_home(ctx.target, ctx.target_dir), timeout_s=self.timeout_s
        )
        return [paths_record(ctx.target, ctx.target_dir)]

    def teardown_run(self, ctx: FaultContext, run_dir: Path) -> list[str]:
        """After the last probe: check every hop carries traffic (restarting an embedded
        server that died); the problems left, for the report's notices."""
        if ctx.target.toxiproxy is None:
            return []
        checked = check_paths(paths_record(ctx.target, ctx.target_dir))
        return [c.problem for c in checked if c.problem]

    def undo_hint(self, recipe: Recipe) -> str:
        url, proxy = recipe["url"].rstrip("/"), q(recipe["proxy"])
        if recipe["action"] == "down":
            return f"curl -X POST -d '{{\"enabled\": true}}' {url}/proxies/{proxy}"
        return f"curl -X DELETE {url}/proxies/{proxy}/toxics/{q(recipe['toxic']['name'])}"
