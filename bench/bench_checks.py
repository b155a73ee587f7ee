"""Benchmarks of the checks on-call runs most, each against a baseline measured in the same run.

Run with ``make bench``. Prints one table: the median of each case over several repeats, its baseline, the ratio
and the target it must meet. Registries are written directly in the suite's formats (``fleet_registry.py``) in a
temporary directory, or into the S3 server of a local stack started for the run.

- the text a blob's version is hashed from: the generic Go-style walk against the one-call encoder path.
- ``manifest status`` with every blob validated (hash recomputed) against the manifest alone.
- ``recsys-checks freshness`` over 10,000 surfaces on files, as a whole process, against a bare Python process that
  reads and parses the same manifests and the popularity version record each names, as the shallow scan does
  (target: within 3x).
- the same over 100,000 surfaces: peak memory (target: within 1.5x of the 10,000 case) and time per surface.
- ``freshness`` over 2,000 surfaces on S3 behind the ``slow-store`` fault at 20 ms: the default pool against one
  request at a time (target: at least 8x faster).
- ``freshness --deep`` on 1,000 surfaces with real blobs: the cost per surface next to the shallow mode.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from fleet_registry import put_manifests, write_full_surfaces, write_manifests

from recsys_checks.judge.registry.artifact import _go_compact_walk, go_compact, load_json
from recsys_checks.judge.registry.manifest import check_manifest
from recsys_checks.reach.settings import Target

BIN = Path(sys.executable).parent
CHECKS = str(BIN / "recsys-checks")
STACK = str(BIN / "recsys-stack")

# The baseline of a fleet-wide freshness: read and parse the same manifests and the popularity record each names
# (the shallow scan's two reads per surface), nothing else.
BARE_READER = """
import json, os, sys
root = sys.argv[1] + "/registry"
for t in sorted(os.listdir(root + "/current")):
    for s in sorted(os.listdir(root + "/current/" + t)):
        with open(root + "/current/" + t + "/" + s + "/manifest.json", "rb") as fh:
            version = json.loads(fh.read())["current"]["popularity"].rsplit("/", 1)[1]
        with open(root + "/records/" + t + "/" + s + "/popularity/" + version, "rb") as fh:
            json.loads(fh.read())
