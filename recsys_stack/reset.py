"""``recsys-stack reset``: put a running stack back to the state ``up`` seeded, in about a second.

``up`` keeps a snapshot of the freshly seeded state under ``ROOT/snapshot/`` (taken after seeding, before the service
starts): a copy of every state entry of the root (the file store, the admin database, raw events, checkpoints, run
logs, evaluation data) and, for ``--store s3``, every object of the bucket. ``reset``

1. stops what a fault started beside the stack (the slow-store latency proxy) and resumes a frozen S3 server;
2. stops the service, so that nothing it holds in memory (manifest, blob, config, rules and tenant caches, metrics)
   survives;
3. removes every entry under ROOT except ``logs/``, ``stack.json``, ``secrets.env`` and the snapshot itself (so a
   fault's leftovers, ``store.down``, ``admin.db.down``, ``pipeline.json``, ``bad-events.json``, are gone too) and
   copies the snapshot back, modification times included;
4. for S3, deletes every object version, delete marker, unfinished multipart upload and any other bucket, then
   puts the snapshot's objects back;
5. starts the service again, on the same port when it is free, and rewrites ``stack.json`` as ``up`` left it.

A snapshot seeded on an earlier UTC day is not restored: the seeded history (D-5..D-1) and the scheduler's next day
depend on the day, so ``reset`` seeds afresh instead (and keeps a new snapshot), as ``--reseed`` does on demand.
What ``reset`` leaves is what ``up`` left, checked by ``tests/stack_cli/test_reset.py``; what it cannot undo is a
process outside the stack (a runbook still running against it) and the S3 server's process itself.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from . import processes, seed
from .formats import rfc3339
from .processes import StackError
from .snapshot import clear_state, restore_snapshot, snapshot_meta, take_snapshot

# The processes a reset stack keeps running; the service is restarted, anything else is refused or stopped.
_STORE_PROCESS = "s3"
_FAULT_PROCESSES = ("s3-proxy",)
# stack.json keys a fault adds (slow-store) and reset takes away again.
_FAULT_KEYS = ("s3_upstream_endpoint", "slow_store_latency_ms")


def _stop_fault_processes(root: Path, info: dict, log) -> None:
    alive = processes.running_processes(info, root)
    for name in _FAULT_PROCESSES:
        if name in alive:
            processes.stop_pid(int(alive[name]))
            log(f"stopped {name} (pid {alive[name]})")
    if info.get("s3_upstream_endpoint"):
        info["s3_endpoint"] = info["s3_upstream_endpoint"]
    for key in _FAULT_KEYS:
        info.pop(key, None)
    pid = alive.get(_STORE_PROCESS)
    if pid:
        os.kill(int(pid), signal.SIGCONT)  # a frozen S3 server (store-down) answers again; harmless otherwise


def _check_resettable(root: Path, info: dict) -> dict[str, int]:
    problem = processes.ownership_problem(info, root)
    if problem:  # a copy of a running root: never stop, nor take the port of, the original's service
        raise StackError(f"nothing was reset: {problem}")
    alive = processes.running_processes(info, root)
    if not alive.get("service"):
        raise StackError(f"the stack in {root} is not running: start it with `recsys-stack up --detach --root {root}`")
    if info.get("store") == "s3" and not alive.get(_STORE_PROCESS):
        raise StackError(f"the S3 server of the stack in {root} is not running: `recsys-stack down --root {root}` "
                         f"and `up` again", exit_code=1)
    other = sorted(set(alive) - {"service", _STORE_PROCESS, *_FAULT_PROCESSES})
    if other or info.get("alerting"):
        raise StackError(f"the stack in {root} runs {', '.join(other) or 'alerting'} (started with --alerting): "
                         "reset covers stacks without it; `recsys-stack down` and `up` instead")
    return alive


def _reseed(root: Path, info: Mapping, secret_values: Mapping[str, str], now: datetime) -> None:
    clear_state(root, info, secret_values)
    if info.get("store") != "s3":
        (root / "store").mkdir()
    store_client = processes.open_store(info, secret_values)
    try:
        seed.seed(store_client, root, root / "admin.db", now)
    finally:
        store_client.close()


def _restart_service(root: Path, info: dict, secret_values: Mapping[str, str], environ: Mapping[str, str],
                     log) -> None:
    port = int(info["base_url"].rsplit(":", 1)[1])
    if not _can_listen(port):  # taken since the service let it go: another free one, as `up` does
        port = processes.free_port()
        info["base_url"] = f"http://127.0.0.1:{port}"
    service_log = root / "logs" / "service.log"
    proc = processes.spawn(
        [processes.sys.executable, "-m", "uvicorn", "--factory", "recsys_stack.service.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        service_log, processes._service_env(info, secret_values, root, environ), stack_id=info["stack_id"],
    )
    _DETACHED.append(proc)
    info["processes"]["service"] = proc.pid
    processes.write_stack(root, info)
    log(f"started service pid {proc.pid} at {info['base_url']}")
    processes.wait_ready(info["base_url"], proc, service_log)


# The restarted service outlives this command (stopped by `down`): kept referenced, so that Python does not report
# a child "still running" when its Popen object would be collected.
_DETACHED: list = []


def _can_listen(port: int) -> bool:
    """True when a server (which sets SO_REUSEADDR, as uvicorn does) can listen on ``port``: connections the old
    service closed and left in TIME_WAIT do not count."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def reset(root: Path, *, reseed: bool = False, environ: Mapping[str, str] | None = None, log=print) -> dict:
    """Reset the stack running in ``root`` to the state ``up`` seeded; returns what was done (``restored`` or
    ``reseeded``, the snapshot's day, how long it took)."""
    started = time.monotonic()
    environ = os.environ if environ is None else environ
    root = Path(root).resolve()
    info = processes.require_stack(root)
    alive = _check_resettable(root, info)
    secret_values = processes.read_secrets(root)
    _stop_fault_processes(root, info, log)
    processes.stop_pid(int(alive["service"]))
    info["processes"] = {name: pid for name, pid in (info.get("processes") or {}).items() if name == _STORE_PROCESS}
    info["status"] = "resetting"
    processes.write_stack(root, info)

    now = datetime.now(UTC)
    meta = snapshot_meta(root)
    if reseed or meta is None or meta.get("day") != now.date().isoformat() or meta.get("store") != info.get("store"):
        why = ("--reseed" if reseed else "no snapshot" if meta is None
               else f"the snapshot was seeded on {meta.get('day')}, today is {now.date().isoformat()}")
        log(f"seeding afresh ({why})")
        _reseed(root, info, secret_values, now)
        meta = take_snapshot(root, info, secret_values, now)
        how = "reseeded"
    else:
        restore_snapshot(root, info, secret_values)
        how = "restored"
    _restart_service(root, info, secret_values, environ, log)
    info["status"] = "running"
    info["ready_at"] = rfc3339(datetime.now(UTC).replace(microsecond=0))
    processes.write_stack(root, info)
    seconds = round(time.monotonic() - started, 2)
    log(f"stack in {root} {how} to the state seeded at {meta['taken_at']} ({seconds} s)")
    return {"how": how, "snapshot": meta, "seconds": seconds}
