"""Guards a run passes before it may touch a target, and the notices it sends.

- one drill per target at a time (an advisory ``flock`` in the state folder, released by
  the kernel if the runner dies);
- no run while an earlier run against the same target left a journal with faults still
  injected (``resildrill rollback --all`` clears them);
- the target is the system the file means (a declared response header, or the software
  name of its FHIR CapabilityStatement);
- webhooks tell on-call staff a drill started, halted and ended. A webhook that fails is
  reported, never fatal: a notice must not stop a revert.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

from resildrill.drill.model import IdentityCheck, TargetSpec
from resildrill.errors import InvalidInput
from resildrill.runner.journal import pending_faults, read_journal
from resildrill.runner.registry import journals_without_runner, state_dir


class TargetLock:
    """Held for the whole run; a second drill against the same target is refused at once."""

    def __init__(self, target_name: str) -> None:
        self.path = state_dir().parent / "locks" / f"{target_name}.lock"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = None

    def acquire(self, run_id: str) -> None:
        f = self.path.open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another run"
            f.close()
            raise InvalidInput(
                f"another drill is running against this target ({holder}); "
                "one drill per target at a time"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"run {run_id}, pid {os.getpid()}\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def stale_journals(out_dir: Path, target_name: str) -> list[Path]:
    """Journals for this target with faults still pending and no live runner: under
    ``out_dir``, and of runs registered on this machine wherever their folder is (a run
    written with another ``--out``)."""
    stale = []
    for path in journals_without_runner(out_dir, target_name):
        try:
            # another user's, or a planted, journal is not this user's to roll back: it does
            # not block a run (rollback names whose it is)
            records = read_journal(path, verify=True)
        except InvalidInput:
            continue
        if records and records[0].get("target_name") == target_name and pending_faults(records):
            stale.append(path)
    return stale


def check_identity(identity: IdentityCheck) -> str | None:
    """None when the target answers as declared, else why not (touches nothing)."""
    request = urllib.request.Request(identity.url, headers={"Accept": "application/fhir+json"})
    try:
        with urllib.request.urlopen(request, timeout=identity.timeout) as response:
            headers = response.headers
            body = response.read(1_000_000)
    except (urllib.error.URLError, OSError) as exc:
        return f"identity check: cannot reach {identity.url}: {exc}"
    if identity.header is not None:
        got = headers.get(identity.header)
        if got != identity.value:
            return (
                f"identity check: {identity.url} header {identity.header!r} is {got!r}, "
                f"expected {identity.value!r}"
            )
        return None
    if identity.body_pattern is not None:
        if re.search(identity.body_pattern, body.decode("utf-8", "replace")) is None:
            return f"identity check: {identity.url} body does not match {identity.body_pattern!r}"
        return None
    if identity.json_field is not None:
        got = _json_field(body, identity.json_field)
        if got != identity.value:
            return (
                f"identity check: {identity.url} JSON field {identity.json_field!r} is "
                f"{got!r}, expected {identity.value!r}"
            )
        return None
    try:
        name = json.loads(body).get("software", {}).get("name")
    except (ValueError, AttributeError):
        name = None
    if name != identity.fhir_software:
        return (
            f"identity check: {identity.url} software.name is {name!r}, "
            f"expected {identity.fhir_software!r}"
        )
    return None


def _json_field(body: bytes, dotted: str) -> str | None:
    """The value at a dotted path of a JSON body, as text; None when absent."""
    try:
        value: Any = json.loads(body)
    except ValueError:
        return None
    for key in dotted.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value if isinstance(value, str) else json.dumps(value)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook is answered where it was sent: a redirect is a failure, not followed."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> None:
        raise urllib.error.HTTPError(req.full_url, code, "redirect refused", headers, fp)


_OPENER = urllib.request.build_opener(_NoRedirects)


def redacted(url: str) -> str:
    """A URL as messages and reports may show it: scheme and host only (a path or query
    may carry a token)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def notify(target: TargetSpec, event: str, payload: dict[str, Any]) -> list[str]:
    """POST ``payload`` to each webhook subscribed to ``event``; returns failures as text
    (each URL shown by scheme and host only)."""
    failures = []
    body = json.dumps({"event": event, **payload}, default=str).encode()
    for hook in target.notify:
        if event not in hook.events:
            continue
        url = hook.url if hook.url is not None else os.environ.get(hook.url_env or "", "")
        shown = redacted(url) if url else f"${{{hook.url_env}}}"
        if not re.match(r"^https?://[^/?#]+", url):
            failures.append(f"webhook {shown} ({event}): not an http(s) URL; not sent")
            continue
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with _OPENER.open(request, timeout=hook.timeout) as response:
                response.read(1024)
        except urllib.error.HTTPError as exc:
            failures.append(f"webhook {shown} ({event}): HTTP {exc.code} {exc.msg}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            failures.append(f"webhook {shown} ({event}): {reason}")
    return failures
