"""Benchmarks of growth: the audit folder under ``timeline``, and a long version history under a runbook run.

Each case is measured against a baseline of the same command on a small folder or history, in the same run.

- ``recsys-checks timeline --since 1d`` over a file store whose audit folder holds 100,000 of our audit records (one
  surface, spread over 100 days, so about 1,000 fall in the last day), against the same over 1,000 records (10 in
  the last day). Targets: peak resident memory under 150 MiB and at most 5 s. What still grows with the folder is
  its listing (the names, about 0.3 KiB each), not the records: those outside the window are never read. A
  ``--since 400d`` run over the 100,000 records shows the cap on how many are read (the output says how many older
  ones were left out) and must stay under 150 MiB too.
- ``recsys-checks runbook run rollback-manifest`` (a dry run, service down) over a surface with 10,000 recorded
  popularity versions, against the same with 10 versions. Target: at most 5 s, whole process; the run record's size
  is reported.

Run with ``make bench`` (or ``python bench/bench_scale.py``; ``--help`` lists the sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recsys_stack.formats import (
    artifact_bytes,
    build_artifact,
    manifest_bytes,
    manifest_dict,
    popularity_items,
    record_bytes,
    record_dict,
)

BIN = Path(sys.executable).parent
CHECKS = str(BIN / "recsys-checks")
TENANT, SURFACE = "demo", "home"
RSS_TARGET_MIB = 150.0
TIMELINE_SECONDS_TARGET = 5.0
RUNBOOK_SECONDS_TARGET = 5.0


def measured(argv: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall seconds, peak resident memory (MiB, the child's own, from wait4), exit code and stdout of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    chunks: list[bytes] = []
    errors: list[bytes] = []
    def drain(stream, into):
        for block in iter(lambda: stream.read(65536), b""):
            into.append(block)

    readers = [threading.Thread(target=drain, args=(proc.stdout, chunks)),
               threading.Thread(target=drain, args=(proc.stderr, errors))]
    for t in readers:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    for t in readers:
        t.join()
    seconds = time.perf_counter() - start
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise RuntimeError(f"{' '.join(argv)} exited {code}: {b''.join(errors).decode(errors='replace').strip()}")
    return seconds, usage.ru_maxrss / 1024, code, b"".join(chunks).decode(errors="replace")


def median_of(argv: list[str], env: dict[str, str], repeats: int) -> tuple[float, float, str]:
    measured(argv, env)  # warm-up: page cache, imports
    runs = [measured(argv, env) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs[-1][3]


def base_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
    env["RECSYS_ARTIFACT_MANIFEST_TEMPLATE"] = root.as_uri() + "/registry/current/{tenant}/{surface}/manifest.json"
    env["RECSYS_BASE_URL"] = "http://127.0.0.1:9"  # nothing listens: the service's sources are unavailable at once
    return env


def write_surface(root: Path, versions: int, now: datetime) -> None:
    """A surface with ``versions`` recorded popularity versions (one a day, newest current) and its manifest."""
    counts = {f"sku-{i:03d}": 100 - i for i in range(20)}
    payload = popularity_items(counts)
    current = ""
    for n in range(versions, 0, -1):
        end = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=n - 1)
        start = end - timedelta(days=1)
        artifact = build_artifact("popularity", TENANT, SURFACE, start, end, payload, built_at=end)
        version = artifact["build"]["version"]
        blob = root / "objectstore" / TENANT / SURFACE / "popularity" / f"{version}.json"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(artifact_bytes(artifact))
        record = root / "registry" / "records" / TENANT / SURFACE / "popularity" / f"{version}.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_bytes(record_bytes(record_dict(TENANT, SURFACE, "popularity", version, blob.as_uri(), start,
                                                    end, end)))
        current = blob.as_uri()
    manifest = root / "registry" / "current" / TENANT / SURFACE / "manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_bytes(manifest_bytes(manifest_dict(TENANT, SURFACE, {"popularity": current}, now)))


def write_audit(root: Path, records: int, now: datetime, span: timedelta = timedelta(days=100)) -> None:
    """``records`` audit records of manifest rollbacks and cache invalidations, evenly over ``span`` before now,
    named and shaped as recsys_checks.judge.auditlog writes them."""
    folder = root / "registry" / "audit" / TENANT / SURFACE
    folder.mkdir(parents=True, exist_ok=True)
    step = span / records
    version = "ab" * 32
    for n in range(records):
        when = now - step * n - timedelta(seconds=1)
        stamp = when.strftime("%Y%m%dT%H%M%S") + f".{when.microsecond:06d}Z"
        plan = f"{n:012x}"
        rollback = n % 2 == 0
        doc = {
            "v": 1, "action": "manifest.rollback" if rollback else "cache.invalidate", "tenant": TENANT,
            "surface": SURFACE, "who": "bench", "when": stamp, "why": f"bench record {n}", "runbook": None,
            "plan_hash": plan * 5 + "0000", "deployment": None, "target": {"registry": root.as_uri()},
            "changes": [{"what": "current.popularity", "kind": "popularity", "before": f"file:///x/{version}.json",
                         "after": f"file:///x/{version}.json", "before_version": version, "after_version": version}]
            if rollback else [{"kind": "cache", "targets": ["popularity"], "surface": SURFACE}],
            "before": None, "after": None, "state": "applied", "intent": None,
        }
        (folder / f"{stamp}-{plan}.json").write_text(json.dumps(doc, indent=2) + "\n")


def _result(stdout: str) -> dict:
    doc = json.loads(stdout)
    return doc["results"][0] if "results" in doc else doc


def timeline_cases(work: Path, small: int, large: int, repeats: int) -> list[tuple]:
    now = datetime.now(UTC)
    rows = []
    results = {}
    for n in (small, large):
        root = work / f"audit-{n}"
        write_surface(root, 3, now)
        write_audit(root, n, now)
        results[n] = root
    argv = [CHECKS, "timeline", "--tenant", TENANT, "--surface", SURFACE, "--json"]
    base = median_of([*argv, "--since", "1d"], base_env(results[small]), repeats)
    big = median_of([*argv, "--since", "1d"], base_env(results[large]), repeats)
    capped = median_of([*argv, "--since", "400d"], base_env(results[large]), max(1, repeats // 2))
    events = {name: len(_result(r[2])["data"]["events"]) for name, r in
              (("base", base), ("big", big), ("capped", capped))}
    capped_summary = _result(capped[2])["summary"]
    rows.append((f"timeline --since 1d, {large:,} audit records", f"peak RSS at {small:,}", f"{base[1]:.1f} MiB",
                 f"peak RSS at {large:,}", f"{big[1]:.1f} MiB", f"{big[1] / base[1]:.2f}x",
                 f"< {RSS_TARGET_MIB:.0f} MiB", big[1] < RSS_TARGET_MIB))
    rows.append((f"timeline --since 1d, {large:,} audit records", f"time at {small:,}", f"{base[0] * 1000:.0f} ms",
                 f"time at {large:,}", f"{big[0] * 1000:.0f} ms", f"{big[0] / base[0]:.2f}x",
                 f"<= {TIMELINE_SECONDS_TARGET:.0f} s", big[0] <= TIMELINE_SECONDS_TARGET))
    rows.append((f"timeline --since 400d, {large:,} audit records", "peak RSS, --since 1d", f"{big[1]:.1f} MiB",
                 "peak RSS, capped read", f"{capped[1]:.1f} MiB", f"{capped[1] / big[1]:.2f}x",
                 f"< {RSS_TARGET_MIB:.0f} MiB", capped[1] < RSS_TARGET_MIB))
    notes = [f"timeline events: {events['base']} ({small:,} records, 1d), {events['big']} ({large:,}, 1d), "
             f"{events['capped']} ({large:,}, 400d; {capped[0] * 1000:.0f} ms: {capped_summary})"]
    return rows, notes


def runbook_cases(work: Path, small: int, large: int, repeats: int) -> tuple[list[tuple], list[str]]:
    now = datetime.now(UTC).replace(microsecond=0)
    roots = {}
    for n in (small, large):
        roots[n] = work / f"history-{n}"
        write_surface(roots[n], n, now)
    timed, sizes = {}, {}
    for n, root in roots.items():
        runs = []
        for r in range(repeats + 1):
            out = work / f"out-{n}-{r}"
            argv = [CHECKS, "runbook", "run", "rollback-manifest", "--out", str(out)]
            runs.append(measured(argv, base_env(root)))
            sizes[n] = (out / "rollback-manifest.result.json").stat().st_size
        timed[n] = statistics.median(x[0] for x in runs[1:])
    ok = timed[large] <= RUNBOOK_SECONDS_TARGET
    rows = [(f"runbook run rollback-manifest, {large:,} versions", f"{small:,} versions", f"{timed[small]:.2f} s",
             f"{large:,} versions", f"{timed[large]:.2f} s", f"{timed[large] / timed[small]:.2f}x",
             f"<= {RUNBOOK_SECONDS_TARGET:.0f} s", ok)]
    notes = [f"run record size: {sizes[small] / 1024:.0f} KiB ({small:,} versions), {sizes[large] / 1024:.0f} KiB "
             f"({large:,} versions)"]
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="audit records of the large timeline case")
    parser.add_argument("--versions", type=int, default=10_000, help="versions of the large runbook case")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=("timeline", "runbook"), help="run one group of cases")
    args = parser.parse_args(argv)
    rows: list[tuple] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="recsys-bench-scale-") as tmp:
        work = Path(tmp)
        if args.only in (None, "timeline"):
            r, n = timeline_cases(work, max(args.records // 100, 10), args.records, args.repeats)
            rows += r
            notes += n
        if args.only in (None, "runbook"):
            r, n = runbook_cases(work, 10, args.versions, args.repeats)
            rows += r
            notes += n
    header = ("benchmark", "baseline", "median", "measured", "median", "ratio", "target")
    table = [header, tuple("-" * len(h) for h in header), *[r[:7] for r in rows]]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for note in notes:
        print(note)
    missed = [r[0] for r in rows if not r[7]]
    for name in missed:
        print(f"TARGET MISSED: {name}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
