"""The settings a ``recsys-eval`` run decides with: where they come from, and ours where none are given.

The suite's decision depends on the run's experiment settings: the control and candidate variants, the primary
metrics and their thresholds, the guardrail thresholds, the SRM test, and two switches, ``guardrail_gate`` and
``srm_gate`` (or ``srm.gate_enabled``), that make a failed guardrail or a detected SRM hold the change. **In the
suite both gates are off unless configured.** The settings are read from three places:

- a report's ``effective_config.eval.Experiment`` (Go field names: ``ControlVariant``, ``PrimaryMetrics``,
  ``Guardrails``, ``SRM``, ``Decision``...): the settings the run really used (:func:`from_effective_config`);
- a recsys-eval config file (YAML, the ``experiment:`` block, unknown keys refused as the suite refuses them, the
  suite's defaults filled in as it fills them in): :func:`from_config_file`;
- :data:`OURS`, when nothing is given: **our** defaults, stricter than the suite's: both gates on, the guardrail
  thresholds of the suite's shipped alerts (p95 250 ms, errors 1 %, empty lists 2 %), SRM on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from recsys_checks.core.errors import BadInput
from recsys_checks.reach.localfiles import read_regular

__all__ = ["OURS", "SUITE", "SuiteSettings", "from_config_file", "from_effective_config", "parse_primary_metric"]

MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SuiteSettings:
    """One run's decision settings. A threshold of 0 turns a guardrail off, as in the suite."""

    source: str
    experiment_id: str | None = None
    control_variant: str | None = None
    candidate_variant: str | None = None
    primary_metrics: tuple[str, ...] = ("ctr",)
    primary_thresholds: Mapping[str, float] = field(default_factory=dict)
    max_latency_p95_ms: float = 0.0
    max_error_rate: float = 0.0
    max_empty_rate: float = 0.0
    srm_enabled: bool = False
    srm_alpha: float = 0.001
    srm_min_sample: int = 100
    srm_expected: Mapping[str, float] | None = None
    srm_slice_keys: tuple[str, ...] = ()
    decision_enabled: bool = False
    decision_output_path: str | None = None
    guardrail_gate: bool = False
    srm_gate: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["primary_metrics"] = list(self.primary_metrics)
        out["primary_thresholds"] = dict(self.primary_thresholds)
        out["srm_expected"] = dict(self.srm_expected) if self.srm_expected else None
        out["srm_slice_keys"] = list(self.srm_slice_keys)
        return out

    @property
    def ours(self) -> bool:
        """Settings built on our defaults (no run configuration given): a decision made with them is ours."""
        return self.source.startswith(OURS.source)

    def gates_text(self) -> str:
        """``guardrail gate on, SRM gate off``."""
        return (f"guardrail gate {'on' if self.guardrail_gate else 'off'}, "
                f"SRM gate {'on' if self.srm_gate else 'off'}")

    def override(self, source: str | None = None, **changes: Any) -> SuiteSettings:
        """A copy with every change that is not ``None``; ``source`` says where the changes came from."""
        changes = {k: v for k, v in changes.items() if v is not None and v != getattr(self, k)}
        if not changes:
            return self
        decisive = set(changes) - {"experiment_id", "srm_slice_keys"}  # which data, not how it is decided
        return replace(self, **changes, source=f"{self.source} and {source}" if source and decisive else self.source)


# The suite's own defaults: what a run without an experiment block decides with.
SUITE = SuiteSettings(source="the suite's defaults (both gates off)")

# Ours: the same rules, both gates on, the suite's shipped alert thresholds as guardrails, SRM tested.
OURS = SuiteSettings(
    source="our defaults (stricter than the suite's, whose gates are off unless configured)", max_latency_p95_ms=250.0,
    max_error_rate=0.01, max_empty_rate=0.02, srm_enabled=True, decision_enabled=True, guardrail_gate=True,
    srm_gate=True)


def parse_primary_metric(text: str) -> tuple[str, float | None]:
    """``NAME`` or ``NAME:THRESHOLD`` (``ctr:0.001``; the suite fails a metric whose delta is below it)."""
    name, _, threshold = text.partition(":")
    name = name.strip().lower()
    if not name:
        raise BadInput(f"{text!r}: give a metric name, e.g. ctr or ctr:0.001")
    if not threshold.strip():
        return name, None
    try:
        value = float(threshold)
    except ValueError:
        raise BadInput(f"{text!r}: the threshold after ':' must be a number, e.g. ctr:0.001") from None
    if not math.isfinite(value):
        raise BadInput(f"{text!r}: the threshold must be finite")
    return name, value


# ------------------------------------------------------------------------------------------------ shared parsing


def _num(value: Any, where: str, default: float = 0.0) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(f"{where} must be a number, got {value!r}")
    return float(value)


