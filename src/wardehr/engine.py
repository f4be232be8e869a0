"""The interface engine of the bundled staging system: HL7 v2 store-and-forward over MLLP.

MLLP in (from a lab system: the drill's load plays it), a durable queue, MLLP out to the ward
EHR (``wardehr.server --mllp-listen``). The rules an engine must keep, and this one does:

* **Accept only what is safe**: a message is written to the queue and the queue's commit is
  on disk (SQLite WAL, ``synchronous=FULL``: fsynced) *before* the sender gets its accepting
  ACK (AA, or CA in enhanced mode). If the queue cannot be written (its disk is full or
  frozen), the sender gets AE/CE and must resend: nothing is acknowledged that could be lost.
* **Leave the queue only on the EHR's ACK**: a message is forwarded oldest first; it is marked
  delivered only when the EHR accepted *that* message (matched by MSA-2). A refusal (AR/CR,
  AE/CE) is a dead letter after ``--max-attempts``; no ACK in time, or no EHR, is retried with
  backoff (``--retry-initial`` doubling to ``--retry-max``). A resend after a lost ACK can file
  a message twice: drills count those duplicates, they are not hidden here.
* A half-written queue entry (the engine killed mid-commit) is rolled back by SQLite on the
  next start: it was never acknowledged, so the sender resends it.

``GET``-free by design: the queue's depth is read from the queue file (``backlog``) or by the
drill through the EHR. Run as ``python -m wardehr.engine --listen HOST:PORT --forward
HOST:PORT --queue PATH [--pidfile PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from resildrill.hl7.ack import control_id_of, make_ack
from resildrill.hl7.mllp import FrameDecoder, MllpClient, frame
from wardehr._proc import remove_pidfile, setup_logging, write_pidfile

__all__ = ["Queue", "backlog", "main"]

log = logging.getLogger("engine")
SENDER = ("ENGINE", "INTEGRATION")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    control_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',   -- queued | delivered | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS messages_state ON messages (state, seq);
"""


class Queue:
    """The durable queue: one SQLite file, every commit fsynced."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk before we answer
            self._local.conn = conn
        return conn

    def put(self, control_id: str, body: str) -> int:
        conn = self._conn()
        cur = conn.execute(
            "INSERT INTO messages (control_id, received_at, body) VALUES (?, ?, ?)",
            (control_id, time.time(), body),
        )
        return int(cur.lastrowid or 0)

    def oldest(self) -> tuple[int, str, str, int] | None:
        row = (
            self._conn()
            .execute(
                "SELECT seq, control_id, body, attempts FROM messages WHERE state = 'queued' "
                "ORDER BY seq LIMIT 1"
            )
            .fetchone()
        )
        return None if row is None else (int(row[0]), str(row[1]), str(row[2]), int(row[3]))

    def mark(self, seq: int, state: str, error: str | None = None) -> None:
        self._conn().execute(
            "UPDATE messages SET state = ?, delivered_at = ?, last_error = ? WHERE seq = ?",
            (state, time.time() if state == "delivered" else None, error, seq),
        )

    def attempt(self, seq: int, error: str) -> None:
        self._conn().execute(
            "UPDATE messages SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
            (error, seq),
        )

    def depth(self) -> int:
        row = self._conn().execute("SELECT count(*) FROM messages WHERE state = 'queued'")
        return int(row.fetchone()[0])


def backlog(path: str) -> int:
    """Messages waiting in a queue file (read-only; for drills and tests)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        return int(conn.execute("SELECT count(*) FROM messages WHERE state='queued'").fetchone()[0])
    finally:
        conn.close()


