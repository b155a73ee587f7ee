""""Follow runbook X" hand-offs: for every cause a probe can report, following them from any serving runbook never
comes back to where it started, and every hand-off says why (no network: results built by hand).

A hand-off is a diagnosis that names another runbook and has no lever of its own: the reader must go there."""

from __future__ import annotations

from pathlib import Path

import pytest
import specskit

from recsys_checks.core.results import CheckResult
from recsys_checks.judge.serving.probe import UNREAD_CAUSES
from recsys_checks.reach.settings import Target
from recsys_checks.runbooks.run import RunbookRun

SERVING = ("empty-recs", "rollback-config-rules", "rollback-manifest", "service-not-ready", "stale-manifest")
PROBE_CAUSES = ("empty_artifact", "missing_blob", "no_popularity", "artifact_invalid", "artifact_incompatible",
                "manifest_missing", "rules_block_all", "config_weights", "cache_stale", "request_filters",
                "bad_request", "unknown_tenant", "unknown_surface", "store_unreachable", "dependency_failed", "service_error",
                "short_answer", *UNREAD_CAUSES)
PROBE_RUNBOOK = {"store_unreachable": "service-not-ready", "dependency_failed": "service-not-ready",
                 "unreachable": "service-not-ready", "rules_block_all": "rollback-config-rules",
                 "config_weights": "rollback-config-rules", "cache_stale": "stale-manifest"}


def _handoff(runbook_id: str, cause: str, tmp_path: Path) -> tuple[str | None, CheckResult]:
    """Where the runbook's diagnosis sends the reader when the probe reports ``cause``."""
    target = Target.from_env({"RECSYS_BASE_URL": "http://127.0.0.1:9",
                              "RECSYS_ARTIFACT_MANIFEST_TEMPLATE": f"file://{tmp_path}/current/{{tenant}}/{{surface}}/manifest.json"})
    spec = specskit.spec(runbook_id)
    run = RunbookRun(runbook_id, spec=spec, target=target, record_path=tmp_path / "r.json")
    probe = CheckResult("recs.probe", "fail", f"probe: {cause}", {"cause": cause, "runbook": PROBE_RUNBOOK.get(cause)})
    for step in spec.steps:
        if step.function.endswith(("probe_recommendations",)):
            run.results[step.id] = probe
        elif step.function.endswith("service_health"):
            run.results[step.id] = CheckResult("health", "ok", "live and ready", {"live": {"status_code": 200},
                                                                                    "ready": {"status_code": 200}})
        elif step.function.endswith("manifest_status"):
            run.results[step.id] = CheckResult("manifest.status", "ok", "fresh", {"condition": "healthy"})
        elif step.function.endswith("served_vs_published_check"):
            run.results[step.id] = CheckResult("recs.served_vs_published", "fail", "x", {"verdict": "empty"})
    diagnose = next(s for s in spec.steps if s.role == "diagnose")
    result = diagnose.resolve()(run)
    return result.data.get("runbook"), result


@pytest.mark.parametrize("cause", PROBE_CAUSES)
def test_hand_offs_form_no_loop_and_say_why(cause, tmp_path):
    edges: dict[str, str] = {}
    for runbook_id in SERVING:
        to, result = _handoff(runbook_id, cause, tmp_path / runbook_id)
        # A hand-off is "follow X" from a runbook that cannot fix it here; with a lever, X is only further reading.
        if to is not None and to != runbook_id and not result.data.get("lever"):
            edges[runbook_id] = to
            assert result.summary and result.data.get("no_lever"), (runbook_id, cause)
    for start in edges:
        seen, at = [start], start
        while at in edges:
            at = edges[at]
            assert at not in seen, f"{cause}: hand-offs loop {' -> '.join([*seen, at])}"
            seen.append(at)


def test_every_hand_off_names_a_runbook_that_exists(tmp_path):
    ids = {s.id for s in specskit.all_specs()}
    for runbook_id in SERVING:
        for cause in PROBE_CAUSES:
            to, _ = _handoff(runbook_id, cause, tmp_path / f"{runbook_id}-{cause}")
            assert to is None or to in ids, (runbook_id, cause, to)
