"""The drill-file shape of a ``kind: heat`` fault, and the presets it may name.

Owns the YAML contract of the heatwave scenario: the room (cooling lost, first-order rise,
cooling restored, controlled fall), each server's thermal profile, the time scale and the
seed. Presets carry their source in a comment; numbers marked *derived* are our own choice
built from /work/shared/reference/clinical.md section 2 (see docs/heat.md), not vendor data.
Nothing here touches a process: the pure model (model.py) and the backend (backend.py)
read these values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from resildrill.drill.model import Duration, FaultSpec, Frozen, TargetSpec, format_duration

if TYPE_CHECKING:
    from resildrill.drill.model import DrillSpec, ManualStep

# --- presets ------------------------------------------------------------------------------

#: Initial heating slope after cooling loss, °C per minute (clinical.md 2f.1, 2b).
HEATING_RATES: dict[str, float] = {
    "low-density": 0.3,  # 2f: low-density rooms; GSTT/Google took hours to degrade
    "medium": 1.0,  # 2f
    "hosting365": 2.0,  # Hosting365 2008: ~2 °C/min, >40 °C within 15 min
    "high-density": 5.0,  # 2f: >=10 kW racks (Opengate: shutdown in <1 min, weak)
}

#: Server classes: inlet thresholds in °C. ``allowable`` is the ASHRAE class's allowable
#: upper limit (2a). Throttle/warning/caution/critical are BMC-style thresholds:
#: a3-fresh-air is Dell iDRAC (warning 42, critical 47, 2c); a2-volume follows the Dell C8000
#: (warning 38, 41 critical/amber, 43 graceful shutdown); a1-enterprise is a2 moved down by
#: the 3 °C between the A1 and A2 envelopes (derived). ``caution`` starts the graceful-
#: shutdown timer (HPE iLO: 60 s at caution, 2c); throttle is the CPU's TCC point (derived).
SERVER_CLASSES: dict[str, dict[str, float]] = {
    "a1-enterprise": {
        "allowable": 32.0,
        "throttle": 33.0,
        "warning": 35.0,
        "caution": 38.0,
        "critical": 42.0,
    },
    "a2-volume": {
        "allowable": 35.0,
        "throttle": 36.0,
        "warning": 38.0,
        "caution": 41.0,
        "critical": 45.0,
    },
    "a3-fresh-air": {
        "allowable": 40.0,
        "throttle": 40.0,
        "warning": 42.0,
        "caution": 45.0,
        "critical": 47.0,
    },
}

#: Whole-event presets: a starting inlet, a ceiling and a heating rate (derived from 1a-1c).
ROOM_PRESETS: dict[str, dict[str, float | str]] = {
    # London, 19 Jul 2022: 40 °C outside; cooling overwhelmed rather than gone; Google saw
    # degradation 2 h 42 m after the failure, power-down at 3 h 32 m, cooling fixed at
    # 7 h 40 m (1b). A slow rise from a warm room toward a ceiling past every threshold.
    "london-2022": {"initial": 25.0, "ceiling": 48.0, "rate": "low-density"},
    # Hosting365, Dublin 2008: all chillers tripped, ~2 °C/min, >40 °C within 15 min (2b).
    "chiller-trip": {"initial": 22.0, "ceiling": 55.0, "rate": "hosting365"},
}


# --- spec models ----------------------------------------------------------------------------


class RoomSpec(Frozen):
    """The room's inlet temperature: steady, then cooling lost, then cooling restored."""

    preset: Literal["london-2022", "chiller-trip"] | None = Field(
        default=None, description="start from a whole-event preset; fields below override it"
    )
    initial: float | None = Field(
        default=None, ge=0, le=40, description="inlet °C with cooling working (default 22)"
    )
    ceiling: float | None = Field(
        default=None,
        ge=10,
        le=80,
        description="inlet °C the room tends to without cooling, at full IT load (default 48)",
    )
    rate: float | str | None = Field(
        default=None,
        description="initial heating slope in °C/min, or a preset: " + ", ".join(HEATING_RATES),
    )
    cooling_lost_at: Duration = Field(default=0.0, description="model time from injection")
    cooling_restored_at: Duration | None = Field(
        default=None, description="model time from injection; omitted: not within the fault"
    )
    recool_rate: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="fastest controlled fall after cooling returns, °C/h (ASHRAE: 20 °C/h)",
    )
    other_load: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="share of the room's heat from kit not listed under servers (always on)",
    )

    @model_validator(mode="after")
    def _check(self) -> RoomSpec:
        if isinstance(self.rate, str) and self.rate not in HEATING_RATES:
            raise ValueError(
                f"unknown heating rate {self.rate!r} (known: {', '.join(HEATING_RATES)})"
            )
        if isinstance(self.rate, int | float) and not 0 < float(self.rate) <= 60:
            raise ValueError("rate must be between 0 and 60 °C/min")
        if self.cooling_restored_at is not None and self.cooling_restored_at < self.cooling_lost_at:
            raise ValueError("cooling_restored_at must not be before cooling_lost_at")
        return self


