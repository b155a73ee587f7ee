"""Benchmark of the alerting path: seconds from a fault to an incident that names its cause.

For every fault the alert rules can see (handbook_site.alert_drills.ALERTING_FAULTS), on a fresh
``recsys-stack up --alerting`` (real Prometheus and Alertmanager on loopback, the rules of
observability/alerts.yaml with ``for: 2s`` and 10 s windows, scrape and evaluation every second, group_wait 1 s):

- **scrape + rules**: injection to the first of the fault's alerts *firing* in Prometheus;
- **grouping**: firing to the alert's first incident row in the receiver (Alertmanager's group wait and delivery);
- **triage**: the rest of the way to the diagnosis that is not the runbook (finding the surface, the queue);
- **runbook**: the receiver's own measure of the dry run that gave the right cause;
- **total**: injection to that finished row.

Baseline, measured in the same run against the same broken stack: ``recsys-checks runbook run ID`` of the same
runbook and surface from the command line (whole process, the same parameters), once the receiver is done. The
runbook part must stay within 1.2x of it. Run with ``make bench`` (or ``python bench/bench_alerting.py``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from handbook_site import alert_drills
from recsys_checks.runbooks.spec import load_all
from recsys_stack import alerting

RATIO_TARGET = 1.2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="drills per fault (default 1)")
    args = parser.parse_args(argv)
    try:
        alerting.preflight(None, alert_drills.operator_env())
    except alerting.AlertingError as exc:
        print(f"bench_alerting: skipped: {exc}")
        return 0
    specs = load_all()
    done = []
    with tempfile.TemporaryDirectory(prefix="recsys-bench-alerting-") as tmp:
        for n in range(args.repeats):
            for fault in alert_drills.ALERTING_FAULTS:
                work = Path(tmp) / f"{n}-{fault}"
                cli: dict[str, float] = {}

                def measure_cli(drill, info, work=work, cli=cli):
                    cli["seconds"] = alert_drills.cli_run_seconds(drill.row, info, work / "cli")

                drill = alert_drills.run_alert_drill(fault, work / "stack", "acme", "search", specs=specs,
                                                     while_broken=measure_cli)
                done.append((drill, cli.get("seconds")))

    def sec(value: float | None) -> str:
        return f"{value:6.2f}s" if value is not None else "     -"

    print(f"fault to diagnosis through Prometheus, Alertmanager and the receiver (for: {alerting.LOCAL_FOR}, windows "
          f"{alerting.LOCAL_WINDOW}, interval {alerting.INTERVAL}, group_wait {alerting.GROUP_WAIT}):")
    header = (f"  {'fault':<18} {'runbook':<18} {'cause':<22} {'scrape+rules':>12} {'grouping':>9} {'triage':>8} "
              f"{'runbook':>8} {'total':>8}   {'CLI run':>8} {'ratio':>6}")
    print(header)
    ratios = []
    for drill, cli in done:
        row = drill.row or {}
        ratio = drill.runbook_seconds / cli if drill.runbook_seconds and cli else None
        if ratio is not None and drill.ok:
            ratios.append(ratio)
        flag = "" if drill.ok else f"   UNEXPECTED: {drill.error or (row.get('verdict'), row.get('cause'))}"
        print(f"  {drill.fault:<18} {row.get('runbook') or '-':<18} {row.get('cause') or '-':<22} "
              f"{sec(drill.fired):>12} {sec(drill.grouping):>9} {sec(drill.triage):>8} {sec(drill.runbook_seconds):>8} "
              f"{sec(drill.diagnosed):>8}   {sec(cli):>8} {(f'{ratio:5.2f}x' if ratio else '-'):>6}{flag}")
    ok = [d for d, _ in done if d.ok]
    if ok:
        def med(values):
            values = [v for v in values if v is not None]
            return statistics.median(values) if values else None

        print(f"  {'median of ' + str(len(ok)):<60} {sec(med(d.fired for d in ok)):>12} "
              f"{sec(med(d.grouping for d in ok)):>9} {sec(med(d.triage for d in ok)):>8} "
              f"{sec(med(d.runbook_seconds for d in ok)):>8} {sec(med(d.diagnosed for d in ok)):>8}   "
              f"{sec(med(c for d, c in done if d.ok)):>8} "
              f"{(f'{statistics.median(ratios):5.2f}x' if ratios else '-'):>6}")
    if ratios:
        worst = max(ratios)
        print(f"\nrunbook in the receiver vs the same runbook from the CLI: median {statistics.median(ratios):.2f}x, "
              f"worst {worst:.2f}x (target <= {RATIO_TARGET}x: {'met' if worst <= RATIO_TARGET else 'MISSED'})")
    print(f"{len(ok)} of {len(done)} drills ended in the cause their drill expects")
    return 0 if len(ok) == len(done) else 1


if __name__ == "__main__":
    sys.exit(main())
