"""Integrity for systems we did not write: the HTTP and Python verifiers against a small
non-FHIR API (tests/support/itemserver.py), cross-checked by reading that server directly,
never by resildrill's own counters."""

from __future__ import annotations

import json
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import ROOT, ManagedProcesses, free_port, wait_http

from resildrill.drill.model import IntegritySpec
from resildrill.load.integrity import check_writes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
SERVER = ROOT / "tests" / "support" / "itemserver.py"


@pytest.fixture
def items(procs: ManagedProcesses) -> Iterator[str]:
    port = free_port()
    procs.start(str(SERVER), "--port", str(port))
    wait_http(port)
    yield f"http://127.0.0.1:{port}"


def _call(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}{path}", data=data, method=method)
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def _post(base: str, n: int, *, acknowledged: bool = True) -> list[dict[str, Any]]:
    """``n`` items stored, recorded as a custom locustfile records them."""
    out = []
    for _ in range(n):
        client_id = uuid.uuid4().hex
        made = _call(base, "POST", "/items", {"client_id": client_id, "value": "K+ 4.1"})
        out.append(
            {
                "resource": "items",
                "id": str(made["id"]),
                "identifier": client_id,
                "op": "create",
                "acknowledged": acknowledged,
            }
        )
    return out


def _spec(base: str, **kw: Any) -> IntegritySpec:
    fields = {"verifier": "http", "url": base + "/items/{id}", **kw}
    return IntegritySpec.model_validate(fields)


def test_nothing_lost_then_exactly_the_deleted_ones(items: str) -> None:
    writes = _post(items, 30)
    first = check_writes(writes, base_url=items, spec=_spec(items), timeout_s=20)
    assert (first.writes_acknowledged, first.writes_lost, first.writes_unverifiable) == (30, 0, 0)
    gone = writes[3:10]
    for w in gone:  # behind the tool's back
        _call(items, "DELETE", f"/items/{w['id']}")
    truth = sum(
        1
        for w in writes
        if _call(items, "GET", f"/items?client_id={w['identifier']}")["matches"] == 0
    )
    second = check_writes(writes, base_url=items, spec=_spec(items), timeout_s=20)
    assert second.writes_lost == truth == len(gone) == 7
    assert {e["id"] for e in second.examples} == {w["id"] for w in gone}


def test_stored_but_never_acknowledged_is_counted_apart(items: str) -> None:
    acked = _post(items, 5)
    stored_unacked = _post(items, 3, acknowledged=False)
    never_stored = [
        {"resource": "items", "id": "999999", "identifier": "x", "acknowledged": False}
    ] * 2
    result = check_writes(
        acked + stored_unacked + never_stored, base_url=items, spec=_spec(items), timeout_s=20
    )
    assert result.writes_acknowledged == 5 and result.writes_lost == 0
    assert result.writes_stored_unacknowledged == 3
    assert result.to_json()["writes_stored_unacknowledged"] == 3


def test_json_field_rule_and_duplicates_by_count(items: str) -> None:
    [w] = _post(items, 1)
    by_field = _spec(items, found={"json_field": "client_id", "equals": "{identifier}"})
    assert check_writes([w], base_url=items, spec=by_field, timeout_s=10).writes_lost == 0
    wrong = {**w, "identifier": "someone-else"}
    assert check_writes([wrong], base_url=items, spec=by_field, timeout_s=10).writes_lost == 1
    # the same client id stored twice (a retried POST): a duplicate, by the server's count
    _call(items, "POST", "/items", {"client_id": w["identifier"], "value": "again"})
    counted = _spec(
        items,
        url=items + "/items?client_id={identifier}",
        found={"status": 200},
        count_field="matches",
    )
    result = check_writes([w], base_url=items, spec=counted, timeout_s=10)
    assert (result.writes_duplicated, result.writes_lost) == (1, 0)


def test_a_server_that_cannot_answer_is_unverifiable_never_lost(items: str) -> None:
    writes = _post(items, 4)
    dead = f"http://127.0.0.1:{free_port()}"
    spec = IntegritySpec.model_validate({"verifier": "http", "url": dead + "/items/{id}"})
    result = check_writes(writes, base_url=dead, spec=spec, timeout_s=5)
    assert (result.writes_unverifiable, result.writes_lost) == (4, 0)


def test_python_verifier_beside_the_drill(items: str, tmp_path: Path) -> None:
    (tmp_path / "lab_check.py").write_text(
        "import json, urllib.request, urllib.error\n"
        f"BASE = {items!r}\n"
        "def check(write):\n"
        "    try:\n"
        "        urllib.request.urlopen(BASE + '/items/' + write['id'], timeout=5).read()\n"
        "        return 'found'\n"
        "    except urllib.error.HTTPError as exc:\n"
        "        return 'lost' if exc.code == 404 else 'unverifiable'\n"
    )
    writes = _post(items, 6)
    _call(items, "DELETE", f"/items/{writes[0]['id']}")
    spec = IntegritySpec(verifier="python", callable="lab_check:check")
    try:
        result = check_writes(writes, base_url=items, spec=spec, drill_dir=tmp_path, timeout_s=10)
    finally:
        sys.modules.pop("lab_check", None)
        if str(tmp_path) in sys.path:
            sys.path.remove(str(tmp_path))
    assert (result.writes_acknowledged, result.writes_lost) == (6, 1)
