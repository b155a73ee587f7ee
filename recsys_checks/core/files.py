"""A file written whole or not at all: the package's one atomic write, and the folder fsync that makes it durable.

Used by the file store (objects), the runbook runner (run records and notebooks) and the alert receiver
(incidents): each writes a temporary file in the same folder, fsyncs it, renames (or, for a create-only write,
hard-links) it over the name, then fsyncs the folder, so a crash, a kill or a full disk leaves the old file or the
new one, never a part of either.
"""

from __future__ import annotations

import os
from pathlib import Path

TMP_SUFFIX = ".tmp"


def write_atomic(path: Path, data: bytes, *, mode: int | None = None, create_only: bool = False) -> None:
    """``data`` at ``path``, whole or not at all: written to ``.<name>.<random>.tmp`` in the same folder, flushed
    and fsynced, renamed over ``path`` (``create_only``: hard-linked to it, FileExistsError when ``path`` exists,
    even against writers that take no lock), then the folder fsynced.

    ``mode``: the file's permission bits whatever the umask (default: 0o666 less the umask). On any error (ENOSPC,
    EIO, a folder gone) the temporary file is removed, ``path`` is left as it was, and the error is raised.
    """
    tmp = path.with_name(f".{path.name}.{os.urandom(16).hex()}{TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                 0o666 if mode is None else mode)
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)  # a close can report a failed write too (NFS)
        if create_only:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    fsync_folder(path.parent)


def fsync_folder(path: Path) -> None:
    """Make a rename in the folder ``path`` durable, where the platform and file system allow it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
