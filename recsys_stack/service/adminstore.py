"""Tenants, config and rules documents, and the admin audit log, in SQLite.

Versions are append-only (a version is the SHA-256 of the document's canonical jsonb text, so the same document is
always the same version); a per-tenant current pointer says which version is live; every change of the pointer
and every cache invalidation is appended to the audit log. Each operation opens its own connection in read-write
mode without create, so a database file that was moved or replaced is noticed at once rather than silently
recreated; the journal is the default rollback journal, so the database is a single file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..formats import loads_document
from .canonical import canonical_jsonb, doc_version

KINDS = ("config", "rules")
MAX_AUDIT_LIMIT = 200
DEFAULT_AUDIT_LIMIT = 100
SYSTEM_ACTOR = ("recsys-stack", "system")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    tenant_id  TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS document_versions (
    tenant_id  TEXT NOT NULL REFERENCES tenants(tenant_id),
    kind       TEXT NOT NULL CHECK (kind IN ('config', 'rules')),
    version    TEXT NOT NULL,
    document   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, version)
);
CREATE TABLE IF NOT EXISTS current_documents (
    tenant_id  TEXT NOT NULL REFERENCES tenants(tenant_id),
    kind       TEXT NOT NULL CHECK (kind IN ('config', 'rules')),
    version    TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);
CREATE TABLE IF NOT EXISTS audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at  TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    actor_sub    TEXT NOT NULL,
    actor_type   TEXT NOT NULL,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    request_id   TEXT,
    before_state TEXT,
    after_state  TEXT,
    extra        TEXT
);
CREATE INDEX IF NOT EXISTS audit_log_by_tenant ON audit_log (tenant_id, occurred_at DESC, id DESC);
"""


class AdminStoreError(Exception):
    """Base class of the admin store's errors."""


class DatabaseUnavailable(AdminStoreError):
    """The SQLite file cannot be opened or queried."""


class TenantNotFound(AdminStoreError):
    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant {tenant_id!r} does not exist: check the tenant id (the local stack serves demo and acme)")
        self.tenant_id = tenant_id


class DocumentNotFound(AdminStoreError):
    def __init__(self, tenant_id: str, kind: str) -> None:
        super().__init__(
            f"tenant {tenant_id!r} has no {kind} document yet: PUT one to /v1/admin/tenants/{tenant_id}/{kind}"
        )
        self.tenant_id = tenant_id
        self.kind = kind


class VersionMismatch(AdminStoreError):
    def __init__(self, tenant_id: str, kind: str, expected: str, current: str | None) -> None:
        super().__init__(
            f"{kind} of tenant {tenant_id!r} is at version {current or '(none)'}, not {expected}: "
            f"GET the {kind} again and retry with If-Match set to its ETag"
        )
        self.expected = expected
        self.current = current


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``: fixed width, so text order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (any precision, ``Z`` or an offset) into an aware UTC datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    if "." in value:
        # Python's fromisoformat accepts at most microseconds; nanosecond timestamps are truncated.
        head, _, rest = value.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = head + "." + rest[: min(digits, 6)].ljust(6, "0") + rest[digits:]
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone: use RFC 3339 such as 2026-01-02T00:00:00Z")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class AuditPage:
    """One page of the audit log, newest first, with the keyset cursor of the next page (None on the last)."""

    entries: list[dict[str, Any]]
    next_before: str | None = None
    next_before_id: int | None = None

    def to_dict(self, tenant_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"tenant_id": tenant_id, "entries": self.entries}
        if self.next_before is not None:
            body["next_before"] = self.next_before
            body["next_before_id"] = self.next_before_id
        return body


