"""Runbook specs: ``runbooks/ID.yaml`` loaded, validated and turned into the runbook's notebook.

A spec is the single source of a runbook: its page, its notebook's steps and its drill all come from it. It is
validated when loaded; an unknown key, a step whose function does not exist or a parameter without a type is a
:class:`~recsys_checks.core.errors.BadInput` naming the file and the field.
"""

from __future__ import annotations

import importlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from recsys_checks.core.errors import BadInput, ChecksError
from recsys_checks.reach.settings import parse_duration, safe_segment
from recsys_checks.runbooks.decision import Cause, DecisionTable, check_keys, parse_table
from recsys_checks.runbooks.verdict import VERDICTS

LAYERS = ("serving", "pipelines", "evaluation")
ROLES = ("check", "info", "diagnose", "act", "verify")
TYPES = ("str", "int", "float", "bool", "segment", "duration")
STORES = ("file", "s3")
# A parameter ends up in the executed notebook (papermill writes it there): no credential may ever be one.
SECRET_NAME = re.compile(r"(key|secret|token|password|passwd|credential|auth)", re.IGNORECASE)
_ID = re.compile(r"^[a-z][a-z0-9-]*$")
MAX_ID = 100  # characters of a runbook id: a longer one is no runbook's (and no file name's)

# Every runbook takes these; a spec may override their help or default, not their type.
COMMON_PARAMETERS: dict[str, dict[str, Any]] = {
    "tenant": {"type": "segment", "default": "demo", "help": "tenant id (X-Org-Id)"},
    "surface": {"type": "segment", "default": "home", "help": "surface, e.g. home"},
    "execute": {"type": "bool", "default": False,
                "help": "apply the fix; without it every mutating step only shows its plan"},
    "reason": {"type": "str", "default": "", "help": "why, for the audit records of any change"},
    "plan_id": {"type": "str", "default": "",
                "help": "apply the fix only if its plan still has this id (printed by the dry run)"},
    "confirm": {"type": "str", "default": "",
                "help": "on a protected deployment, its name (RECSYS_DEPLOYMENT), to let execute change it"},
}

_TOP_KEYS = {"id", "title", "layer", "summary", "symptoms", "alerts", "parameters", "steps", "decision",
             "verification", "read_next", "drills", "manual", "healthy"}
_REQUIRED_TOP = {"id", "title", "layer", "summary", "symptoms", "steps", "decision", "verification", "drills",
                 "healthy"}
_HEALTHY_KEYS = {"invariant", "step"}
_PARAM_KEYS = {"type", "default", "help", "choices", "min", "max"}
_STEP_KEYS = {"id", "title", "why", "function", "command", "role", "mutates"}
_READ_NEXT_KEYS = {"title", "href"}
_DRILL_KEYS = {"fault", "stores", "params", "dry_run", "execute", "rerun"}
_EXPECT_KEYS = {"verdict", "cause"}
_MANUAL_KEYS = {"item", "look_at"}


@dataclass(frozen=True)
class Parameter:
    """A typed runbook parameter with its default."""

    name: str
    type: str
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None  # int and float parameters: the range, both ends included
    maximum: float | None = None

    @property
    def described_type(self) -> str:
        """The type with its range, as the pages and ``runbook show`` print it: ``float, 0.01 to 1``."""
        if self.minimum is not None and self.maximum is not None:
            return f"{self.type}, {self.minimum:g} to {self.maximum:g}"
        if self.minimum is not None:
            return f"{self.type}, at least {self.minimum:g}"
        if self.maximum is not None:
            return f"{self.type}, at most {self.maximum:g}"
        return self.type

    def parse(self, value: Any) -> Any:
        """``value`` (a string from the command line, or already typed) converted to this type; else BadInput."""
        where = f"parameter {self.name}"
        try:
            out = _convert(self.type, value, self.name)
        except (ValueError, ChecksError) as exc:
            raise BadInput(f"{where}: {exc}") from None
        if self.choices is not None and out not in self.choices:
            raise BadInput(f"{where}: {out!r} is not one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and out < self.minimum or self.maximum is not None and out > self.maximum:
            raise BadInput(f"{where}: {out!r} is out of its range ({self.described_type})")
        return out


def _shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for a message that must stay one line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(str(value)):,} characters)"


