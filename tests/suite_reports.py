"""Reports and decision files in the shapes recsys-eval writes them (RECSYS-INTERFACES §3.1), for the triage tests.

``effective_config`` is the run's whole configuration as Go field names; ``experiment.srm.expected`` holds weights;
``<report>.decision.json`` is written only when the run's decision is enabled. Interleaving reports have no
``data_quality``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

ACCESS_KEY = "AKIAEVALCANARY7Q2Z"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEVALCANARY"
DSN = "postgres://eval:Pw-canary-7731@db.internal:5432/events?sslmode=require"


def experiment_config(**changes: Any) -> dict[str, Any]:
    """``effective_config`` of an experiment run: the suite's defaults, then ``changes`` to ``eval.Experiment``
    (``SRM``/``Decision`` given as dicts are merged into the defaults; ``None`` removes the block)."""
    experiment: dict[str, Any] = {
        "ExperimentID": "exp-1", "SliceKeys": None, "ControlVariant": "",
        "Guardrails": {"MaxLatencyP95Ms": 0, "MaxErrorRate": 0, "MaxEmptyRate": 0},
        "PrimaryMetrics": None, "CUPED": None, "Power": None, "MultipleComparisons": None,
        "SRM": {"Enabled": True, "Alpha": 0.001, "MinSample": 100, "Expected": None, "SliceKeys": None,
                "GateEnabled": False},
        "Decision": {"Enabled": True, "OutputPath": "", "CandidateVariant": "", "PrimaryThresholds": {},
                     "GuardrailGate": False, "SRMGate": False},
        "AACheck": None,
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(experiment.get(key), dict):
            experiment[key] = {**experiment[key], **value}
        else:
            experiment[key] = value
    return {
        "mode": "experiment",
        "dataset": {"Exposures": {"Type": "postgres", "Path": "", "DSN": DSN, "Query": "select * from exposures"},
                    "Outcomes": {"Type": "jsonl", "Path": "/data/outcomes.jsonl", "DSN": "", "Query": ""},
                    "Assignments": {"Type": "jsonl", "Path": "/data/assignments.jsonl", "DSN": "", "Query": ""},
                    "Interleaving": None},
        "eval": {"Mode": "experiment", "Offline": {}, "Experiment": experiment, "OPE": {}, "Interleaving": {},
                 "Scale": {"Mode": "memory"},
                 "Artifacts": {"ManifestURI": "s3://recsys-artifacts/registry/current/demo/home/manifest.json",
                               "ObjectStore": {"Type": "s3", "S3": {"Endpoint": "minio:9000", "Bucket": "recsys",
                                                                   "AccessKey": ACCESS_KEY,
                                                                   "SecretKey": SECRET_KEY, "Region": "us-east-1",
                                                                   "UseSSL": False}}}},
    }


def _top(mode: str, run: str, config: dict[str, Any] | None) -> dict[str, Any]:
    return {"run_id": f"{run}-20260102T010203Z", "mode": mode, "created_at": "2026-01-02T01:02:03Z",
            "version": "0.1.0", "binary_version": "v0.4.0", "effective_config": config or {"mode": mode},
            "input_dataset_fingerprint": "9f" * 32, "summary": {"cases_evaluated": 2200}}


def data_quality(exposures: int = 2200, outcomes: int = 300, assignments: int | None = 2200) -> dict[str, Any]:
    out: dict[str, Any] = {
        "exposure_completeness": {"total": exposures, "missing": 0, "missing_rate": 0},
        "outcome_completeness": {"total": outcomes, "missing": 0, "missing_rate": 0},
        "join_integrity": {"exposure_count": exposures, "outcome_count": outcomes,
                           "assignments_count": assignments or 0, "exposure_join_rate": 0.12,
                           "outcome_join_rate": 1, "assignment_join_rate": 1 if assignments else 0},
    }
    if assignments is not None:
        out["assignment_completeness"] = {"total": assignments, "missing": 0, "missing_rate": 0}
    return out


def variant(name: str, exposures: int, clicks: int, conversions: int, revenue: float = 0.0) -> dict[str, Any]:
    return {"variant": name, "exposures": exposures, "clicks": clicks, "conversions": conversions,
            "ctr": clicks / exposures, "conversion_rate": conversions / exposures, "revenue": revenue,
            "revenue_per_request": revenue / exposures}


def guardrail(name: str, p95: float = 110.0, errors: float = 0.0, empty: float = 0.0, *, latency_ok: bool = True,
              errors_ok: bool = True, empty_ok: bool = True) -> dict[str, Any]:
    return {"variant": name, "latency_p95_ms": p95, "error_rate": errors, "empty_rate": empty,
            "pass_latency": latency_ok, "pass_error_rate": errors_ok, "pass_empty_rate": empty_ok}


def srm(observed: dict[str, int], p_value: float, detected: bool, expected: dict[str, float] | None = None
        ) -> dict[str, Any]:
    return {"alpha": 0.001, "min_sample": 100,
            "global": {"p_value": p_value, "observed": observed,
                       "expected": expected or {k: 1 for k in observed}, "detected": detected,
                       "sample_size": sum(observed.values())}}


def experiment_report(variants: list[dict[str, Any]], guardrails: list[dict[str, Any]],
                      srm_section: dict[str, Any] | None, config: dict[str, Any] | None) -> dict[str, Any]:
    doc = _top("experiment", "experiment", config)
    doc["experiment"] = {"experiment_id": "exp-1", "variants": variants,
                         "guardrails": {"per_variant": guardrails}}
    if srm_section is not None:
        doc["experiment"]["srm"] = srm_section
    doc["data_quality"] = data_quality(sum(v["exposures"] for v in variants))
    return doc


def decision_file(decision: str, reason: str, control: str, candidate: str, primary: list[tuple[str, float, float]],
                  guardrails: list[tuple[str, float, float, bool]] = (), srm_detected: bool | None = None,
                  ) -> dict[str, Any]:
    """The suite's decision artifact: primary rows (metric, delta, threshold), guardrail rows."""
    doc: dict[str, Any] = {
        "decision": decision, "reason": reason, "control_variant": control, "candidate_variant": candidate,
        "primary_metrics": [{"metric": m, "delta": d, "relative_delta": 0.0, "threshold": t} for m, d, t in primary],
        "guardrails": [{"metric": m, "value": v, "threshold": t, "passed": p} for m, v, t, p in guardrails],
        "thresholds": {m: t for m, _, t in primary if t},
        "dataset_window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
        "versions": {"binary_version": "v0.4.0", "git_commit": "deadbeef"},
    }
    if srm_detected is not None:
        doc["srm"] = {"detected": srm_detected, "p_value": 1e-9 if srm_detected else 0.5, "alpha": 0.001}
    return doc


