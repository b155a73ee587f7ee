"""The tenant's config and rules documents: validation and the parsed form the ranking uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .adminstore import parse_timestamp

DEFAULT_WEIGHTS = {"pop": 1.0, "cooc": 0.5, "emb": 0.0}
MAX_K = 200
CONFIG_KEYS = ("weights", "flags", "limits", "algo")
WEIGHT_KEYS = ("pop", "cooc", "emb")
LIMIT_KEYS = ("max_k",)
RULE_ACTIONS = ("block", "pin", "boost")
RULE_TARGETS = ("item", "tag", "brand", "category")
RULE_KEYS = (
    "action",
    "target_type",
    "item_ids",
    "target_key",
    "surface",
    "segment",
    "priority",
    "boost_value",
    "max_pins",
    "enabled",
    "valid_from",
    "valid_until",
    # Descriptive fields operators put on rules; they do not change behaviour.
    "rule_id",
    "id",
    "name",
    "description",
)


class InvalidDocument(ValueError):
    """A config or rules document that the service refuses; the message names the field and the fix."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def validate_weights(weights: Any, where: str = "weights") -> dict[str, float]:
    if not isinstance(weights, dict):
        raise InvalidDocument(f"{where} must be an object with pop, cooc and emb")
    unknown = sorted(set(weights) - set(WEIGHT_KEYS))
    if unknown:
        raise InvalidDocument(f"{where} has unknown key(s) {', '.join(unknown)}: use pop, cooc, emb")
    for name, value in weights.items():
        if not _is_number(value) or value < 0 or value != value:
            raise InvalidDocument(f"{where}.{name} is {value!r}: weights must be numbers >= 0")
    return {name: float(value) for name, value in weights.items()}


def validate_config(doc: Any) -> None:
    """Raise InvalidDocument unless ``doc`` is a config document: weights ≥ 0, flags, limits, algo."""
    if not isinstance(doc, dict):
        raise InvalidDocument("config must be a JSON object with weights, flags, limits and algo")
    # Like the suite, other top-level keys are stored as given and ignored by the engine: a PUT of
    # {"config": {...}} is a valid (and useless) config whose weights nothing reads.
    if "weights" in doc:
        validate_weights(doc["weights"], "config.weights")
    if "flags" in doc and not isinstance(doc["flags"], dict):
        raise InvalidDocument("config.flags must be an object")
    if "limits" in doc:
        limits = doc["limits"]
        if not isinstance(limits, dict):
            raise InvalidDocument("config.limits must be an object")
        unknown = sorted(set(limits) - set(LIMIT_KEYS))
        if unknown:
            raise InvalidDocument(f"config.limits has unknown key(s) {', '.join(unknown)}: allowed is max_k")
        max_k = limits.get("max_k")
        if max_k is not None and (type(max_k) is not int or not 1 <= max_k <= MAX_K):
            raise InvalidDocument(f"config.limits.max_k is {max_k!r}: use an integer from 1 to {MAX_K}")
    if "algo" in doc and not isinstance(doc["algo"], str):
        raise InvalidDocument("config.algo must be a string")


def config_weights(config: Any) -> dict[str, float]:
    weights = dict(DEFAULT_WEIGHTS)
    if isinstance(config, dict) and isinstance(config.get("weights"), dict):
        weights.update({k: float(v) for k, v in config["weights"].items()})
    return weights


def config_max_k(config: Any) -> int:
    if isinstance(config, dict) and isinstance(config.get("limits"), dict):
        value = config["limits"].get("max_k")
        if type(value) is int:
            return value
    return MAX_K


@dataclass(frozen=True)
class Rule:
    index: int
    action: str
    target_type: str
    item_ids: tuple[str, ...]
    target_key: str | None
    surface: str | None
    segment: str | None
    priority: int
    boost_value: float
    max_pins: int | None
    enabled: bool
    valid_from: datetime | None
    valid_until: datetime | None

    def active(self, surface: str, segment: str, now: datetime) -> bool:
        if not self.enabled:
            return False
        if self.surface is not None and self.surface != surface:
            return False
        if self.segment is not None and self.segment != segment:
            return False
        if self.valid_from is not None and now < self.valid_from:
            return False
        return self.valid_until is None or now < self.valid_until


