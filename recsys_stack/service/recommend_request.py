"""The body of ``POST /v1/recommend``: strict decoding (unknown fields are a 400) and normalisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..formats import UnsafeSegment
from ..formats import safe_segment as _safe_segment
from .documents import MAX_K, InvalidDocument, validate_weights
from .problems import Problem, invalid_request

DEFAULT_K = 20
DEFAULT_SEGMENT = "default"
TOP_LEVEL = (
    "surface",
    "segment",
    "k",
    "user",
    "anchors",
    "candidates",
    "constraints",
    "weights",
    "options",
    "experiment",
)
USER_KEYS = ("user_id", "anonymous_id", "session_id")
CANDIDATE_KEYS = ("include_ids", "exclude_ids")
CONSTRAINT_KEYS = ("required_tags", "forbidden_tags", "max_per_tag")
ANCHOR_KEYS = ("item_ids",)
EXPERIMENT_KEYS = ("id", "variant")


def safe_segment(value: Any, what: str) -> str:
    """``value`` when it is a safe path segment (the one rule, :func:`recsys_stack.formats.safe_segment`), else the
    suite's 400 invalid request."""
    try:
        return _safe_segment(value, what)
    except UnsafeSegment:
        raise invalid_request(f"{what} {value!r} is not a valid name: use a plain name such as 'home'", 422) from None


@dataclass
class RecommendRequest:
    surface: str
    segment: str
    k: int
    user: dict[str, str]
    anchors: list[str] = field(default_factory=list)
    include_ids: list[str] | None = None
    exclude_ids: list[str] = field(default_factory=list)
    required_tags: list[str] = field(default_factory=list)
    forbidden_tags: list[str] = field(default_factory=list)
    max_per_tag: int | None = None
    weights: dict[str, float] | None = None
    options: dict[str, Any] | None = None
    experiment: dict[str, str] | None = None
    defaults: list[str] = field(default_factory=list)
    raw_keys: frozenset[str] = frozenset()

    def normalized(self) -> dict[str, Any]:
        """The request as the service understood it, with defaults filled in."""
        body: dict[str, Any] = {"surface": self.surface, "segment": self.segment, "k": self.k, "user": self.user}
        if self.anchors:
            body["anchors"] = {"item_ids": self.anchors}
        candidates: dict[str, Any] = {}
        if self.include_ids is not None:
            candidates["include_ids"] = self.include_ids
        if self.exclude_ids:
            candidates["exclude_ids"] = self.exclude_ids
        if candidates:
            body["candidates"] = candidates
        constraints: dict[str, Any] = {}
        if self.required_tags:
            constraints["required_tags"] = self.required_tags
        if self.forbidden_tags:
            constraints["forbidden_tags"] = self.forbidden_tags
        if self.max_per_tag is not None:
            constraints["max_per_tag"] = self.max_per_tag
        if constraints:
            body["constraints"] = constraints
        if self.weights is not None:
            body["weights"] = self.weights
        if self.options is not None:
            body["options"] = self.options
        if self.experiment is not None:
            body["experiment"] = self.experiment
        return body


def _object(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_request(f"{where} must be a JSON object")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise invalid_request(
            f"unknown field(s) {', '.join(where + '.' + u for u in unknown)}: allowed are {', '.join(keys)}"
        )
    return value


def _ids(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, str) and i for i in value):
        raise invalid_request(f"{where} must be a list of non-empty strings")
    return list(dict.fromkeys(value))


def parse_recommend_request(body: Any) -> RecommendRequest:
    """Decode and check a recommend body; raise Problem 400 (shape) or 422 (meaning)."""
    if not isinstance(body, dict):
        raise invalid_request('the request body must be a JSON object such as {"surface": "home", "user": {...}}')
    unknown = sorted(set(body) - set(TOP_LEVEL))
    if unknown:
        raise invalid_request(f"unknown field(s) {', '.join(unknown)}: allowed are {', '.join(TOP_LEVEL)}")
    defaults: list[str] = []
    # Each part is checked in the order of TOP_LEVEL, so the first bad field is the one reported.
    surface = _surface(body.get("surface"))
    segment = _segment(body.get("segment"))
    k = _k(body.get("k"), defaults)
    user = _user(body.get("user"))
    anchors = _anchors(body.get("anchors"))
    include_ids, exclude_ids = _candidates(body.get("candidates"))
    required_tags, forbidden_tags, max_per_tag = _constraints(body.get("constraints"))
    weights = _weights(body.get("weights"))
    options = body.get("options")
    if options is not None and not isinstance(options, dict):
        raise invalid_request("options must be a JSON object")
    experiment = _experiment(body.get("experiment"))
    return RecommendRequest(
        surface=surface,
        segment=segment,
        k=k,
        user=user,
        anchors=anchors,
        include_ids=include_ids,
        exclude_ids=exclude_ids,
        required_tags=required_tags,
        forbidden_tags=forbidden_tags,
        max_per_tag=max_per_tag,
        weights=weights,
        options=options,
        experiment=experiment,
        defaults=defaults,
        raw_keys=frozenset(body),
    )


