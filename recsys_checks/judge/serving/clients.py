"""What clients get: ask the service the way each kind of client asks, and judge every answer by what was published.

:func:`check_client_answers` sends one request of every shape a surface is used with — a list page (no anchors) and an
item page (anchors: an item of the co-occurrence artifact), at the ``k`` the surface is used with, for each segment
the artifacts name — and judges each answer on its own:

- an error, a refusal or an answer that is not the documented shape is a finding named by the shape ("requests with
  anchors answer 500 RECSYS_INTERNAL");
- every item served must be in a current artifact (a pin of a mistyped id is not), served once, hidden by no
  in-force item block rule, and the answer must hold as many distinct items as asked while the published catalog,
  less what item block rules hide, has more; the service's own warnings (``DEFAULT_APPLIED``,
  ``RULE_PIN_INJECTED`` …) are read as evidence;
- a rules document that is not the raw list the service applies (one PUT wrapped as ``{"rules": [...]}``) is a
  finding whatever the answers hold: none of its rules is in force, so a recall it meant is served (named when it is).

Each finding names its cause (:data:`CAUSES`) and its evidence: the kind an unreadable artifact is (the lever rolls it
back), the rule that injected an unknown item, the config limit that capped ``k``. The registry side comes from
:func:`read_published`; what could not be read is said (``unread``), never taken as healthy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recsys_checks.core import jsonio
from recsys_checks.core.errors import ChecksError, ServiceProblem, Unreachable
from recsys_checks.core.results import CheckResult
from recsys_checks.judge.invariants import hidden_share, rules_shape_findings
from recsys_checks.judge.registry.manifest import read_manifest
from recsys_checks.judge.serving.blockrules import blocked_items, intended_rules, rule_active
from recsys_checks.judge.serving.probe import DEFAULT_USER, warning_codes
from recsys_checks.reach.service import ServiceClient, given_or_new_client
from recsys_checks.reach.settings import Target, safe_segment
from recsys_checks.reach.store import TargetStores

# Every cause a finding of this check names; the serving runbooks declare each in their decision tables.
CAUSES = ("artifact_unreadable", "requests_fail", "unknown_items_served", "rules_pin_unknown",
          "duplicate_items_served", "answer_capped", "answer_short", "blocked_items_served", "rules_not_list")
# The findings about the tenant's documents rather than one request shape: no probe cause explains them away.
DOCUMENT_CAUSES = ("blocked_items_served", "rules_not_list")
# The kinds each request shape reads: a list page ranks by popularity, an item page also by co-occurrence.
SHAPE_KINDS = {"plain": ("popularity",), "anchors": ("popularity", "cooc")}
SHAPE_LABELS = {"plain": "requests without anchors (list pages)", "anchors": "requests with anchors (item pages)"}
DEFAULT_K = 10
# The item ids payload of each artifact kind (RECSYS-INTERFACES §1.3).
_ROWS = {"popularity": "items", "content_sim": "items", "cooc": "neighbors", "implicit": "users",
         "session_seq": "users"}


@dataclass
class Published:
    """What the current manifest publishes, as clients' answers are judged by it."""

    kinds: dict[str, set[str]] = field(default_factory=dict)  # kind -> item ids it holds
    unreadable: dict[str, str] = field(default_factory=dict)  # kind -> why it cannot be read
    popularity: list[str] = field(default_factory=list)  # in artifact order
    anchor: str | None = None  # an item with co-occurrence neighbours (else the most popular item)
    segments: list[str] = field(default_factory=list)  # segments other than the default the artifacts name
    problem: str | None = None  # the manifest itself cannot be used (missing, invalid, unreachable)
    unread: str | None = None  # the registry could not be read from here

    @property
    def items(self) -> set[str]:
        return set().union(*self.kinds.values()) if self.kinds else set()


