"""Durable storage of FHIR resources: SQLite (default) and PostgreSQL, behind one class.

Owns the schema, the durability settings and every SQL statement. A write returns only
after its transaction is committed with the store's full durability (SQLite: WAL with
``synchronous=FULL``; PostgreSQL: ``fsync=on``, ``synchronous_commit=on``), so a 2xx
acknowledged by a replica survives a SIGKILL of any process. Power loss is not tested.

Calls are synchronous: the API server runs them on a small thread pool, one connection per
thread (SQLite and psycopg connections are not shared between threads).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

from wardehr import fhir
from wardehr.fhir import FhirError, Resource

__all__ = ["Criterion", "SearchResult", "Store", "StoreUnavailable", "open_store"]

#: How long a writer waits for another's lock before answering 503 (SQLite busy_timeout,
#: PostgreSQL lock_timeout and statement_timeout). Shorter than the gateway's upstream
#: timeout (2 s) on purpose: a replica stuck behind a lock answers a clean 503 ("not
#: applied") before the gateway gives up with a 504 ("unknown outcome").
LOCK_TIMEOUT_MS = 1500
MAX_COUNT = 500
DEFAULT_COUNT = 50
_ADVISORY_LOCK = 7_414_212

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS resource (
        type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
        last_updated TEXT NOT NULL, sort_date TEXT, body TEXT NOT NULL,
        PRIMARY KEY (type, id))""",
    """CREATE TABLE IF NOT EXISTS resource_history (
        type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (type, id, version))""",
    """CREATE TABLE IF NOT EXISTS search_token (
        type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS search_token_lookup ON search_token (type, param, value)",
    "CREATE INDEX IF NOT EXISTS search_token_owner ON search_token (type, id)",
    "CREATE INDEX IF NOT EXISTS resource_sort ON resource (type, sort_date)",
    "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class StoreUnavailable(Exception):
    """The database could not answer in time (locked, unreachable): the API answers 503."""


@dataclass(frozen=True, slots=True)
class Criterion:
    """One search restriction: ``param`` compared with ``op`` to any of ``values`` (OR)."""

    param: str
    op: str  # "in" | "prefix" | "eq" | "gt" | "ge" | "lt" | "le"
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Matches (already limited by ``_count``), the total number, and included resources."""

    matches: list[Resource]
    total: int
    included: list[Resource]


