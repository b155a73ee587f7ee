"""Opening a local file named by a parameter: regular files only, refused at once otherwise.

A path parameter (a job log, a checkpoint, an evaluation report, an exposure log) could name a FIFO, a device or a
directory. Opening a FIFO for reading blocks until a writer comes, and a device can be read forever, so the open is
non-blocking and the file's type is checked on the open descriptor before a byte is read: a FIFO, a device, a
socket or a directory is refused (:class:`~recsys_checks.core.errors.Unreadable`, a bad input) naming what it is, and
nothing waits. Reads are bounded by the caller.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from recsys_checks.core.errors import Unreadable

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def open_regular(path: str | os.PathLike[str], what: str) -> BinaryIO:
    """``path`` opened for binary reading, refused (Unreadable) unless it is a regular file.

    ``what`` names the file in messages ("the job log", "the report")."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise Unreadable(f"{what} {p} does not exist") from None
    except IsADirectoryError:
        raise Unreadable(f"{what} {p} is a directory, not a file") from None
    except OSError as exc:
        raise Unreadable(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise Unreadable(f"{what} {p} is {kind}, not a regular file: give the path of a file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], what: str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the regular file ``path`` (one more than ``limit``, so that the caller can tell
    a file over its limit); Unreadable, naming ``what``, when it cannot be opened or read."""
    p = Path(path)
    try:
        with open_regular(p, what) as fh:
            return fh.read(limit + 1)
    except OSError as exc:
        raise Unreadable(f"cannot read {what} {p}: {exc.strerror or exc}") from None


def newest_log(folder: Path) -> Path | None:
    """The newest run log of a folder (text logs ``*.log`` before anything else), or ``None``."""
    files = [p for p in folder.iterdir() if p.is_file()]
    logs = sorted([p for p in files if p.suffix == ".log"] or files, key=lambda p: (p.stat().st_mtime, p.name))
    return logs[-1] if logs else None


def as_path(source: str) -> Path | None:
    """``source`` as a path when it names one (it exists, or it is written as a path), else ``None`` (log text)."""
    if "\n" in source:
        return None
    path = Path(source)
    try:
        if os.path.lexists(path):
            return path
    except (OSError, ValueError):
        return None
    return path if source.startswith(("/", "./", "../", "~")) and not any(c.isspace() for c in source) else None


def check_log_source(source: str, what: str = "the job log") -> None:
    """Refuse a log parameter that names no regular readable file (Unreadable, a bad input: exit 2): a path that
    does not exist, a FIFO, a device, a folder with no log in it, a file that cannot be opened. Log text (a value
    that is no path) passes."""
    path = as_path(source.strip())
    if path is None:
        return
    with open_regular(log_file(path, what, Unreadable), what):
        pass


def log_file(path: Path, what: str, error: type[Exception]) -> Path:
    """``path`` itself, or the newest run log in it when it is a folder; ``error`` when the folder holds no log or
    cannot be read."""
    try:
        if path.is_dir():
            newest = newest_log(path)
            if newest is None:
                raise error(f"{what} folder {path} holds no log: give the failed run's log file")
            return newest
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    return path