def _number_text(value: Any, what: str) -> Any:
    """A number given as text must be ASCII: ``float`` and ``int`` also read other scripts' digits ('٠.٩')."""
    if isinstance(value, str) and not value.strip().isascii():
        raise ValueError(f"{_shown(value)} is not {what} written with the digits 0-9")
    return value


def _convert(kind: str, value: Any, name: str) -> Any:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off", ""):
            return False
        raise ValueError(f"{value!r} is not true or false")
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"{_shown(value)} is not a whole number")
        try:
            return int(_number_text(value, "a whole number"))
        except ValueError:
            raise ValueError(f"{_shown(value)} is not a whole number") from None
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        text = _number_text(value, "a number")
        try:
            number = float(text)
        except (TypeError, ValueError):
            raise ValueError(f"{_shown(value)} is not a number, e.g. 0.95") from None
        if not math.isfinite(number):
            raise ValueError(f"{_shown(value)} is not a finite number")
        return number
    if kind == "segment":
        return safe_segment(value if isinstance(value, str) else str(value), name)
    if kind == "duration":
        parse_duration(str(value))
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 on the command line arrive as lone surrogates
        raise ValueError("its value is not UTF-8 text (the command line passed bytes that are not UTF-8)") from None
    return value


@dataclass(frozen=True)
class Step:
    """One step: what it checks or changes, the function its notebook cell calls, the equivalent CLI command."""

    id: str
    title: str
    why: str
    function: str
    command: str
    role: str
    mutates: bool = False

    def resolve(self) -> Any:
        return resolve_function(self.function)


@dataclass(frozen=True)
class Expectation:
    verdict: str
    cause: str | None = None


@dataclass(frozen=True)
class Drill:
    """A fault of the local stack this runbook answers, and what CI must see before and after ``execute``."""

    fault: str
    stores: tuple[str, ...]
    params: dict[str, Any]
    dry_run: Expectation
    execute: Expectation
    rerun: Expectation | None = None


