"""The ``file://`` store: the file-store protocol of docs/reference/formats.md ("File store protocol").

Shared with the local stack's publisher so that a rollback and a publish exclude each other: an exclusive ``flock``
on ``<name>.lock`` beside the object, waited for at most ``lock_timeout``, held around the compare and the write of
``.<name>.<hex>.tmp`` (mode 0644, fsync) renamed over the name; create-only writes are a hard link of the finished
temporary file (no lock: ``link`` refuses an existing name atomically). The kernel drops a lock when its holder
dies; lock files are kept and, like every name starting with a dot, never listed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from ...core.errors import BadInput, ChecksError, Conflict, InvalidObject, NotFound, Unreachable
from ...core.files import write_atomic
from ..settings import split_uri
from .base import DIR_MODE, FILE_MODE, MAX_OBJECT_BYTES, ObjectStore, etag_of, same_etag

LOCK_SUFFIX = ".lock"  # the lock file beside an object; the stack's writer takes the same one (a twin test)



def file_path(uri: str) -> Path:
    """The absolute path a ``file://`` URI names (``file:///abs/path`` or ``file://localhost/abs/path``), literally."""
    return Path(file_path_text(uri))



def file_path_text(uri: str) -> str:
    """:func:`file_path` as text, without building a ``Path`` (a fleet check reads thousands of manifests)."""
    scheme, host, path = split_uri(uri)
    if scheme != "file" or host not in ("", "localhost"):
        raise BadInput(f"{uri!r} is not a local file URI: use file:///absolute/path")
    if not path.startswith("/"):
        raise BadInput(f"{uri!r} does not name an absolute path: use file:///absolute/path")
    if "\x00" in path:
        raise BadInput(f"{uri!r} contains a NUL character, which no file name can hold")
    return path



class FileStore(ObjectStore):
    """Objects are files named by absolute ``file://`` URIs."""

    scheme = "file"

    def __init__(self, lock_timeout: float = 5.0, max_bytes: int = MAX_OBJECT_BYTES) -> None:
        self.lock_timeout = lock_timeout
        self.max_bytes = max_bytes

    def get(self, uri: str) -> tuple[bytes, str]:
        data = self.read(uri)
        return data, etag_of(data)

    def read(self, uri: str) -> bytes:
        """The file's bytes, bounded and checked as :meth:`get` reads them, without hashing them for an ETag."""
        path = file_path_text(uri)
        try:
            data = _read_regular(path, uri, self.max_bytes)
        except NotADirectoryError:
            _require_directories(Path(path).parent, uri)
            raise NotFound(f"no object at {uri}: check the path, or list what exists under its directory") from None
        except FileNotFoundError:
            raise NotFound(f"no object at {uri}: check the path, or list what exists under its directory") from None
        except OSError as exc:
            raise Unreachable(f"cannot read {uri}: {exc.strerror}; check the file store is mounted and readable") from None
        return data

    def exists(self, uri: str) -> bool:
        """Whether anything is at ``uri``: a directory or a FIFO there is a damaged object, not a missing one."""
        path = file_path(uri)
        try:
            os.stat(path)
            return True
        except FileNotFoundError:
            return False
        except NotADirectoryError:
            _require_directories(path.parent, uri)
            return False
        except OSError as exc:
            raise Unreachable(f"cannot stat {uri}: {exc}; check the file store is mounted") from None

    def put(self, uri: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        path = file_path(uri)
        try:
            make_dirs(path.parent)
            # A create-only write needs no lock: link() refuses an existing name atomically.
            with contextlib.nullcontext() if if_none_match else self._locked(path, uri):
                current = _etag_now(path, uri, self.max_bytes)
                if if_none_match and current is not None:
                    raise Conflict(f"{uri} already exists and is never overwritten; nothing was written")
                if if_match is not None and (current is None or not same_etag(current, if_match)):
                    seen = "missing" if current is None else current
                    raise Conflict(f"{uri} changed since it was read (expected {if_match}, now {seen}); nothing was written")
                if path.is_dir():
                    raise BadInput(f"{uri} is a directory, not a file: move it aside (these tools never delete) "
                                   "and run again")
                try:
                    # A create-only write is a hard link, which refuses an existing name atomically, even against
                    # writers that take no lock.
                    write_atomic(path, data, mode=FILE_MODE, create_only=if_none_match)
                except FileExistsError:
                    raise Conflict(f"{uri} already exists and is never overwritten; nothing was written") from None
        except ChecksError:
            raise
        except OSError as exc:
            raise Unreachable(f"cannot write {uri}: {exc.strerror or exc}; check the file store is mounted and writable") from None
        return etag_of(data)

    def list(self, prefix_uri: str) -> list[str]:
        if prefix_uri.endswith("/"):
            base_uri, name_prefix = prefix_uri, ""
        else:
            cut = prefix_uri.rfind("/") + 1
            base_uri, name_prefix = prefix_uri[:cut], prefix_uri[cut:]
        base = file_path(base_uri)
        out: list[str] = []
        try:
            if not base.is_dir():
                _require_directories(base, prefix_uri)
                return []
            for dirpath, dirnames, filenames in os.walk(base, onerror=_raise):  # never skip an unreadable directory
                dirnames.sort()
                rel_dir = os.path.relpath(dirpath, base)
                rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
                for name in sorted(filenames):
                    if _is_internal(name):
                        continue
                    rel = rel_dir + name
                    if rel.startswith(name_prefix):
                        out.append(base_uri + rel)
        except OSError as exc:
            raise Unreachable(f"cannot list {prefix_uri}: {exc}; check the file store is mounted and readable") from None
        return sorted(out)

    def children(self, prefix_uri: str) -> list[str]:
        base = file_path(prefix_uri if prefix_uri.endswith("/") else prefix_uri + "/")
        try:
            if not base.is_dir():
                _require_directories(base, prefix_uri)
                return []
            with os.scandir(base) as entries:  # the directory's own types: no stat per entry
                return sorted(e.name for e in entries if e.is_dir())
        except OSError as exc:
            raise Unreachable(f"cannot list {prefix_uri}: {exc}; check the file store is mounted and readable") from None

    @contextlib.contextmanager
    def _locked(self, path: Path, uri: str) -> Iterator[None]:
        lock = path.with_name(path.name + LOCK_SUFFIX)
        deadline = time.monotonic() + self.lock_timeout
        with open(lock, "a+b") as handle:
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise Conflict(
                            f"{uri} is being written by another process (lock {lock} held for "
                            f"{self.lock_timeout:g}s); wait for it to finish and retry"
                        ) from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)



