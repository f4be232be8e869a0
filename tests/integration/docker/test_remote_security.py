"""What a hospital security team checks of the SSH path, against real OpenSSH hosts.

* an unknown host key, a changed host key and a key the user does not accept: exit 2 with a
  one-line message naming the host (and the fingerprint, and how to accept it deliberately),
  nothing injected, nothing left in the run folder's journal;
* hostile service names, command lines to match and restart commands (quotes, ``$(...)``,
  backticks, ``;``, ``|``, newlines) never run anything through a shell: a canary file that
  each of them would create stays absent, judged inside the host;
* no key material in what a run writes.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from remote_support import Estate, down_estate, drill_doc, up_estate, write_yaml
from tests.support.tiny import resildrill

from resildrill.remote import hostops
from resildrill.remote.session import SESSIONS
from resildrill.remote.ssh import quote_argv

pytestmark = pytest.mark.timeout(240)

CANARY = "/tmp/resildrill-canary"


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    made = up_estate(tmp_path_factory.mktemp("sec"), f"rs-{uuid.uuid4().hex[:6]}")
    yield made
    SESSIONS.close_all()
    down_estate(made)


def _drill(estate: Estate, target: Path) -> Path:
    doc = drill_doc(
        "sec",
        [
            {
                "id": "f",
                "kind": "process",
                "service": "replica-b",
                "action": "freeze",
                "at": "0s",
                "duration": "1s",
            }
        ],
    )
    doc["target"] = str(target)
    return write_yaml(target.parent / "sec-drill.yaml", doc)


def _variant(estate: Estate, tmp: Path, change: Any) -> Path:
    """A copy of the estate's target with one host's settings changed."""
    doc = yaml.safe_load(estate.target.read_text())
    for host in doc["hosts"].values():
        for key in ("key_file", "known_hosts"):
            host[key] = str(estate.folder / host[key])
    doc["run_dir"] = str(estate.folder / "run")
    change(doc, tmp)
    path = tmp / "target.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30
    )
    return path


def _refused(estate: Estate, tmp: Path, change: Any) -> str:
    target = _variant(estate, tmp, change)
    out = resildrill("run", str(_drill(estate, target)), "--out", str(tmp / "reports"))
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not list((tmp / "reports").glob("*/journal.jsonl")), "a run was started"
    assert estate.state_of("replica-b", estate.pidfile_pid("replica-b", "replica-b")) != "T"
    return lines[0]


def test_unknown_host_key_is_refused(estate: Estate, tmp_path: Path) -> None:
    def empty_known_hosts(doc: dict[str, Any], tmp: Path) -> None:
        (tmp / "known_hosts").write_text("")
        doc["hosts"]["replica-b"]["known_hosts"] = str(tmp / "known_hosts")

    line = _refused(estate, tmp_path, empty_known_hosts)
    assert "host 'replica-b'" in line and "unknown host key" in line
    assert "SHA256:" in line and "ssh-keyscan" in line


def test_changed_host_key_is_refused(estate: Estate, tmp_path: Path) -> None:
    def other_key(doc: dict[str, Any], tmp: Path) -> None:
        pub = _keygen(tmp / "impostor").with_suffix(".pub").read_text().split()
        port = doc["hosts"]["replica-b"]["port"]
        (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
        doc["hosts"]["replica-b"]["known_hosts"] = str(tmp / "known_hosts")

    line = _refused(estate, tmp_path, other_key)
    assert "host 'replica-b'" in line and "HOST KEY CHANGED" in line and "SHA256:" in line
    assert "ssh-keygen -R" in line


def test_wrong_user_key_is_refused(estate: Estate, tmp_path: Path) -> None:
    def stranger(doc: dict[str, Any], tmp: Path) -> None:
        doc["hosts"]["replica-b"]["key_file"] = str(_keygen(tmp / "stranger"))

    line = _refused(estate, tmp_path, stranger)
    assert "host 'replica-b'" in line and "refused for user 'root'" in line
    assert "BEGIN OPENSSH PRIVATE KEY" not in line


# --- hostile input never reaches a shell ---------------------------------------------------

NASTY = [
    f"$(touch {CANARY})",
    f"`touch {CANARY}`",
    f"x; touch {CANARY}",
    f"x | touch {CANARY}",
    f"x && touch {CANARY}",
    f"x\ntouch {CANARY}",
    f"'; touch {CANARY}; echo '",
    f'"; touch {CANARY}; echo "',
    f"x > {CANARY}",
]


def _canary_absent(estate: Estate) -> bool:
    return (
        estate.sh("replica-a", f"test -e {CANARY} && echo present || echo absent").strip()
        == "absent"
    )


def _rec(estate: Estate) -> dict[str, Any]:
    from resildrill.drill.loader import load_target

    target = load_target(estate.target)
    return hostops.host_record(target.spec, "replica-a", estate.folder)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(NASTY) | st.text(min_size=1, max_size=20), min_size=1, max_size=3))
def test_hostile_matches_never_run(estate: Estate, parts: list[str]) -> None:
    """A command line to match travels as one quoted argument; the host only compares it."""
    text = "".join(parts).replace("\0", "")
    found = hostops.select(_rec(estate), {"match": text}, "process", None)
    assert found["processes"] == []
    assert _canary_absent(estate)


def test_hostile_restart_commands_and_names_never_run(estate: Estate, tmp_path: Path) -> None:
    """A restart command is an argv list: its words are arguments to echo, not shell text."""
    rec = _rec(estate)
    for nasty in NASTY:
        hostops.restart(
            rec, "no-live-session", {"command": ["/bin/echo", nasty], "cwd": None, "log": None}
        )
        assert quote_argv(["/bin/echo", nasty]).count("'") >= 2
    # a service named with shell syntax: refused by validation or passed as data
    doc = yaml.safe_load(estate.target.read_text())
    for i, nasty in enumerate(NASTY):
        doc["services"][f"s{i}{nasty}"] = {
            "host": "replica-a",
            "process": {"match": nasty},
            "recovery": "none",
        }
    target = tmp_path / "target.yaml"
    for host in doc["hosts"].values():
        for key in ("key_file", "known_hosts"):
            host[key] = str(estate.folder / host[key])
    doc["run_dir"] = str(estate.folder / "run")
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    for i, nasty in enumerate(NASTY):
        drill = drill_doc(
            "hostile",
            [
                {
                    "id": "f",
                    "kind": "process",
                    "service": f"s{i}{nasty}",
                    "action": "freeze",
                    "at": "0s",
                    "duration": "1s",
                }
            ],
        )
        drill["target"] = str(target)
        path = write_yaml(tmp_path / "hostile.yaml", drill)
        out = resildrill("run", "--preflight", str(path), "--out", str(tmp_path / "r"))
        assert out.returncode in (2, 5), (out.returncode, out.stderr)  # refused, never run
        assert "Traceback" not in out.stderr
    assert _canary_absent(estate)


def test_no_key_material_in_run_files(estate: Estate, tmp_path: Path) -> None:
    doc = drill_doc(
        "secret-free",
        [
            {
                "id": "f",
                "kind": "process",
                "service": "replica-b",
                "action": "freeze",
                "at": "0s",
                "duration": "500ms",
            }
        ],
        phases={"baseline": "1s", "recovery": "1s"},
        stability_window="500ms",
    )
    drill = write_yaml(estate.folder / "secret-free.yaml", doc)
    out = resildrill("run", str(drill), "--out", str(tmp_path / "r"), "--no-history")
    assert out.returncode in (0, 1), out.stderr
    private = (estate.folder / "run" / "ssh" / "id_ed25519").read_text()
    secret_line = private.strip().splitlines()[1]
    for path in (tmp_path / "r").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "PRIVATE KEY" not in text and secret_line not in text, path
