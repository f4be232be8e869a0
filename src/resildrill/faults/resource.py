"""Fault kind ``resource``: exhaust a host's CPU, memory or disk, the way heat and neglect
really break servers; every hog removed on revert.

Acts on hosts of the estate through their guards (:mod:`resildrill.remote`), one host or
several at once (``hosts:``, injected in parallel; the report gives each host's times and
the spread between them)::

    - {id: busy, kind: resource, host: replica-a, at: 10s, duration: 30s, cpu: {cores: 2}}
    - {id: squeeze, kind: resource, host: replica-b, at: 10s, duration: 30s,
       memory: {size: 512MiB}}                     # or {percent: 20%} of the host's RAM
    - {id: full, kind: resource, host: database, at: 10s, duration: 30s,
       disk: {path: /var/lib/wardehr, fill_to: 95%}}

A disk fill writes one file (``.resildrill-fill-<run>-<fault>``) under ``path`` until the
filesystem is ``fill_to`` used, and never leaves less free than the host's
``min_free_disk_mib``. CPU and memory hogs are children of the guard that the kernel kills
if the guard ends, however it ends; the guard reverts all three by itself when the runner
goes quiet.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from resildrill.drill.model import FaultSpec, Frozen
from resildrill.errors import InjectionFailed
from resildrill.faults.base import BackendHooks, FaultContext, Recipe
from resildrill.remote import hostops
from resildrill.remote.hooks import RemoteHooks

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB)\s*$")
_PCT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_UNIT_MIB = {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}


def _mib(value: Any) -> float:
    m = _SIZE_RE.match(str(value)) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"size {value!r} needs a unit: 512MiB, 2GiB")
    return float(m.group(1)) * _UNIT_MIB[m.group(2)]


def _pct(value: Any) -> float:
    m = _PCT_RE.match(str(value)) if isinstance(value, str) else None
    if m is None or not 0 < float(m.group(1)) <= 100:
        raise ValueError(f"percentage {value!r}: write it like 90%")
    return float(m.group(1))


SizeMiB = Annotated[float, BeforeValidator(_mib)]
Percent = Annotated[float, BeforeValidator(_pct)]


class CpuHog(Frozen):
    cores: int = Field(ge=1, le=256, description="busy processes, one per core")


class MemoryHog(Frozen):
    size: SizeMiB | None = Field(default=None, description="resident memory, e.g. 512MiB")
    percent: Percent | None = Field(default=None, description="of the host's RAM, e.g. 20%")

    @model_validator(mode="after")
    def _one(self) -> MemoryHog:
        if (self.size is None) == (self.percent is None):
            raise ValueError("memory needs exactly one of 'size' or 'percent'")
        return self


class DiskFill(Frozen):
    path: str = Field(pattern=r"^/", description="an absolute folder on the host's filesystem")
    fill_to: Percent = Field(description="how full the filesystem is made, e.g. 95%")


class ResourceFaultSpec(FaultSpec):
    """Exhaust CPU, memory or disk on one or several hosts of the estate."""

    kind: Literal["resource"]
    host: str | None = Field(default=None, description="a host of the target's 'hosts'")
    hosts: list[str] | None = Field(
        default=None, min_length=1, description="several hosts at once (injected in parallel)"
    )
    cpu: CpuHog | None = None
    memory: MemoryHog | None = None
    disk: DiskFill | None = None

    @model_validator(mode="after")
    def _check(self) -> ResourceFaultSpec:
        if (self.host is None) == (self.hosts is None):
            raise ValueError("a resource fault needs exactly one of 'host' or 'hosts'")
        if sum(x is not None for x in (self.cpu, self.memory, self.disk)) != 1:
            raise ValueError("a resource fault needs exactly one of 'cpu', 'memory' or 'disk'")
        if self.hosts is not None and len(set(self.hosts)) != len(self.hosts):
            raise ValueError("hosts: each host once")
        return self

    def host_names(self) -> list[str]:
        return [self.host] if self.host is not None else list(self.hosts or [])


def _request(spec: ResourceFaultSpec, host: dict[str, Any]) -> dict[str, Any]:
    if spec.cpu is not None:
        return {"action": "cpu", "cores": spec.cpu.cores}
    if spec.memory is not None:
        if spec.memory.size is not None:
            return {"action": "memory", "mib": int(spec.memory.size)}
        return {"action": "memory", "percent": spec.memory.percent}
    assert spec.disk is not None
    return {
        "action": "disk",
        "path": spec.disk.path,
        "fill_to_pct": spec.disk.fill_to,
        "floor_mib": host["spec"]["min_free_disk_mib"],
    }


def _parallel(fn: Any, items: list[Any]) -> list[Any]:
    """One thread per host (bounded): a fan-out lands on every host at nearly the same time."""
    if len(items) == 1:
        return [fn(items[0])]
    with ThreadPoolExecutor(max_workers=min(32, len(items))) as pool:
        return list(pool.map(fn, items))


class ResourceFaultBackend(RemoteHooks, BackendHooks):
    """CPU, memory and disk exhaustion on hosts, through their guards."""

    kind: ClassVar[str] = "resource"
    spec_model: ClassVar[type[FaultSpec]] = ResourceFaultSpec

    def remote_hosts(self, spec: FaultSpec, ctx: FaultContext) -> list[str]:
        assert isinstance(spec, ResourceFaultSpec)
        return spec.host_names()

    def preflight(self, spec: FaultSpec, ctx: FaultContext) -> list[str]:
        assert isinstance(spec, ResourceFaultSpec)
        problems = []
        for name in spec.host_names():
            rec = hostops.host_record(ctx.target, name, ctx.target_dir)
            if spec.disk is not None:
                plan = hostops.one_shot(
                    rec, "disk-plan", "--path", spec.disk.path,
                    "--fill-to-pct", str(spec.disk.fill_to),
                    "--floor-mib", str(rec["spec"]["min_free_disk_mib"]),
                )  # fmt: skip
                if plan.get("error"):
                    problems.append(f"host {name!r}: {plan['error']}")
                elif plan["bytes"] <= 0:
                    problems.append(
                        f"host {name!r}: {spec.disk.path} is already {spec.disk.fill_to:g}% "
                        "full or at its free-space floor (min_free_disk_mib): nothing to fill"
                    )
            else:
                hostops.one_shot(rec, "select", "--locator", '{"pid": 1}')  # reach and run
        return problems

    def prepare(self, spec: FaultSpec, ctx: FaultContext) -> Recipe:
        assert isinstance(spec, ResourceFaultSpec)
        hosts = [hostops.host_record(ctx.target, n, ctx.target_dir) for n in spec.host_names()]
        try:
            _parallel(lambda rec: hostops.session(rec, ctx.run_id), hosts)
        except InjectionFailed:
            raise
        except Exception as exc:
            raise InjectionFailed(str(exc)) from exc
        return {
            "kind": self.kind,
            "run_id": ctx.run_id,
            "fault_id": spec.id,
            "hosts": hosts,
            "requests": {rec["name"]: _request(spec, rec) for rec in hosts},
        }

    def inject(self, spec: FaultSpec, recipe: Recipe, ctx: FaultContext) -> Recipe:
        expires = recipe.get("_expires_at")
        lifetime = None if expires is None else max(0.0, float(expires) - ctx.clock.monotonic())

        def one(rec: dict[str, Any]) -> dict[str, Any]:
            request = recipe["requests"][rec["name"]]
            try:
                answer = hostops.apply(
                    rec, recipe["run_id"], recipe["fault_id"], lifetime, **request
                )
            except Exception as exc:
                return {"host": rec["name"], "error": str(exc)}
            facts: dict[str, Any] = {
                k: answer[k] for k in ("pids", "mib", "bytes", "file", "total") if k in answer
            }
            return {"host": rec["name"], "injected_mono": answer["at_runner_mono"],
                    "uncertainty_s": answer["clock_uncertainty_s"], **facts}  # fmt: skip

        timing = _parallel(one, recipe["hosts"])
        recipe = {**recipe, "hosts_timing": timing}
        failed = [t for t in timing if "error" in t]
        if failed:
            # what landed elsewhere is undone by the runner (the intent is journalled)
            raise InjectionFailed("; ".join(f"host {t['host']!r}: {t['error']}" for t in failed))
        return recipe

    def is_injected(self, recipe: Recipe) -> bool:
        return any(
            hostops.in_place(rec, recipe["run_id"], recipe["fault_id"]) for rec in recipe["hosts"]
        )

    def revert(self, recipe: Recipe) -> str:
        def one(rec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            return rec["name"], hostops.revert(rec, recipe["run_id"], recipe["fault_id"])

        done = dict(_parallel(one, recipe["hosts"]))
        for t in recipe.get("hosts_timing") or []:
            answer = done.get(t["host"], {})
            t["reverted_mono"] = answer.get("at_runner_mono")
            t["reverted_by"] = "guard" if answer.get("by_guard") else "runner"
        return "; ".join(f"host {h!r}: {a['detail']}" for h, a in done.items())

    def self_heals(self, spec: FaultSpec, ctx: FaultContext) -> bool:
        return False

    def plan_table(self, spec: FaultSpec, ctx: FaultContext, offset_s: float) -> list[str]:
        """What ``resildrill plan`` says the fault does, and where."""
        assert isinstance(spec, ResourceFaultSpec)
        if spec.cpu is not None:
            what = f"{spec.cpu.cores} busy process(es)"
        elif spec.memory is not None:
            size = spec.memory.size
            what = (
                f"hold {size:g} MiB"
                if size is not None
                else f"hold {spec.memory.percent:g}% of RAM"
            )
        else:
            assert spec.disk is not None
            what = f"fill {spec.disk.path} to {spec.disk.fill_to:g}%"
        where = ", ".join(spec.host_names())
        return [f"{spec.id}: {what} on {where}, through each host's guard"]

    def undo_hint(self, recipe: Recipe) -> str:
        return "resildrill rollback (the hosts' guards undo it from their journals)"