def read_published(target: Target, tenant: str, surface: str, *, stores: TargetStores | None = None) -> Published:
    """Every item the current manifest's artifacts hold, and which kinds cannot be read (a directory, a FIFO, bad
    JSON): read the way the service reads them, each blob bounded by the store's size limit."""
    out = Published()
    own = stores is None
    st = stores or TargetStores(target)
    try:
        found = read_manifest(target, tenant, surface, stores=st)
        if found.state == "unreachable":
            out.unread = found.summary
            return out
        if found.manifest is None:
            out.problem = found.summary
            return out
        for kind, uri in sorted(found.manifest.current.items()):
            _read_kind(st, kind, uri, out)
    finally:
        if own:
            st.close()
    if out.anchor is None and out.popularity:
        out.anchor = out.popularity[0]
    return out


def _read_kind(st: TargetStores, kind: str, uri: str, out: Published) -> None:
    try:
        raw, _ = st.get(uri)
        doc = jsonio.loads(raw)
    except ChecksError as exc:
        out.unreadable[kind] = str(exc)
        return
    except (ValueError, UnicodeDecodeError) as exc:
        out.unreadable[kind] = f"{uri} is not JSON ({exc})"
        return
    rows = doc.get(_ROWS.get(kind, "items")) if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        out.unreadable[kind] = f"{uri} holds no {_ROWS.get(kind, 'items')} list"
        return
    ids: set[str] = set()
    for row in rows:
        if not isinstance(row, dict):
            continue
        if kind in ("popularity", "content_sim", "cooc") and isinstance(row.get("item_id"), str):
            ids.add(row["item_id"])
        inner = [i.get("item_id") for i in row.get("items") or [] if isinstance(i, dict)]
        ids.update(i for i in inner if isinstance(i, str))
        if kind == "cooc" and inner and out.anchor is None and isinstance(row.get("item_id"), str):
            out.anchor = row["item_id"]
    out.kinds[kind] = ids
    if kind == "popularity":
        out.popularity = [r["item_id"] for r in rows if isinstance(r, dict) and isinstance(r.get("item_id"), str)]
    segment = doc.get("segment") if isinstance(doc, dict) else None
    if isinstance(segment, str) and segment and segment != "default" and segment not in out.segments:
        out.segments.append(segment)


@dataclass
class Finding:
    """One thing wrong with what a client gets."""

    cause: str
    shape: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "shape": self.shape, "summary": self.summary, "evidence": self.evidence}


