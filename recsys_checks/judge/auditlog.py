"""Where our audit records are and how they are read: the layout of the trail and the bounded, newest-first read.

One object per applied action under ``<registry>/audit/<tenant>/<scope>/`` (``scope`` is the surface, or
:data:`TENANT_SCOPE` for tenant-wide actions), or the same layout in a local folder for config and rules reverts
made without a registry. An ``<name>.intent.json`` without its ``<name>.json`` is an action a crash interrupted.
Writing the trail, and settling what a crash left, is the levers' side: :mod:`recsys_checks.levers.audit`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsys_checks.core import jsonio
from recsys_checks.core.errors import InvalidObject, NotFound
from recsys_checks.core.results import Plan
from recsys_checks.reach.settings import (
    Target,
    local_audit_dir,
    prove_under,
    safe_segment,
)
from recsys_checks.reach.store import TargetStores

TENANT_SCOPE = "_tenant"
INTENT_SUFFIX = ".intent.json"
# The name of the per-user folders of recsys-checks (the platform's user state folder, see default_audit_dir).
APP_NAME = "recsys-checks"


def default_audit_dir() -> Path:
    """The local audit folder of the plain CLI when ``RECSYS_AUDIT_DIR`` is not set: the platform's per-user state
    folder of recsys-checks (platformdirs), whatever folder a command is started from. On Linux
    ``$XDG_STATE_HOME/recsys-checks``, else ``~/.local/state/recsys-checks``; on macOS
    ``~/Library/Application Support/recsys-checks``; on Windows ``%LOCALAPPDATA%\\recsys-checks``. The records go
    to its ``audit/<tenant>/_tenant/``, laid out as in the registry."""
    from platformdirs import user_state_path  # imported when used: most commands never place a local record

    return user_state_path(APP_NAME, appauthor=False)


def audit_prefix(target: Target, tenant: str, scope: str, *, root: str | None = None) -> str:
    """URI prefix of the audit objects of one tenant and scope (raises BadInput when it cannot be placed).

    ``root``: the root to place them under instead of the registry's (a local audit folder, see :class:`Place`)."""
    root = root or target.audit_root()
    return prove_under(f"{root}/audit/{safe_segment(tenant, 'tenant')}/{safe_segment(scope, 'scope')}/", root + "/")


def audit_uri(target: Target, tenant: str, scope: str, plan: Plan, now: datetime, *, root: str | None = None) -> str:
    """Where the audit object of ``plan`` applied at ``now`` goes: sortable by time (to the microsecond, so that the
    same plan applied twice in one second, e.g. a cache invalidation, gets two records), unique per plan."""
    stamp = now.strftime("%Y%m%dT%H%M%S") + f".{now.microsecond:06d}Z"
    return audit_prefix(target, tenant, scope, root=root) + f"{stamp}-{plan.plan_hash[:12]}.json"


def local_root_to_read(target: Target) -> str | None:
    """The local audit folder readers include: ``RECSYS_AUDIT_DIR`` when set, else :func:`default_audit_dir` when
    records were ever written there (its ``audit/`` exists); None otherwise. The working directory plays no part."""
    if target.audit_dir:
        return local_root(target)
    return local_root(target) if (default_audit_dir() / "audit").is_dir() else None


def record_uri(intent_uri: str) -> str:
    """The URI of the record that completes ``intent_uri``."""
    return intent_uri.removesuffix(INTENT_SUFFIX) + ".json"