class _Conn(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...


class Store:
    """FHIR resources in SQL; subclasses provide connections and transactions."""

    placeholder = "?"
    name = "sql"

    def __init__(self) -> None:
        self._local = threading.local()

    # -- to provide ---------------------------------------------------------------

    def _connect(self) -> Any:
        raise NotImplementedError

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[_Conn]:
        raise NotImplementedError
        yield  # pragma: no cover

    def settings(self) -> dict[str, str]:
        """The live durability settings, read back from the database."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _drop_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with suppress(Exception):
                conn.close()

    def _x(self, conn: _Conn, sql: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self._sql(sql), params)

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop_conn()

    def ping(self) -> None:
        """A trivial query: raises :class:`StoreUnavailable` when the database is not usable."""
        with self._transaction(write=False) as conn:
            self._x(conn, "SELECT 1").fetchone()

    def _create_schema(self, conn: _Conn) -> None:
        for statement in _SCHEMA:
            self._x(conn, statement)

    def ensure_ready(self, population: list[Resource] | None = None) -> bool:
        """Create the schema and load ``population`` once; True if this call seeded."""
        with self._transaction(write=True) as conn:
            self._lock_schema(conn)
            self._create_schema(conn)
            row = self._x(conn, "SELECT value FROM store_meta WHERE key = 'seeded'").fetchone()
            if row is not None or population is None:
                return False
            for resource in population:
                self._insert(conn, resource["resourceType"], resource)
            self._x(
                conn,
                "INSERT INTO store_meta (key, value) VALUES ('seeded', ?)",
                (str(len(population)),),
            )
            return True

    def _lock_schema(self, conn: _Conn) -> None:
        """Serialize schema creation between replicas (SQLite's write lock already does)."""

    def _insert(self, conn: _Conn, type_: str, resource: Resource) -> None:
        body = json.dumps(resource, separators=(",", ":"))
        meta = resource["meta"]
        version = int(meta["versionId"])
        self._x(
            conn,
            "INSERT INTO resource (type, id, version, last_updated, sort_date, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                type_,
                resource["id"],
                version,
                meta["lastUpdated"],
                fhir.sort_date(type_, resource),
                body,
            ),
        )
        self._x(
            conn,
            "INSERT INTO resource_history (type, id, version, body) VALUES (?, ?, ?, ?)",
            (type_, resource["id"], version, body),
        )
        self._index(conn, type_, resource)

    def _index(self, conn: _Conn, type_: str, resource: Resource) -> None:
        for param, value in fhir.index_rows(type_, resource):
            self._x(
                conn,
                "INSERT INTO search_token (type, id, param, value) VALUES (?, ?, ?, ?)",
                (type_, resource["id"], param, value),
            )

    # -- the interactions -------------------------------------------------------------

    def read(self, type_: str, id_: str) -> Resource | None:
        """The current version of a resource, or None."""
        with self._transaction(write=False) as conn:
            row = self._x(
                conn, "SELECT body FROM resource WHERE type = ? AND id = ?", (type_, id_)
            ).fetchone()
        return None if row is None else _load(row[0])

    def vread(self, type_: str, id_: str, version: int) -> Resource | None:
        """One version of a resource, or None."""
        with self._transaction(write=False) as conn:
            row = self._x(
                conn,
                "SELECT body FROM resource_history WHERE type = ? AND id = ? AND version = ?",
                (type_, id_, version),
            ).fetchone()
        return None if row is None else _load(row[0])

    def create(self, type_: str, resource: Resource) -> Resource:
        """Store a new resource with a server-assigned id; returns it with ``meta``."""
        stored = dict(resource)
        stored["id"] = str(uuid.uuid4())
        stored["meta"] = {
            **resource.get("meta", {}),
            "versionId": "1",
            "lastUpdated": fhir.now_instant(),
        }
        with self._transaction(write=True) as conn:
            self._insert(conn, type_, stored)
        return stored

    def update(
        self, type_: str, id_: str, resource: Resource, if_match: int | None = None
    ) -> tuple[Resource, bool]:
        """Store a new version (or create with this id); returns it and whether it was created.

        ``if_match`` (from an ``If-Match`` header) or ``meta.versionId`` in the body must name
        the current version, else 412 / 409: two clinicians never silently overwrite each other.
        """
        body_version = resource.get("meta", {}).get("versionId")
        with self._transaction(write=True) as conn:
            row = self._x(conn, self._select_for_update(), (type_, id_)).fetchone()
            current = None if row is None else int(row[0])
            if if_match is not None and if_match != current:
                raise FhirError(
                    412, "conflict", f"If-Match version {if_match} is not the current {current}"
                )
            if (
                body_version is not None
                and current is not None
                and str(body_version) != str(current)
            ):
                raise FhirError(
                    409, "conflict", f"meta.versionId {body_version} is not the current {current}"
                )
            version = 1 if current is None else current + 1
            stored = dict(resource)
            stored["id"] = id_
            stored["meta"] = {
                **resource.get("meta", {}),
                "versionId": str(version),
                "lastUpdated": fhir.now_instant(),
            }
            if current is None:
                self._insert(conn, type_, stored)
                return stored, True
            body = json.dumps(stored, separators=(",", ":"))
            self._x(
                conn,
                "UPDATE resource SET version = ?, last_updated = ?, sort_date = ?, body = ?"
                " WHERE type = ? AND id = ?",
                (
                    version,
                    stored["meta"]["lastUpdated"],
                    fhir.sort_date(type_, stored),
                    body,
                    type_,
                    id_,
                ),
            )
            self._x(
                conn,
                "INSERT INTO resource_history (type, id, version, body) VALUES (?, ?, ?, ?)",
                (type_, id_, version, body),
            )
            self._x(conn, "DELETE FROM search_token WHERE type = ? AND id = ?", (type_, id_))
            self._index(conn, type_, stored)
        return stored, False

    def _select_for_update(self) -> str:
        return "SELECT version FROM resource WHERE type = ? AND id = ?"

    def search(
        self,
        type_: str,
        criteria: Sequence[Criterion],
        sort: Sequence[tuple[str, bool]] = (),
        count: int = DEFAULT_COUNT,
        include: Sequence[str] = (),
    ) -> SearchResult:
        """Resources of ``type_`` meeting every criterion, sorted, at most ``count``."""
        where = ["r.type = ?"]
        params: list[Any] = [type_]
        for c in criteria:
            clause, values = _criterion_sql(c)
            if c.param == "_id":
                where.append(f"r.id IN ({', '.join('?' * len(c.values))})")
            elif c.param == "_lastUpdated":
                where.append(clause.replace("value", "r.last_updated"))
            else:
                where.append(
                    "r.id IN (SELECT t.id FROM search_token t WHERE t.type = ? AND t.param = ?"
                    f" AND {clause.replace('value', 't.value')})"
                )
                params += [type_, c.param]
            params += values
        order = []
        for key, descending in sort:
            column = {"date": "r.sort_date", "_lastUpdated": "r.last_updated", "_id": "r.id"}[key]
            order.append(f"{column} {'DESC' if descending else 'ASC'}")
        order.append("r.id ASC")
        count = max(0, min(count, MAX_COUNT))
        sql_where = " AND ".join(where)
        with self._transaction(write=False) as conn:
            total = int(
                self._x(
                    conn, f"SELECT COUNT(*) FROM resource r WHERE {sql_where}", params
                ).fetchone()[0]
            )
            rows = self._x(
                conn,
                f"SELECT r.body FROM resource r WHERE {sql_where} ORDER BY {', '.join(order)}"
                " LIMIT ?",
                [*params, count],
            ).fetchall()
            matches = [_load(row[0]) for row in rows]
            included = self._included(conn, type_, matches, include)
        return SearchResult(matches, total, included)

    def _included(
        self, conn: _Conn, type_: str, matches: list[Resource], include: Sequence[str]
    ) -> list[Resource]:
        seen: set[str] = set()
        out: list[Resource] = []
        for spec in include:
            source, _, param_name = spec.partition(":")
            param = fhir.SEARCH_PARAMS[type_].get(param_name)
            if source != type_ or param is None or param.type != "reference":
                raise FhirError(400, "not-supported", f"_include={spec} is not supported")
            for resource in matches:
                for ref in param.extract(resource):
                    if ref in seen or "/" not in ref:
                        continue
                    seen.add(ref)
                    ref_type, _, ref_id = ref.partition("/")
                    row = self._x(
                        conn,
                        "SELECT body FROM resource WHERE type = ? AND id = ?",
                        (ref_type, ref_id),
                    ).fetchone()
                    if row is not None:
                        out.append(_load(row[0]))
        return out

    def count_all(self) -> int:
        """How many resources are stored (all types)."""
        with self._transaction(write=False) as conn:
            return int(self._x(conn, "SELECT COUNT(*) FROM resource").fetchone()[0])


def _load(raw: Any) -> Resource:
    value: Resource = json.loads(raw)
    return value


def _criterion_sql(c: Criterion) -> tuple[str, list[Any]]:
    """A WHERE fragment on the placeholder column name ``value``, and its parameters."""
    if c.op == "in":
        return f"value IN ({', '.join('?' * len(c.values))})", list(c.values)
    if c.op == "prefix":
        return "(" + " OR ".join("value LIKE ?" for _ in c.values) + ")", [
            v.replace("%", "").replace("_", "") + "%" for v in c.values
        ]
    value = c.values[0]
    # a date compared at the precision written: "le2026-11-26" includes the whole day
    if c.op == "eq":
        return "value LIKE ?", [value + "%"]
    if c.op in ("gt", "le"):
        return f"value {'>' if c.op == 'gt' else '<='} ?", [value + "~"]
    return f"value {'>=' if c.op == 'ge' else '<'} ?", [value]


# --- SQLite ------------------------------------------------------------------------------


class SqliteStore(Store):
    """One SQLite file shared by the replicas: WAL, ``synchronous=FULL``, a busy timeout."""

    name = "sqlite"

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=LOCK_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {LOCK_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: the WAL is fsync'd at every commit, so an acknowledged write survives a crash
        # of the process (NORMAL would only lose it on power loss, which is not tested here)
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[_Conn]:
        conn = self._conn()
        try:
            # IMMEDIATE takes the write lock up front, so a read-then-write (update's
            # version check) cannot deadlock against another replica
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            _rollback(conn)
            raise StoreUnavailable(f"sqlite: {exc}") from exc
        except BaseException:
            _rollback(conn)
            raise

    def settings(self) -> dict[str, str]:
        conn = self._conn()
        return {
            "journal_mode": str(conn.execute("PRAGMA journal_mode").fetchone()[0]),
            "synchronous": str(conn.execute("PRAGMA synchronous").fetchone()[0]),
            "busy_timeout": str(conn.execute("PRAGMA busy_timeout").fetchone()[0]),
        }


def _rollback(conn: sqlite3.Connection) -> None:
    # no transaction may be open (when the failure was BEGIN or COMMIT itself)
    with contextlib.suppress(sqlite3.OperationalError):
        conn.execute("ROLLBACK")


# --- PostgreSQL ------------------------------------------------------------------------


class PostgresStore(Store):
    """PostgreSQL over TCP: ``fsync=on``, ``synchronous_commit=on``, bounded lock waits."""

    placeholder = "%s"
    name = "postgres"

    def __init__(self, dsn: str, connect_timeout_s: int = 2) -> None:
        super().__init__()
        self.dsn = dsn
        self.connect_timeout_s = connect_timeout_s

    def _connect(self) -> Any:
        import psycopg  # optional dependency: only replicas of a postgres target need it

        # statement/lock timeouts bound how long a frozen peer can hold this replica up;
        # idle_in_transaction frees locks held by a replica frozen mid-transaction
        options = (
            f"-c statement_timeout={LOCK_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"
            " -c idle_in_transaction_session_timeout=5000"
        )
        try:
            return psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=self.connect_timeout_s, options=options
            )
        except psycopg.Error as exc:
            raise StoreUnavailable(f"postgres: {exc}".strip()) from exc

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[_Conn]:
        import psycopg

        conn = self._conn()
        try:
            with conn.transaction():
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self._drop_conn()  # the session is gone or poisoned: reconnect next time
            raise StoreUnavailable(f"postgres: {exc}".strip()) from exc
        except psycopg.errors.UniqueViolation as exc:
            raise FhirError(409, "conflict", "created concurrently by another request") from exc
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
            raise StoreUnavailable(f"postgres: {exc}".strip()) from exc

    def _lock_schema(self, conn: _Conn) -> None:
        self._x(conn, f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})")

    def _select_for_update(self) -> str:
        return "SELECT version FROM resource WHERE type = ? AND id = ? FOR UPDATE"

    def settings(self) -> dict[str, str]:
        with self._transaction(write=False) as conn:
            return {
                name: str(self._x(conn, f"SHOW {name}").fetchone()[0])
                for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
            }


def open_store(kind: str, location: str) -> Store:
    """A store of ``kind`` ("sqlite" with a file path, "postgres" with a DSN)."""
    if kind == "sqlite":
        return SqliteStore(location)
    if kind == "postgres":
        return PostgresStore(location)
    raise ValueError(f"unknown store {kind!r}: use sqlite or postgres")