def offline_report(gates: list[dict[str, Any]] | None = None, metrics: list[dict[str, Any]] | None = None
                   ) -> dict[str, Any]:
    doc = _top("offline", "offline", None)
    doc["offline"] = {"metrics": metrics or [{"name": "ndcg@10", "value": 0.31}, {"name": "recall@20", "value": 0.4}]}
    doc["data_quality"] = data_quality(assignments=None)
    doc["data_quality"]["join_integrity"]["assignments_count"] = 0
    if gates is not None:
        doc["gates"] = gates
        failed = [g for g in gates if not g["passed"]]
        doc["summary"]["executive"] = {"decision": "fail" if failed else "pass", "gate_failures": failed}
    else:
        doc["summary"]["executive"] = {"decision": "not_configured"}
    return doc


def ope_report(warnings: list[str] | None = None) -> dict[str, Any]:
    doc = _top("ope", "ope", None)
    doc["ope"] = {"unit": "request", "reward_aggregation": "sum",
                  "estimators": [{"name": "ips", "value": 0.118, "variance": 0.002},
                                 {"name": "snips", "value": 0.121, "variance": 0.001}],
                  "weight_stats": {"count": 2200, "mean": 1.01, "p95": 1.9, "max": 4.2,
                                   "effective_sample_size": 1800, "clipped_fraction": 0},
                  "diagnostics": {"missing_target_propensity": 0, "near_zero_propensity": 0, "total_items": 2200}}
    doc["data_quality"] = data_quality(assignments=None)
    if warnings:
        doc["warnings"] = warnings
    return doc


def interleaving_report(wins_a: int = 180, wins_b: int = 240, ties: int = 80, requests: int = 500) -> dict[str, Any]:
    doc = _top("interleaving", "interleave", None)
    decided = wins_a + wins_b
    doc["interleaving"] = {"algorithm": "team_draft", "ranker_a": "A", "ranker_b": "B", "requests": requests,
                           "wins_a": wins_a, "wins_b": wins_b, "ties": ties,
                           "win_rate_a": wins_a / decided if decided else 0,
                           "win_rate_b": wins_b / decided if decided else 0, "p_value": 0.0034}
    return doc


def aa_report(uniform: bool = True) -> dict[str, Any]:
    doc = _top("aa-check", "aa-check", experiment_config(AACheck={"Enabled": True,
                                                                  "Thresholds": [0.05, 0.01, 0.001]}))
    doc["aa_check"] = {"metrics": [{"metric": "ctr", "by_segment": False, "counts": {"0.05": 0 if uniform else 9,
                                                                                     "0.01": 0, "0.001": 0}}],
                       "thresholds": [0.05, 0.01, 0.001], "total_tests": 20, "uniformish": uniform}
    doc["data_quality"] = data_quality()
    if not uniform:
        doc["warnings"] = ["aa_check_false_positives"]
    return doc


def write(folder: Path, doc: dict[str, Any], decision: dict[str, Any] | None = None,
          name: str = "report.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(doc, indent=2))
    if decision is not None:
        path.with_name(name + ".decision.json").write_text(json.dumps(decision, indent=2))
    return path


def clone(doc: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(doc)