class NetworkGearSpec(Frozen):
    """Network kit in the hot room, played as toxics on one of the target's proxies.

    Throttled/warning: added latency (queues, retransmits); caution: a share of connections
    reset; shutdown, power-off or lost: the proxy disabled. Values are chosen to be visible
    in a drill (derived), not measured on real switches.
    """

    proxy: str = Field(description="a proxy declared under the target's toxiproxy.proxies")
    latency: int = Field(default=100, ge=0, le=60_000, description="ms added while throttled")
    jitter: int = Field(default=50, ge=0, le=60_000, description="ms of jitter on that latency")
    reset_toxicity: float = Field(
        default=0.3, ge=0, le=1, description="share of connections reset at caution"
    )


class ContainerSpec(Frozen):
    """A server that is a container, played through the docker backend (CPU quota, stop, kill)."""

    select: dict[str, Any] = Field(
        description="which container: as a docker fault's select (name, labels or compose)"
    )
    docker_host: str | None = Field(default=None, description="engine address (DOCKER_HOST)")
    stop_timeout: Duration = Field(default=5.0, description="grace of a graceful shutdown")

    @model_validator(mode="after")
    def _select_valid(self) -> ContainerSpec:
        from resildrill.faults.docker import ContainerSelector

        ContainerSelector.model_validate(self.select)
        return self


