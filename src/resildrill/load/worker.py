"""The Locust-side plugin: per-request samples -> 100 ms buckets -> the runner.

Owns what runs inside Locust processes (never in the runner: gevent patches the process
at import, STYLE.md P11). On a worker it subscribes to ``events.request``, stamps each
request's start on ``time.monotonic()``, buckets samples per workflow at 100 ms
(:class:`~resildrill.load.stream.Bucketer`) and sends the buckets to the master every
``FLUSH_INTERVAL_S`` as a custom Locust message; the master relays them, one JSON line
each, to the pipe its parent (the runner's ``LoadDriver``) reads. Going through Locust's
own master-worker channel means a remote ``--worker --master-host`` joins the timeline too.

Every Locust process the driver starts also dies with it: ``PR_SET_PDEATHSIG`` is set by
the driver, and here a greenlet watches the parent pid and the stdin pipe (EOF = the
runner is gone), so a SIGKILLed runner leaves no load running against staging.

Configuration arrives in the ``RESILDRILL_LOAD`` environment variable (JSON, see
``driver.child_config``); this module receives a LoadSpec, never runner state.

The bearer token travels the other way: the driver writes it (and each refreshed one) to
the master's stdin; the master sends it to every worker over Locust's channel, and a
worker asks for it when it joins (``TOKEN_REQUEST_TYPE``), so remote workers get it too.
Users read it with :func:`bearer_token`; the first requests wait for the master's answer.

The drill's LoadSpec reaches a remote worker the same way: the master answers a joining
worker with the spec it was started with (``SPEC_TYPE``), so pace and request timeout
follow the drill, not whatever the load host's environment says. Only ``ca_bundle`` stays
the worker's own (a path on the runner's host means nothing on another). Users read the
spec in force with :func:`current_spec`.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import socket
import time
from typing import Any

import gevent  # noqa: TID251 - this module only ever runs inside a Locust process
import gevent.event  # noqa: TID251
import gevent.os  # noqa: TID251
from locust import events  # noqa: TID251
from locust.env import Environment  # noqa: TID251
from locust.runners import MasterRunner, WorkerRunner  # noqa: TID251

from resildrill.drill.model import LoadSpec
from resildrill.load.stream import FLUSH_INTERVAL_S, Bucketer, encode, workflow_of

#: Module docstring addendum: a worker on another host has its own monotonic clock. The
#: master pings it; the worker learns its offset from the runner's clock (the master runs
#: on the runner's host), realigns its bucket grid, and tags each message with the offset
#: and its uncertainty (half the round trip), which the driver subtracts and reports.


CONFIG_ENV = "RESILDRILL_LOAD"
STREAM_FD_ENV = "RESILDRILL_STREAM_FD"
MESSAGE_TYPE = "resildrill_buckets"
STOP_TYPE = "resildrill_stop"
STOPPED_TYPE = "resildrill_stopped"
PING_TYPE = "resildrill_ping"
PONG_TYPE = "resildrill_pong"
CLOCK_TYPE = "resildrill_clock"
TOKEN_TYPE = "resildrill_token"
TOKEN_REQUEST_TYPE = "resildrill_token_request"
SPEC_TYPE = "resildrill_spec"
#: How long a worker's users wait for the master's answer before their first request.
_TOKEN_WAIT_S = 10.0
#: Remote workers are pinged this often; the estimate with the shortest round trip of the
#: last ``_PING_KEEP`` wins (NTP's idea: the fastest exchange bounds the error best).
_PING_S = 0.5
_PING_KEEP = 20
#: Tests simulate a remote host's monotonic clock by shifting this process's stamps.
_SKEW = float(os.environ.get("RESILDRILL_TEST_CLOCK_SKEW", "0") or 0)


def _now() -> float:
    """This host's monotonic clock (shifted only when a test simulates another host)."""
    return time.monotonic() + _SKEW


