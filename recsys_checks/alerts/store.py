"""Incidents on disk: ``DIR/<incident id>/`` with ``alert.json``, ``incident.json`` and ``runs/NN-<runbook>/``.

Each file is written whole or not at all (:func:`recsys_checks.core.files.write_atomic`: a temporary file in the
same folder, fsynced, renamed, the folder fsynced), and every text is
masked with the project's secret rule before it is written. All writes go through one writer thread, in the order
they were asked for, so the last state asked for is the one on disk and the event loop never waits for a disk.

At start the folder is read back: an incident that was running (or waiting) when the receiver stopped is shown
``interrupted`` from then on, never finished, whatever its runner left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .checks import mask, write_atomic
from .incident import QUEUED, Incident, Row

INCIDENT_FILE = "incident.json"
ALERT_FILE = "alert.json"
MAX_INCIDENT_FILE = 8 * 1024 * 1024
ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{12}$")


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.incidents: dict[str, Incident] = {}
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
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)
        except OSError as exc:
            self.write_errors += 1
            self.last_write_error = f"{path}: {exc.strerror or exc}"

    async def save(self, incident: Incident) -> None:
        """Write ``incident.json`` as the incident is now (the snapshot is taken before this returns control)."""
        data = self._encode(incident.to_dict())
        path = self.folder(incident.id) / INCIDENT_FILE
        await asyncio.wrap_future(self._writer.submit(self._write, path, data))

    async def save_file(self, path: Path, text: str) -> None:
        data = mask(text).encode("utf-8")
        await asyncio.wrap_future(self._writer.submit(self._write, path, data))

    async def save_alert(self, incident_id: str, raw: dict[str, Any]) -> None:
        path = self.folder(incident_id) / ALERT_FILE
        await asyncio.wrap_future(self._writer.submit(self._write, path, self._encode(raw)))

    def save_now(self, incident: Incident) -> None:
        """Synchronous write, for shutdown."""
        self._write(self.folder(incident.id) / INCIDENT_FILE, self._encode(incident.to_dict()))

    def close(self) -> None:
        self._writer.shutdown(wait=True)

    # -------------------------------------------------------------------------------------------------- index

    def add(self, incident: Incident) -> None:
        self.incidents[incident.id] = incident
        self.by_key[incident.key] = incident.id

    def find(self, key: tuple[str, str]) -> Incident | None:
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
                incident = Incident.from_dict(json.loads(path.read_bytes()))
            except (OSError, ValueError):
                continue
            if incident.id != folder.name:
                continue
            count += 1
            if incident.left_running:
                incident.interrupt(("the receiver stopped before this incident ran" if incident.phase == QUEUED
                                    else "the receiver stopped while this incident ran") + " (found at its "
                                   "restart); nothing of it is shown as finished")
                self.save_now(incident)
                interrupted += 1
            self.add(incident)
        return count, interrupted


def public_row(incident: Incident, row: Row) -> dict[str, Any]:
    """One object of ``GET /incidents``: the incident's identity and one surface run."""
    doc = row.to_dict()
    return {
        "id": incident.id, "alert": incident.alert, "fingerprint": incident.fingerprint,
        "starts_at": incident.starts_at, "received_at": incident.received_at,
        "resolved_at": incident.resolved_at, "incident_status": incident.status,
        "phase": incident.phase,
        **{k: doc.get(k) for k in ("run", "status", "runbook", "tenant", "surface", "verdict", "cause", "plan_id",
                                   "apply_command", "next_action", "reason", "started_at", "finished_at",
                                   "seconds", "waited_seconds")},
        "url": f"/incidents/{incident.id}",
    }