class Engine:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.queue = Queue(args.queue)
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="queue")
        self._acks = 0

    # -- in ------------------------------------------------------------------------------

    def _ack(self, text: str, code: str) -> bytes:
        self._acks += 1
        return frame(make_ack(text, code, sender=SENDER, ack_id=f"ENGINE-ACK-{self._acks}"))

    async def accept(self, text: str) -> bytes:
        msh = text.split("\r", 1)[0].split("|")  # MSH-n is msh[n - 1]
        enhanced = len(msh) > 14 and msh[14].strip().upper() in ("AL", "ER", "SU")
        ok, err, reject = ("CA", "CE", "CR") if enhanced else ("AA", "AE", "AR")
        try:
            cid = control_id_of(text)
        except Exception:  # unreadable: never queued
            return self._ack(text, reject) if text.startswith("MSH") else b""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, self.queue.put, cid, text)
        except sqlite3.Error as exc:  # disk full, file frozen, locked: not safe to accept
            log.warning("queue write failed, %s refused: %s", cid, exc)
            return self._ack(text, err)
        self.wakeup.set()
        return self._ack(text, ok)

    async def serve_inbound(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        decoder = FrameDecoder()
        try:
            while data := await reader.read(65536):
                for raw in decoder.feed(data):
                    ack = await self.accept(raw.decode(errors="replace"))
                    if ack:
                        writer.write(ack)
                        await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    # -- out -----------------------------------------------------------------------------

    def forward_loop(self) -> None:
        """Oldest first; a message leaves the queue only on the EHR's ACK for it."""
        host, _, port = self.args.forward.rpartition(":")
        client = MllpClient(host, int(port), timeout_s=self.args.ack_timeout)
        delay = self.args.retry_initial
        while not self.stopping.is_set():
            try:
                item = self.queue.oldest()
            except sqlite3.Error as exc:
                log.warning("queue read failed: %s", exc)
                self.stopping.wait(delay)
                continue
            if item is None:
                self.wakeup.wait(0.5)
                self.wakeup.clear()
                continue
            seq, cid, body, attempts = item
            try:
                result = client.send(body, cid)
            except OSError as exc:
                result = None
                why = str(exc)
            if result is not None and result.accepted:
                self._record(self.queue.mark, seq, "delivered")
                delay = self.args.retry_initial
                continue
            if result is not None and result.verdict in ("rejected", "error"):
                why = f"{result.code} {result.detail}".strip()
                if attempts + 1 >= self.args.max_attempts:
                    self._record(self.queue.mark, seq, "dead", why)
                    log.warning("%s dead-lettered after %d attempts: %s", cid, attempts + 1, why)
                    continue
            elif result is not None:
                why = result.detail or result.verdict
            self._record(self.queue.attempt, seq, why)
            self.stopping.wait(delay)
            delay = min(delay * 2, self.args.retry_max)
        client.close()

    def _record(self, fn: object, *args: object) -> None:
        try:
            fn(*args)  # type: ignore[operator]
        except (
            sqlite3.Error
        ) as exc:  # retried: the message stays queued (a resend, maybe a duplicate)
            log.warning("queue update failed: %s", exc)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wardehr.engine")
    parser.add_argument("--listen", required=True, help="host:port for MLLP from senders")
    parser.add_argument("--forward", required=True, help="host:port of the EHR's MLLP inbound")
    parser.add_argument("--queue", required=True, help="the queue's SQLite file")
    parser.add_argument("--pidfile", default=None)
    parser.add_argument("--ack-timeout", type=float, default=5.0)
    parser.add_argument("--retry-initial", type=float, default=0.1)
    parser.add_argument("--retry-max", type=float, default=2.0)
    parser.add_argument("--max-attempts", type=int, default=5, help="refusals before a dead letter")
    args = parser.parse_args(argv)
    setup_logging("engine")
    Path(args.queue).parent.mkdir(parents=True, exist_ok=True)
    engine = Engine(args)
    forwarder = threading.Thread(target=engine.forward_loop, name="forward", daemon=True)

    async def run() -> None:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        host, _, port = args.listen.rpartition(":")
        server = await asyncio.start_server(
            engine.serve_inbound, host, int(port), reuse_address=True
        )
        forwarder.start()
        if args.pidfile:
            write_pidfile(args.pidfile)
        log.info("listening on %s, forwarding to %s, queue %s (%d waiting)", args.listen,
                 args.forward, args.queue, engine.queue.depth())  # fmt: skip
        try:
            await stop.wait()
        finally:
            server.close()
            engine.stopping.set()
            engine.wakeup.set()
            if args.pidfile:
                with contextlib.suppress(OSError):
                    remove_pidfile(args.pidfile)

    asyncio.run(run())


if __name__ == "__main__":
    main()
