"""The append-only, fsync'd JSONL journal of a run: intent before each action, outcome after.

Every fault action is written twice: an ``intent`` record holding the backend's full undo
recipe, fsync'd *before* the fault is touched, and an outcome record (``injected``,
``inject_failed``, ``reverted``, ``revert_failed``) after. A journal alone is enough for
``resildrill rollback`` to find and undo whatever a crashed run left injected.

Secrets never enter a journal: recipes carry environment-variable *names* (``${VAR}``), not
values.

A journal tells ``rollback`` and the watchdog what to run, so it must be trusted before
anything is reverted from it: the file is created 0600 in a 0700 run folder, and every
record carries ``mac``, an HMAC-SHA256 under a per-user key (``journal.key`` in the state
folder, 0600). ``read_journal(path, verify=True)`` refuses a journal not owned by this
user, writable by others, or with a record that is unsigned, edited, or signed with
another key (:class:`JournalUntrusted`, exit 2).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pwd
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resildrill.errors import JournalUnreadable
from resildrill.statehome import state_home

KEY_FILE = "journal.key"


class JournalUntrusted(JournalUnreadable):
    """A journal this user did not write, or that was changed since: nothing is reverted
    from it."""


def journal_key() -> bytes:
    """This user's journal key (created 0600 on first use)."""
    path = state_home() / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
    return path.read_bytes()


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode()


def _mac(key: bytes, record: dict[str, Any]) -> str:
    return hmac.new(key, _canonical(record), hashlib.sha256).hexdigest()


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def check_trusted(path: Path) -> None:
    """Refuse a journal another user owns or others may write (JournalUntrusted)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise JournalUnreadable(f"{path}: cannot read journal: {exc.strerror}") from None
    if st.st_uid != os.geteuid():
        raise JournalUntrusted(
            f"{path}: owned by {_owner(st.st_uid)}, not you: nothing is reverted from another "
            "user's journal (ask its owner to run 'resildrill rollback', or move it away)"
        )
    if st.st_mode & 0o022:
        raise JournalUntrusted(
            f"{path}: writable by others (mode {st.st_mode & 0o777:o}): it may have been "
            "changed, so nothing is reverted from it (check it, 'chmod 600' it, then retry)"
        )


SCHEMA = "resildrill.journal/v1"


class Journal:
    """An open journal file; each :meth:`append` reaches the disk before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._seq = len(read_journal(path)) if path.stat().st_size else 0
        self._key = journal_key()

    def append(self, record_type: str, **fields: Any) -> dict[str, Any]:
        """Write one record and fsync it; returns the record written.

        Each record carries ``mono``, this host's monotonic clock when it was written (the
        runner, its watchdog and ``rollback`` share that clock), so a report rebuilt after a
        crash places a watchdog's revert on the run's timeline."""
        self._seq += 1
        record = {"seq": self._seq, "type": record_type, "mono": time.monotonic(), **fields}
        # signed as it will read back (JSON types), so a reader recomputes the same MAC
        record = dict(json.loads(_canonical(record)))
        record["mac"] = _mac(self._key, record)
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        os.write(self._fd, line.encode())
        os.fsync(self._fd)
        return record

    def close(self) -> None:
        """Close the file (records already written stay on disk)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_journal(path: Path, *, verify: bool = False) -> list[dict[str, Any]]:
    """Every complete record of a journal; a torn last line (a crash mid-write) is ignored.

    ``verify``: before acting on it (rollback, the watchdog), refuse a journal this user did
    not write or that was changed since (:class:`JournalUntrusted`)."""
    if verify:
        check_trusted(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise JournalUnreadable(f"{path}: cannot read journal: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise JournalUnreadable(f"{path}: not a resildrill journal (not UTF-8)") from None
    records: list[dict[str, Any]] = []
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) and not text.endswith("\n"):
                break  # torn final write
            raise JournalUnreadable(f"{path}:{number}:1: line is not JSON") from None
        if not isinstance(record, dict) or "type" not in record:
            raise JournalUnreadable(f"{path}:{number}:1: not a journal record")
        records.append(record)
    if records and records[0].get("type") != "run_start":
        raise JournalUnreadable(f"{path}:1:1: a journal starts with a run_start record")
    if verify:
        _verify(path, records)
    return records


def _verify(path: Path, records: list[dict[str, Any]]) -> None:
    key = journal_key()
    for number, record in enumerate(records, start=1):
        body = {k: v for k, v in record.items() if k != "mac"}
        mac = record.get("mac")
        if not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(key, body)):
            raise JournalUntrusted(
                f"{path}:{number}:1: record not signed by your journal key (written by someone "
                "else, or edited since): nothing is reverted from this journal"
            )


@dataclass(frozen=True)
class PendingFault:
    """A fault whose intent is journalled but whose revert is not confirmed."""

    fault_id: str
    kind: str
    recipe: dict[str, Any]
    injected: bool  # an ``injected`` outcome was written (else: crashed between intent and act)


def pending_faults(records: list[dict[str, Any]]) -> list[PendingFault]:
    """Faults with an intent and no confirmed revert, in the order they were injected."""
    pending: dict[str, PendingFault] = {}
    for record in records:
        kind = record["type"]
        fault_id = str(record.get("fault_id"))
        if kind == "intent":
            pending[fault_id] = PendingFault(fault_id, record["kind"], record["recipe"], False)
        elif kind in ("injected", "updated") and fault_id in pending:
            old = pending[fault_id]
            pending[fault_id] = PendingFault(
                fault_id, old.kind, record.get("recipe", old.recipe), True
            )
        elif kind == "reverted" and fault_id in pending:
            del pending[fault_id]
    return list(pending.values())