"""


class Run:
    """One finished process: wall seconds, peak resident memory (MiB) and CPU seconds (user + system)."""

    def __init__(self, seconds: float, rss_mib: float, code: int, cpu: float = 0.0) -> None:
        self.seconds, self.rss_mib, self.code, self.cpu = seconds, rss_mib, code, cpu


def run_process(argv: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` with output discarded; its wall time and, from wait4, its own peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status_word, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status_word)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err.strip()}")
    return Run(seconds, usage.ru_maxrss / 1024, proc.returncode, usage.ru_utime + usage.ru_stime)


def median_runs(argv: Sequence[str], repeats: int, env: dict[str, str] | None = None) -> Run:
    runs = [run_process(argv, env) for _ in range(repeats)]
    return Run(statistics.median(r.seconds for r in runs), statistics.median(r.rss_mib for r in runs),
               max(r.code for r in runs), statistics.median(r.cpu for r in runs))


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def interleaved(cases: dict[str, tuple[Sequence[str], dict[str, str] | None]], repeats: int) -> dict[str, Run]:
    """Median of each case, the cases taking turns so that a busy moment hits them alike."""
    runs: dict[str, list[Run]] = {name: [] for name in cases}
    for argv, env in cases.values():  # warm-up: page cache, imports
        run_process(argv, env)
    for _ in range(repeats):
        for name, (argv, env) in cases.items():
            runs[name].append(run_process(argv, env))
    return {name: Run(statistics.median(r.seconds for r in rs), statistics.median(r.rss_mib for r in rs),
                      max(r.code for r in rs)) for name, rs in runs.items()}


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: imports, clients, connection pools
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def checks_env(template: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
    env["RECSYS_ARTIFACT_MANIFEST_TEMPLATE"] = template
    env.update(extra or {})
    return env


def file_template(root: Path) -> str:
    return root.as_uri() + "/registry/current/{tenant}/{surface}/manifest.json"


@contextmanager
def s3_stack() -> Iterator[tuple[Path, dict]]:
    """A local stack on the S3 store in a temporary root; stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="recsys-bench-stack-") as tmp:
        root = Path(tmp) / "stack"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
        subprocess.run([STACK, "up", "--detach", "--store", "s3", "--root", str(root)], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        try:
            yield root, env
        finally:
            subprocess.run([STACK, "down", "--root", str(root)], check=False, env=env, stdout=subprocess.DEVNULL)


def client_env(root: Path) -> dict[str, str]:
    from recsys_stack.processes import client_env as env_of
    from recsys_stack.processes import read_secrets

    return env_of(json.loads((root / "stack.json").read_text()), read_secrets(root))


Row = tuple[str, str, str, str, str, str, str, str]


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def bench_hash_and_status(repeats: int, rows: list[Row]) -> None:
    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as tmp:
        root = Path(tmp)
        write_full_surfaces(root, 1, 1)
        target = Target(manifest_template=file_template(root))
        blob_uri = check_manifest(target, "tenant0000", "surface00000").data["artifacts"][0]["uri"]  # cooc
        doc = load_json(Path(blob_uri.removeprefix("file://")).read_bytes())
        canon = {k: doc[k] for k in doc if k != "build"} | {"build": {"built_at": "", "version": ""}}
        assert _go_compact_walk(canon) == go_compact(canon, number_text=False)
        base = median_seconds(lambda: _go_compact_walk(canon), repeats)
        fast = median_seconds(lambda: go_compact(canon, number_text=False), repeats)
        rows.append(("version hash text, cooc blob", "-", "Go-style walk", fmt_s(base), "one encoder call",
                     fmt_s(fast), f"{fast / base:.2f}x", "-"))
        base = median_seconds(lambda: check_manifest(target, "tenant0000", "surface00000", validate_blobs=False), repeats)
        full = median_seconds(lambda: check_manifest(target, "tenant0000", "surface00000"), repeats)
        rows.append(("manifest status", "file", "manifest only", fmt_s(base), "blobs validated", fmt_s(full),
                     f"{full / base:.2f}x", "-"))


def bench_files(small: int, large: int, repeats: int, rows: list[Row]) -> list[str]:
    """Whole-process freshness on files: 10,000 surfaces against the bare reader; 100,000 for memory and time."""
    failures = []
    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as tmp:
        small_root, large_root = Path(tmp) / "small", Path(tmp) / "large"
        started = time.perf_counter()
        n_small = write_manifests(small_root, 100, small // 100, records=True)
        built_small = time.perf_counter() - started
        cases = {
            "bare": ([sys.executable, "-c", BARE_READER, str(small_root)], None),
            "checks": ([CHECKS, "freshness"], checks_env(file_template(small_root))),
        }
        got = interleaved(cases, repeats)
        if got["checks"].code != 0:
            failures.append("freshness over the small fleet did not find every surface healthy")
        ratio = got["checks"].seconds / got["bare"].seconds
        rows.append((f"freshness, {n_small:,} surfaces", "file", "bare Python read+parse", fmt_s(got["bare"].seconds),
                     "recsys-checks freshness", fmt_s(got["checks"].seconds), f"{ratio:.2f}x", "<= 3x"))
        if ratio > 3:
            failures.append(f"freshness over {n_small:,} surfaces took {ratio:.2f}x the bare reader (target 3x)")

        started = time.perf_counter()
        n_large = write_manifests(large_root, 100, large // 100, records=True)
        built_large = time.perf_counter() - started
        # The two sizes take turns as well, so that the growth is not a change of load between them.
        pair = interleaved({"small": cases["checks"],
                            "large": ([CHECKS, "freshness"], checks_env(file_template(large_root)))},
                           max(1, repeats // 2))
        small_run, big = pair["small"], pair["large"]
        rss = big.rss_mib / small_run.rss_mib
        rows.append((f"freshness, {n_large:,} surfaces", "file", f"peak RSS at {n_small:,}",
                     f"{small_run.rss_mib:.1f} MiB", f"peak RSS at {n_large:,}", f"{big.rss_mib:.1f} MiB",
                     f"{rss:.2f}x", "<= 1.5x"))
        if rss > 1.5:
            failures.append(f"peak RSS at {n_large:,} surfaces is {rss:.2f}x the {n_small:,} case (target 1.5x)")
        grows = big.seconds / small_run.seconds
        rows.append((f"freshness, {n_large:,} surfaces", "file", f"time at {n_small:,}",
                     fmt_s(small_run.seconds), f"time at {n_large:,}", fmt_s(big.seconds), f"{grows:.2f}x",
                     f"<= {n_large / n_small:.0f}x (linear)"))
        if grows > n_large / n_small:
            failures.append(f"time grew {grows:.1f}x from {n_small:,} to {n_large:,} surfaces (more than linear)")
        print(f"(built {n_small:,} manifests and records in {built_small:.1f} s and {n_large:,} in {built_large:.1f} s)",
              file=sys.stderr)
    return failures


def bench_deep(surfaces: int, repeats: int, rows: list[Row]) -> None:
    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        n = write_full_surfaces(root, 10, surfaces // 10)
        print(f"(built {n:,} surfaces with blobs and records in {time.perf_counter() - started:.1f} s)",
              file=sys.stderr)
        env = checks_env(file_template(root))
        got = {"shallow": median_runs([CHECKS, "freshness"], repeats, env),
               "deep": median_runs([CHECKS, "freshness", "--deep"], max(1, repeats // 2), env)}
        for name, run in got.items():
            if run.code != 0:
                raise RuntimeError(f"freshness ({name}) found the built registry unhealthy")
        shallow, deep = got["shallow"].seconds / n, got["deep"].seconds / n
        rows.append((f"freshness, {n:,} surfaces, per surface", "file", "shallow (manifests)",
                     f"{shallow * 1000:.3f} ms", "--deep (every blob)", f"{deep * 1000:.3f} ms",
                     f"{deep / shallow:.1f}x", "reported"))


def bench_slow_s3(surfaces: int, latency_ms: int, repeats: int, rows: list[Row]) -> list[str]:
    failures = []
    import boto3
    from botocore.config import Config

    with s3_stack() as (root, env):
        direct = client_env(root)
        client = boto3.session.Session().client(
            "s3", endpoint_url=direct["RECSYS_ARTIFACT_S3_ENDPOINT"], region_name="us-east-1",
            aws_access_key_id=direct["RECSYS_ARTIFACT_S3_ACCESS_KEY"],
            aws_secret_access_key=direct["RECSYS_ARTIFACT_S3_SECRET_KEY"],
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=16),
        )
        started = time.perf_counter()
        put_manifests(client, "recsys-artifacts", 20, surfaces // 20)
        client.close()
        print(f"(put {surfaces:,} manifests into S3 in {time.perf_counter() - started:.1f} s)", file=sys.stderr)
        subprocess.run([STACK, "inject", "slow-store", "--latency-ms", str(latency_ms), "--root", str(root)],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        seeded = sum(len(s) for s in json.loads((root / "stack.json").read_text())["tenants"].values())
        surfaces += seeded  # the stack's own surfaces are in the fleet too
        slow = client_env(root)
        info = json.loads((root / "stack.json").read_text())
        servers = [int(info["processes"][name]) for name in ("s3", "s3-proxy")]
        one = median_runs([CHECKS, "freshness", "--workers", "1"], 1, slow)
        before = [process_cpu(pid) for pid in servers]
        pool = median_runs([CHECKS, "freshness"], max(1, repeats // 2), slow)
        runs = max(1, repeats // 2)
        server_cpu = [(process_cpu(pid) - b) / runs for pid, b in zip(servers, before, strict=True)]
        if pool.code != 0:
            failures.append("freshness through slow-store did not find every surface healthy")
        speedup = one.seconds / pool.seconds
        per = [1000 * c / surfaces for c in (pool.cpu, *server_cpu)]
        print(f"(slow-store pool: CPU per request {per[0]:.2f} ms in recsys-checks, {per[1]:.2f} ms in the S3 "
              f"server, {per[2]:.2f} ms in the proxy; with {os.cpu_count()} cores the pool cannot beat "
              f"{(pool.cpu + sum(server_cpu)) / (os.cpu_count() or 1):.1f} s)", file=sys.stderr)
        rows.append((f"freshness, {surfaces:,} surfaces, slow-store {latency_ms} ms", "s3", "1 request at a time",
                     fmt_s(one.seconds), "default pool", fmt_s(pool.seconds), f"{1 / speedup:.3f}x",
                     "<= 0.125x (8x faster)"))
        if speedup < 8:
            failures.append(f"freshness through slow-store was {speedup:.1f}x faster than one request at a time "
                            "(target 8x)")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small", type=int, default=10_000, help="surfaces of the file fleet (default 10,000)")
    parser.add_argument("--large", type=int, default=100_000, help="surfaces of the large file fleet")
    parser.add_argument("--s3", type=int, default=2_000, help="surfaces of the S3 fleet behind slow-store")
    parser.add_argument("--deep", type=int, default=1_000, help="surfaces with blobs for --deep")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--only", choices=("status", "files", "deep", "s3"), help="run one group of cases")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    failures: list[str] = []
    if args.only in (None, "status"):
        bench_hash_and_status(args.repeats, rows)
    if args.only in (None, "files"):
        failures += bench_files(args.small, args.large, args.repeats, rows)
    if args.only in (None, "deep"):
        bench_deep(args.deep, args.repeats, rows)
    if args.only in (None, "s3"):
        failures += bench_slow_s3(args.s3, args.latency_ms, args.repeats, rows)

    header = ("benchmark", "store", "baseline", "median", "measured", "median", "ratio", "target")
    lines = [header, tuple("-" * len(h) for h in header), *rows]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    print(f"\n(medians of {args.repeats} runs after one warm-up, fewer for the large cases; ratio = measured / "
          "baseline, lower is better)")
    for failure in failures:
        print(f"TARGET MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