@dataclass
class AdminStore:
    """The admin database at ``path``; created with its schema when ``create`` is true and it does not exist."""

    path: Path
    create: bool = True
    timeout: float = 5.0
    _uri: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._uri = self.path.absolute().as_uri() + "?mode=rw"
        if self.create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                conn = sqlite3.connect(self.path, timeout=self.timeout)
            except sqlite3.Error as exc:
                raise DatabaseUnavailable(f"cannot create the admin database {self.path}: {exc}") from exc
            try:
                conn.execute("PRAGMA journal_mode=DELETE")
                conn.executescript(_SCHEMA)
                conn.commit()
            except sqlite3.Error as exc:
                raise DatabaseUnavailable(f"cannot initialise the admin database {self.path}: {exc}") from exc
            finally:
                conn.close()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(self._uri, uri=True, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(
                f"cannot open the admin database {self.path}: {exc}; check that the file exists and is readable"
            ) from exc
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            yield conn
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as exc:
            raise DatabaseUnavailable(f"admin database {self.path} is not usable: {exc}") from exc
        finally:
            conn.close()

    # -- health -----------------------------------------------------------------------------------------------

    def check(self) -> None:
        """Raise DatabaseUnavailable unless the database can be opened and queried."""
        with self._connect() as conn:
            conn.execute("SELECT count(*) FROM tenants").fetchone()

    # -- tenants ----------------------------------------------------------------------------------------------

    def ensure_tenant(self, tenant_id: str) -> bool:
        """Create the tenant if it does not exist; return True when it was created."""
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO tenants (tenant_id, created_at) VALUES (?, ?)",
                (tenant_id, format_timestamp(datetime.now(UTC))),
            )
            return cur.rowcount == 1

    def tenant_exists(self, tenant_id: str) -> bool:
        with self._connect() as conn:
            row = conn.execute("SELECT 1 FROM tenants WHERE tenant_id = ?", (tenant_id,)).fetchone()
            return row is not None

    def tenants(self) -> list[str]:
        with self._connect() as conn:
            return [row[0] for row in conn.execute("SELECT tenant_id FROM tenants ORDER BY tenant_id")]

    # -- documents --------------------------------------------------------------------------------------------

    def get(self, tenant_id: str, kind: str) -> tuple[Any, str]:
        """Return the current (document, version) of ``kind``; raise TenantNotFound or DocumentNotFound."""
        _check_kind(kind)
        with self._connect() as conn:
            _require_tenant(conn, tenant_id)
            row = conn.execute(
                "SELECT v.document, v.version FROM current_documents c JOIN document_versions v"
                " ON v.tenant_id = c.tenant_id AND v.kind = c.kind AND v.version = c.version"
                " WHERE c.tenant_id = ? AND c.kind = ?",
                (tenant_id, kind),
            ).fetchone()
        if row is None:
            raise DocumentNotFound(tenant_id, kind)
        return loads_document(row[0]), row[1]

    def versions(self, tenant_id: str, kind: str) -> list[str]:
        """Every version of ``kind`` ever stored for the tenant, oldest first."""
        _check_kind(kind)
        with self._connect() as conn:
            _require_tenant(conn, tenant_id)
            return [
                row[0]
                for row in conn.execute(
                    "SELECT version FROM document_versions WHERE tenant_id = ? AND kind = ? ORDER BY rowid",
                    (tenant_id, kind),
                )
            ]

    def put(
        self,
        tenant_id: str,
        kind: str,
        doc: Any,
        *,
        actor_sub: str,
        actor_type: str,
        request_id: str | None = None,
        if_match: str | None = None,
        occurred_at: datetime | None = None,
    ) -> tuple[str, bool]:
        """Make ``doc`` the current ``kind`` document; return (version, changed).

        The same document as the current one changes nothing and writes no audit entry; a document equal to an
        older version points back at that version (a rollback) and is audited like any change. ``if_match``, when
        given, must equal the current version (bare 64 hex), else VersionMismatch and nothing changes.
        """
        _check_kind(kind)
        text = canonical_jsonb(doc)
        version = doc_version(doc)
        moment = format_timestamp(occurred_at or datetime.now(UTC))
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                _require_tenant(conn, tenant_id)
                row = conn.execute(
                    "SELECT c.version, v.document FROM current_documents c JOIN document_versions v"
                    " ON v.tenant_id = c.tenant_id AND v.kind = c.kind AND v.version = c.version"
                    " WHERE c.tenant_id = ? AND c.kind = ?",
                    (tenant_id, kind),
                ).fetchone()
                current, before = (row[0], row[1]) if row else (None, None)
                if if_match is not None and if_match != current:
                    raise VersionMismatch(tenant_id, kind, if_match, current)
                if current == version:
                    conn.execute("ROLLBACK")
                    return version, False
                known = conn.execute(
                    "SELECT 1 FROM document_versions WHERE tenant_id = ? AND kind = ? AND version = ?",
                    (tenant_id, kind, version),
                ).fetchone()
                if known is None:
                    conn.execute(
                        "INSERT INTO document_versions (tenant_id, kind, version, document, created_at, created_by)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (tenant_id, kind, version, text, moment, actor_sub),
                    )
                conn.execute(
                    "INSERT INTO current_documents (tenant_id, kind, version, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (tenant_id, kind) DO UPDATE SET version = excluded.version,"
                    " updated_at = excluded.updated_at",
                    (tenant_id, kind, version, moment),
                )
                extra = {"before_version": current, "after_version": version, "rollback": known is not None}
                conn.execute(
                    "INSERT INTO audit_log (occurred_at, tenant_id, actor_sub, actor_type, action, entity_type,"
                    " entity_id, request_id, before_state, after_state, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        moment,
                        tenant_id,
                        actor_sub,
                        actor_type,
                        f"{kind}.update",
                        kind,
                        version,
                        request_id,
                        before,
                        text,
                        json.dumps(extra),
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return version, True

    # -- audit ------------------------------------------------------------------------------------------------

    def record_invalidation(
        self,
        tenant_id: str,
        *,
        targets: list[str],
        surface: str | None,
        invalidated: dict[str, int],
        actor_sub: str,
        actor_type: str,
        request_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> int:
        """Append a ``cache.invalidate`` audit entry; return its id."""
        extra = {"targets": targets, "surface": surface, "invalidated": invalidated}
        with self._connect() as conn:
            _require_tenant(conn, tenant_id)
            cur = conn.execute(
                "INSERT INTO audit_log (occurred_at, tenant_id, actor_sub, actor_type, action, entity_type,"
                " entity_id, request_id, before_state, after_state, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    format_timestamp(occurred_at or datetime.now(UTC)),
                    tenant_id,
                    actor_sub,
                    actor_type,
                    "cache.invalidate",
                    "cache",
                    surface or tenant_id,
                    request_id,
                    None,
                    None,
                    json.dumps(extra),
                ),
            )
            return int(cur.lastrowid or 0)

    def audit(
        self,
        tenant_id: str,
        limit: int = DEFAULT_AUDIT_LIMIT,
        before: str | datetime | None = None,
        before_id: int | None = None,
    ) -> AuditPage:
        """Audit entries of the tenant, newest first (by occurred_at, then id), after the keyset cursor.

        ``before`` alone returns entries strictly older than it; with ``before_id`` also those at the same instant
        with a smaller id, which is the cursor a previous page returned. ``limit`` is clamped to 1..200.
        """
        limit = max(1, min(int(limit), MAX_AUDIT_LIMIT))
        clauses, params = ["tenant_id = ?"], [tenant_id]
        if before is not None:
            moment = format_timestamp(before if isinstance(before, datetime) else parse_timestamp(before))
            if before_id is not None:
                clauses.append("(occurred_at < ? OR (occurred_at = ? AND id < ?))")
                params += [moment, moment, int(before_id)]
            else:
                clauses.append("occurred_at < ?")
                params.append(moment)
        elif before_id is not None:
            clauses.append("id < ?")
            params.append(int(before_id))
        with self._connect() as conn:
            _require_tenant(conn, tenant_id)
            rows = conn.execute(
                "SELECT id, occurred_at, tenant_id, actor_sub, actor_type, action, entity_type, entity_id,"
                " request_id, before_state, after_state, extra FROM audit_log WHERE "
                + " AND ".join(clauses)
                + " ORDER BY occurred_at DESC, id DESC LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
        entries = [_entry(row) for row in rows[:limit]]
        if len(rows) > limit:
            return AuditPage(entries, entries[-1]["occurred_at"], entries[-1]["id"])
        return AuditPage(entries)


def _entry(row: tuple[Any, ...]) -> dict[str, Any]:
    def load(text: str | None) -> Any:
        return None if text is None else loads_document(text)

    return {
        "id": row[0],
        "occurred_at": row[1],
        "tenant_id": row[2],
        "actor_sub": row[3],
        "actor_type": row[4],
        "action": row[5],
        "entity_type": row[6],
        "entity_id": row[7],
        "request_id": row[8],
        "before_state": load(row[9]),
        "after_state": load(row[10]),
        "extra": load(row[11]),
    }


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}: use 'config' or 'rules'")


def _require_tenant(conn: sqlite3.Connection, tenant_id: str) -> None:
    if conn.execute("SELECT 1 FROM tenants WHERE tenant_id = ?", (tenant_id,)).fetchone() is None:
        raise TenantNotFound(tenant_id)
