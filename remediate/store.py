"""Where the journal lives: an SQLite file in the state directory (the embedded default), or a
PostgreSQL database that many runners share (`REMEDIATE_JOURNAL_URL=postgresql://...`).

Both speak the same SQL; statements are written with `?` placeholders, which the PostgreSQL
connection turns into psycopg's `%s` (no statement of the journal contains a literal `?` or
`%`). The schema is versioned: `schema_version` holds the version a database is at, and opening
a store applies the migrations it lacks, in order, in one transaction (on PostgreSQL under a
transaction-level advisory lock, so runners starting together migrate once).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from remediate.errors import RemediateError, require

if TYPE_CHECKING:
    import psycopg

URL_VARIABLE = "REMEDIATE_JOURNAL_URL"
POSTGRES_SCHEMES = ("postgresql", "postgres")
# The advisory lock key under which PostgreSQL runners migrate the schema one at a time.
MIGRATION_KEY = 0x72656D6564696174


class Connection(Protocol):
    """One transaction on the journal: `?`-style statements, rows as tuples."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...


# Each migration takes the store to the next version; they only ever get appended.
MIGRATIONS: tuple[str, ...] = (
    # 1: runs and their changes.
    """
    CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        "user" TEXT NOT NULL,
        host TEXT NOT NULL,
        policy_digest TEXT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE IF NOT EXISTS changes (
        run_id TEXT NOT NULL REFERENCES runs(id),
        seq INTEGER NOT NULL,
        provider TEXT NOT NULL,
        resource TEXT NOT NULL,
        attribute TEXT NOT NULL,
        before TEXT NOT NULL,
        after TEXT NOT NULL,
        outcome TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        change TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE INDEX IF NOT EXISTS changes_by_resource ON changes(resource, attribute)
    """,
    # 2: the process id of a run, to tell a dead run on the same host.
    "ALTER TABLE runs ADD COLUMN pid INTEGER NOT NULL DEFAULT 0",
    # 3: the shard a run covered (`I/N`, empty when unsharded), for a history of many runners.
    "ALTER TABLE runs ADD COLUMN shard TEXT NOT NULL DEFAULT ''",
    # 4: the plan run a saved plan's apply came from, so a re-run of the plan resumes it.
    "ALTER TABLE runs ADD COLUMN plan_run TEXT NOT NULL DEFAULT ''",
)
VERSION = len(MIGRATIONS)


def open_store(state_dir: Path, url: str | None = None) -> SqliteStore | PostgresStore:
    """The store `url` names (else `REMEDIATE_JOURNAL_URL`, else `<state dir>/journal.sqlite3`),
    migrated to the current schema."""
    url = url if url is not None else os.environ.get(URL_VARIABLE, "")
    if not url:
        return SqliteStore(state_dir / "journal.sqlite3")
    scheme = urlsplit(url).scheme
    if scheme in POSTGRES_SCHEMES:
        return PostgresStore(url)
    if scheme == "sqlite":
        path = url.removeprefix("sqlite://")
        if not path:
            raise RemediateError(f"journal URL {url!r}: names no file (sqlite:///path/journal.db)")
        return SqliteStore(Path(path))
    raise RemediateError(
        f"journal URL {redact(url)!r}: unknown scheme {scheme or '(none)'!r} "
        "(postgresql://user@host/db or sqlite:///path)"
    )


def redact(url: str) -> str:
    """`url` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class SqliteStore:
    """The embedded journal: one SQLite file on this machine."""

    shared = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RemediateError(f"{path.parent}: cannot create state directory: {exc}") from None
        with self.connect() as db:
            # Under SQLite's write lock, so two runs opening an old journal migrate it once.
            db.execute("BEGIN IMMEDIATE")
            _migrate(db, _sqlite_version(db))

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        try:
            with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
                yield db
        except sqlite3.Error as exc:
            raise RemediateError(f"{self.path}: journal error: {exc}") from None


def _sqlite_version(db: Connection) -> int:
    """The version of an SQLite journal, including one written before the version table: its
    tables tell how far it got (runs without pid: 1, with pid: 2)."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    if row[0] is not None:
        return int(row[0])
    columns = {column[1] for column in db.execute("PRAGMA table_info(runs)")}
    if not columns:
        return 0
    return 2 if "pid" in columns else 1


def _migrate(db: Connection, current: int) -> None:
    if current > VERSION:
        raise RemediateError(
            f"the journal is at schema version {current}, newer than this remediate knows "
            f"({VERSION}): upgrade remediate"
        )
    for version in range(current + 1, VERSION + 1):
        for statement in MIGRATIONS[version - 1].split(";"):
            if statement.strip():
                db.execute(statement)
    if current < VERSION:
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (VERSION,))


class _Postgres:
    """A psycopg connection that takes the journal's `?` placeholders."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._connection.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        with self._connection.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)
        return None


class PostgresStore:
    """A journal many runners share: a PostgreSQL database (psycopg 3)."""

    shared = True

    def __init__(self, url: str) -> None:
        require("postgres", "a PostgreSQL journal")
        self.url = url
        self.where = redact(url)
        with self.connect() as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_KEY,))
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            (current,) = db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version"
            ).fetchone()
            _migrate(db, int(current))

    def session(self) -> psycopg.Connection[Any]:
        """A connection of its own in autocommit mode (advisory locks live as long as it)."""
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise RemediateError(
                f"{self.where}: cannot connect to the journal: {_line(exc)}"
            ) from None

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=10) as connection:
                # Leaving the block commits, or rolls back on an exception.
                yield _Postgres(connection)
        except psycopg.Error as exc:
            raise RemediateError(f"{self.where}: journal error: {_line(exc)}") from None


def _line(exc: Exception) -> str:
    """The first line of a driver's message (libpq's messages run over several lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
