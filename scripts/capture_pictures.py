"""Capture the example pictures of the runbook pages from a drill: run against a local stack, one fault per
picture, and keep each picture's figure data in ``docs/pictures/<kind>.json`` (the docs build draws it with the
current code, so a page's example cannot drift from what a runbook draws).

Usage: ``eval "$(recsys-stack env --root DIR)"`` then ``python scripts/capture_pictures.py --root DIR``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from recsys_checks import RunbookRun
from recsys_checks.runbooks import pictures
from recsys_checks.runbooks.steps import evaluation, readiness, serving

OUT = Path(__file__).resolve().parents[1] / "docs" / "pictures"
# kind -> (fault to inject, runbook, steps to run in order, extra parameters)
DRILLS = {
    "versions": ("stale-manifest", "stale-manifest", [("manifest-status", serving.manifest_status)], {}),
    "freshness": ("stale-manifest", "production-readiness",
                  [("publishing", readiness.publishing_freshness)], {}),
    "rules": ("rules-hide-most", "rollback-config-rules", [("probe", serving.probe_recommendations),
                                                          ("config-rules", serving.config_and_rules)], {}),
    "evaluation": ("eval-srm", "eval-report-suspect", [("quality", evaluation.data_quality)], {
        "exposures": "{root}/eval/demo/home/exposures.jsonl", "outcomes": "{root}/eval/demo/home/outcomes.jsonl",
        "assignments": "{root}/eval/demo/home/assignments.jsonl", "experiment_id": "exp-home-ranker"}),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, help="the local stack's root (recsys-stack up --root)")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    for kind, (fault, runbook, steps, params) in DRILLS.items():
        subprocess.run(["recsys-stack", "inject", fault, "--root", args.root], check=True, capture_output=True)
        given = {k: v.replace("{root}", args.root) for k, v in params.items()}
        with tempfile.TemporaryDirectory() as tmp:
            run = RunbookRun(runbook, record_path=Path(tmp) / "r.json", **given)
            figures: list[dict] = []
            pictures.show = figures.append  # what the notebook would display, kept instead
            for step_id, function in steps:
                run.step(step_id, function)
        mine = next((f for f in figures if f["figure"] == kind), None)
        if mine is None:
            print(f"no {kind} picture from the {fault} drill of {runbook}", file=sys.stderr)
            return 1
        (OUT / f"{kind}.json").write_text(json.dumps(mine, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {OUT / kind}.json from a {fault} drill of {runbook}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