@dataclass(frozen=True)
class RunbookSpec:
    id: str
    title: str
    layer: str
    summary: str
    symptoms: tuple[str, ...]
    alerts: tuple[str, ...]
    parameters: dict[str, Parameter]
    steps: tuple[Step, ...]
    decision: DecisionTable
    verification: str
    read_next: tuple[dict[str, str], ...]
    drills: tuple[Drill, ...]
    manual: tuple[dict[str, str], ...] = ()
    # What healthy means for the symptom, each invariant with the step that checks it directly.
    healthy: tuple[dict[str, str], ...] = ()
    path: Path = field(default=Path("."), compare=False)

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise BadInput(f"runbook {self.id} has no step {step_id!r}; its steps are {', '.join(s.id for s in self.steps)}")

    def cause(self, cause: str) -> Cause | None:
        """The decision table's row of ``cause`` (``family:detail`` is the row ``family``), or None."""
        return self.decision.find(cause)

    def defaults(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.parameters.items()}

    def parse_parameters(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``, each type-checked; an unknown or secret-looking name is BadInput."""
        for name in given:
            if SECRET_NAME.search(name):
                raise BadInput(f"parameter {name!r} looks like a credential: credentials come from the environment "
                               "only (RECSYS_API_KEY, the S3 keys), never from runbook parameters")
            if name not in self.parameters:
                raise BadInput(f"runbook {self.id} has no parameter {name!r}; its parameters are "
                               f"{', '.join(self.parameters)}")
        return {name: p.parse(given[name]) if name in given else p.default for name, p in self.parameters.items()}


def resolve_function(dotted: str) -> Any:
    """``serving.probe_recommendations`` → the function ``recsys_checks.runbooks.steps.serving.probe_recommendations``."""
    module_name, _, name = dotted.rpartition(".")
    if not module_name or not name:
        raise BadInput(f"function {dotted!r} must be written module.function, e.g. serving.probe_recommendations")
    try:
        module = importlib.import_module(f"recsys_checks.runbooks.steps.{module_name}")
    except ModuleNotFoundError:
        raise BadInput(f"function {dotted!r}: there is no module recsys_checks.runbooks.steps.{module_name}") from None
    fn = getattr(module, name, None)
    if not callable(fn) or name.startswith("_"):
        raise BadInput(f"function {dotted!r}: recsys_checks.runbooks.steps.{module_name} has no public function {name!r}")
    return fn


# --------------------------------------------------------------------------------------------------- loading


def runbooks_dir() -> Path:
    """Where the specs are: ``RECSYS_RUNBOOKS_DIR``, else ``runbooks/`` of this checkout, else ``./runbooks``."""
    configured = os.environ.get("RECSYS_RUNBOOKS_DIR")
    if configured:
        return Path(configured)
    beside = Path(__file__).resolve().parents[2] / "runbooks"  # the checkout holding recsys_checks/
    return beside if beside.is_dir() else Path.cwd() / "runbooks"


def notebooks_dir(runbooks: Path | None = None) -> Path:
    """The notebooks sit in ``notebooks/`` beside ``runbooks/``."""
    return (runbooks or runbooks_dir()).resolve().parent / "notebooks"


def list_ids(directory: Path | None = None) -> list[str]:
    directory = directory or runbooks_dir()
    if not directory.is_dir():
        raise BadInput(f"no runbooks directory at {directory}: set RECSYS_RUNBOOKS_DIR to the runbooks/ of a "
                       "recsys-runbooks checkout")
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_all(directory: Path | None = None) -> list[RunbookSpec]:
    directory = directory or runbooks_dir()
    return [load_spec(i, directory) for i in list_ids(directory)]


def load_spec(runbook_id: str, directory: Path | None = None) -> RunbookSpec:
    """Load and validate ``runbooks/<runbook_id>.yaml``."""
    directory = directory or runbooks_dir()
    if not isinstance(runbook_id, str) or len(runbook_id) > MAX_ID or not _ID.match(runbook_id):
        raise BadInput(f"unknown runbook {_shown(runbook_id)}: runbook ids are lowercase words joined by '-', at "
                       f"most {MAX_ID} characters (see `recsys-checks runbook list`)")
    path = directory / f"{runbook_id}.yaml"
    if not path.is_file():
        known = ", ".join(list_ids(directory)) if directory.is_dir() else "none"
        raise BadInput(f"unknown runbook {runbook_id!r}; known runbooks: {known}")
    try:
        # The safe loader always; libyaml's when it is there (ten times faster, the same documents).
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: not valid YAML ({exc})") from None
    spec = parse_spec(doc, path)
    if spec.id != runbook_id:
        raise BadInput(f"{path}: id is {spec.id!r} but the file is named {runbook_id}.yaml")
    for row in spec.decision:
        if row.hand_off is not None and not (directory / f"{row.hand_off.runbook}.yaml").is_file():
            raise BadInput(f"{path}: decision row {row.cause}: hand_off.runbook {row.hand_off.runbook!r} is not a "
                           "runbook (see `recsys-checks runbook list`)")
    return spec


def parse_spec(doc: Any, path: Path) -> RunbookSpec:
    """Validate a spec document; every problem names the file and the field."""
    where = str(path)
    check_keys(doc, where, _TOP_KEYS, _REQUIRED_TOP)
    runbook_id = _text(doc["id"], f"{where}: id")
    if not _ID.match(runbook_id):
        raise BadInput(f"{where}: id {runbook_id!r} must be lowercase words joined by '-'")
    layer = _text(doc["layer"], f"{where}: layer")
    if layer not in LAYERS:
        raise BadInput(f"{where}: layer {layer!r} must be one of {', '.join(LAYERS)}")
    params = _parameters(doc.get("parameters") or {}, where)
    steps = _steps(doc["steps"], where)
    decision = parse_table(doc["decision"], where, params)
    read_next = tuple(_records(doc.get("read_next") or [], f"{where}: read_next", _READ_NEXT_KEYS, _READ_NEXT_KEYS))
    manual = tuple(_records(doc.get("manual") or [], f"{where}: manual", _MANUAL_KEYS, _MANUAL_KEYS))
    healthy = _healthy(doc["healthy"], where, {st.id for st in steps})
    drills = tuple(_drill(d, f"{where}: drills[{n}]", params, decision)
                   for n, d in enumerate(_list(doc["drills"], f"{where}: drills")))
    if not drills:
        raise BadInput(f"{where}: drills must name at least one fault of the local stack")
    return RunbookSpec(
        id=runbook_id, title=_text(doc["title"], f"{where}: title"), layer=layer,
        summary=_text(doc["summary"], f"{where}: summary"),
        symptoms=tuple(_text(s, f"{where}: symptoms[{n}]")
                       for n, s in enumerate(_list(doc["symptoms"], f"{where}: symptoms"))),
        alerts=tuple(_text(s, f"{where}: alerts[{n}]")
                     for n, s in enumerate(_list(doc.get("alerts") or [], f"{where}: alerts"))),
        parameters=params, steps=steps, decision=decision,
        verification=_text(doc["verification"], f"{where}: verification"), read_next=read_next, drills=drills,
        manual=manual, healthy=healthy, path=path,
    )


def _parameters(raw: Any, where: str) -> dict[str, Parameter]:
    """The common parameters (a spec may change their help or default, not their type), then the spec's own."""
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: parameters must be a mapping of name to {{type, default, help}}")
    params: dict[str, Parameter] = {}
    for name, common in COMMON_PARAMETERS.items():
        params[name] = _parameter(name, {**common, **(raw.get(name) or {})}, f"{where}: parameters.{name}")
        if params[name].type != common["type"]:
            raise BadInput(f"{where}: parameters.{name}.type must stay {common['type']}")
    for name, body in raw.items():
        if name not in COMMON_PARAMETERS:
            params[name] = _parameter(name, body, f"{where}: parameters.{name}")
    return params


def _steps(raw: Any, where: str) -> tuple[Step, ...]:
    """The ordered steps: unique ids, known roles, a resolvable function, one diagnose step, an act step (at most
    one, the only one that mutates, with no command of its own: its commands are the decision table's) followed
    by a verify step."""
    if not isinstance(raw, list) or not raw:
        raise BadInput(f"{where}: steps must be a non-empty list")
    steps: list[Step] = []
    for n, body in enumerate(raw):
        at = f"{where}: steps[{n}]"
        check_keys(body, at, _STEP_KEYS, {"id", "title", "why", "function", "role"})
        step = Step(
            id=_text(body["id"], f"{at}.id"), title=_text(body["title"], f"{at}.title"),
            why=_text(body["why"], f"{at}.why"), function=_text(body["function"], f"{at}.function"),
            command=_text(body.get("command", ""), f"{at}.command", empty=True),
            role=_text(body["role"], f"{at}.role"), mutates=_bool(body.get("mutates", False), f"{at}.mutates"),
        )
        if not _ID.match(step.id):
            raise BadInput(f"{at}.id {step.id!r} must be lowercase words joined by '-'")
        if any(s.id == step.id for s in steps):
            raise BadInput(f"{at}.id {step.id!r} is used twice")
        if step.role not in ROLES:
            raise BadInput(f"{at}.role {step.role!r} must be one of {', '.join(ROLES)}")
        if step.mutates != (step.role == "act"):
            raise BadInput(f"{at}: only the act step mutates (role {step.role}, mutates {step.mutates})")
        if step.role == "act" and step.command:
            raise BadInput(f"{at}.command: the act step has no command of its own; its commands are each cause's "
                           "lever in the decision table")
        try:
            step.resolve()
        except BadInput as exc:
            raise BadInput(f"{at}.function: {exc}") from None
        steps.append(step)
    roles = [s.role for s in steps]
    if roles.count("diagnose") != 1:
        raise BadInput(f"{where}: steps must have exactly one diagnose step (found {roles.count('diagnose')})")
    if roles.count("act") > 1:
        raise BadInput(f"{where}: steps may have at most one act step")
    if "act" in roles and "verify" not in roles[roles.index("act"):]:
        raise BadInput(f"{where}: an act step must be followed by a verify step")
    return tuple(steps)


def _healthy(raw: Any, where: str, step_ids: set[str]) -> tuple[dict[str, str], ...]:
    healthy = tuple(_records(raw, f"{where}: healthy", _HEALTHY_KEYS, _HEALTHY_KEYS))
    if not healthy:
        raise BadInput(f"{where}: healthy must state at least one invariant and the step that checks it")
    for n, h in enumerate(healthy):
        if h["step"] not in step_ids:
            raise BadInput(f"{where}: healthy[{n}].step {h['step']!r} is not a step of this runbook")
    return healthy


def _parameter(name: str, body: Any, at: str) -> Parameter:
    if not re.match(r"^[a-z][a-z0-9_]*$", str(name)):
        raise BadInput(f"{at}: a parameter name is a Python identifier in lowercase")
    if SECRET_NAME.search(name):
        raise BadInput(f"{at}: {name!r} looks like a credential; credentials come from the environment only")
    check_keys(body, at, _PARAM_KEYS, {"type", "default"})
    kind = body["type"]
    if kind not in TYPES:
        raise BadInput(f"{at}.type {kind!r} must be one of {', '.join(TYPES)}")
    choices = tuple(body["choices"]) if body.get("choices") is not None else None
    bounds = {}
    for key in ("min", "max"):
        if key not in body:
            continue
        bound = body[key]
        if kind not in ("int", "float"):
            raise BadInput(f"{at}.{key}: only an int or float parameter has a range")
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound):
            raise BadInput(f"{at}.{key}: expected a finite number")
        bounds[key] = float(bound)
    if bounds.get("min", -math.inf) > bounds.get("max", math.inf):
        raise BadInput(f"{at}: min is above max")
    p = Parameter(name, kind, body["default"], _text(body.get("help", ""), f"{at}.help", empty=True), choices,
                  bounds.get("min"), bounds.get("max"))
    if kind == "segment" or p.default is not None:
        try:
            p.parse(p.default)
        except BadInput as exc:
            raise BadInput(f"{at}.default: {exc}") from None
    return p