def load_record(stores: TargetStores, uri: str) -> dict[str, Any]:
    """The audit record (or intent) at ``uri`` as a JSON object; ``{}`` when it is missing, damaged or not one."""
    try:
        data, _ = stores.get(uri)
        doc = jsonio.loads(data)
    except (NotFound, InvalidObject, ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


# The most audit records one read parses for one scope: the newest, within the reader's window. A reader of a longer
# trail says how many it left out (AuditRecords.left_out); `recsys-checks timeline --max-audit-records` raises it.
MAX_AUDIT_RECORDS = 5000


class AuditRecords(list):
    """Audit records as :func:`read` returns them, newest first; ``left_out`` counts the older records within the
    window that the cap left unread (0 when none was)."""

    left_out: int = 0


def _stamp(key: str) -> str | None:
    """``YYYYmmddTHHMMSS`` of an audit object's name ``<YYYYmmddTHHMMSS[.ffffff]Z>-<plan12>.json`` (the time it was
    written, as its ``when``), None for a name not in that form."""
    head = key[:15]
    if len(key) > 16 and head[8] == "T" and (head[:8] + head[9:]).isascii() and (head[:8] + head[9:]).isdigit():
        return head
    return None


def read(target: Target, tenant: str, scope: str, *, stores: TargetStores | None = None,
         root: str | None = None, since: datetime | None = None,
         limit: int | None = MAX_AUDIT_RECORDS) -> AuditRecords:
    """The audit records of one tenant and scope, newest first, each with its ``uri``; unreadable ones flagged.

    Intents are not records: a completed one has its record, a pending one is listed by :func:`pending`. ``root``:
    read a local audit folder instead of the registry. The names sort by time, so the folder is pruned by name
    before anything is read: ``since`` leaves out records written before it (to the second), and only the newest
    ``limit`` of the rest are read and parsed (None: all), the others counted in ``left_out``. Memory and time
    follow the window, not the folder.
    """
    import heapq

    prefix = audit_prefix(target, tenant, scope, root=root)
    floor = since.astimezone(UTC).strftime("%Y%m%dT%H%M%S") if since is not None else None
    st = stores or TargetStores(target)
    try:
        newest: list[str] = []  # all keys in the window, or a min-heap of the newest `limit`
        within = 0
        for key in st.walk(prefix):
            if not key.endswith(".json") or key.endswith(INTENT_SUFFIX):
                continue
            if floor is not None and (stamp := _stamp(key)) is not None and stamp < floor:
                continue
            within += 1
            if limit is None or len(newest) < limit:
                heapq.heappush(newest, key) if limit is not None else newest.append(key)
            elif key > newest[0]:
                heapq.heapreplace(newest, key)
        out = AuditRecords()
        out.left_out = within - len(newest)
        for key in sorted(newest, reverse=True):
            uri = prefix + key
            try:
                data, _ = st.get(uri)
                doc = jsonio.loads(data)
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                doc["uri"] = uri
            except (NotFound, InvalidObject, ValueError, UnicodeDecodeError) as exc:
                doc = {"uri": uri, "error": f"unreadable audit record {uri}: {exc}"}
            out.append(doc)
        return out
    finally:
        if stores is None:
            st.close()


def read_audit(target: Target, tenant: str, surface: str, *, stores: TargetStores | None = None,
               since: datetime | None = None, limit: int | None = MAX_AUDIT_RECORDS) -> list[dict[str, Any]]:
    """The audit objects of a surface's actions, newest first, each with its ``uri``: those written since ``since``
    (default: all), at most the newest ``limit`` (see :func:`read`)."""
    return read(target, safe_segment(tenant, "tenant"), safe_segment(surface, "surface"), stores=stores,
                      since=since, limit=limit)


def local_root(target: Target, default_dir: str | os.PathLike[str] | None = None) -> str:
    """The ``file://`` root of the local audit folder: ``RECSYS_AUDIT_DIR``, else ``default_dir``, else the per-user
    :func:`default_audit_dir` (BadInput when it cannot be a folder)."""
    if target.audit_dir:
        path = local_audit_dir(target.audit_dir)
    else:
        given = os.fspath(default_dir) if default_dir is not None else os.fspath(default_audit_dir())
        path = local_audit_dir(given, "the audit folder")
    return "file://" + path.rstrip("/")  # literal, as the stores read file URIs (no percent-encoding)
