"""The embedded Toxiproxy server as a process of the *target*, and the check that every
proxied hop still carries traffic.

The server (``python -m resildrill.proxy``) carries clinicians' traffic on every hop a target
routes through it, so it lives with the target, not with a run: started in its own session
by ``target up`` or by the first run that needs it, its pidfile and log in the target's home
(:func:`proxy_home`), and stopped only by ``target down``. A run, its watchdog and
``rollback`` remove toxics and re-enable proxies; they never stop the server. After a run
(and after a crash, by the watchdog and ``rollback``) :func:`check_paths` opens a
connection through each listen address, restarting an embedded server that is no longer
there, so a network path is never left cut by the tool.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resildrill.drill.model import TargetSpec
from resildrill.errors import ToolFailed
from resildrill.faults.process import is_same_process, proc_cmdline, proc_start_time
from resildrill.faults.toxiproxy_client import ProxyUnreachable, ToxiproxyClient
from resildrill.statehome import state_home

EMBEDDED_START_TIMEOUT_S = 10.0
PIDFILE = "toxiproxy.pid"
UPSTREAMS_FILE = "upstreams.json"
#: A hop that does not accept a connection within this is reported as cut.
PATH_CONNECT_TIMEOUT_S = 1.0
#: Servers this process started: kept so they are reaped when stopped here (a dropped
#: Popen of a live child is a ResourceWarning), while still outliving a killed runner.
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def proxy_home(target: TargetSpec, target_dir: Path) -> Path:
    """Where the target's embedded proxy keeps its pidfile and log: the target's own
    ``run_dir`` when it declares one (as ``target up`` uses), else a folder per target in
    resildrill's state folder. Never a run's folder: the proxy outlives every run."""
    if target.run_dir is not None:
        path = Path(target.run_dir)
        return (path if path.is_absolute() else target_dir / path).resolve()
    return state_home() / "targets" / target.name


def declared_proxies(target: TargetSpec) -> list[dict[str, Any]]:
    """The target's proxies as ``POST /populate`` takes them."""
    tp = target.toxiproxy
    if tp is None:
        return []
    return [
        {"name": name, "listen": route.listen, "upstream": route.upstream, "enabled": True}
        for name, route in sorted(tp.proxies.items())
    ]


def ensure_embedded_proxy(
    target: TargetSpec, home: Path, seed: int | None = None, timeout_s: float = 2.0
) -> str:
    """Make the target's Toxiproxy API answer with its declared proxies; return its URL.

    Embedded (``toxiproxy.embedded: true``, the default): if nothing answers at
    ``toxiproxy.url``, start ``python -m resildrill.proxy`` there as its own process (own
    session, so a killed runner does not cut the target's network), pid and start time in
    ``home/toxiproxy.pid``, log in ``home/toxiproxy.log``; then create the declared proxies
    that are missing or differ (``POST /populate``; identical ones are kept with their
    connections). External: start nothing and change nothing; raise ToolFailed if it does
    not answer or lacks a declared proxy.
    """
    tp = target.toxiproxy
    if tp is None:
        raise ToolFailed(f"target {target.name!r} declares no toxiproxy section")
    client = ToxiproxyClient(tp.url, timeout_s, tp.token_env)
    if not tp.embedded:
        present = client.proxies()
        missing = sorted(set(tp.proxies) - set(present))
        if missing:
            raise ToolFailed(f"Toxiproxy at {tp.url} lacks proxies: {', '.join(missing)}")
        return tp.url
    _ensure_running(client, home, declared_proxies(target), seed)
    return tp.url


def _ensure_running(
    client: ToxiproxyClient, home: Path, proxies: list[dict[str, Any]], seed: int | None
) -> bool:
    """Start the embedded server if nothing answers, then populate; True if started.

    The server is started with ``--upstreams-file home/upstreams.json``, rewritten here
    with the target's declared upstreams: it refuses any other (no open relay)."""
    home.mkdir(parents=True, exist_ok=True)
    allowed = home / UPSTREAMS_FILE
    tmp = allowed.with_suffix(".tmp")
    tmp.write_text(json.dumps(sorted({str(p["upstream"]) for p in proxies})))
    tmp.replace(allowed)
    started = False
    try:
        client.version()
    except ProxyUnreachable as exc:
        if not exc.refused:
            raise
        _start_embedded(client, home, seed)
        started = True
    client.populate(proxies)
    return started


