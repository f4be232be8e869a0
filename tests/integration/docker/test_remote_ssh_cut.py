"""The runner stays alive but its SSH path to a host is cut: the host's guard reverts by itself
within heartbeat_timeout + 1 s, and the run halts with exit 3, its report saying the fault was
reverted by the host's guard (DESIGN.md: lost contact halts the drill; 3 when the guard's own
record shows it reverted, read on reconnection).

The SSH connection to replica-a is carried through the target's embedded proxy (the host's key
is looked up under its real address with ``host_key_alias``); the cut is a ``timeout`` toxic
with timeout 0 on the runner-to-host stream: data stops, the connection stays open, as on a
link that silently drops everything. The poller inside the host times the thaw.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from remote_deadman import prepare_victim
from remote_support import Estate, down_estate, drill_doc, poller, read_poll, up_estate, write_yaml
from tests.conftest import ROOT
from tests.support.tiny import resildrill

from resildrill.drill.loader import load_target
from resildrill.faults.embedded_proxy import ensure_embedded_proxy, proxy_home, stop_embedded_proxy
from wardehr.stack import free_port

pytestmark = pytest.mark.timeout(300)
HEARTBEAT_S = 5.0


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    made = up_estate(tmp_path_factory.mktemp("cut"), f"rc-{uuid.uuid4().hex[:6]}")
    prepare_victim(made)
    doc = yaml.safe_load(made.target.read_text())
    ssh_port = doc["hosts"]["replica-a"]["port"]
    hop = free_port()
    doc["toxiproxy"] = {
        "url": f"http://127.0.0.1:{free_port()}",
        "embedded": True,
        "proxies": {
            "ssh-replica-a": {"listen": f"127.0.0.1:{hop}", "upstream": f"127.0.0.1:{ssh_port}"}
        },
    }
    doc["hosts"]["replica-a"]["port"] = hop
    doc["hosts"]["replica-a"]["host_key_alias"] = f"[127.0.0.1]:{ssh_port}"
    made.target.write_text(yaml.safe_dump(doc, sort_keys=False))
    loaded = load_target(made.target)
    home = proxy_home(loaded.spec, made.target.parent)
    ensure_embedded_proxy(loaded.spec, home)  # the proxy lives with the target (target up)
    yield made
    stop_embedded_proxy(home)
    down_estate(made)


def test_cut_ssh_path_guard_reverts_and_run_halts(estate: Estate, tmp_path: Path) -> None:
    trials = int(os.environ.get("RESILDRILL_SSH_CUT_TRIALS", "2"))
    figures = []
    for n in range(trials):
        figures.append(_trial(estate, tmp_path / f"t{n}"))
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "remote-ssh-cut.json").write_text(json.dumps(figures, indent=2))
    for f in figures:
        assert f["exit"] == 3, f
        assert f["thawed_after_cut_s"] is not None, f
        # held through the cut (not thawed at once), thawed by heartbeat_timeout + 1 s
        assert 3.0 <= f["thawed_after_cut_s"] <= HEARTBEAT_S + 1.0, f
        assert "reverted by the host's guard" in f["revert"], f
        assert f["reverted_by"] == "guard", f


def _trial(estate: Estate, out: Path) -> dict[str, object]:
    out.mkdir(parents=True)
    faults = [
        {
            "id": "frozen",
            "kind": "process",
            "service": "victim",
            "action": "freeze",
            "at": "0s",
            "duration": "40s",
        },
        {
            "id": "ssh-cut",
            "kind": "network",
            "proxy": "ssh-replica-a",
            "at": "1s",
            "duration": "30s",
            "toxic": {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}},
        },
    ]
    drill = write_yaml(estate.folder / "cut.yaml", drill_doc("ssh-cut", faults))
    polled = out / "poll"
    snippet = (
        "s=$(cut -d' ' -f3 /proc/$(cat /tmp/victim.pid)/stat); [ \"$s\" = T ] && echo 1 || echo 0"
    )
    watch = poller(estate, "replica-a", snippet, polled)
    try:
        run = resildrill("run", str(drill), "--out", str(out / "r"), "--no-history", timeout=150)
    finally:
        watch.terminate()
        watch.wait(timeout=10)
    report = json.loads(next((out / "r").glob("*/report.json")).read_text())
    t0 = report["clock"]["monotonic_t0"]
    by_id = {f["id"]: f for f in report["faults"]}
    cut_at = t0 + by_id["ssh-cut"]["injected_at_s"]
    rows = [(t, v.split()[-1]) for t, v in read_poll(polled) if v]
    thawed = next((t for t, v in rows if t > cut_at and v == "0"), None)
    frozen = by_id["frozen"]
    host = (frozen.get("remote") or {}).get("hosts", [{}])[0]
    return {
        "exit": run.returncode,
        "reason": report.get("reason"),
        "thawed_after_cut_s": None if thawed is None else round(thawed - cut_at, 3),
        "revert": frozen.get("revert") or "",
        "reverted_by": host.get("reverted_by"),
        "guard_reverted_at_s": host.get("reverted_at_s"),
        "stderr_tail": run.stderr[-300:],
    }