def surface_name(value: Any) -> str:
    """A surface named in a request body: a string that is a safe path segment, else the suite's 400 or 422."""
    if not isinstance(value, str):
        raise invalid_request("surface must be a string")
    return safe_segment(value, "surface")


def _surface(surface: Any) -> str:
    if surface is None or surface == "":
        raise invalid_request('surface is required, e.g. "surface": "home"')  # 400, as the suite answers
    try:
        return surface_name(surface)
    except Problem as exc:  # a surface that is not path-safe is a malformed request (400) in the suite
        raise invalid_request(exc.detail) from None


def _segment(segment: Any) -> str:
    if segment is None or segment == "":
        return DEFAULT_SEGMENT
    if not isinstance(segment, str):
        raise invalid_request("segment must be a string")
    return safe_segment(segment, "segment")


def _k(k: Any, defaults: list[str]) -> int:
    if k is None:
        defaults.append(f"k defaulted to {DEFAULT_K}")
        return DEFAULT_K
    if type(k) is not int:
        raise invalid_request("k must be an integer")
    if not 1 <= k <= MAX_K:
        raise invalid_request(f"k is {k}: use 1 to {MAX_K}", 422)
    return k


def _user(user_raw: Any) -> dict[str, str]:
    user: dict[str, str] = {}
    if user_raw is not None:
        for name, value in _object(user_raw, "user", USER_KEYS).items():
            if value is None:
                continue
            if not isinstance(value, str):
                raise invalid_request(f"user.{name} must be a string")
            if value:
                user[name] = value
    if not user:
        raise invalid_request("one of user.user_id, user.anonymous_id or user.session_id is required", 422)
    return user


def _anchors(anchors_raw: Any) -> list[str]:
    if isinstance(anchors_raw, dict):
        return _ids(_object(anchors_raw, "anchors", ANCHOR_KEYS).get("item_ids"), "anchors.item_ids")
    return _ids(anchors_raw, "anchors")


def _candidates(raw: Any) -> tuple[list[str] | None, list[str]]:
    """``include_ids`` (None when not given) and ``exclude_ids``."""
    if raw is None:
        return None, []
    candidates = _object(raw, "candidates", CANDIDATE_KEYS)
    include_ids = None
    if candidates.get("include_ids") is not None:
        include_ids = _ids(candidates["include_ids"], "candidates.include_ids")
    return include_ids, _ids(candidates.get("exclude_ids"), "candidates.exclude_ids")


def _constraints(raw: Any) -> tuple[list[str], list[str], int | None]:
    """``required_tags``, ``forbidden_tags`` and ``max_per_tag`` (None when not given)."""
    if raw is None:
        return [], [], None
    constraints = _object(raw, "constraints", CONSTRAINT_KEYS)
    required_tags = _ids(constraints.get("required_tags"), "constraints.required_tags")
    forbidden_tags = _ids(constraints.get("forbidden_tags"), "constraints.forbidden_tags")
    max_per_tag = constraints.get("max_per_tag")
    if max_per_tag is not None and type(max_per_tag) is not int:
        raise invalid_request("constraints.max_per_tag must be an integer")
    if max_per_tag is not None and max_per_tag < 1:
        raise invalid_request(f"constraints.max_per_tag is {max_per_tag}: use 1 or more", 422)
    return required_tags, forbidden_tags, max_per_tag


def _weights(raw: Any) -> dict[str, float] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid_request("weights must be a JSON object with pop, cooc, emb")
    try:
        return validate_weights(raw)
    except InvalidDocument as exc:
        status = 400 if any(k not in ("pop", "cooc", "emb") for k in raw) else 422
        raise Problem(status, "RECSYS_INVALID_REQUEST", str(exc)) from None


def _experiment(raw: Any) -> dict[str, str] | None:
    if raw is None:
        return None
    experiment = _object(raw, "experiment", EXPERIMENT_KEYS)
    if not all(isinstance(v, str) for v in experiment.values()):
        raise invalid_request("experiment.id and experiment.variant must be strings")
    return experiment
