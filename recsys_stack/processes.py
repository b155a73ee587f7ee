"""Start and stop the local stack's processes: moto's S3 server (for ``--store s3``) and the service on uvicorn.

Everything the stack knows about itself lives under its root: ``stack.json`` (where things are, which processes
belong to it; never a secret), ``secrets.env`` (mode 0600), logs, the store and the admin database.

The stack owns only what it started. ``up`` writes a random ``stack_id`` and the root directory's identity (device
and inode) into ``stack.json``, starts every process with ``RECSYS_STACK_ID`` in its environment, and records each
process's start time (``/proc/PID/stat``) and command line as it starts it. ``down``, ``reset`` and the faults signal
a recorded PID only when all of it is proven (:func:`running_processes`): the root is the directory ``up`` wrote
(a ``cp -a`` copy is another directory, and owns nothing), and the process has the recorded start time, command line
and stack id. A recycled PID, an unrelated process, or the service of the root a copy was made from is never
signalled; without ``/proc`` nothing can be proven, and nothing is signalled.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from . import alerting as alerting_mod
from . import seed
from . import snapshot as snapshot_mod
from .formats import file_uri, rfc3339
from .objstore import BLOB_PREFIX, BUCKET, FileStore, ObjectStore, S3Store, manifest_key

REGION = "us-east-1"
DEFAULT_ROOT = ".stack"
# Longer than the suite's 1m default on purpose: a stale cache behind a fresh manifest must stay observable for
# the length of a drill instead of healing itself while on-call is still looking.
DEFAULT_TTL_SECONDS = 600
MAX_BYTES = 10_000_000
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0

# In the environment of every process `up` starts: the stack id it was started for (see the module docs).
STACK_ID_ENV = "RECSYS_STACK_ID"
# The order `down` stops them in: what alerts and what sends traffic before the service, the service before the store
# (it would otherwise log connection errors against a store that went away).
_STOP_ORDER = ("traffic", "prometheus", "alertmanager", "receiver", "service", "s3-proxy", "s3")
# State under ROOT that `up` replaces with a freshly seeded one (nothing else under ROOT is touched).
_STATE_NAMES = (
    "store", "store.down", "admin.db", "admin.db-wal", "admin.db-shm", "admin.db-journal", "admin.db.down",
    "events", "checkpoints", "runs", "logs", "stack.json", "secrets.env", "eval", "alerting",
    "snapshot",
)


class StackError(Exception):
    """A stack command cannot go on; the message names the thing and the fix. ``exit_code`` is the CLI's."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# ---------------------------------------------------------------------------------------------------------------
# stack.json and secrets.env


def stack_json_path(root: Path) -> Path:
    return Path(root) / "stack.json"


def secrets_path(root: Path) -> Path:
    return Path(root) / "secrets.env"


def read_stack(root: Path) -> dict | None:
    """The stack description under ``root``, or None when no stack was ever started there."""
    path = stack_json_path(root)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StackError(f"cannot read {path}: {exc}; remove it and run `recsys-stack up --root {root}` again") from exc


def require_stack(root: Path) -> dict:
    """The stack description, or a StackError telling how to start one."""
    info = read_stack(root)
    if info is None:
        raise StackError(f"no stack in {root}: start one with `recsys-stack up --detach --root {root}`")
    return info


def write_stack(root: Path, info: Mapping) -> None:
    """Write ``stack.json``; every process it names that this command started gets its identity recorded."""
    if isinstance(info, dict):
        _record_identities(info)
    _atomic_write(stack_json_path(root), (json.dumps(info, indent=2, sort_keys=True) + "\n").encode(), 0o644)