def request_shapes(surface: str, published: Published, *, k: int, user_id: str,
                   anchor: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """``(shape name, request body)`` for every way the surface is asked: without and with anchors, per segment.
    ``anchor``: the item page to ask for when the publication names none (the first item a list page got)."""
    shapes: list[tuple[str, dict[str, Any]]] = []
    anchor = published.anchor or anchor
    for segment in [None, *published.segments]:
        extra = {"segment": segment} if segment else {}
        suffix = f"@{segment}" if segment else ""
        shapes.append((f"plain{suffix}", ServiceClient.recommend_body(surface, user_id=user_id, k=k, **extra)))
        if anchor is not None:
            shapes.append((f"anchors{suffix}", ServiceClient.recommend_body(
                surface, user_id=user_id, k=k, anchors={"item_ids": [anchor]}, **extra)))
    return shapes


def shape_label(shape: str) -> str:
    base, _, segment = shape.partition("@")
    return SHAPE_LABELS.get(base, base) + (f" in segment {segment}" if segment else "")


def check_client_answers(target: Target, tenant: str, surface: str, *, k: int = DEFAULT_K,
                         user_id: str = DEFAULT_USER, published: Published | None = None,
                         client: ServiceClient | None = None, now: datetime | None = None) -> CheckResult:
    """Ask as every client asks and judge each answer (see the module docstring). ``ok`` when every shape is answered
    in full with published items; ``fail`` with ``data["findings"]`` (each with its cause) otherwise; ``unread`` when
    the service or the registry could not be asked."""
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    where = f"{tenant}/{surface}"
    if published is None:
        try:
            published = read_published(target, tenant, surface)
        except ChecksError as exc:  # no registry configured, a store that cannot be asked
            published = Published(unread=str(exc))
    data: dict[str, Any] = {"tenant": tenant, "surface": surface, "k": k, "shapes": [], "findings": [],
                            "published": {"kinds": {kd: len(v) for kd, v in published.kinds.items()},
                                          "unreadable": published.unreadable,
                                          "anchor": published.anchor}}
    # Without the publication, the answers are still judged on what needs no registry (errors, duplicates, empty).
    unjudged = published.unread or published.problem
    if unjudged:
        data["unjudged"] = f"the items were not checked against what was published: {unjudged}"
    findings: list[Finding] = []
    try:
        with given_or_new_client(target, client) as c:
            docs = _documents(c, target, tenant)
            findings += _ask_every_shape(c, tenant, surface, published, docs, data, k=k, user_id=user_id,
                                         now=now or datetime.now(UTC))
    except Unreachable as exc:
        return CheckResult("recs.clients", "fail", str(exc), data, None, target.base_url, unread=str(exc))
    findings += _rules_document_finding(docs.get("rules"), data)
    data["findings"] = [f.to_dict() for f in findings]
    note = f" ({data['unjudged']})" if unjudged else ""
    if not findings:
        shapes = ", ".join(f"{s['shape']}: {s['items']}" for s in data["shapes"])
        return CheckResult("recs.clients", "ok", f"{where}: every client gets a full answer"
                           f"{'' if unjudged else ' of published items'} ({shapes}){note}", data, None, target.base_url)
    return CheckResult("recs.clients", "fail", f"{where}: " + "; ".join(f.summary for f in findings) + note, data,
                       None, target.base_url)


def _ask_every_shape(c: ServiceClient, tenant: str, surface: str, published: Published, docs: dict[str, Any],
                     data: dict[str, Any], *, k: int, user_id: str, now: datetime) -> list[Finding]:
    """Each shape asked and judged; list pages first, so that an item page can be asked for an item they got."""
    found: list[Finding] = []
    plain = [(n, b) for n, b in request_shapes(surface, published, k=k, user_id=user_id) if n.startswith("plain")]
    first: list[str] = []
    for shape, body in plain:
        found += _judge_shape(c, tenant, surface, shape, body, published, docs, data, now, served=first)
    anchored = [(n, b) for n, b in request_shapes(surface, published, k=k, user_id=user_id,
                                                  anchor=first[0] if first else None) if n.startswith("anchors")]
    for shape, body in anchored:
        found += _judge_shape(c, tenant, surface, shape, body, published, docs, data, now)
    return found


def _documents(c: ServiceClient, target: Target, tenant: str) -> dict[str, Any]:
    """The tenant's config and rules as the service holds them (``None`` each when they cannot be read)."""
    out: dict[str, Any] = {"config": None, "rules": None}
    if not target.api_key:
        return out
    for kind in out:
        try:
            out[kind], _ = c.get_doc(tenant, kind)
        except ChecksError:
            out[kind] = None
    return out


def _judge_shape(c: ServiceClient, tenant: str, surface: str, shape: str, body: dict[str, Any],
                 published: Published, docs: dict[str, Any], data: dict[str, Any], now: datetime,
                 served: list[str] | None = None) -> list[Finding]:
    label = shape_label(shape)
    known = not (published.unread or published.problem)
    try:
        answer = c.recommend(tenant, body)
    except ServiceProblem as p:
        data["shapes"].append({"shape": shape, "status": p.status, "code": p.code, "items": None})
        return [_error_finding(shape, label, p, published)]
    except Unreachable as exc:
        hung = _hung_finding(shape, label, exc, published)
        if hung is None:
            raise  # nothing explains it: the service could not be asked (unread)
        data["shapes"].append({"shape": shape, "status": None, "code": "no answer", "items": None})
        return [hung]
    items = [i.get("item_id") for i in answer.get("items") or [] if isinstance(i, dict)]
    if served is not None and not served:
        served.extend(str(i) for i in items[:1] if isinstance(i, str))
    warnings = answer.get("warnings") or []
    codes = warning_codes(warnings)
    data["shapes"].append({"shape": shape, "status": 200, "items": len(items), "warnings": codes})
    found: list[Finding] = []
    unknown = sorted({i for i in items if i not in published.items}, key=str) if known else []
    if unknown:
        found.append(_unknown_finding(shape, label, unknown, docs.get("rules"), surface, codes, now))
    duplicates = sorted({i for i in items if items.count(i) > 1}, key=str)
    if duplicates:
        found.append(Finding("duplicate_items_served", shape, f"{label} serve {', '.join(map(str, duplicates[:5]))} "
                             "more than once", {"duplicates": duplicates}))
    found += _blocked_finding(shape, label, items, docs.get("rules"), surface, body.get("segment") or "default",
                              now, data)
    short = _short_finding(shape, label, items, body.get("k") or DEFAULT_K, published, docs, surface, warnings, now) \
        if known else (Finding("answer_short", shape, f"{label} get no items", {"asked": body.get("k"),
                                                                                "served_distinct": 0})
                       if not items else None)
    if short is not None:
        found.append(short)
    return found


def _error_finding(shape: str, label: str, p: ServiceProblem, published: Published) -> Finding:
    code = f"{p.status} {p.code}" if p.code else str(p.status)
    base = shape.partition("@")[0]
    broken = [kind for kind in SHAPE_KINDS.get(base, ()) if kind in published.unreadable]
    evidence: dict[str, Any] = {"status": p.status, "code": p.code, "detail": p.detail}
    if broken and p.status >= 500 or broken and p.status == 422:
        evidence.update(kind=broken[-1], kinds=broken, why=published.unreadable[broken[-1]])
        return Finding("artifact_unreadable", shape, f"{label} answer {code}: the current {broken[-1]} artifact "
                       f"cannot be read ({published.unreadable[broken[-1]]}); roll that kind back", evidence)
    if p.code is None:  # no problem+json: a proxy, a login portal or another application answered, not the service
        evidence["not_the_service"] = True
        return Finding("requests_fail", shape, f"{label} answer {code} that is not the service's (no problem+json): "
                       f"{p.detail}; check that RECSYS_BASE_URL points at recsys-service, not at a proxy or another "
                       "application", evidence)
    return Finding("requests_fail", shape, f"{label} answer {code}: {p.detail}", evidence)


def _hung_finding(shape: str, label: str, exc: Unreachable, published: Published) -> Finding | None:
    """A shape the service did not answer in time while an artifact it reads cannot be read (a FIFO hangs its
    reader): an artifact problem, rolled back by kind. ``None`` when every artifact of the shape is readable."""
    broken = [kind for kind in SHAPE_KINDS.get(shape.partition("@")[0], ()) if kind in published.unreadable]
    if not broken:
        return None
    kind = broken[-1]
    return Finding("artifact_unreadable", shape, f"{label} get no answer ({exc}): the current {kind} artifact cannot "
                   f"be read ({published.unreadable[kind]}); roll that kind back",
                   {"status": None, "error": str(exc), "kind": kind, "kinds": broken, "why": published.unreadable[kind]})


def _blocked_finding(shape: str, label: str, items: list[Any], rules: Any, surface: str, segment: str,
                     now: datetime, data: dict[str, Any]) -> list[Finding]:
    """Items served that an in-force item block rule hides (a recall still served). From a rules document that is not
    the list the service applies they are kept for its finding (:func:`_rules_document_finding`); from the list
    itself they are a finding of the shape: the service ranks with rules older than the current ones."""
    hidden = blocked_items(intended_rules(rules), surface, now, segment)
    served = sorted({str(i) for i in items if i in hidden})
    if not served:
        return []
    ranks = {i: items.index(i) + 1 for i in served}
    if not isinstance(rules, list):
        data.setdefault("blocked_served", {})[shape] = ranks
        return []
    return [Finding("blocked_items_served", shape, f"{label} serve {', '.join(served[:5])}, which in-force block "
                    "rules hide: the service ranks with older rules than the current ones (a change without its "
                    "cache invalidation); invalidate its rules cache", {"items": served[:20], "ranks": ranks})]


def _rules_document_finding(rules: Any, data: dict[str, Any]) -> list[Finding]:
    """The rules document out of the suite's shape (not the raw list): no rule of it is in force, whatever the
    answers show; the recalls it meant that clients are served are its evidence."""
    shapes = rules_shape_findings(rules)
    if not shapes:
        return []
    served: dict[str, dict[str, int]] = data.get("blocked_served") or {}
    evidence: dict[str, Any] = {"field": shapes[0].field, "blocked_served": served}
    items = sorted({i for ranks in served.values() for i in ranks})
    seen = (f"; clients are served {', '.join(items[:5])}, which its block rules were meant to hide"
            if items else "")
    return [Finding("rules_not_list", "rules", f"{shapes[0].summary}{seen}; revert the rules change that stored it",
                    evidence)]


def _unknown_finding(shape: str, label: str, unknown: list[str], rules: Any, surface: str, codes: list[str],
                     now: datetime) -> Finding:
    pins = [r for r in rules if isinstance(r, dict) and r.get("action") == "pin" and rule_active(r, surface, now)] \
        if isinstance(rules, list) else []
    pinned = sorted({i for r in pins for i in r.get("item_ids") or [] if i in unknown})
    evidence: dict[str, Any] = {"items": unknown[:20], "warnings": codes}
    what = f"{label} serve {len(unknown)} item(s) that no current artifact holds ({', '.join(unknown[:5])})"
    if pinned:
        evidence["pinned_by_rules"] = pinned
        return Finding("rules_pin_unknown", shape, f"{what}: pin rules inject them (RULE_PIN_INJECTED), so the ids "
                       "are mistyped or the items are gone; revert the rules change that added them", evidence)
    return Finding("unknown_items_served", shape, f"{what}; the service serves items it was not given", evidence)


def _short_finding(shape: str, label: str, items: list[Any], k: int, published: Published, docs: dict[str, Any],
                   surface: str, warnings: list[Any], now: datetime) -> Finding | None:
    distinct = len(set(items))
    if distinct >= k:
        return None
    rules = docs.get("rules")
    hidden = hidden_share(rules, [{"item_id": i} for i in published.popularity], surface, now) \
        if isinstance(rules, list) else None
    if hidden is not None and hidden.uncounted:
        return None  # tag, brand or category blocks: what they hide is the service's to count
    available = len(set(published.popularity)) - (hidden.hidden if hidden is not None else 0)
    if distinct == 0 and available <= 0:
        # Nothing to serve is never a healthy answer: the catalog itself is empty (or all hidden).
        return Finding("answer_short", shape, f"{label} get no items: the published popularity artifact has "
                       f"{len(set(published.popularity))} items and rules hide "
                       f"{hidden.hidden if hidden is not None else 'an unknown number'} of them",
                       {"asked": k, "served_distinct": 0, "available": available, "kind": "popularity"})
    if distinct >= min(k, available):
        return None
    capped = [str(w.get("detail")) for w in warnings if isinstance(w, dict) and w.get("code") == "DEFAULT_APPLIED"]
    limit = _max_k(docs.get("config"))
    evidence: dict[str, Any] = {"asked": k, "served_distinct": distinct, "available": available,
                                "warnings": capped, "max_k": limit}
    if limit is not None and limit < k:
        return Finding("answer_capped", shape, f"{label} get {distinct} items of {k} asked: the tenant's config caps "
                       f"k at limits.max_k={limit} ({'; '.join(capped) or 'DEFAULT_APPLIED'}); revert the config "
                       "change that lowered it", evidence)
    return Finding("answer_short", shape, f"{label} get {distinct} distinct items of {k} asked where the published "
                   f"catalog, less what rules hide, has {available}", evidence)


def _max_k(config: Any) -> int | None:
    limits = config.get("limits") if isinstance(config, dict) else None
    value = limits.get("max_k") if isinstance(limits, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