def validate_rules_document(doc: Any) -> None:
    """Raise InvalidDocument unless ``doc`` is a rules document the suite stores: a list of valid rules, or an object
    (stored as given; the engine finds no rule list in it, as the suite's does not)."""
    if isinstance(doc, dict):
        return
    parse_rules(doc)


def served_rules(doc: Any) -> list[Rule]:
    """The rules the engine applies from a stored rules document (an object holds none)."""
    return [] if doc is None or isinstance(doc, dict) else parse_rules(doc)


def parse_rules(doc: Any) -> list[Rule]:
    """Validate a rules document (a list of rule objects) and return the parsed rules; raise InvalidDocument."""
    if not isinstance(doc, list):
        raise InvalidDocument("rules must be a JSON list of rule objects")
    return [_parse_rule(i, rule) for i, rule in enumerate(doc)]


def _parse_rule(index: int, rule: Any) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(rule, dict):
        raise InvalidDocument(f"{where} must be an object")
    unknown = sorted(set(rule) - set(RULE_KEYS))
    if unknown:
        raise InvalidDocument(f"{where} has unknown field(s) {', '.join(unknown)}")
    action = rule.get("action")
    if action not in RULE_ACTIONS:
        raise InvalidDocument(f"{where}.action is {action!r}: use one of {', '.join(RULE_ACTIONS)}")
    target_type = rule.get("target_type", "item")
    if target_type not in RULE_TARGETS:
        raise InvalidDocument(f"{where}.target_type is {target_type!r}: use one of {', '.join(RULE_TARGETS)}")
    item_ids = rule.get("item_ids")
    target_key = rule.get("target_key")
    if item_ids is not None and (not isinstance(item_ids, list) or not all(isinstance(i, str) and i for i in item_ids)):
        raise InvalidDocument(f"{where}.item_ids must be a list of non-empty item ids")
    if target_key is not None and (not isinstance(target_key, str) or not target_key):
        raise InvalidDocument(f"{where}.target_key must be a non-empty string")
    if target_type == "item":
        if not item_ids and not target_key:
            raise InvalidDocument(f"{where} targets items but has neither item_ids nor target_key")
    elif not target_key:
        raise InvalidDocument(f"{where} targets a {target_type} but has no target_key naming it")
    for name in ("surface", "segment"):
        value = rule.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidDocument(f"{where}.{name} must be a non-empty string")
    priority = rule.get("priority", 0)
    if type(priority) is not int:
        raise InvalidDocument(f"{where}.priority is {priority!r}: use an integer (higher applies first)")
    boost_value = rule.get("boost_value", 0)
    if not _is_number(boost_value) or boost_value != boost_value:
        raise InvalidDocument(f"{where}.boost_value is {boost_value!r}: use a number")
    if action == "boost" and "boost_value" not in rule:
        raise InvalidDocument(f"{where} is a boost without boost_value")
    max_pins = rule.get("max_pins")
    if max_pins is not None and (type(max_pins) is not int or max_pins < 1):
        raise InvalidDocument(f"{where}.max_pins is {max_pins!r}: use an integer >= 1")
    enabled = rule.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidDocument(f"{where}.enabled must be true or false")
    bounds: dict[str, datetime | None] = {}
    for name in ("valid_from", "valid_until"):
        value = rule.get(name)
        if value is None:
            bounds[name] = None
            continue
        try:
            bounds[name] = parse_timestamp(value) if isinstance(value, str) else None
        except ValueError:
            bounds[name] = None
        if bounds[name] is None:
            raise InvalidDocument(f"{where}.{name} is {value!r}: use RFC 3339 such as 2026-01-02T00:00:00Z")
    if bounds["valid_from"] and bounds["valid_until"] and bounds["valid_from"] >= bounds["valid_until"]:
        raise InvalidDocument(f"{where}.valid_from must be before valid_until")
    return Rule(
        index=index,
        action=action,
        target_type=target_type,
        item_ids=tuple(item_ids or ([target_key] if target_type == "item" and target_key else [])),
        target_key=target_key,
        surface=rule.get("surface"),
        segment=rule.get("segment"),
        priority=priority,
        boost_value=float(boost_value),
        max_pins=max_pins,
        enabled=enabled,
        valid_from=bounds["valid_from"],
        valid_until=bounds["valid_until"],
    )
