"""Benchmark of ``eval quality``: memory stays flat as the logs grow, time grows with them.

Run with ``make bench``. Writes clean evaluation datasets (the local stack's generator: ten items per list, about
11 % of lists clicked) of a baseline size and ten times that (a million exposures by default), then runs
``check_eval_quality`` on each in a fresh process and reports its wall time and peak resident memory. Flat memory means
the ratio of peak memory stays near 1x while the ratio of time is near 10x.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import contextlib, io, json, os, resource, sys, time
from recsys_checks.core import progress
from recsys_checks.cli.progress_display import TerminalBars
from recsys_checks.judge.evaluation.quality import check_eval_quality
folder, bars = sys.argv[1], sys.argv[2] == "bars"

class Terminal(io.TextIOWrapper):  # the bars' output goes nowhere, drawn as on a terminal
    def isatty(self):
        return True

display = TerminalBars(Terminal(open(os.devnull, "wb"))) if bars else None
start = time.perf_counter()
with progress.show(display):
    res = check_eval_quality(folder + "/exposures.jsonl", folder + "/outcomes.jsonl",
                             folder + "/assignments.jsonl", "exp-home-ranker")
seconds = time.perf_counter() - start
assert res.status == "ok", res.summary
print(json.dumps({"seconds": seconds, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "exposures": res.data["join_integrity"]["exposure_count"], "partitions": res.data["partitions"]}))
"""


PROGRESS_COST_TARGET = 0.02


def measure(folder: Path, bars: bool = False) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(folder), "bars" if bars else "plain"],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exposures", type=int, default=1_000_000, help="exposures of the large case (default 1M)")
    args = parser.parse_args(argv)
    from recsys_stack.evalgen import generate

    sizes = (max(args.exposures // 10, 20), args.exposures)
    rows = []
    with tempfile.TemporaryDirectory(prefix="recsys-bench-eval-") as tmp:
        for n in sizes:
            folder = Path(tmp) / str(n)
            started = time.perf_counter()
            paths = generate(folder, "clean", requests=n)
            made = time.perf_counter() - started
            size = sum(p.stat().st_size for p in paths.values())
            result = measure(folder)
            assert result["exposures"] == n
            rows.append((n, size, made, result))
            if n == sizes[-1]:  # the progress display's cost, against the same run without it, in this run
                shown = measure(folder, bars=True)
            for p in paths.values():  # free the disk before the next size
                p.unlink()
    (n0, size0, _, base), (n1, size1, _, big) = rows
    print("benchmark                 exposures  input      partitions  wall time  peak memory")
    print("---------                 ---------  -----      ----------  ---------  -----------")
    for n, size, _, r in rows:
        print(f"eval quality, clean data  {n:>9,}  {size / 2**20:>6.0f} MiB  {r['partitions']:>10}  "
              f"{r['seconds']:>7.1f} s  {r['peak_kib'] / 1024:>7.0f} MiB")
    print(f"\nratio (large / baseline): input {size1 / size0:.1f}x, time {big['seconds'] / base['seconds']:.1f}x, "
          f"peak memory {big['peak_kib'] / base['peak_kib']:.2f}x")
    cost = shown["seconds"] / big["seconds"] - 1
    print(f"progress bars on a terminal, {n1:,} exposures: {shown['seconds']:.1f} s against {big['seconds']:.1f} s "
          f"without ({cost:+.1%}; target under +{PROGRESS_COST_TARGET:.0%}: "
          f"{'met' if cost < PROGRESS_COST_TARGET else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
