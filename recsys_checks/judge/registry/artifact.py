"""Artifact blobs: the version hash and the validation a blob must pass before anything points at it.

The version is the SHA-256 of the artifact as the suite's Go code serialises it compactly: header keys in order
(``v``, ``artifact_type``, ``tenant``, ``surface``, ``segment`` only when non-empty, ``window``), the payload, then
``build`` with empty ``built_at`` and ``version`` and no ``source_hash``. Numbers are re-emitted exactly as they
were written and strings are escaped as Go escapes them (``<``, ``>``, ``&``, U+2028/9), so that the hash
recomputes byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from recsys_checks.core import jsonio
from recsys_checks.core.errors import BadInput, InvalidObject, NotFound
from recsys_checks.core.results import CheckResult
from recsys_checks.core.timefmt import parse_go_time
from recsys_checks.reach.settings import Target, safe_segment
from recsys_checks.reach.store import TargetStores

# Format twin of recsys_stack.formats.ARTIFACT_KINDS (kept separate on purpose; tests/twins checks they agree).
KINDS: tuple[str, ...] = ("popularity", "cooc", "implicit", "content_sim", "session_seq")
PAYLOAD_KEY: dict[str, str] = {
    "popularity": "items",
    "cooc": "neighbors",
    "implicit": "users",
    "content_sim": "items",
    "session_seq": "users",
}
DEFAULT_MAX_BYTES = 10_000_000  # RECSYS_ARTIFACT_MAX_BYTES default: the service refuses bigger blobs
MAX_POPULARITY_ITEMS = 1000
VERSION_RE = re.compile(r"^[0-9a-f]{64}$")
_VERSION_IN_URI = re.compile(r"/([0-9a-f]{64})\.json$")


class _Number(str):
    """A JSON number kept as the exact text it was written with."""


class _Document(dict):
    """A decoded JSON object that knows whether it holds any non-integer number (kept as text)."""

    number_text = True


def load_json(data: bytes | str) -> Any:
    """Decode JSON keeping non-integer numbers as their original text (see :func:`go_compact`)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    seen: list[str] = []

    def _number(literal: str) -> _Number:
        seen.append(literal)
        return _Number(literal)

    def _reject(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    value = jsonio.loads(text, parse_float=_number, parse_constant=_reject)
    if isinstance(value, dict):
        value = _Document(value)
        value.number_text = bool(seen)
    return value


def _go_string(value: str) -> str:
    out = json.dumps(value, ensure_ascii=False)
    return (
        out.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _has_number_text(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Number):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def go_compact(value: Any, *, number_text: bool | None = None) -> str:
    """Serialise like Go's ``json.Marshal``: no spaces, insertion order, Go string escaping.

    Documents without non-integer numbers (popularity and co-occurrence counts) go through the C encoder in one
    call, then Go's escapes; those characters can only occur inside strings, so escaping the whole text is exact.
    Non-integer numbers are written back as the text they were read with, which needs the slower walk.
    ``number_text`` says whether ``value`` holds such numbers, when the caller knows (see :func:`load_json`).
    """
    if number_text is None:
        number_text = _has_number_text(value)
    if not number_text:
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).translate(_GO_ESCAPES)
        except (TypeError, ValueError):
            pass  # not plain JSON data: let the walk below name the problem
    return _go_compact_walk(value)


def _go_compact_walk(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, _Number):
        return str.__str__(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, dict):
        return "{" + ",".join(_go_string(str(k)) + ":" + _go_compact_walk(v) for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_go_compact_walk(v) for v in value) + "]"
    raise TypeError(f"cannot serialise {type(value).__name__}")


def artifact_version(doc: dict[str, Any]) -> str:
    """Recompute the version of an artifact document (see the module docstring).

    Format twin of ``recsys_stack.formats.artifact_version``:
    kept apart on purpose, so that each side cross-checks the other (tests/twins).
    """
    kind = doc.get("artifact_type")
    if kind not in PAYLOAD_KEY:
        raise BadInput(f"artifact_type {kind!r} is not one of {', '.join(KINDS)}")
    window = doc.get("window") if isinstance(doc.get("window"), dict) else {}
    canon: dict[str, Any] = {
        "v": doc.get("v"),
        "artifact_type": kind,
        "tenant": doc.get("tenant"),
        "surface": doc.get("surface"),
    }
    if doc.get("segment"):
        canon["segment"] = doc["segment"]
    canon["window"] = {"start": window.get("start"), "end": window.get("end")}
    canon[PAYLOAD_KEY[kind]] = doc.get(PAYLOAD_KEY[kind])
    canon["build"] = {"built_at": "", "version": ""}
    number_text = doc.number_text if isinstance(doc, _Document) else None
    try:
        text = go_compact(canon, number_text=number_text).encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput("the artifact holds a lone UTF-16 surrogate (an invalid \\ud800-\\udfff escape), so its "
                       "version cannot be recomputed: the blob is not what any pipeline writes") from None
    return hashlib.sha256(text).hexdigest()


def version_from_uri(uri: str | None) -> str | None:
    """The version a blob URI names (``…/<64 hex>.json``), if it follows the layout."""
    if not uri:
        return None
    m = _VERSION_IN_URI.search(uri)
    return m.group(1) if m else None


def short_version(version: str | None) -> str:
    """A version as a person reads it in a sentence: its first 12 characters, ``?`` when unknown."""
    return (version or "?")[:12]


def distinct_rows(payload: list[Any]) -> int:
    """How many distinct rows a payload holds, by each row's ``item_id`` (or ``user_id``); a row without one counts
    as its own."""
    keys = set()
    for n, row in enumerate(payload):
        key = row.get("item_id", row.get("user_id")) if isinstance(row, dict) else None
        keys.add(("id", key) if isinstance(key, str) else ("row", n))
    return len(keys)


def inspect_artifact(
    data: bytes,
    *,
    tenant: str,
    surface: str,
    kind: str,
    version: str | None = None,
    window: tuple[str, str] | None = None,
    allow_empty: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[list[str], list[str], dict[str, Any]]:
    """Check blob content; return ``(problems, notes, info)``. Problems make it unusable; notes do not.

    Format twin of ``recsys_stack.formats.check_artifact``:
    kept apart on purpose, so that each side cross-checks the other (tests/twins).
    """
    problems: list[str] = []
    notes: list[str] = []
    info: dict[str, Any] = {"bytes": len(data)}
    if len(data) > max_bytes:
        problems.append(f"blob is {len(data)} bytes, above the service limit of {max_bytes} (RECSYS_ARTIFACT_MAX_BYTES)")
    try:
        doc = load_json(data)
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"blob is not valid JSON ({exc})")
        return problems, notes, info
    if not isinstance(doc, dict):
        problems.append("blob is not a JSON object")
        return problems, notes, info
    if doc.get("v") != 1 or isinstance(doc.get("v"), bool):
        problems.append(f"blob has v={doc.get('v')!r}, expected 1")
    if doc.get("artifact_type") != kind:
        problems.append(f"blob artifact_type is {doc.get('artifact_type')!r}, expected {kind!r}")
    if doc.get("tenant") != tenant:
        problems.append(f"blob is for tenant {doc.get('tenant')!r}, expected {tenant!r}")
    if doc.get("surface") != surface:
        problems.append(f"blob is for surface {doc.get('surface')!r}, expected {surface!r}")
    w = doc.get("window")
    if not isinstance(w, dict):
        problems.append("blob has no window {start, end}")
    else:
        info["window_start"], info["window_end"] = w.get("start"), w.get("end")
        try:
            _, start_ns = parse_go_time(w.get("start"), "window.start")
            _, end_ns = parse_go_time(w.get("end"), "window.end")
            if end_ns <= start_ns:
                problems.append(f"blob window ends ({w.get('end')}) before it starts ({w.get('start')})")
        except BadInput as exc:
            problems.append(f"blob {exc}")
        if window is not None and (w.get("start"), w.get("end")) != tuple(window):
            problems.append(
                f"blob window {w.get('start')}..{w.get('end')} differs from its record's {window[0]}..{window[1]}"
            )
    build = doc.get("build") if isinstance(doc.get("build"), dict) else {}
    stored = build.get("version")
    info["stored_version"] = stored
    if kind in PAYLOAD_KEY and doc.get("artifact_type") == kind:
        payload = doc.get(PAYLOAD_KEY[kind])
        if payload is not None and not isinstance(payload, list):
            problems.append(f"blob {PAYLOAD_KEY[kind]} is not a list")
            payload = []
        n = len(payload or [])
        # Distinct rows: a build that repeats one row a hundred times holds one item, not a hundred (the item-drop
        # invariant compares these counts between versions).
        info["items"] = distinct_rows(payload or [])
        info["empty"] = n == 0
        if kind == "popularity":
            problems.extend(_popularity_problems(payload or []))
            if n == 0:
                if allow_empty:
                    notes.append("popularity has no items (allowed explicitly)")
                else:
                    problems.append("popularity has no items: the service would serve empty recommendations")
        try:
            computed = artifact_version(doc)
        except (BadInput, TypeError) as exc:
            problems.append(f"version hash cannot be computed: {exc}")
            computed = None
        info["computed_version"] = computed
        if computed is not None:
            if stored != computed:
                problems.append(f"version hash mismatch: build.version is {stored!r}, content hashes to {computed}")
            elif version is not None and version != computed:
                problems.append(f"version hash mismatch: expected {version}, content hashes to {computed}")
    return problems, notes, info


def _popularity_problems(items: list[Any]) -> list[str]:
    if len(items) > MAX_POPULARITY_ITEMS:
        return [f"popularity has {len(items)} items, above the limit of {MAX_POPULARITY_ITEMS}"]
    for i, item in enumerate(items):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("item_id"), str)
            or not item.get("item_id")
            or not isinstance(item.get("count"), int)
            or isinstance(item.get("count"), bool)
        ):
            return [f"popularity item {i} is not {{item_id: string, count: integer}}"]
        if item["count"] < 0:  # a count of events: a negative one is a damaged build, not a ranking
            return [f"popularity item {i} ({item['item_id']}) has a negative count {item['count']}"]
    return []


