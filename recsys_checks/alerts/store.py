"""Incidents on disk: ``DIR/<incident id>/`` with ``alert.json``, ``incident.json`` and ``runs/NN-<runbook>/``.

Each file is written whole or not at all (:func:`recsys_checks.core.files.write_atomic`: a temporary file in the
same folder, fsynced, renamed, the folder fsynced), and every text is
masked with the project's secret rule before it is written. All writes go through one writer thread, in the order
they were asked for, so the last state asked for is the one on disk and the event loop never waits for a disk.

At start the folder is read back: an incident that was running (or waiting) when the receiver stopped is shown
``interrupted`` from then on, never finished, whatever its runner left behind; an ``incident.json`` that cannot be
read as an incident is set aside (renamed ``incident.json.unreadable``) and listed ``unreadable``, and the others load.

What is written is standard JSON (no ``NaN`` or ``Infinity``), masked before it is encoded and again after; the alert
as received is kept compact. Only folders the receiver made are written into: a path component under ``--out`` that
is a symbolic link, or not a folder, is refused. One receiver per folder: :func:`lock` holds ``DIR/.receiver.lock``.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import math
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .checks import ConfigError, mask, mask_doc, write_atomic
from .incident import QUEUED, UNREADABLE, Incident, Row
from .payload import compact

INCIDENT_FILE = "incident.json"
ALERT_FILE = "alert.json"
MAX_INCIDENT_FILE = 8 * 1024 * 1024
ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{12}$")
LOCK_FILE = ".receiver.lock"
SET_ASIDE = ".unreadable"


def lock(root: Path) -> int:
    """Hold ``root/.receiver.lock`` (an exclusive ``flock``) for as long as this process lives: the descriptor.
    :class:`~recsys_checks.core.errors.ConfigError` (exit 2), naming the holder, when another receiver holds it."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0),
                 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        os.close(fd)
        raise ConfigError(f"another receiver ({holder or 'pid unknown'}) is serving this folder") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
    return fd


def standard(value: Any) -> Any:
    """``value`` with every float that is not finite (NaN, Infinity) as null: what JSON can write."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: standard(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [standard(v) for v in value]
    return value


def encode(doc: Any, *, indent: int | None = None) -> str:
    """A document as the receiver writes and answers it: masked, standard JSON, masked again."""
    clean = mask_doc(doc)
    try:
        text = _dumps(clean, indent)
    except ValueError:  # a NaN or Infinity somewhere: written null
        text = _dumps(standard(clean), indent)
    return mask(text)


def _dumps(doc: Any, indent: int | None) -> str:
    if indent is None:
        return compact(doc).decode("utf-8")
    return json.dumps(doc, indent=indent, ensure_ascii=False, allow_nan=False)


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

    def make_folders(self, path: Path) -> None:
        """Every folder from ``root`` down to ``path``, made when missing; OSError (ELOOP, ENOTDIR) when one is a
        symbolic link or not a folder, so that nothing is written outside the folders the receiver made."""
        here = self.root
        for part in path.relative_to(self.root).parts:
            here = here / part
            try:
                os.mkdir(here, 0o755)
                continue
            except FileExistsError:
                pass
            mode = os.lstat(here).st_mode
            if stat.S_ISLNK(mode):
                raise OSError(errno.ELOOP, f"{here.relative_to(self.root)} is a symbolic link; not followed")
            if not stat.S_ISDIR(mode):
                raise OSError(errno.ENOTDIR, f"{here.relative_to(self.root)} is not a folder")

    def _encode(self, doc: Any) -> bytes:
        return (encode(doc, indent=2) + "\n").encode("utf-8")

    def _write(self, path: Path, data: bytes) -> str | None:
        """Write ``data`` at ``path`` (its folders made first): None, or why it could not (counted)."""
        try:
            self.make_folders(path.parent)
            write_atomic(path, data)
            return None
        except OSError as exc:
            self.write_errors += 1
            self.last_write_error = f"{path.relative_to(self.root)}: {exc.strerror or exc}"
            return self.last_write_error

    async def save(self, incident: Incident) -> str | None:
        """Write ``incident.json`` as the incident is now (the snapshot is taken before this returns control): None,
        or why it could not be written."""
        data = self._encode(incident.to_dict())
        path = self.folder(incident.id) / INCIDENT_FILE
        return await asyncio.wrap_future(self._writer.submit(self._write, path, data))

    async def save_file(self, path: Path, text: str) -> str | None:
        data = mask(text).encode("utf-8")
        return await asyncio.wrap_future(self._writer.submit(self._write, path, data))

    async def save_alert(self, incident_id: str, raw: dict[str, Any]) -> str | None:
        """The alert as received, masked, compact (``alert.json``): None, or why it could not be written."""
        path = self.folder(incident_id) / ALERT_FILE
        data = (encode(raw) + "\n").encode("utf-8")
        return await asyncio.wrap_future(self._writer.submit(self._write, path, data))

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

    def load(self) -> tuple[int, int, list[str]]:
        """Read every incident back; those left running are interrupted, those that cannot be read are set aside.
        Returns (incidents, interrupted, one line per incident set aside)."""
        count = interrupted = 0
        unreadable: list[str] = []
        if not self.root.is_dir():
            return 0, 0, []
        for folder in sorted(self.root.iterdir()):
            if not ID_PATTERN.match(folder.name) or folder.is_symlink() or not folder.is_dir():
                continue
            path = folder / INCIDENT_FILE
            try:
                incident = self._read(path, folder.name)
            except ValueError as exc:
                unreadable.append(self._set_aside(path, folder.name, str(exc)))
                continue
            if incident is None:
                continue
            count += 1
            if incident.left_running:
                incident.interrupt(("the receiver stopped before this incident ran" if incident.phase == QUEUED
                                    else "the receiver stopped while this incident ran") + " (found at its "
                                   "restart); nothing of it is shown as finished")
                self.save_now(incident)
                interrupted += 1
            self.add(incident)
        return count, interrupted, unreadable

    @staticmethod
    def _read(path: Path, folder_id: str) -> Incident | None:
        """The incident in ``path``, None when there is none; ValueError (the reason) when it cannot be read as one."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ValueError(f"cannot read it: {exc.strerror or exc}") from None
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_INCIDENT_FILE:
            raise ValueError(f"larger than {MAX_INCIDENT_FILE} bytes")
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, RecursionError, ValueError) as exc:
            raise ValueError(f"not JSON: {str(exc)[:120]}") from None
        incident = Incident.from_dict(doc)
        if incident.id != folder_id:
            raise ValueError(f"its id {incident.id[:40]!r} is not its folder's")
        return incident

    def _set_aside(self, path: Path, folder_id: str, why: str) -> str:
        """Rename a bad ``incident.json`` out of the way (nothing is deleted) and list it ``unreadable``."""
        try:
            if not path.is_symlink() and path.is_file():
                os.replace(path, path.with_name(INCIDENT_FILE + SET_ASIDE))
        except OSError:
            pass
        reason = f"incident.json could not be read ({why}); set aside as {INCIDENT_FILE}{SET_ASIDE}"
        placeholder = Incident(id=folder_id, status=UNREADABLE, phase=None, reason=reason,
                               rows=[Row(status=UNREADABLE, reason=reason)])
        self.incidents[folder_id] = placeholder
        return f"{folder_id}: {why}"


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