def _stat_token(st: os.stat_result) -> str:
    """A state token for something that is not a readable document (a FIFO, a device, a huge file)."""
    return f'"stat-{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"'



def _read_regular(path: Path, uri: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is :class:`InvalidObject`.

    Opened without blocking and checked on the open descriptor, so that a FIFO never hangs the read, a device such
    as /dev/zero is never read, and a file cannot be swapped between the check and the read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InvalidObject(f"{uri} is a directory, not a file: move it aside (these tools never delete) so "
                                "that it can be written", _stat_token(st))
        if not stat.S_ISREG(st.st_mode):
            raise InvalidObject(f"{uri} is not a regular file (a FIFO, socket or device); it is not read",
                                _stat_token(st))
        if st.st_size > limit:
            raise InvalidObject(f"{uri} is {st.st_size} bytes, above the {limit}-byte limit "
                                "(RECSYS_ARTIFACT_MAX_BYTES); it is not read", _stat_token(st))
        # Asking for one byte more than fstat's size and getting exactly that size is the whole file, read in one
        # call (a fleet scan reads thousands); anything else (it grew, a short read) goes on to end of file.
        first = os.read(fd, min(1 << 20, st.st_size + 1, limit + 1))
        if len(first) == st.st_size < (1 << 20):
            return first
        chunks, size = [first], len(first)
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise InvalidObject(f"{uri} grew above the {limit}-byte limit while it was read; it is not read",
                                    _stat_token(st))
        return b"".join(chunks)
    finally:
        os.close(fd)



def _etag_now(path: Path, uri: str, limit: int) -> str | None:
    """The state token of what is at ``path`` now (None when nothing is), as :meth:`FileStore.get` reports it."""
    try:
        return etag_of(_read_regular(path, uri, limit))
    except FileNotFoundError:
        return None
    except InvalidObject as exc:
        return exc.etag



def _require_directories(directory: Path, uri: str) -> None:
    """Raise :class:`Unreachable` when ``directory`` or one of its ancestors exists but is not a directory.

    That is a broken or unmounted store (e.g. a mount point replaced by a file), not a missing object.
    """
    for p in (directory, *directory.parents):
        try:
            mode = os.stat(p).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not stat.S_ISDIR(mode):
            raise Unreachable(
                f"file store unusable while reading {uri}: {p} is not a directory; check the file store is mounted"
            )
        return



def _raise(exc: OSError) -> None:
    raise exc



def _is_internal(name: str) -> bool:
    """Lock files and in-flight temporary files (any name starting with a dot) are never objects."""
    return name.endswith(LOCK_SUFFIX) or name.startswith(".")



def make_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents with mode 0755, whatever the umask (the local stack's
    store uses it too: a generic helper, not a format)."""
    missing = []
    for p in (directory, *directory.parents):
        if p.is_dir():
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            os.mkdir(p, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(p, DIR_MODE)