def validate_artifact(
    target: Target,
    uri: str,
    *,
    tenant: str,
    surface: str,
    kind: str,
    version: str | None = None,
    window: tuple[str, str] | None = None,
    allow_empty: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    stores: TargetStores | None = None,
) -> CheckResult:
    """Is the blob at ``uri`` a usable ``kind`` artifact of tenant/surface? Fails on any problem.

    ``version`` defaults to the one the URI names; ``window`` (from the version record) must match when given.
    An unreachable store raises :class:`Unreachable` rather than returning a result.
    """
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    if kind not in KINDS:
        raise BadInput(f"unknown artifact kind {kind!r}: use one of {', '.join(KINDS)}")
    expected = version or version_from_uri(uri)
    data_out: dict[str, Any] = {"uri": uri, "kind": kind, "tenant": tenant, "surface": surface, "version": expected}
    own = stores is None
    stores = stores or TargetStores(target)
    try:
        try:
            data, etag = stores.get(uri)
        except NotFound:
            data_out["problems"] = [f"blob missing: no object at {uri}"]
            return CheckResult("artifact", "fail", f"{kind} blob for {tenant}/{surface} is missing: {uri}", data_out,
                               None, uri)
        except BadInput as exc:
            data_out["problems"] = [str(exc)]
            return CheckResult("artifact", "fail", f"{kind} blob URI for {tenant}/{surface} is unusable: {exc}",
                               data_out, None, uri)
        except InvalidObject as exc:
            data_out["problems"] = [str(exc)]
            return CheckResult("artifact", "fail", f"{kind} blob for {tenant}/{surface} is unreadable: {exc}",
                               data_out, None, uri)
    finally:
        if own:
            stores.close()
    problems, notes, info = inspect_artifact(
        data, tenant=tenant, surface=surface, kind=kind, version=expected, window=window,
        allow_empty=allow_empty, max_bytes=max_bytes,
    )
    if expected is None:
        notes.append("the URI does not name a version; only the stored build.version was checked")
    data_out.update(info)
    data_out["problems"], data_out["notes"] = problems, notes
    short = (expected or info.get("computed_version") or "?")[:12]
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return CheckResult("artifact", "fail", f"{kind} {short} for {tenant}/{surface}: {problems[0]}{more}",
                           data_out, etag, uri)
    status = "warn" if notes and info.get("empty") else "ok"
    summary = f"{kind} {short} for {tenant}/{surface} is valid: {info.get('items', 0)} entries, window " \
              f"{info.get('window_start')}..{info.get('window_end')}"
    return CheckResult("artifact", status, summary, data_out, etag, uri)
