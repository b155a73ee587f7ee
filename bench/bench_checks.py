"""Benchmarks of the checks on-call runs most, each against a baseline measured in the same run.

Run with ``make bench``. Prints one table: the median wall time of each case over several repeats and its ratio to
its baseline. The registries are built by the local stack's publisher in a temporary directory (file store) and in
moto's S3 server on loopback (s3 store).

- the text a blob's version is hashed from: the generic Go-style walk against the one-call encoder path.
- ``freshness`` over every surface, concurrent (8 workers) against one surface at a time (1 worker).
- ``manifest status`` with every blob validated (hash recomputed) against the manifest alone.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from recsys_checks.artifact import _go_compact_walk, go_compact, load_json
from recsys_checks.config import Target
from recsys_checks.freshness import fleet
from recsys_checks.manifest import status
from recsys_stack.objstore import BUCKET, FileStore, ObjectStore, S3Store
from recsys_stack.publisher import publish

ACCESS, SECRET = "bench-access", "bench-secret"


def build_registry(store: ObjectStore, root: Path, tenants: int, surfaces: int) -> None:
    day = date.today() - timedelta(days=1)
    now = datetime.now(UTC)
    for t in range(tenants):
        for s in range(surfaces):
            publish(store, root, tenant=f"tenant{t:02d}", surface=f"surface{s:02d}", day=day, now=now)


@contextmanager
def file_target(tenants: int, surfaces: int) -> Iterator[Target]:
    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as tmp:
        root = Path(tmp)
        build_registry(FileStore(root / "store"), root, tenants, surfaces)
        template = (root / "store").as_uri() + "/registry/current/{tenant}/{surface}/manifest.json"
        yield Target(manifest_template=template)


@contextmanager
def s3_target(tenants: int, surfaces: int) -> Iterator[Target]:
    # moto's server in a process of its own, as a real S3 endpoint would be: in this process it would compete with
    # the checks for the interpreter lock and hide what concurrency buys.
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_port(port)
        store = S3Store(endpoint, BUCKET, ACCESS, SECRET)
        store.ensure_bucket()
        with tempfile.TemporaryDirectory(prefix="recsys-bench-") as tmp:
            build_registry(store, Path(tmp), tenants, surfaces)
        store.close()
        yield Target(manifest_template=f"s3://{BUCKET}/registry/current/{{tenant}}/{{surface}}/manifest.json",
                     s3_endpoint=endpoint, s3_access_key=ACCESS, s3_secret_key=SECRET)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"moto's S3 server did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: imports, clients, connection pools
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--surfaces", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    n = args.tenants * args.surfaces
    rows = []
    with file_target(1, 1) as target:
        blob_uri = status(target, "tenant00", "surface00").data["artifacts"][0]["uri"]  # cooc: the larger blob
        doc = load_json(Path(blob_uri.removeprefix("file://")).read_bytes())
        canon = {k: doc[k] for k in doc if k != "build"} | {"build": {"built_at": "", "version": ""}}
        base = median_seconds(lambda: _go_compact_walk(canon), args.repeats)
        fast = median_seconds(lambda: go_compact(canon, number_text=False), args.repeats)
        assert _go_compact_walk(canon) == go_compact(canon, number_text=False)
        rows.append(("version hash text, cooc blob", "-", "Go-style walk", base, "one encoder call", fast))
    for store, make in (("file", file_target), ("s3", s3_target)):
        with make(args.tenants, args.surfaces) as target:
            def fleet_with(workers: int, target: Target = target) -> Callable[[], object]:
                def run() -> object:
                    result = fleet(target, workers=workers)
                    assert result.data["counts"]["healthy"] == n, result.summary
                    return result
                return run

            base = median_seconds(fleet_with(1), args.repeats)
            fast = median_seconds(fleet_with(8), args.repeats)
            rows.append((f"freshness, {n} surfaces", store, "1 worker", base, "8 workers", fast))

            def status_with(validate: bool, target: Target = target) -> Callable[[], object]:
                return lambda: status(target, "tenant00", "surface00", validate_blobs=validate)

            base = median_seconds(status_with(False), args.repeats)
            full = median_seconds(status_with(True), args.repeats)
            rows.append(("manifest status", store, "manifest only", base, "blobs validated", full))

    header = ("benchmark", "store", "baseline", "median", "measured", "median", "ratio")
    lines = [header, tuple("-" * len(h) for h in header)]
    for name, store, base_name, base, case, value in rows:
        lines.append((name, store, base_name, f"{base * 1000:.1f} ms", case, f"{value * 1000:.1f} ms",
                      f"{value / base:.2f}x"))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    print(f"\n(median of {args.repeats} runs after one warm-up; ratio = measured / baseline, lower is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
