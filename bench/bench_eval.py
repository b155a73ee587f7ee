"""Benchmark of ``eval quality``: memory stays flat as the logs grow, time grows with them.

Run with ``make bench``. Writes clean evaluation datasets (the local stack's generator: ten items per list, about
11 % of lists clicked) of a baseline size and ten times that (a million exposures by default), then runs
``check_eval_quality`` on each in a fresh process and reports its wall time and peak resident memory. Flat memory means
the ratio of peak memory stays near 1x while the ratio of time is near 10x.

Then the progress display's cost: the same check with stderr on a pseudo-terminal (the bars drawn, as
``recsys-checks eval quality`` draws them there) against stderr on a pipe (no bars), taking turns, in fresh processes.
It runs on the baseline case (a tenth of the large one) unless ``BENCH_EVAL_PROGRESS_FULL=1`` asks for the large one:
six runs of a million exposures take about ten minutes on two cores. ``--only progress`` runs this table alone.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

from recsys_checks.cli import progress_display

_CHILD = """
import json, os, resource, sys, time
from recsys_checks.cli import progress_display
from recsys_checks.judge.evaluation.quality import check_eval_quality
folder = sys.argv[1]
start, cpu = time.perf_counter(), time.process_time()
# The command's own choice: bars when stderr is a terminal, nothing on a pipe (as `recsys-checks eval quality` does).
with progress_display.for_command(("eval", "quality"), machine_output=False):
    res = check_eval_quality(folder + "/exposures.jsonl", folder + "/outcomes.jsonl",
                             folder + "/assignments.jsonl", "exp-home-ranker")
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
assert res.status == "ok", res.summary
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "exposures": res.data["join_integrity"]["exposure_count"], "partitions": res.data["partitions"]}))
"""


PROGRESS_COST_TARGET = 0.02
# The progress case: the baseline size by default (turns of about ten seconds each); the million with this set to 1.
FULL_ENV = "BENCH_EVAL_PROGRESS_FULL"


def measure(folder: Path, terminal: bool = False) -> dict:
    """One ``eval quality`` in a fresh process, stderr on a pipe, or on a pseudo-terminal of 24 x 100 (bars drawn
    and read off as a terminal would); with ``terminal``, ``drawn`` is the bytes the terminal received."""
    env = {k: v for k, v in os.environ.items() if k != progress_display.PROGRESS_ENV}
    argv = [sys.executable, "-c", _CHILD, str(folder)]
    if not terminal:
        proc = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
        return {**json.loads(proc.stdout), "drawn": len(proc.stderr)}
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    drawn = [0]

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed once the process ended
                return
            if not data:
                return
            drawn[0] += len(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=follower, check=True, env=env)
    finally:
        os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    return {**json.loads(proc.stdout), "drawn": drawn[0]}


def progress_turns(folder: Path, repeats: int) -> tuple[list[dict], list[dict]]:
    """``repeats`` runs with stderr on a pipe and as many on a terminal, taking turns (a busy moment hits both)."""
    measure(folder)  # warm-up: the logs into the page cache, the imports compiled
    off, on = [], []
    for _ in range(repeats):
        off.append(measure(folder))
        on.append(measure(folder, terminal=True))
    return off, on


def show_progress_cost(n: int, off: list[dict], on: list[dict], full: bool) -> bool:
    """The progress row: median wall time on a terminal against on a pipe; True when the target is met."""
    wall_off, wall_on = (statistics.median(r["seconds"] for r in rs) for rs in (off, on))
    cpu_off, cpu_on = (statistics.median(r["cpu"] for r in rs) for rs in (off, on))
    cost = wall_on / wall_off - 1
    met = cost < PROGRESS_COST_TARGET and all(r["drawn"] > 0 for r in on) and not any(r["drawn"] for r in off)
    case = f"{n:,} exposures"
    print(f"\n{'benchmark':<46}  {'baseline':<16}  {'median':>8}  {'measured':<20}  {'median':>8}  {'ratio':>6}  target")
    print(f"{'eval quality progress, ' + case:<46}  {'stderr on a pipe':<16}  {wall_off:>7.2f}s  "
          f"{'stderr on a terminal':<20}  {wall_on:>7.2f}s  {wall_on / wall_off:>5.3f}x  "
          f"< {1 + PROGRESS_COST_TARGET:g}x: {'met' if met else 'MISSED'}")
    print(f"  (median of {len(on)} turns each after a warm-up"
          + ("" if full else f"; the baseline case: {FULL_ENV}=1 for the large one") + f"; CPU {cpu_off:.2f}s against {cpu_on:.2f}s, {cpu_on / cpu_off - 1:+.1%}; "
          f"the terminal received {statistics.median(r['drawn'] for r in on) / 1024:.0f} KiB of bars a run, "
          f"the pipe {max(r['drawn'] for r in off)} bytes)")
    if not met:
        print(f"TARGET MISSED: progress bars cost {cost:+.1%} of eval quality's time (target under "
              f"+{PROGRESS_COST_TARGET:.0%}), or were drawn where they must not be")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exposures", type=int, default=1_000_000, help="exposures of the large case (default 1M)")
    parser.add_argument("--repeats", type=int, default=3, help="turns of the progress case, each way (default 3)")
    parser.add_argument("--only", choices=("memory", "progress"), help="run one of the two tables only")
    args = parser.parse_args(argv)
    from recsys_stack.evalgen import generate

    full = os.environ.get(FULL_ENV) == "1"
    sizes = (max(args.exposures // 10, 20), args.exposures)
    progress_size = sizes[-1] if full else sizes[0]
    wanted = [n for n in sizes if args.only != "progress" or n == progress_size]
    rows, turns = [], None
    with tempfile.TemporaryDirectory(prefix="recsys-bench-eval-") as tmp:
        for n in wanted:
            folder = Path(tmp) / str(n)
            started = time.perf_counter()
            paths = generate(folder, "clean", requests=n)
            made = time.perf_counter() - started
            size = sum(p.stat().st_size for p in paths.values())
            if args.only != "progress":
                result = measure(folder)
                assert result["exposures"] == n
                rows.append((n, size, made, result))
            if n == progress_size and args.only != "memory":
                turns = progress_turns(folder, args.repeats)
            for p in paths.values():  # free the disk before the next size
                p.unlink()
    if rows:
        show_memory(rows)
    if turns:  # a miss is printed (TARGET MISSED), not an exit code: the benchmarks after this one still run
        show_progress_cost(progress_size, *turns, full=full)
    return 0


def show_memory(rows: list[tuple]) -> None:
    (_, size0, _, base), (_, size1, _, big) = rows
    print("benchmark                 exposures  input      partitions  wall time  peak memory")
    print("---------                 ---------  -----      ----------  ---------  -----------")
    for n, size, _, r in rows:
        print(f"eval quality, clean data  {n:>9,}  {size / 2**20:>6.0f} MiB  {r['partitions']:>10}  "
              f"{r['seconds']:>7.1f} s  {r['peak_kib'] / 1024:>7.0f} MiB")
    print(f"\nratio (large / baseline): input {size1 / size0:.1f}x, time {big['seconds'] / base['seconds']:.1f}x, "
          f"peak memory {big['peak_kib'] / base['peak_kib']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