def _start_embedded(client: ToxiproxyClient, home: Path, seed: int | None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable,
        "-m",
        "resildrill.proxy",
        "--host",
        client.host,
        "--port",
        str(client.port),
        "--upstreams-file",
        str(home / UPSTREAMS_FILE),
    ]
    if seed is not None:
        args += ["--seed", str(seed)]
    if client.token_env:
        # the server requires the token the target names (it inherits the variable)
        args += ["--token-env", client.token_env]
    with open(home / "toxiproxy.log", "ab") as log:
        proc = subprocess.Popen(  # our own interpreter and module, no shell
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    _STARTED[proc.pid] = proc
    start = proc_start_time(proc.pid)
    (home / PIDFILE).write_text(json.dumps({"pid": proc.pid, "start_time": start}))
    deadline = time.monotonic() + EMBEDDED_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ToolFailed(
                f"embedded proxy exited with {proc.returncode}; see {home / 'toxiproxy.log'}"
            )
        try:
            client.version()
            return
        except ProxyUnreachable:
            time.sleep(0.05)
    stop_embedded_proxy(home)
    raise ToolFailed(f"embedded proxy did not answer at {client.url} within 10 s")


def stop_embedded_proxy(home: Path, timeout_s: float = 5.0) -> bool:
    """Stop the server :func:`ensure_embedded_proxy` started into ``home`` (pid checked);
    True if it ran. Only ``target down`` (and tests) call this: never a run."""
    path = home / PIDFILE
    try:
        info = json.loads(path.read_text())
        pid, start = int(info["pid"]), info["start_time"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    running = (
        start is not None
        and is_same_process(pid, int(start))
        and "resildrill.proxy" in (proc_cmdline(pid) or "")
    )
    if running:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and is_same_process(pid, int(start)):
            time.sleep(0.05)
        if is_same_process(pid, int(start)):
            os.kill(pid, signal.SIGKILL)
    child = _STARTED.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout_s)
    path.unlink(missing_ok=True)
    return running


# -- is every hop carrying traffic? -------------------------------------------------------


def paths_record(target: TargetSpec, target_dir: Path) -> dict[str, Any]:
    """The journal record (``type: proxy_paths``) that lets a watchdog or ``rollback``
    check, and if need be restore, the target's proxied hops from the journal alone."""
    tp = target.toxiproxy
    assert tp is not None
    return {
        "type": "proxy_paths",
        "url": tp.url,
        "embedded": tp.embedded,
        "token_env": tp.token_env,
        "home": str(proxy_home(target, target_dir)),
        "proxies": declared_proxies(target),
    }


@dataclass(frozen=True)
class PathCheck:
    """One proxied hop, checked by opening a connection through its listen address."""

    proxy: str
    listen: str
    problem: str | None  # None: the hop accepted a connection
    restarted: bool = False  # the embedded server had to be started again

    def describe(self) -> str:
        if self.problem:
            return f"path {self.proxy} ({self.listen}) CUT: {self.problem}"
        again = " (embedded proxy started again)" if self.restarted else ""
        return f"path {self.proxy} ({self.listen}) checked: accepts connections{again}"


def _connects(listen: str) -> str | None:
    host, _, port = listen.rpartition(":")
    try:
        with socket.create_connection(
            (host.strip("[]"), int(port)), timeout=PATH_CONNECT_TIMEOUT_S
        ):
            return None
    except (OSError, ValueError) as exc:
        return f"connect to {listen}: {exc}"


def _disabled(client: ToxiproxyClient, name: str) -> bool:
    try:
        proxy = client.get_proxy(name)
    except ToolFailed:
        return False  # judged by the connection itself
    return proxy is not None and not proxy.get("enabled", True)


def check_paths(record: dict[str, Any], timeout_s: float = 2.0) -> list[PathCheck]:
    """Open a connection through every hop of a ``proxy_paths`` record.

    An embedded server that no longer answers (or lacks a declared proxy) is started again
    and populated first; an external Toxiproxy is only checked. A hop disabled on the API
    is reported as cut (a ``down`` fault not yet reverted, or someone else's).
    """
    client = ToxiproxyClient(str(record["url"]), timeout_s, record.get("token_env"))
    proxies: list[dict[str, Any]] = list(record.get("proxies", []))
    restarted = False
    failed_start: str | None = None
    if record.get("embedded"):
        try:
            restarted = _ensure_running(client, Path(str(record["home"])), proxies, None)
        except ToolFailed as exc:
            failed_start = f"embedded proxy could not be started: {exc}"
    checks = []
    for p in proxies:
        name, listen = str(p["name"]), str(p["listen"])
        problem = _connects(listen)
        if problem is None and _disabled(client, name):
            problem = f"proxy {name} is disabled on {record['url']}"
        if problem and failed_start:
            problem = f"{problem}; {failed_start}"
        checks.append(PathCheck(name, listen, problem, restarted))
    return checks