def _drill(body: Any, at: str, params: dict[str, Parameter], decision: DecisionTable) -> Drill:
    check_keys(body, at, _DRILL_KEYS, {"fault", "stores", "dry_run", "execute"})
    stores = tuple(_list(body["stores"], f"{at}.stores"))
    if not stores or any(s not in STORES for s in stores):
        raise BadInput(f"{at}.stores must list file and/or s3")
    given = body.get("params") or {}
    if not isinstance(given, dict) or any(k not in params for k in given):
        raise BadInput(f"{at}.params must only set parameters of this runbook")

    def expect(value: Any, name: str) -> Expectation:
        check_keys(value, f"{at}.{name}", _EXPECT_KEYS, {"verdict"})
        if value["verdict"] not in VERDICTS:
            raise BadInput(f"{at}.{name}.verdict must be one of {', '.join(VERDICTS)}")
        if value.get("cause") is not None and decision.find(str(value["cause"])) is None:
            raise BadInput(f"{at}.{name}.cause {value['cause']!r} is not a cause of the decision table")
        return Expectation(value["verdict"], value.get("cause"))

    return Drill(
        fault=_text(body["fault"], f"{at}.fault"), stores=stores, params=dict(given),
        dry_run=expect(body["dry_run"], "dry_run"), execute=expect(body["execute"], "execute"),
        rerun=expect(body["rerun"], "rerun") if body.get("rerun") is not None else None,
    )


def _records(value: Any, at: str, allowed: set[str], required: set[str]) -> list[dict[str, str]]:
    out = []
    for n, item in enumerate(_list(value, at)):
        check_keys(item, f"{at}[{n}]", allowed, required)
        out.append({k: _text(v, f"{at}[{n}].{k}") for k, v in item.items()})
    return out


def _list(value: Any, at: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadInput(f"{at}: expected a list")
    return value


def _text(value: Any, at: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise BadInput(f"{at}: expected {'text' if empty else 'non-empty text'}")
    return value.strip()


def _bool(value: Any, at: str) -> bool:
    if not isinstance(value, bool):
        raise BadInput(f"{at}: expected true or false")
    return value