#: Context key users put the monotonic start of a request under (see users.py).
START_KEY = "resildrill_start"
#: How often the parent-pid watch runs; the kill test allows 5 s in total.
_WATCH_S = 0.5


class _Plugin:
    """State of the plugin in one Locust process."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.t0 = float(config["t0"])
        self.bucketer = Bucketer(self.t0)
        self.name = f"{socket.gethostname()}-{os.getpid()}"
        self.environment: Environment | None = None
        self.stopped_workers: set[str] = set()
        #: Local workers share the runner's clock; a remote one waits for the master's.
        self.remote = bool(config.get("unsynced"))
        self.offset: float | None = None if self.remote else 0.0
        self.uncertainty = 0.0
        self.pings: dict[str, list[tuple[float, float]]] = {}
        self.stream_fd: int | None = None
        #: The bearer token the driver sent (None: none, or none sent yet).
        self.token: str | None = None
        #: Set once this process knows its token: the master has answered (worker), the
        #: driver has sent it (master), or nobody will (a local runner).
        self.token_known = gevent.event.Event()
        #: Workers that asked for the token before the master had it.
        self.token_waiting: set[str] = set()

    # -- samples ---------------------------------------------------------------------

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        latency_s = (response_time or 0.0) / 1000.0
        started = (context or {}).get(START_KEY)
        if isinstance(started, float):
            started += _SKEW
        else:
            # Locust times requests with perf_counter, which on Linux is the same
            # CLOCK_MONOTONIC as time.monotonic(): now - response_time is the start.
            started = _now() - latency_s
        self.bucketer.add(workflow_of(name), started, latency_s, exception is None)

    # -- output ----------------------------------------------------------------------

    def write_line(self, message: dict[str, Any]) -> None:
        """Write one message to the parent's pipe, cooperatively; exit if it is gone."""
        if self.stream_fd is None:
            return
        data = encode(message)
        try:
            while data:
                n = gevent.os.nb_write(self.stream_fd, data)
                data = data[n:]
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                os._exit(3)  # the runner is gone: stop loading the target at once
            raise

    def flush(self) -> None:
        msg = self.bucketer.drain(self.name, _now())
        if msg is None or self.environment is None:
            return
        if self.remote:
            msg["clock_offset"] = self.offset
            msg["clock_uncertainty"] = self.uncertainty
        runner = self.environment.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message(MESSAGE_TYPE, msg)
        else:
            self.write_line(msg)

    def flush_loop(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL_S)
            self.flush()

    # -- control and lifelines ---------------------------------------------------------

    def watch_parent(self) -> None:
        parent = self.config.get("parent_pid")
        while parent:
            if os.getppid() != parent:
                os._exit(3)
            gevent.sleep(_WATCH_S)

    def read_control(self) -> None:
        """Commands from the driver on stdin; EOF means the driver is gone."""
        if not self.config.get("parent_pid"):
            return  # a remote worker: its stdin is a person's terminal or nothing
        os.set_blocking(0, False)
        buf = b""
        while True:
            chunk = gevent.os.nb_read(0, 65536)
            if not chunk:
                os._exit(0)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                with contextlib.suppress(ValueError):
                    self.command(json.loads(line))

    def command(self, cmd: dict[str, Any]) -> None:
        if cmd.get("cmd") == "token":
            token = cmd.get("token")
            self.set_token(token if isinstance(token, str) else None)
        elif cmd.get("cmd") == "stop" and self.environment is not None:
            gevent.spawn(self.stop_test)

    # -- bearer token (driver -> master -> every worker) ---------------------------------

    def set_token(self, token: str | None) -> None:
        """A token from the driver: kept, and on the master sent to every worker."""
        self.token = token
        self.token_known.set()
        runner = self.environment.runner if self.environment is not None else None
        if isinstance(runner, MasterRunner):
            waiting, self.token_waiting = self.token_waiting, set()
            for client in {c.id for c in runner.clients.all} | waiting:
                runner.send_message(TOKEN_TYPE, {"token": token}, client)

    def on_token_request(self, environment: Environment, msg: Any, **_: Any) -> None:
        """On the master: a worker that joined asks for the token (answered once known);
        it gets the drill's LoadSpec at once."""
        drill_spec = self.config.get("spec")
        if drill_spec is not None and environment.runner is not None:
            environment.runner.send_message(SPEC_TYPE, {"spec": drill_spec}, str(msg.node_id))
        if self.token_known.is_set() and environment.runner is not None:
            environment.runner.send_message(TOKEN_TYPE, {"token": self.token}, str(msg.node_id))
        else:
            self.token_waiting.add(str(msg.node_id))

    def on_token(self, environment: Environment, msg: Any, **_: Any) -> None:
        """On a worker: the master's token (first answer or a refresh); users use it next."""
        token = (msg.data or {}).get("token")
        self.token = token if isinstance(token, str) else None
        self.token_known.set()

    def on_spec(self, environment: Environment, msg: Any, **_: Any) -> None:
        """On a worker: the drill's LoadSpec from the master. A worker the driver started
        already has it; a remote one adopts it, keeping its own CA bundle."""
        if not self.remote:
            return
        try:
            drill = LoadSpec.model_validate((msg.data or {}).get("spec") or {})
        except ValueError:
            return  # a master of another version: keep this host's spec
        global _DRILL_SPEC
        _DRILL_SPEC = drill.model_copy(update={"ca_bundle": _own_spec().ca_bundle})

    def stop_test(self) -> None:
        """Stop every worker's users, wait for their last buckets, tell the parent.

        Locust's own ``MasterRunner.stop`` polls user counts that workers report every
        3 s; asking each worker directly makes a drill's stop take milliseconds instead.
        """
        assert self.environment is not None
        runner = self.environment.runner
        if isinstance(runner, MasterRunner):
            if runner.shape_greenlet is not None:
                runner.shape_greenlet.kill(block=True)
            clients = [c.id for c in runner.clients.all]
            for cid in clients:
                runner.send_message(STOP_TYPE, None, cid)
            deadline = time.monotonic() + 3.0
            while len(self.stopped_workers) < len(clients) and time.monotonic() < deadline:
                gevent.sleep(0.02)
        elif runner is not None:
            self.stop_users()
        self.write_line(
            {
                "type": "state",
                "state": "stopped",
                "at": time.monotonic(),
                "workers_stopped": len(self.stopped_workers),
            }
        )

    def stop_users(self, **_: Any) -> None:
        """On a worker: stop users now, flush, and report that this worker is done."""
        assert self.environment is not None
        runner = self.environment.runner
        if runner is not None:
            runner.stop()
        self.flush()
        if isinstance(runner, WorkerRunner):
            runner.send_message(STOPPED_TYPE, {"worker": self.name})

    def on_worker_stopped(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.stopped_workers.add(str(msg.node_id))

    # -- wiring ----------------------------------------------------------------------

    def on_init(self, environment: Environment, **_: Any) -> None:
        self.environment = environment
        runner = environment.runner
        fd = os.environ.get(STREAM_FD_ENV)
        if fd and not isinstance(runner, WorkerRunner):
            # Only the master (or a local runner) owns the pipe to the parent; workers
            # talk to the master, so a stray inherited variable never touches their fds.
            self.stream_fd = int(fd)
            os.set_blocking(self.stream_fd, False)
        gevent.spawn(self.watch_parent)
        gevent.spawn(self.read_control)
        if isinstance(runner, MasterRunner):
            runner.register_message(MESSAGE_TYPE, self.relay)
            runner.register_message(STOPPED_TYPE, self.on_worker_stopped)
            runner.register_message(PONG_TYPE, self.on_pong)
            runner.register_message(TOKEN_REQUEST_TYPE, self.on_token_request)
            if not self.config.get("token_pushed"):
                self.token_known.set()  # not driven: no token will come from a parent
            gevent.spawn(self.ping_loop)
            events.test_start.add_listener(self.on_master_start)  # type: ignore[no-untyped-call]
            events.spawning_complete.add_listener(self.on_spawned)  # type: ignore[no-untyped-call]
        else:
            if isinstance(runner, WorkerRunner):
                runner.register_message(STOP_TYPE, self.stop_users)
                runner.register_message(PING_TYPE, self.on_ping)
                runner.register_message(CLOCK_TYPE, self.on_clock)
                runner.register_message(TOKEN_TYPE, self.on_token)
                runner.register_message(SPEC_TYPE, self.on_spec)
                runner.send_message(TOKEN_REQUEST_TYPE, None)
            else:
                self.token_known.set()  # a local runner: only its own environment
            events.request.add_listener(self.on_request)  # type: ignore[no-untyped-call]
            events.test_stop.add_listener(lambda **_: self.flush())  # type: ignore[no-untyped-call]
            gevent.spawn(self.flush_loop)
        self.write_line({"type": "state", "state": "init", "pid": os.getpid()})

    # -- clocks of remote workers (master <-> worker) -----------------------------------

    def ping_loop(self) -> None:
        """On the master: ping every worker; only remote ones answer."""
        assert self.environment is not None
        runner = self.environment.runner
        while isinstance(runner, MasterRunner):
            for client in list(runner.clients.all):
                runner.send_message(PING_TYPE, {"m": time.monotonic()}, client.id)
            gevent.sleep(_PING_S)

    def on_ping(self, environment: Environment, msg: Any, **_: Any) -> None:
        if self.remote and environment.runner is not None:
            environment.runner.send_message(PONG_TYPE, {"m": msg.data["m"], "w": _now()})

    def on_pong(self, environment: Environment, msg: Any, **_: Any) -> None:
        """On the master: offset = worker clock - master clock at the exchange's midpoint."""
        back = time.monotonic()
        sent, theirs = float(msg.data["m"]), float(msg.data["w"])
        history = self.pings.setdefault(str(msg.node_id), [])
        history.append((back - sent, theirs - (sent + back) / 2))
        del history[:-_PING_KEEP]
        rtt, offset = min(history)
        if environment.runner is not None:
            environment.runner.send_message(
                CLOCK_TYPE,
                {"offset": offset, "uncertainty": rtt / 2, "t0": self.t0},
                str(msg.node_id),
            )

    def on_clock(self, environment: Environment, msg: Any, **_: Any) -> None:
        """On a remote worker: adopt the offset and put the bucket grid on the runner's t0."""
        first = self.offset is None
        self.flush()  # buckets so far were on the old grid (and unsynced when first)
        self.offset = float(msg.data["offset"])
        self.uncertainty = float(msg.data["uncertainty"])
        t0 = float(msg.data["t0"]) + self.offset
        if first or abs(t0 - self.bucketer.t0) > 0.001:
            self.bucketer.t0 = t0

    def relay(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.write_line(msg.data)

    def on_master_start(self, **_: Any) -> None:
        self.write_line({"type": "state", "state": "started", "at": time.monotonic()})

    def on_spawned(self, user_count: int, **_: Any) -> None:
        self.write_line(
            {"type": "state", "state": "spawned", "users": user_count, "at": time.monotonic()}
        )


_PLUGIN: _Plugin | None = None


def config() -> dict[str, Any]:
    """The run's configuration as the driver wrote it (empty outside a driven run)."""
    raw = os.environ.get(CONFIG_ENV)
    return json.loads(raw) if raw else {}


def spec() -> LoadSpec:
    """The drill's LoadSpec as the driver passed it (defaults outside a driven run)."""
    return LoadSpec.model_validate(config().get("spec", {}))


#: The spec a remote worker got from the master (None: this process's own is in force).
_DRILL_SPEC: LoadSpec | None = None


@functools.cache
def _own_spec() -> LoadSpec:
    return spec()


def current_spec() -> LoadSpec:
    """The LoadSpec in force: the drill's as the master sent it (remote workers), else this
    process's own (:func:`spec`). Cheap: call it where the value is used."""
    return _DRILL_SPEC if _DRILL_SPEC is not None else _own_spec()


def install() -> None:
    """Register the plugin with Locust's events; idempotent. Called by the locustfiles."""
    global _PLUGIN
    if _PLUGIN is not None:
        return
    cfg = config()
    if "t0" not in cfg:
        # A worker the driver did not start (another host, or a bare `locust -f` run):
        # bucket on its own clock until the master tells it the runner's.
        cfg["t0"] = _now()
        cfg["unsynced"] = True
    _PLUGIN = _Plugin(cfg)
    events.init.add_listener(_PLUGIN.on_init)  # type: ignore[no-untyped-call]


def bearer_token() -> str | None:
    """The bearer token for the next request (``Authorization: Bearer <token>``).

    The one the driver sent through the master (refreshed while load runs); on a worker
    the first call waits up to 10 s for the master's answer. Without one (not driven, or
    the drill names no token), the variable ``bearer_token_env`` of this process's
    ``RESILDRILL_LOAD`` spec, if set. Call it for every request: it is an attribute read.
    Your own users (``locustfile:``) call it to send the drill's token.
    """
    plugin = _PLUGIN
    if plugin is not None:
        if not plugin.token_known.is_set():
            plugin.token_known.wait(_TOKEN_WAIT_S)
        if plugin.token is not None:
            return plugin.token
    name = _own_spec().bearer_token_env
    return (os.environ.get(name) or None) if name else None


def record_action(workflow: str, started_at: float, ok: bool) -> None:
    """Count one clinical action (several requests) and whether it failed."""
    if _PLUGIN is not None:
        _PLUGIN.bucketer.add_action(workflow, started_at, ok)


def record_write(
    resource: str,
    id_: str,
    identifier: str,
    version: str | None = None,
    op: str = "create",
    *,
    acknowledged: bool = True,
    digest: str | None = None,
) -> None:
    """Remember a write for the integrity read-back after the recovery window.

    Call it for every write your users send: ``acknowledged=True`` once the system
    confirmed it (a 2xx, an HL7 AA/CA), ``acknowledged=False`` when it did not (an error,
    a timeout) so a write stored anyway is reported apart, never counted as lost.
    ``resource``/``id``/``identifier`` are what the drill's verifier reads it back by (the
    ``http`` verifier fills ``{resource}``, ``{id}`` and ``{identifier}`` into its URL);
    ``version`` an update's acknowledged version; ``digest`` a hash of the content sent.
    The acknowledgement time is stamped here on the monotonic clock.
    """
    if _PLUGIN is not None:
        _PLUGIN.bucketer.add_write(
            {
                "resource": resource,
                "id": id_,
                "identifier": identifier,
                "version": version,
                "op": op,
                "acknowledged": acknowledged,
                "digest": digest,
                "at": _now(),
            }
        )


def record_message(
    workflow: str,
    message_type: str,
    control_id: str,
    patient: str,
    sent_at: float,
    ack: str | None,
    *,
    accepted: bool,
    detail: str | None = None,
) -> None:
    """Remember one HL7 message for the delivery read-back after the recovery window.

    ``sent_at`` is the monotonic time the message went out; ``ack`` the acknowledgement code
    (AA, AE, AR, CA, CE, CR) or None when none came (``detail`` says why). ``accepted``: the
    engine took responsibility for it (AA/CA), so never filing it is a loss.
    """
    if _PLUGIN is not None:
        _PLUGIN.bucketer.add_message(
            {
                "workflow": workflow,
                "type": message_type,
                "control_id": control_id,
                "patient": patient,
                "sent_at": sent_at + _SKEW,
                "acked_at": _now(),
                "ack": ack,
                "accepted": accepted,
                "detail": detail,
            }
        )