def _text(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadInput(f"{where} must be a string, got {value!r}")
    return value


def _flag(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadInput(f"{where} must be true or false, got {value!r}")
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInput(f"{where} must be a list of strings, got {value!r}")
    return tuple(value)


def _weights(value: Any, where: str) -> dict[str, float] | None:
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise BadInput(f"{where} must be a map of variant to number, got {value!r}")
    return {str(k): _num(v, f"{where}.{k}") for k, v in value.items()}


def _settings(source: str, *, experiment_id: Any, control: Any, primary: Any, guardrails: Mapping[str, Any],
              srm: Mapping[str, Any] | None, decision: Mapping[str, Any] | None, keys: Mapping[str, str],
              where: str) -> SuiteSettings:
    """Settings from one experiment block, ``keys`` naming its fields (Go names or YAML names)."""
    def k(name: str) -> str:
        return keys[name]

    primary_metrics = _names(primary, f"{where}.{k('primary')}") or ("ctr",)
    srm_on = srm is not None and _flag(srm.get(k("enabled")), f"{where}.{k('srm')}.{k('enabled')}")
    alpha = _num((srm or {}).get(k("alpha")), f"{where}.{k('srm')}.{k('alpha')}")
    min_sample = int(_num((srm or {}).get(k("min_sample")), f"{where}.{k('srm')}.{k('min_sample')}"))
    decision = decision or {}
    thresholds = decision.get(k("thresholds")) or {}
    if not isinstance(thresholds, dict):
        raise BadInput(f"{where}.{k('decision')}.{k('thresholds')} must be a map of metric to number")
    return SuiteSettings(
        source=source,
        experiment_id=_text(experiment_id, f"{where}.{k('experiment_id')}"),
        control_variant=_text(control, f"{where}.{k('control')}"),
        candidate_variant=_text(decision.get(k("candidate")), f"{where}.{k('decision')}.{k('candidate')}"),
        primary_metrics=primary_metrics,
        primary_thresholds={str(m): _num(v, f"{where}.{k('decision')}.{k('thresholds')}.{m}")
                            for m, v in thresholds.items()},
        max_latency_p95_ms=_num(guardrails.get(k("latency")), f"{where}.{k('guardrails')}.{k('latency')}"),
        max_error_rate=_num(guardrails.get(k("errors")), f"{where}.{k('guardrails')}.{k('errors')}"),
        max_empty_rate=_num(guardrails.get(k("empty")), f"{where}.{k('guardrails')}.{k('empty')}"),
        srm_enabled=srm_on,
        # As the suite normalises them: 0 (unset) or out of (0, 1) is 0.001; 0 (unset) min_sample is 100.
        srm_alpha=alpha if 0 < alpha < 1 else 0.001,
        srm_min_sample=min_sample if min_sample > 0 else (100 if min_sample == 0 else 0),
        srm_expected=_weights((srm or {}).get(k("expected")), f"{where}.{k('srm')}.{k('expected')}"),
        srm_slice_keys=_names((srm or {}).get(k("slice_keys")), f"{where}.{k('srm')}.{k('slice_keys')}"),
        decision_enabled=_flag(decision.get(k("enabled")), f"{where}.{k('decision')}.{k('enabled')}"),
        decision_output_path=_text(decision.get(k("output_path")), f"{where}.{k('decision')}.{k('output_path')}"),
        guardrail_gate=_flag(decision.get(k("guardrail_gate")), f"{where}.{k('decision')}.{k('guardrail_gate')}"),
        srm_gate=_flag(decision.get(k("srm_gate")), f"{where}.{k('decision')}.{k('srm_gate')}")
        or (srm is not None and _flag(srm.get(k("gate_enabled")), f"{where}.{k('srm')}.{k('gate_enabled')}")),
    )


# ------------------------------------------------------------------------------------------------ a report's own


_GO = {"experiment_id": "ExperimentID", "control": "ControlVariant", "primary": "PrimaryMetrics",
       "guardrails": "Guardrails", "latency": "MaxLatencyP95Ms", "errors": "MaxErrorRate", "empty": "MaxEmptyRate",
       "srm": "SRM", "enabled": "Enabled", "alpha": "Alpha", "min_sample": "MinSample", "expected": "Expected",
       "slice_keys": "SliceKeys", "gate_enabled": "GateEnabled", "decision": "Decision",
       "candidate": "CandidateVariant", "thresholds": "PrimaryThresholds", "output_path": "OutputPath",
       "guardrail_gate": "GuardrailGate", "srm_gate": "SRMGate"}


def from_effective_config(config: Any) -> SuiteSettings | None:
    """The settings recorded in a report's ``effective_config`` (``eval.Experiment``); ``None`` when it has none.

    A field of the wrong type raises :class:`BadInput`; the caller reports it as a problem of the report.
    """
    experiment = config.get("eval", {}).get("Experiment") if isinstance(config, dict) and \
        isinstance(config.get("eval"), dict) else None
    if not isinstance(experiment, dict):
        return None
    where = "effective_config.eval.Experiment"
    srm, decision = experiment.get("SRM"), experiment.get("Decision")
    guardrails = experiment.get("Guardrails") or {}
    for name, value in (("SRM", srm), ("Decision", decision), ("Guardrails", guardrails)):
        if value is not None and not isinstance(value, dict):
            raise BadInput(f"{where}.{name} must be an object, got {value!r}")
    return _settings("the run's effective_config", experiment_id=experiment.get("ExperimentID"),
                     control=experiment.get("ControlVariant"), primary=experiment.get("PrimaryMetrics"),
                     guardrails=guardrails, srm=srm, decision=decision, keys=_GO, where=where)


# ------------------------------------------------------------------------------------------------ a config file

_YAML = {
    "experiment_id": "experiment_id", "control": "control_variant", "primary": "primary_metrics",
    "guardrails": "guardrails", "latency": "max_latency_p95_ms", "errors": "max_error_rate",
    "empty": "max_empty_rate", "srm": "srm", "enabled": "enabled", "alpha": "alpha", "min_sample": "min_sample",
    "expected": "expected", "slice_keys": "slice_keys", "gate_enabled": "gate_enabled", "decision": "decision",
    "candidate": "candidate_variant", "thresholds": "primary_thresholds", "output_path": "output_path",
    "guardrail_gate": "guardrail_gate", "srm_gate": "srm_gate"}

# The fields recsys-eval's config knows (its loader refuses any other); None: a value, not looked into.
_KNOWN: dict[str, Any] = {
    "mode": None,
    "offline": {"metrics": None, "slice_keys": None, "gates": None, "time_split": None,
                "bootstrap": {"enabled": None, "iterations": None, "seed": None, "ci_level": None},
                "history_dir": None},
    "experiment": {
        "experiment_id": None, "slice_keys": None, "control_variant": None, "primary_metrics": None,
        "guardrails": {"max_latency_p95_ms": None, "max_error_rate": None, "max_empty_rate": None},
        "cuped": {"enabled": None, "covariate_key": None},
        "power": {"metric": None, "baseline_rate": None, "mde": None, "alpha": None, "power": None,
                  "daily_samples": None},
        "multiple_comparisons": {"method": None, "alpha": None},
        "srm": {"enabled": None, "alpha": None, "min_sample": None, "expected": None, "slice_keys": None,
                "gate_enabled": None},
        "decision": {"enabled": None, "output_path": None, "candidate_variant": None, "primary_thresholds": None,
                     "guardrail_gate": None, "srm_gate": None},
        "aa_check": {"enabled": None, "thresholds": None},
    },
    "ope": {"reward_event": None, "unit": None, "reward_aggregation": None, "top_k": None, "clipping": None,
            "min_propensity": None, "enable_snips": None, "enable_dr": None, "position_discount": None,
            "allow_missing_target_propensity": None},
    "interleaving": {"algorithm": None, "seed": None, "max_results": None},
    "scale": {"mode": None, "stream": {"max_open_requests": None, "temp_dir": None}, "duckdb": {"enabled": None}},
    "artifacts": {"manifest_uri": None, "object_store": {"type": None, "s3": {
        "endpoint": None, "bucket": None, "access_key": None, "secret_key": None, "region": None, "use_ssl": None}}},
}


def _strict(doc: Any, known: Mapping[str, Any], where: str) -> None:
    if doc is None:
        return
    if not isinstance(doc, dict):
        raise BadInput(f"{where} must be a mapping, got {type(doc).__name__}")
    for key, value in doc.items():
        if key not in known:
            raise BadInput(f"{where}: field {key} not found in the suite's config (recsys-eval refuses it too)")
        if isinstance(known[key], dict):
            _strict(value, known[key], f"{where}.{key}")


def from_config_file(path: str | Path) -> SuiteSettings:
    """The settings a recsys-eval ``--config`` YAML file gives, read as the suite reads it (strict fields, its
    defaults). A missing file raises :class:`Unreadable`, a file that is not such a config :class:`BadInput`."""
    import yaml

    p = Path(path)
    raw = read_regular(p, "the recsys-eval config", MAX_CONFIG_BYTES)
    if len(raw) > MAX_CONFIG_BYTES:
        raise BadInput(f"recsys-eval config {p} is larger than 1 MiB: not a config")
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise BadInput(f"recsys-eval config {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if doc is None:
        doc = {}
    _strict(doc, _KNOWN, str(p))
    experiment = doc.get("experiment") or {}
    where = f"{p}: experiment"
    return _settings(f"the recsys-eval config {p}", experiment_id=experiment.get("experiment_id"),
                     control=experiment.get("control_variant"), primary=experiment.get("primary_metrics"),
                     guardrails=experiment.get("guardrails") or {}, srm=experiment.get("srm"),
                     decision=experiment.get("decision"), keys=_YAML, where=where)


def metric_overrides(metrics: Iterable[tuple[str, float | None]] | None, base: SuiteSettings
                     ) -> tuple[tuple[str, ...] | None, dict[str, float] | None]:
    """Primary metrics and thresholds from ``--primary-metric NAME[:THRESHOLD]`` options, over ``base``'s."""
    metrics = list(metrics or [])
    if not metrics:
        return None, None
    thresholds = dict(base.primary_thresholds)
    thresholds.update({name: value for name, value in metrics if value is not None})
    return tuple(name for name, _ in metrics), thresholds