class ServerSpec(Frozen):
    """One server of the target in the hot room: its class, rack position and overrides."""

    server_class: Literal["a1-enterprise", "a2-volume", "a3-fresh-air"] = Field(
        default="a2-volume", alias="class", description="ASHRAE class preset of thresholds"
    )
    rack_offset: float = Field(
        default=0.0, ge=-10, le=20, description="°C above the room inlet at its rack position"
    )
    heat_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="its share of the room's heat (default: the servers split 1 - other_load)",
    )
    throttle: float | None = None
    warning: float | None = None
    caution: float | None = None
    critical: float | None = None
    shutdown_after: Duration = Field(
        default=60.0, description="model time at or above caution before a graceful shutdown"
    )
    hysteresis: float = Field(
        default=3.0, ge=0.5, le=20, description="°C below warning before it restarts"
    )
    retry_interval: Duration = Field(
        default=300.0,
        description="model time off before a restart attempt (DL380 G3: 5 min), jittered ±20%",
    )
    hardware_loss_after: Duration | None = Field(
        default=None,
        description="model time at or above critical after which it is lost: it stays off "
        "until the fault's end (the drill's manual step stands for the repair)",
    )
    on_critical: Literal["power-off", "shutdown"] = Field(
        default="power-off", description="what the BMC does at critical"
    )
    network: NetworkGearSpec | None = Field(
        default=None,
        description="this is network gear, not a service process: play it on a proxy",
    )
    container: ContainerSpec | None = Field(
        default=None, description="this is a container: play it through the docker backend"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> ServerSpec:
        if self.network is not None and self.container is not None:
            raise ValueError("a server is network gear or a container, not both")
        return self

    model_config = Frozen.model_config | {"populate_by_name": True}


class ThrottleSpec(Frozen):
    """How a throttled local process is slowed: a SIGSTOP/SIGCONT duty cycle in real time."""

    period: Duration = Field(default=0.2, description="real time of one stop+run cycle")
    stop_fraction: float = Field(
        default=0.5, ge=0.05, le=0.9, description="share of each period the process is stopped"
    )
    cpus: float = Field(
        default=0.2, gt=0, le=64, description="CPU quota for a throttled container (docker)"
    )


class HeatFaultSpec(FaultSpec):
    """A heatwave: cooling fails, servers throttle, shut down, flap, and restart as it cools."""

    kind: Literal["heat"]
    time_scale: float = Field(
        default=60.0, ge=1, le=36_000, description="model seconds per real second"
    )
    tick: Duration = Field(
        default=5.0, description="model time step (a BMC polls its inlet sensor every ~5 s)"
    )
    seed: int = Field(default=0, description="seeds the per-server jitter")
    jitter: float = Field(
        default=0.5, ge=0, le=5, description="± °C of seeded jitter on each rack offset"
    )
    room: RoomSpec = Field(default_factory=RoomSpec)
    servers: dict[str, ServerSpec] = Field(
        min_length=1,
        description="services of the target (process locators) in the room, or network gear",
    )
    supervisor: str | None = Field(
        default=None,
        description="the target service whose process restarts the servers; heat freezes it "
        "while a server must stay off, and resumes it to restart one",
    )
    throttle: ThrottleSpec = Field(default_factory=ThrottleSpec)
    restart_time: Duration = Field(
        default=2.0,
        description="real time a server takes to come back (for warnings; measured in runs)",
    )

    @model_validator(mode="after")
    def _check(self) -> HeatFaultSpec:
        if self.duration is None:
            raise ValueError("a heat fault needs a duration (real time it acts)")
        if self.tick <= 0:
            raise ValueError("tick must be > 0")
        if self.duration * self.time_scale / self.tick > 100_000:
            raise ValueError("tick too small for the modelled span (over 100000 steps)")
        # Thresholds out of order, a ceiling below the start: refused here, with a location,
        # rather than when the model runs.
        from resildrill.faults.heat.model import resolve

        resolve(self)
        return self

    def drill_warnings(
        self, target: TargetSpec | None, drill: DrillSpec | None = None
    ) -> list[str]:
        """What `validate` warns about: scaled intervals shorter than real restarts, etc.,
        and, given the drill, servers that can be lost with no repair step to wait for."""
        from resildrill.faults.heat.schedule import heat_warnings

        out = heat_warnings(self, target)
        if drill is not None:
            out += self.repair_warnings(drill.manual)
        return out

    def repair_warnings(self, manual: Sequence[ManualStep]) -> list[str]:
        """A server that can be lost (``hardware_loss_after``) stays off until the fault's
        end; without a manual step inside the fault (``at`` <= step < ``at + duration``) to
        hold that end, it comes back with no repair confirmed. A step at the end itself is
        too late: the runner reverts before it asks."""
        losable = sorted(n for n, s in self.servers.items() if s.hardware_loss_after is not None)
        if not losable or self.duration is None:
            return []
        end = self.at + self.duration
        if any(self.at <= m.at < end for m in manual):
            return []
        names = ", ".join(repr(n) for n in losable)
        return [
            f"{'server' if len(losable) == 1 else 'servers'} {names} can be lost "
            f"(hardware_loss_after) but no manual step falls between this fault's start "
            f"({format_duration(self.at)}) and its end ({format_duration(end)}): a lost server "
            "comes back at the end with no repair confirmed; add the operator's repair step "
            f"just before {format_duration(end)} (a manual step holds the schedule until it "
            "is answered)"
        ]

    @property
    def horizon_model_s(self) -> float:
        """The model time the fault covers (its real duration times the scale)."""
        assert self.duration is not None
        return self.duration * self.time_scale
