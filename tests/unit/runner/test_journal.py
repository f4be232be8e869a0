"""The journal: fsync'd records, torn-line tolerance, and which faults are still pending."""

from __future__ import annotations

from pathlib import Path

import pytest

from resildrill.errors import JournalUnreadable
from resildrill.runner.journal import Journal, pending_faults, read_journal


def _journal(path: Path) -> Journal:
    j = Journal(path)
    j.append("run_start", run_id="r1")
    return j


def test_pending_until_reverted(tmp_path: Path) -> None:
    """An intent stays pending through 'injected' and leaves only with 'reverted'."""
    with _journal(tmp_path / "j.jsonl") as j:
        j.append("intent", fault_id="a", kind="process", recipe={"x": 1})
        j.append("injected", fault_id="a", recipe={"x": 2})
        j.append("intent", fault_id="b", kind="process", recipe={"y": 1})
    pending = pending_faults(read_journal(tmp_path / "j.jsonl"))
    assert [(p.fault_id, p.injected, p.recipe) for p in pending] == [
        ("a", True, {"x": 2}),
        ("b", False, {"y": 1}),
    ]
    with Journal(tmp_path / "j.jsonl") as j:
        j.append("reverted", fault_id="a")
    assert [p.fault_id for p in pending_faults(read_journal(tmp_path / "j.jsonl"))] == ["b"]


def test_failed_injection_stays_pending(tmp_path: Path) -> None:
    """A failed injection may have half-acted, so it is still reverted by rollback."""
    with _journal(tmp_path / "j.jsonl") as j:
        j.append("intent", fault_id="a", kind="process", recipe={})
        j.append("inject_failed", fault_id="a", error="boom")
    assert [p.fault_id for p in pending_faults(read_journal(tmp_path / "j.jsonl"))] == ["a"]


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    """A crash mid-write leaves a partial last line, which reading skips."""
    path = tmp_path / "j.jsonl"
    with _journal(path) as j:
        j.append("intent", fault_id="a", kind="process", recipe={})
    with path.open("a") as f:
        f.write('{"type": "reverted", "fault_')
    records = read_journal(path)
    assert [r["type"] for r in records] == ["run_start", "intent"]


def test_garbage_in_the_middle_is_unreadable(tmp_path: Path) -> None:
    """A corrupt line before the end is an error naming file and line."""
    path = tmp_path / "j.jsonl"
    path.write_text('{"type": "run_start", "seq": 1}\nnot json\n{"type": "x"}\n')
    with pytest.raises(JournalUnreadable, match=r"j.jsonl:2:1"):
        read_journal(path)


def test_sequence_continues_after_reopen(tmp_path: Path) -> None:
    """Reopening a journal (as rollback does) continues its sequence numbers."""
    path = tmp_path / "j.jsonl"
    with _journal(path) as j:
        j.append("intent", fault_id="a", kind="process", recipe={})
    with Journal(path) as j:
        rec = j.append("reverted", fault_id="a")
    assert rec["seq"] == 3
