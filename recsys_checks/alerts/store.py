"""Incidents on disk: ``DIR/<incident id>/`` with ``alert.json``, ``incident.json`` and ``runs/NN-<runbook>/``.

Each file is written whole or not at all (a temporary file in the same folder, fsynced, renamed), and every text is
masked with the project's secret rule before it is written. All writes go through one writer thread, in the order
they were asked for, so the last state asked for is the one on disk and the event loop never waits for a disk.

At start the folder is read back: an incident that was running (or waiting) when the receiver stopped is shown
``interrupted`` from then on, never finished, whatever its runner left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .checks import mask

FORMAT = 1
INCIDENT_FILE = "incident.json"
ALERT_FILE = "alert.json"
MAX_INCIDENT_FILE = 8 * 1024 * 1024
ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{12}$")
_tmp_names = itertools.count()

# Row statuses (one row per surface run, or one per runbook when no surface was run).
RUNNING, FINISHED, NOT_RUN, NOTHING_FOUND, NO_RUNBOOK, INTERRUPTED = (
    "running", "finished", "not-run", "nothing-found", "no-runbook", "interrupted")
STATUSES = (RUNNING, FINISHED, NOT_RUN, NOTHING_FOUND, NO_RUNBOOK, INTERRUPTED)
QUEUE_FULL = "queue full"


def now_z() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def incident_id(fingerprint: str, starts_at_normal: str) -> str:
    """Sortable by when the alert started, unique per (fingerprint, startsAt)."""
    digest = hashlib.sha256(f"{fingerprint}|{starts_at_normal}".encode()).hexdigest()[:12]
    stamp = starts_at_normal[:19].replace("-", "").replace(":", "") + "Z"
    return f"{stamp}-{digest}"


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` at ``path`` whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{next(_tmp_names)}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def aggregate(rows: list[dict[str, Any]]) -> str:
    """The incident's status from its rows."""
    statuses = {r["status"] for r in rows}
    if not statuses:
        return RUNNING
    if RUNNING in statuses:
        return RUNNING
    if INTERRUPTED in statuses:
        return INTERRUPTED
    if FINISHED in statuses:
        return FINISHED
    for single in (NO_RUNBOOK, NOTHING_FOUND):
        if statuses == {single}:
            return single
    return NOT_RUN


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.incidents: dict[str, dict[str, Any]] = {}
        self.by_key: dict[tuple[str, str], str] = {}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="incident-writer")
        self.write_errors = 0
        self.last_write_error = ""

    # -------------------------------------------------------------------------------------------------- writing

    def check_writable(self) -> None:
        """Raise OSError when ``root`` cannot be created or written (the receiver refuses to start)."""
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / f".write-check-{os.getpid()}"
        write_atomic(probe, b"ok\n")
        probe.unlink()

    def folder(self, incident_id: str) -> Path:
        return self.root / incident_id

    def _encode(self, doc: Any) -> bytes:
        return (mask(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n").encode("utf-8")

    def _write(self, path: Path, data: bytes) -> None:
        try:
            write_atomic(path, data)
        except OSError as exc:
            self.write_errors += 1
            self.last_write_error = f"{path}: {exc.strerror or exc}"

    async def save(self, incident: dict[str, Any]) -> None:
        """Write ``incident.json`` as the incident is now (the snapshot is taken before this returns control)."""
        data = self._encode(incident)
        path = self.folder(incident["id"]) / INCIDENT_FILE
        await asyncio.wrap_future(self._writer.submit(self._write, path, data))

    async def save_file(self, path: Path, text: str) -> None:
        data = mask(text).encode("utf-8")
        await asyncio.wrap_future(self._writer.submit(self._write, path, data))

    async def save_alert(self, incident_id: str, raw: dict[str, Any]) -> None:
        path = self.folder(incident_id) / ALERT_FILE
        await asyncio.wrap_future(self._writer.submit(self._write, path, self._encode(raw)))

    def save_now(self, incident: dict[str, Any]) -> None:
        """Synchronous write, for shutdown."""
        self._write(self.folder(incident["id"]) / INCIDENT_FILE, self._encode(incident))

    def close(self) -> None:
        self._writer.shutdown(wait=True)

    # -------------------------------------------------------------------------------------------------- index

    def add(self, incident: dict[str, Any]) -> None:
        self.incidents[incident["id"]] = incident
        self.by_key[(incident["fingerprint"], incident["starts_at_normal"])] = incident["id"]

    def find(self, key: tuple[str, str]) -> dict[str, Any] | None:
        found = self.by_key.get(key)
        return self.incidents.get(found) if found else None

    def load(self) -> tuple[int, int]:
        """Read every incident back; those left running are interrupted. Returns (incidents, interrupted)."""
        count = interrupted = 0
        if not self.root.is_dir():
            return 0, 0
        for folder in sorted(self.root.iterdir()):
            if not ID_PATTERN.match(folder.name):
                continue
            path = folder / INCIDENT_FILE
            try:
                if not path.is_file() or path.stat().st_size > MAX_INCIDENT_FILE:
                    continue
                doc = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            if not isinstance(doc, dict) or doc.get("id") != folder.name or not isinstance(doc.get("rows"), list):
                continue
            count += 1
            if doc.get("status") == RUNNING or any(r.get("status") == RUNNING for r in doc["rows"]):
                mark_interrupted(doc, ("the receiver stopped before this incident ran" if doc.get("phase") == "queued"
                                       else "the receiver stopped while this incident ran") + " (found at its "
                                      "restart); nothing of it is shown as finished")
                self.save_now(doc)
                interrupted += 1
            self.add(doc)
        return count, interrupted


def mark_interrupted(incident: dict[str, Any], why: str) -> None:
    when = now_z()
    for row in incident["rows"]:
        if row.get("status") == RUNNING:
            row["status"] = INTERRUPTED
            row["reason"] = why
            row["finished_at"] = row.get("finished_at") or when
    if not incident["rows"]:  # it was waiting in the queue, or triaging: one row per runbook it would have run
        incident["rows"] = [new_row(incident, rb, status=INTERRUPTED, reason=why)
                            for rb in incident.get("runbooks") or [None]]
        for row in incident["rows"]:
            row["finished_at"] = when
    incident["status"] = aggregate(incident["rows"])
    incident["phase"] = "done"
    incident["reason"] = why


def new_row(incident: dict[str, Any], runbook: str | None, *, tenant: str | None = None, surface: str | None = None,
            status: str = RUNNING, reason: str | None = None) -> dict[str, Any]:
    return {
        "run": None, "status": status, "runbook": runbook, "tenant": tenant, "surface": surface,
        "verdict": None, "cause": None, "plan_id": None, "apply_command": None, "dry_run_command": None,
        "next_action": None, "reason": reason, "started_at": None, "finished_at": None, "seconds": None,
        "waited_seconds": None, "folder": None, "record": None, "notebook": None, "notebook_html": None,
    }


def public_row(incident: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """One object of ``GET /incidents``: the incident's identity and one surface run."""
    return {
        "id": incident["id"], "alert": incident["alert"], "fingerprint": incident["fingerprint"],
        "starts_at": incident["starts_at"], "received_at": incident["received_at"],
        "resolved_at": incident.get("resolved_at"), "incident_status": incident["status"],
        "phase": incident.get("phase"),
        **{k: row.get(k) for k in ("run", "status", "runbook", "tenant", "surface", "verdict", "cause", "plan_id",
                                   "apply_command", "next_action", "reason", "started_at", "finished_at",
                                   "seconds", "waited_seconds")},
        "url": f"/incidents/{incident['id']}",
    }
