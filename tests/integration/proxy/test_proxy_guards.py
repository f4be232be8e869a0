"""The proxy API lets no one in (issue 19): it serves beyond loopback only when told to and
with a token, a token is enforced when set, and the embedded server a target starts refuses
upstreams the target does not declare (no open relay). Nothing here leaves 127.0.0.0/8:
the refusals happen before any socket is bound or dialled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from proxy_support import start_proxy_process, stop_process
from tests.conftest import ManagedProcesses, free_port, wait_http

from resildrill.drill.model import TargetSpec
from resildrill.faults.embedded_proxy import ensure_embedded_proxy, stop_embedded_proxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _proxy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resildrill", "proxy", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, **(env or {})},
    )


def _call(url: str, method: str = "GET", body: object = None, token: str | None = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "example.invalid"])
def test_beyond_loopback_is_refused_before_binding(host: str) -> None:
    started = time.monotonic()
    result = _proxy("--host", host)
    assert result.returncode == 2, result.stderr
    assert "refusing to serve the API beyond loopback" in result.stderr
    assert time.monotonic() - started < 15  # it exited: never served


def test_allow_remote_needs_a_token() -> None:
    result = _proxy("--host", "0.0.0.0", "--allow-remote")
    assert result.returncode == 2 and "--token-env" in result.stderr
    unset = _proxy("--token-env", "NO_SUCH_VARIABLE_HERE")
    assert unset.returncode == 2 and "NO_SUCH_VARIABLE_HERE" in unset.stderr


def test_a_token_is_required_when_set() -> None:
    os.environ["PROXY_TOKEN_FOR_TEST"] = "s3cret-token"
    proc, url = start_proxy_process("--token-env", "PROXY_TOKEN_FOR_TEST")
    try:
        assert _call(f"{url}/proxies") == 401
        assert _call(f"{url}/proxies", token="wrong") == 401
        assert _call(f"{url}/proxies", token="s3cret-token") == 200
    finally:
        stop_process(proc)


def test_the_embedded_server_of_a_target_is_no_open_relay(tmp_path: Path) -> None:
    api, listen, upstream = free_port(), free_port(), free_port()
    target = TargetSpec.model_validate(
        {
            "apiVersion": "resildrill/v1",
            "kind": "Target",
            "name": "relay",
            "environment": "test",
            "probes": [{"name": "p", "tcp": {"host": "127.0.0.1", "port": listen}}],
            "toxiproxy": {
                "url": f"http://127.0.0.1:{api}",
                "proxies": {
                    "hop": {"listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{upstream}"}
                },
            },
        }
    )
    try:
        url = ensure_embedded_proxy(target, tmp_path)
        for elsewhere in ("169.254.169.254:80", f"127.0.0.1:{free_port()}"):
            body = {"name": "sneaky", "listen": "127.0.0.1:0", "upstream": elsewhere}
            assert _call(f"{url}/proxies", "POST", body) == 403, elsewhere
            repoint = {"upstream": elsewhere}
            assert _call(f"{url}/proxies/hop", "POST", repoint) == 403, elsewhere
        assert _call(f"{url}/proxies/hop") == 200  # the declared one is there, unchanged
        with urllib.request.urlopen(f"{url}/proxies/hop", timeout=5) as resp:
            assert json.load(resp)["upstream"] == f"127.0.0.1:{upstream}"
    finally:
        stop_embedded_proxy(tmp_path)


def test_a_drill_through_a_token_protected_embedded_proxy(
    tmp_path: Path, procs: ManagedProcesses
) -> None:
    """``toxiproxy.token_env``: the run starts the embedded server requiring that token,
    sends it on every call (toxic added and removed), and writes only the variable's name."""
    import yaml
    from tests.support.tiny import SERVICE, resildrill, write_drill, write_target

    port, api, hop = free_port(), free_port(), free_port()
    procs.start(str(SERVICE), "--port", str(port), "--pidfile", str(tmp_path / "web.pid"))
    wait_http(port)
    target = write_target(tmp_path, port, recovery="restart")
    doc = yaml.safe_load(target.read_text())
    doc["toxiproxy"] = {
        "url": f"http://127.0.0.1:{api}",
        "token_env": "HOP_API_TOKEN",
        "proxies": {"web": {"listen": f"127.0.0.1:{hop}", "upstream": f"127.0.0.1:{port}"}},
    }
    doc["probes"][0]["http"]["url"] = f"http://127.0.0.1:{hop}/healthz"
    target.write_text(yaml.safe_dump(doc))
    slow = {"type": "latency", "attributes": {"latency": 20}}
    fault = {
        "id": "slow",
        "kind": "network",
        "proxy": "web",
        "at": "0s",
        "duration": "1s",
        "toxic": slow,
    }
    drill = write_drill(tmp_path, "tokened", [fault])
    secret = "tok-3f9a1c"
    try:
        run = resildrill(
            "run", str(drill), "--out", str(tmp_path / "reports"), env={"HOP_API_TOKEN": secret}
        )
        assert run.returncode == 0, run.stdout + run.stderr
        url = f"http://127.0.0.1:{api}"
        assert _call(f"{url}/proxies") == 401
        assert _call(f"{url}/proxies", token=secret) == 200
        run_dir = Path(run.stdout.strip().splitlines()[-1])
        for path in run_dir.rglob("*"):
            if path.is_file():
                assert secret not in path.read_text(errors="replace"), path
        assert "HOP_API_TOKEN" in (run_dir / "journal.jsonl").read_text()
    finally:
        from resildrill.faults.embedded_proxy import proxy_home

        stop_embedded_proxy(proxy_home(TargetSpec.model_validate(doc), tmp_path))