def read_secrets(root: Path) -> dict[str, str]:
    """KEY=VALUE pairs of ``secrets.env`` (empty when the file does not exist)."""
    try:
        text = secrets_path(root).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def write_secrets(root: Path, values: Mapping[str, str]) -> None:
    body = "".join(f"{k}={v}\n" for k, v in values.items())
    _atomic_write(secrets_path(root), body.encode(), 0o600)


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow what was asked for
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def client_env(info: Mapping, secret_values: Mapping[str, str]) -> dict[str, str]:
    """What a client of this stack (recsys-checks, the demo, tests) needs in its environment."""
    env = {
        "RECSYS_BASE_URL": info["base_url"],
        "RECSYS_ARTIFACT_MANIFEST_TEMPLATE": info["manifest_template"],
    }
    if info.get("s3_endpoint"):
        env["RECSYS_ARTIFACT_S3_ENDPOINT"] = info["s3_endpoint"]
        env["RECSYS_ARTIFACT_S3_REGION"] = REGION
    env.update({k: v for k, v in secret_values.items() if k.startswith("RECSYS_")})
    return env


# ---------------------------------------------------------------------------------------------------------------
# processes


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` is a live (not zombie) process."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def root_identity(root: Path) -> dict[str, int]:
    """The root directory's device and inode: what a copy of the root (``cp -a``) does not share."""
    st = os.stat(root)
    return {"dev": st.st_dev, "ino": st.st_ino}


def ownership_problem(info: Mapping | None, root: Path) -> str | None:
    """Why the stack described by ``info`` (read from ``root``) cannot own any process, or ``None``."""
    if not info:
        return None
    recorded, stack_id = info.get("root_identity"), info.get("stack_id")
    if not stack_id or not isinstance(recorded, dict):
        return (f"{stack_json_path(root)} records no stack id (written by an older recsys-stack): none of its "
                "processes can be proven to be the stack's, so none is signalled; stop them by hand")
    try:
        same = root_identity(root) == {"dev": recorded.get("dev"), "ino": recorded.get("ino")}
    except OSError:
        same = False
    if not same:
        return (f"{root} is not the directory `recsys-stack up` started this stack in ({info.get('root')}): a copy "
                "of a stack root owns no process, so nothing is signalled; start its own stack with "
                f"`recsys-stack up --detach --root {root}`")
    return None


def _proc_identity(pid: int) -> dict[str, Any]:
    """What identifies a running process: its start time since boot (clock ticks) and its command line."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    return {"pid": pid, "ppid": int(fields[1]), "start": int(fields[19]),
            "cmdline": [a.decode("utf-8", "replace") for a in argv]}


def _record_identities(info: dict) -> None:
    """Record the identity of each process of ``info`` that is a child of this command (so its PID cannot have been
    reused yet); a process recorded otherwise has no identity and is never signalled."""
    pids = info.get("processes") or {}
    known = info.setdefault("identities", {})
    for name in [n for n in known if n not in pids]:
        del known[name]
    for name, pid in pids.items():
        try:
            found = _proc_identity(int(pid)) if pid else None
        except (OSError, ValueError, IndexError):
            found = None
        if found is not None and found.pop("ppid") == os.getpid():
            known[name] = found  # ours, as it stands now: a PID reused since an older record is recorded afresh
        elif (known.get(name) or {}).get("pid") != pid:
            known.pop(name, None)  # not ours, and not the process recorded: nothing proves it is the stack's


def _owned(info: Mapping, name: str, pid: int) -> bool:
    """True when ``pid`` is alive and is the process ``up`` started as ``name`` for this stack (see the module docs)."""
    recorded = (info.get("identities") or {}).get(name)
    if not recorded or recorded.get("pid") != pid or not pid_alive(pid):
        return False
    try:
        found = _proc_identity(pid)
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return False  # nothing proven: never signalled
    mark = f"{STACK_ID_ENV}={info.get('stack_id')}".encode()
    return found["start"] == recorded.get("start") and found["cmdline"] == recorded.get("cmdline") and mark in environ


def running_processes(info: Mapping | None, root: Path) -> dict[str, int]:
    """The stack's recorded processes that are still running and proven to be its own, by name; none when the stack
    in ``root`` cannot own a process (:func:`ownership_problem`)."""
    if not info or ownership_problem(info, Path(root)):
        return {}
    return {name: int(pid) for name, pid in (info.get("processes") or {}).items()
            if pid and _owned(info, name, int(pid))}


def stop_pid(pid: int, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGCONT (a fault may have stopped it), SIGTERM, then SIGKILL after ``timeout``; waits until it is gone."""
    for sig in (signal.SIGCONT, signal.SIGTERM):
        _signal(pid, sig)
    if _wait_gone(pid, timeout):
        return
    _signal(pid, signal.SIGKILL)
    if not _wait_gone(pid, timeout):
        raise StackError(f"process {pid} survived SIGKILL; stop it by hand (kill -9 {pid})", exit_code=1)


def _signal(pid: int, sig: int) -> None:
    # Each child leads its own session and process group, so the group catches anything it spawned.
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our own child (foreground `up`); otherwise this raises and we poll.
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            pass
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def spawn(args: list[str], log: Path, env: Mapping[str, str], *, stack_id: str) -> subprocess.Popen:
    """Start one process of the stack ``stack_id`` (it carries the id in its environment), in its own session."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env={**env, STACK_ID_ENV: stack_id},
            start_new_session=True, close_fds=True,
        )


def _log_tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _wait_tcp(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{what} exited with code {proc.returncode} while starting; see {log}:\n{_log_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise StackError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s; see {log}")


def wait_ready(base_url: str, proc: subprocess.Popen | None, log: Path, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Poll ``/readyz`` until it answers 200; a StackError (with the log's tail) on exit or timeout."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise StackError(
                    f"the service exited with code {proc.returncode} while starting; see {log}:\n{_log_tail(log)}",
                    exit_code=1,
                )
            try:
                resp = client.get(f"{base_url}/readyz")
                if resp.status_code == 200:
                    return
                last = f"HTTP {resp.status_code}: {resp.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
    raise StackError(
        f"the service at {base_url} was not ready within {timeout:.0f}s (last /readyz: {last}); see {log}:\n"
        f"{_log_tail(log)}",
        exit_code=1,
    )


# ---------------------------------------------------------------------------------------------------------------
# up / down


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _reset_state(root: Path) -> None:
    for name in _STATE_NAMES:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _service_env(info: Mapping, secret_values: Mapping[str, str], root: Path, base: Mapping[str, str]) -> dict:
    # Start from the caller's environment without any RECSYS_*/AWS_* so that nothing configures the service
    # except what is written here.
    env = {k: v for k, v in base.items() if not k.startswith(("RECSYS_", "AWS_"))}
    env.update(
        RECSYS_ARTIFACT_MODE_ENABLED="true",
        RECSYS_ARTIFACT_MANIFEST_TEMPLATE=info["manifest_template"],
        RECSYS_ARTIFACT_MANIFEST_TTL=f"{info['manifest_ttl_seconds']}s",
        RECSYS_ARTIFACT_CACHE_TTL=f"{info['cache_ttl_seconds']}s",
        RECSYS_ARTIFACT_MAX_BYTES=str(MAX_BYTES),
        RECSYS_API_KEY=secret_values["RECSYS_API_KEY"],
        RECSYS_STACK_DB=str(root / "admin.db"),
        PYTHONUNBUFFERED="1",
    )
    if info["store"] == "s3":
        env.update(
            RECSYS_ARTIFACT_S3_ENDPOINT=info["s3_endpoint"],
            RECSYS_ARTIFACT_S3_ACCESS_KEY=secret_values["RECSYS_ARTIFACT_S3_ACCESS_KEY"],
            RECSYS_ARTIFACT_S3_SECRET_KEY=secret_values["RECSYS_ARTIFACT_S3_SECRET_KEY"],
            RECSYS_ARTIFACT_S3_REGION=REGION,
            RECSYS_ARTIFACT_S3_USE_SSL="false",
        )
    return env


def store_from_stack(stack: Mapping[str, Any], env: Mapping[str, str]) -> ObjectStore:
    """The object store of a stack described by its ``stack.json``; S3 credentials from ``env``, else the
    stack's ``secrets.env``."""
    kind = stack.get("store", "file")
    root = Path(stack["root"])
    if kind == "file":
        return FileStore(root / "store")
    if kind == "s3":
        stored = read_secrets(root)

        def value(name: str, aws: str) -> str | None:
            return env.get(name) or env.get(aws) or stored.get(name)

        return S3Store(
            stack.get("s3_endpoint") or env.get("RECSYS_ARTIFACT_S3_ENDPOINT"),
            stack.get("bucket", BUCKET),
            value("RECSYS_ARTIFACT_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
            value("RECSYS_ARTIFACT_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"),
            env.get("RECSYS_ARTIFACT_S3_REGION") or REGION,
        )
    raise ValueError(f"stack.json store {kind!r} is unknown: expected 'file' or 's3'")


def open_store(info: Mapping, secret_values: Mapping[str, str]):
    """The stack's object store (file or S3) as recsys_stack.objstore sees it."""
    try:
        return store_from_stack(dict(info), dict(secret_values))
    except OSError as exc:
        raise StackError(
            f"the object store of {info.get('root')} cannot be opened ({exc}); if a fault took it down, run "
            f"`recsys-stack heal --root {info.get('root')}`",
            exit_code=1,
        ) from None


def up(
    root: Path,
    *,
    store: str = "file",
    port: int | None = None,
    manifest_ttl: int = DEFAULT_TTL_SECONDS,
    cache_ttl: int = DEFAULT_TTL_SECONDS,
    environ: Mapping[str, str] | None = None,
    log=print,
    alerting: bool = False,
    alerts_webhook: str | None = None,
    alert_rules: Path | None = None,
) -> tuple[dict, dict[str, subprocess.Popen]]:
    """Start a freshly seeded stack in ``root`` and return (stack.json contents, started processes).

    With ``alerting``, also traffic, Prometheus, Alertmanager and the alert receiver (``recsys_stack.alerting``);
    ``alerts_webhook`` makes Alertmanager deliver there instead of to a receiver of the stack's own.

    Refuses (exit 2) when a stack is already running there or ``port`` is taken. On any failure everything started
    so far is stopped again before the error propagates.
    """
    environ = os.environ if environ is None else environ
    root = Path(root).resolve()
    _check_can_start(root, store, port, environ)
    if alerting:
        try:  # refuse before anything under ROOT changes: a missing binary, no receiver
            alerting_mod.preflight(alerts_webhook, {k: v for k, v in environ.items()
                                                    if not k.startswith(("RECSYS_", "AWS_"))},
                                   environ.get(alerting_mod.TOKEN_ENV))
        except alerting_mod.AlertingError as exc:
            raise StackError(str(exc), exit_code=1) from None
    root.mkdir(parents=True, exist_ok=True)
    _reset_state(root)
    (root / "logs").mkdir()

    secret_values = {"RECSYS_API_KEY": environ.get("RECSYS_API_KEY") or secrets.token_hex(32)}
    if store == "s3":
        secret_values["RECSYS_ARTIFACT_S3_ACCESS_KEY"] = "AKIA" + secrets.token_hex(8).upper()
        secret_values["RECSYS_ARTIFACT_S3_SECRET_KEY"] = secrets.token_urlsafe(30)
    write_secrets(root, secret_values)

    service_port = port or free_port()
    info = _new_stack_info(root, store, service_port, manifest_ttl, cache_ttl)
    procs: dict[str, subprocess.Popen] = {}
    try:
        if store == "s3":
            _start_s3(root, info, procs, environ, log)
        log("seeding tenants " + ", ".join(f"{t} ({'/'.join(s)})" for t, s in seed.TENANTS.items()))
        store_client = open_store(info, secret_values)
        try:
            if store == "s3":
                store_client.ensure_bucket()
            seed.seed(store_client, root, root / "admin.db")
        finally:
            store_client.close()
        # What `recsys-stack reset` puts back: the seeded state, taken while nothing writes to it.
        snapshot_mod.take_snapshot(root, info, secret_values)
        _start_service(root, info, procs, service_port, port, secret_values, environ, log)
        if alerting:
            base_env = {k: v for k, v in environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
            try:
                alerting_mod.start(
                    root, info, procs, client_env=client_env(info, secret_values), base_env=base_env,
                    token=environ.get(alerting_mod.TOKEN_ENV), webhook=alerts_webhook,
                    rules_source=alert_rules or alerting_mod.ALERT_RULES,
                    spawn=functools.partial(spawn, stack_id=info["stack_id"]), free_port=free_port,
                    record=lambda: write_stack(root, info), tail=_log_tail, log=log,
                )
            except alerting_mod.AlertingError as exc:
                raise StackError(str(exc), exit_code=1) from None
    except BaseException:
        for proc in procs.values():
            if proc.poll() is None:
                stop_pid(proc.pid)
            proc.wait()
        info.update(processes={}, status="failed", stopped_at=rfc3339(_now()))
        write_stack(root, info)
        raise

    info["status"] = "running"
    info["ready_at"] = rfc3339(_now())
    write_stack(root, info)
    return info, procs


def _check_can_start(root: Path, store: str, port: int | None, environ: Mapping[str, str]) -> None:
    """Refuse (exit 2) before anything under ``root`` changes: a running stack, a taken port, a bad key."""
    if store not in ("file", "s3"):
        raise StackError(f"unknown store {store!r}: use --store file or --store s3")
    existing = read_stack(root) if stack_json_path(root).exists() else None
    alive = running_processes(existing, root)
    if alive:
        raise StackError(
            f"a stack is already running in {root} (service at {existing.get('base_url')}, pids "
            f"{', '.join(f'{n}={p}' for n, p in alive.items())}); stop it with `recsys-stack down --root {root}`"
        )
    if port is not None and port_in_use(port):
        raise StackError(f"port {port} on 127.0.0.1 is already in use: pick another with --port, or omit --port")

    given_key = environ.get("RECSYS_API_KEY")
    if given_key and not re.fullmatch(r"[\x21-\x7e]+", given_key):
        # A key with a trailing newline (copied from a file) would be accepted here and then never match a header.
        raise StackError("RECSYS_API_KEY has whitespace, a newline or non-ASCII characters: set it to the bare key "
                         "(its value is not shown)")
    if root.is_dir() and existing is None and any(root.iterdir()):
        # `up` replaces the state under ROOT; never do that to a directory that is not a stack root.
        raise StackError(f"{root} is not empty and holds no stack.json: pick an empty or new directory with --root")


def _new_stack_info(root: Path, store: str, service_port: int, manifest_ttl: int, cache_ttl: int) -> dict:
    """The first contents of stack.json: where the service and the store will be, no processes yet."""
    info: dict = {
        "root": str(root),
        "stack_id": secrets.token_hex(16),
        "root_identity": root_identity(root),
        "store": store,
        "base_url": f"http://127.0.0.1:{service_port}",
        "processes": {},
        "status": "starting",
        "started_at": rfc3339(_now()),
        "tenants": {t: list(s) for t, s in seed.TENANTS.items()},
        "manifest_ttl_seconds": int(manifest_ttl),
        "cache_ttl_seconds": int(cache_ttl),
    }
    if store == "file":
        store_dir = root / "store"
        store_dir.mkdir()
        base = file_uri(store_dir)
    else:
        base = f"s3://{BUCKET}"
        info["bucket"] = BUCKET
    # The service fills in the placeholders; the key layout is the store's own.
    info["manifest_template"] = f"{base}/{manifest_key('{tenant}', '{surface}')}"
    info["objectstore_uri"] = f"{base}/{BLOB_PREFIX}"
    return info


def _start_s3(root: Path, info: dict, procs: dict[str, subprocess.Popen], environ: Mapping[str, str], log) -> None:
    """Start the S3 server (moto's backend, recsys_stack.s3server) on a free port, record it in stack.json and wait
    until it listens."""
    s3_port = free_port()
    info["s3_endpoint"] = f"http://127.0.0.1:{s3_port}"
    s3_log = root / "logs" / "s3.log"
    base_env = {k: v for k, v in environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
    procs["s3"] = spawn(
        [sys.executable, "-m", "recsys_stack.s3server", "--port", str(s3_port)], s3_log, base_env,
        stack_id=info["stack_id"],
    )
    info["processes"]["s3"] = procs["s3"].pid
    write_stack(root, info)
    log(f"started S3 server (moto) pid {procs['s3'].pid} at {info['s3_endpoint']}")
    _wait_tcp(s3_port, procs["s3"], "the S3 server (moto)", s3_log, READY_TIMEOUT_SECONDS)


def _start_service(
    root: Path,
    info: dict,
    procs: dict[str, subprocess.Popen],
    service_port: int,
    port: int | None,
    secret_values: Mapping[str, str],
    environ: Mapping[str, str],
    log,
) -> None:
    """Start the service on uvicorn (on ``service_port`` unless taken since), record it in stack.json and wait
    until ``/readyz`` answers 200."""
    if port is None and port_in_use(service_port):  # taken since we picked it
        service_port = free_port()
        info["base_url"] = f"http://127.0.0.1:{service_port}"
    elif port is not None and port_in_use(port):
        raise StackError(f"port {port} on 127.0.0.1 is already in use: pick another with --port, or omit --port")
    service_log = root / "logs" / "service.log"
    procs["service"] = spawn(
        [
            sys.executable, "-m", "uvicorn", "--factory", "recsys_stack.service.app:create_app",
            "--host", "127.0.0.1", "--port", str(service_port), "--no-access-log",
        ],
        service_log,
        _service_env(info, secret_values, root, environ),
        stack_id=info["stack_id"],
    )
    info["processes"]["service"] = procs["service"].pid
    write_stack(root, info)
    log(f"started service pid {procs['service'].pid} at {info['base_url']}")
    wait_ready(info["base_url"], procs["service"], service_log)


def down(root: Path, log=print) -> list[str]:
    """Stop every process ``up`` recorded for ``root``; idempotent. Returns what was stopped (``name pid``)."""
    root = Path(root).resolve()
    info = read_stack(root)
    if info is None:
        log(f"no stack in {root}: nothing to stop")
        return []
    stopped = []
    problem = ownership_problem(info, root)
    if problem:
        log(problem)
    order = {name: n for n, name in enumerate(_STOP_ORDER)}
    owned = running_processes(info, root)
    for name, pid in (info.get("processes") or {}).items():
        if name not in owned and pid and pid_alive(int(pid)) and not problem:
            log(f"{name}: pid {pid} is running but is not the process `up` started for this stack (its start time, "
                "command line or stack id differ): not signalled")
    for name in sorted(owned, key=lambda n: order.get(n, len(order))):
        pid = int(info["processes"][name])
        stop_pid(pid)
        stopped.append(f"{name} {pid}")
        log(f"stopped {name} (pid {pid})")
    if info.get("status") != "stopped" or info.get("processes"):
        info.update(processes={}, status="stopped", stopped_at=rfc3339(_now()))
        write_stack(root, info)
    if not stopped:
        log(f"no process of the stack in {root} was running")
    return stopped


class StopRequested(BaseException):
    """Ctrl-C or SIGTERM arrived: stop the stack (a BaseException so that no ``except Exception`` swallows it)."""


def install_stop_handlers() -> dict:
    """Make SIGINT and SIGTERM raise StopRequested; returns the previous handlers for ``restore_handlers``."""

    def _handler(signum, frame):  # noqa: ARG001
        raise StopRequested()

    return {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def restore_handlers(previous: Mapping) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def serve_foreground(root: Path, info: Mapping, procs: Mapping[str, subprocess.Popen], log=print) -> int:
    """Stay in the foreground until StopRequested (see install_stop_handlers) or a process dies, then stop all."""
    code = 0
    try:
        log(f"serving at {info['base_url']}; press Ctrl-C to stop")
        while True:
            dead = {n: p.returncode for n, p in procs.items() if p.poll() is not None}
            if dead:
                log(
                    "stopping: " + ", ".join(f"{n} exited with code {c}" for n, c in dead.items())
                    + f"; see {Path(root) / 'logs'}"
                )
                code = 1
                break
            time.sleep(0.3)
    except (StopRequested, KeyboardInterrupt):
        log("stopping")
    finally:
        # A second Ctrl-C must not interrupt the shutdown half-way.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            down(root, log=log)
            for proc in procs.values():
                if proc.poll() is None:
                    proc.wait()
        finally:
            restore_handlers(previous)
    return code
