"""Rollback: repoint a surface's manifest at validated earlier versions, dry-run by default.

Only the pointer moves (records and blobs are append-only), after validating the target, with compare-and-swap
on the manifest's ETag, and one audit object per applied change under ``<registry>/audit/<tenant>/<surface>/``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from recsys_checks.core.errors import BadInput, ChecksError, Conflict
from recsys_checks.core.results import ActionResult, CheckResult, Plan
from recsys_checks.core.timefmt import format_z
from recsys_checks.judge.invariants import item_drop_finding
from recsys_checks.judge.names import unknown_name
from recsys_checks.judge.registry.artifact import KINDS, validate_artifact, version_from_uri
from recsys_checks.judge.registry.history import Validator, history_hint
from recsys_checks.judge.registry.manifest import DROP_LOOKBACK, Manifest, ManifestRead, manifest_bytes, read_manifest
from recsys_checks.judge.registry.version_records import VersionRecord, load_version_records
from recsys_checks.judge.serving.served import check_served_vs_published
from recsys_checks.levers import audit, cache, guard
from recsys_checks.reach.settings import Target, safe_segment
from recsys_checks.reach.store.base import etag_of
from recsys_checks.reach.store.router import TargetStores, stores_for


def plan_rollback(
    target: Target,
    tenant: str,
    surface: str,
    *,
    to: str | None = None,
    previous: bool = False,
    kind: str | None = None,
    reason: str = "",
    allow_empty: bool = False,
    stores: TargetStores | None = None,
    kinds: list[str] | None = None,
) -> Plan:
    """Plan repointing the manifest to a recorded version; changes nothing.

    ``to``: a version (full hash, or a unique prefix of at least 8 hex), in whichever kind(s) it was recorded.
    ``previous``: per kind, the newest valid version older than the current one (when the manifest is missing or
    unreadable: the newest valid version of each kind). ``kind`` restricts either. Every target blob is validated
    before the plan is returned; an unknown or invalid target raises :class:`BadInput`.
    """
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    if (to is None) == (not previous):
        raise BadInput("say where to roll back to: give either a version (--to VERSION) or --previous, not both")
    if kind is not None and kind not in KINDS:
        raise BadInput(f"unknown artifact kind {kind!r}: use one of {', '.join(KINDS)}")
    if kinds is not None and (not kinds or any(k not in KINDS for k in kinds)):
        raise BadInput(f"artifact kinds {kinds!r}: give one or more of {', '.join(KINDS)}")
    if kind is not None and kinds is not None:
        raise BadInput("give either one kind or a list of kinds, not both")
    manifest_uri = target.manifest_uri(tenant, surface)
    audit.audit_prefix(target, tenant, surface)  # refuse now, not after the swap, if audit records cannot be placed
    st, own = stores_for(target, stores)
    try:
        found = read_manifest(target, tenant, surface, stores=st).reachable()
        current = dict(found.manifest.current) if found.manifest else {}
        version_records, _ = load_version_records(target, tenant, surface, kind, stores=st)
        if found.manifest is None and not version_records:
            unknown = unknown_name(target, tenant, surface, stores=st)
            if unknown is not None:  # a typo'd name, not a surface with nothing to roll back to
                raise BadInput(f"cannot roll back {tenant}/{surface}: {unknown.message}; nothing was planned")
        check = Validator(target, st, allow_empty=allow_empty)
        if to is not None:
            chosen, notes = _chosen_by_version(to, version_records, check, found, tenant, surface, kind)
        else:
            chosen, notes = _chosen_previous(version_records, check, found, current, tenant, surface, kind, kinds)
    finally:
        if own:
            st.close()
    after = dict(current)
    changes = []
    for k in sorted(chosen):
        rec = chosen[k]
        after[k] = rec.uri
        changes.append({
            "what": f"current.{k}",
            "kind": k,
            "before": current.get(k),
            "after": rec.uri,
            "before_version": version_from_uri(current[k]) if k in current else None,
            "after_version": rec.version,
            "direction": _direction(rec, current.get(k), version_records),
        })
    m, raw = found.manifest, found.raw
    details: dict[str, Any] = {
        "tenant": tenant,
        "surface": surface,
        "manifest_uri": manifest_uri,
        "mode": "to" if to is not None else "previous",
        "requested": to,
        "kind": kind,
        "kinds": kinds,
        "allow_empty": allow_empty,
        "before": {
            "state": found.state,
            "etag": found.etag,
            "manifest": m.to_dict() if m else None,
            "raw": raw.decode("utf-8", "replace")[:4096] if raw is not None and m is None else None,
            "problem": found.problem,
            "current": current,
        },
        "direction": moves_direction(changes),
        "after_current": {k: after[k] for k in sorted(after)},
        "targets": {k: chosen[k].to_dict() for k in sorted(chosen)},
        "notes": notes,
        "rewrites": rewrites_of(m),
    }
    return Plan("manifest.rollback", manifest_uri, found.etag, changes, reason, details, deployment=target.deployment)



def rewrites_of(m: Manifest | None) -> list[dict[str, Any]]:
    """For a manifest off the suite's contract (``Manifest.deviations``), every field a repoint changes besides the
    pointers it moves: each kind that is not the suite's (dropped: the manifest is written as the suite writes it)
    and ``updated_at`` (re-stamped with the time of the swap, UTC with Z). The run record's ``changed`` and the
    audit record list them."""
    if m is None or not m.deviations:
        return []  # a manifest in the suite's form: the swap re-stamps updated_at, as every publish does
    out = [{"what": f"current.{kind}", "before": uri, "after": None,
            "why": "dropped: not a kind of the suite's (the service ignored it)"} for kind, uri in sorted(m.ignored.items())]
    out.append({"what": "updated_at", "before": m.updated_at, "after": "the time of the swap",
                "why": "re-stamped with the time of the swap (UTC, Z)"})
    return out


def _direction(rec: VersionRecord, current_uri: str | None, version_records: list[VersionRecord]) -> str:
    """Which way a pointer moves: ``forward`` to a version recorded after the current one (a later publish),
    ``back`` to one recorded before it, or when the current one is missing or not recorded (nothing to compare)."""
    if current_uri is None:
        return "back"
    current_version = version_from_uri(current_uri)
    mine = [r for r in version_records if r.kind == rec.kind]
    now = next((r for r in mine if r.uri == current_uri or r.version == current_version), None)
    if now is None or now.version == rec.version:
        return "back"
    return "forward" if rec.sort_key > now.sort_key else "back"


def moves_direction(changes: list[dict[str, Any]]) -> str:
    """``forward`` when every move of a rollback plan goes to a later version, ``mixed`` when some do, else
    ``back``."""
    ways = {c.get("direction") or "back" for c in changes}
    return "forward" if ways == {"forward"} else "mixed" if "forward" in ways else "back"


def describe_moves(tenant: str, surface: str, changes: list[dict[str, Any]]) -> str:
    """A rollback plan's moves as a person reads them: ``roll demo/home back (popularity a -> b)``, ``repoint
    demo/home forward (...)`` for a later version, each move marked when some go forward and some back."""
    direction = moves_direction(changes)
    marked = direction == "mixed"
    moves = ", ".join(f"{c['kind']} {str(c.get('before_version') or '-')[:12]} -> {str(c['after_version'])[:12]}"
                      + (f" ({c.get('direction') or 'back'})" if marked else "") for c in changes)
    if direction == "forward":
        return f"repoint {tenant}/{surface} forward ({moves})"
    if direction == "mixed":
        return f"repoint {tenant}/{surface} ({moves})"
    return f"roll {tenant}/{surface} back ({moves})"


def _chosen_by_version(to: str, version_records: list[VersionRecord], check: Validator, found: ManifestRead,
                       tenant: str, surface: str, kind: str | None) -> tuple[dict[str, VersionRecord], list[str]]:
    """``--to``: the recorded version(s) named, per kind, each validated; raises BadInput for an invalid one."""
    notes: list[str] = []
    chosen = _resolve_to(to, version_records, tenant, surface, kind)
    for rec in chosen.values():
        res = check(rec)
        if res.status == "fail":
            raise BadInput(
                f"refusing to roll back {tenant}/{surface} {rec.kind} to {rec.version}: "
                f"{'; '.join(res.data.get('problems', [])) or res.summary}; pick another version "
                f"({history_hint(tenant, surface)})"
            )
    if found.manifest is None:
        notes.append(
            f"the current manifest is {found.state}; the new manifest holds only {', '.join(sorted(chosen))}"
        )
    return chosen, notes



def _chosen_previous(version_records: list[VersionRecord], check: Validator, found: ManifestRead,
                     current: dict[str, str], tenant: str, surface: str, kind: str | None,
                     only: list[str] | None = None) -> tuple[dict[str, VersionRecord], list[str]]:
    """``--previous``: per kind, the newest valid version older than the current one; raises BadInput for none.
    ``only`` restricts it to the kinds found broken (the others keep their healthy versions)."""
    m = found.manifest
    notes: list[str] = []
    chosen: dict[str, VersionRecord] = {}
    kinds = ([kind] if kind else sorted(only) if only else sorted(current) if m is not None
             else sorted({r.kind for r in version_records}))
    if m is None:
        notes.append(f"the current manifest is {found.state}: restoring the newest valid version of each kind")
    for k in kinds:
        rec, why = _previous_for(k, current.get(k), version_records, check, m is not None)
        if rec is None:
            if kind is not None or only:
                raise BadInput(
                    f"no valid earlier {k} version for {tenant}/{surface} ({why}); "
                    f"{history_hint(tenant, surface)}"
                )
            notes.append(f"{k} left as is: {why}")
            continue
        chosen[k] = rec
    if not chosen:
        raise BadInput(
            f"nothing to roll back for {tenant}/{surface}: no kind has a valid earlier version; "
            f"{history_hint(tenant, surface)}"
        )
    return chosen, notes



def _resolve_to(
    to: str, version_records: list[VersionRecord], tenant: str, surface: str, kind: str | None
) -> dict[str, VersionRecord]:
    wanted = to.strip().lower()
    if len(wanted) < 8 or any(c not in "0123456789abcdef" for c in wanted):
        raise BadInput(f"version {to!r} is not a version hash (64 hex, or a unique prefix of at least 8); "
                       f"{history_hint(tenant, surface)}")
    matches = [r for r in version_records if r.version.startswith(wanted)]
    if len({r.version for r in matches}) > 1:
        shown = ", ".join(sorted({r.version[:16] for r in matches}))
        raise BadInput(f"version prefix {to!r} is ambiguous ({shown}); give more characters")
    if not matches:
        scope = f"{kind} " if kind else ""
        raise BadInput(f"version {to} is not a recorded {scope}version of {tenant}/{surface}; "
                       f"{history_hint(tenant, surface)}")
    return {r.kind: r for r in matches}



def _previous_for(
    kind: str, current_uri: str | None, version_records: list[VersionRecord], check: Validator, manifest_ok: bool
) -> tuple[VersionRecord | None, str]:
    mine = [r for r in version_records if r.kind == kind]
    if not mine:
        return None, f"no {kind} version records"
    if manifest_ok and current_uri is not None:
        cur_version = version_from_uri(current_uri)
        idx = next((i for i, r in enumerate(mine) if r.uri == current_uri or r.version == cur_version), None)
        # Unrecorded current (e.g. hand-edited): every recorded version other than it is a candidate.
        candidates = mine[idx + 1:] if idx is not None else [r for r in mine if r.version != cur_version]
    else:
        candidates = mine
    for i, rec in enumerate(candidates):
        if check(rec).status != "fail" and not _shrunk_against_older(rec, candidates[i + 1:], check):
            return rec, ""
    return None, f"no valid {kind} version older than the current one"



def _shrunk_against_older(rec: VersionRecord, older: list[VersionRecord], check: Validator) -> bool:
    """A rollback target must be healthy by the item-count invariant too: not less than half the items of the
    newest valid version before it (a shrunk build that was rolled back from is never restored)."""
    before = next((r for r in older[:DROP_LOOKBACK] if check(r).status != "fail"), None)
    if before is None:
        return False
    return item_drop_finding(rec.kind, check(rec).data.get("items"), check(before).data.get("items")) is not None



def apply_rollback(
    target: Target,
    plan: Plan,
    *,
    execute: bool = False,
    actor: str | None = None,
    runbook: str | None = None,
    now: datetime | None = None,
    stores: TargetStores | None = None,
    invalidate_cache: bool = False,
    plan_id: str | None = None,
    confirm: str | None = None,
) -> ActionResult:
    """Apply a rollback plan; a dry-run unless ``execute``.

    With execute: re-read the manifest; already at the plan's target → ``noop``; moved since the plan →
    :class:`Conflict` (nothing changed); else write the new manifest with compare-and-swap on the observed ETag,
    then one audit object (never overwritten), then read it back as verification.

    ``plan_id`` and ``confirm``: see :mod:`recsys_checks.levers.guard` (checked before anything is changed).

    When the target has a service (``base_url``), the result's ``service`` says what the service serves now: it
    keeps its cached artifact until a TTL expires, so a rollback it does not serve yet is reported (``fail``,
    exit 1) with the invalidation that fixes it; ``invalidate_cache`` performs that invalidation (audited) first.
    """
    if plan.action != "manifest.rollback":
        raise BadInput(f"not a manifest rollback plan: {plan.action}")
    d = plan.details
    tenant, surface = safe_segment(d["tenant"], "tenant"), safe_segment(d["surface"], "surface")
    uri = target.manifest_uri(tenant, surface)
    if uri != plan.target:
        raise BadInput(f"the plan was made for {plan.target}, but this target's manifest is {uri}")
    moves = ", ".join(f"{c['kind']} {str(c['before_version'] or c['before'])[:12]} -> {c['after_version'][:12]}"
                      for c in plan.changes)
    way = {"forward": " forward", "mixed": " (forward and back)"}.get(d.get("direction") or "back", "")
    if not execute:
        return guard.dry_run(plan, already=f"{tenant}/{surface} already points at the planned versions",
                             would=f"repoint {tenant}/{surface}{way}: {moves}")
    guard.check(target, plan, plan_id=plan_id, confirm=confirm)
    now = now or datetime.now(UTC)
    st, own = stores_for(target, stores)
    try:
        # Missing: no ETag; damaged (a FIFO, a huge file...): its state token, replaced if it is what the plan saw.
        found = read_manifest(target, tenant, surface, stores=st, uri=uri).reachable()
        etag = found.etag
        # A crash between an earlier swap and its record left an intent: complete it now that the world shows it.
        audit.settle(st, target, tenant, surface, audit.judge_by_state(etag), now=now, only="manifest.")
        if _already_applied(found, plan):
            return ActionResult("noop", f"{tenant}/{surface} already points at the planned versions; nothing changed",
                                plan, verification=_verify(target, st, tenant, surface, plan))
        if etag != plan.observed:
            raise Conflict(
                f"manifest for {tenant}/{surface} changed since the plan (planned against {plan.observed}, now "
                f"{etag}); nothing was changed: plan again and review"
            )
        _revalidate_targets(target, st, plan, tenant, surface)
        audit_uri, problem = _swap_audited(target, st, plan, tenant, surface, now=now, actor=actor, runbook=runbook,
                                           moves=moves)
        verification = _verify(target, st, tenant, surface, plan)
    finally:
        if own:
            st.close()
    summary = f"repointed {tenant}/{surface}{way}: {moves}" + (f"; {problem}" if problem else "")
    served = _served_after(target, plan, tenant, surface, actor=actor, runbook=runbook,
                           invalidate_cache=invalidate_cache, verified=verification.status == "ok")
    if served is not None:
        summary += f"; service: {served.summary}"
    return ActionResult("applied", summary, plan, audit_uri, verification, served)



def _revalidate_targets(target: Target, st: TargetStores, plan: Plan, tenant: str, surface: str) -> None:
    """Every blob the plan points at still validates; raises Conflict (nothing changed) when one does not."""
    d = plan.details
    for k, rec in d["targets"].items():
        res = validate_artifact(target, rec["uri"], tenant=tenant, surface=surface, kind=k,
                                version=rec["version"], window=(rec["window_start"], rec["window_end"]),
                                allow_empty=bool(d.get("allow_empty")), stores=st)
        if res.status == "fail":
            raise Conflict(f"rollback target {k} {rec['version']} no longer validates ({res.summary}); "
                           "nothing was changed")



def _swap_audited(target: Target, st: TargetStores, plan: Plan, tenant: str, surface: str, *, now: datetime,
                  actor: str | None, runbook: str | None, moves: str) -> tuple[str | None, str | None]:
    """Write the intent, swap the manifest with compare-and-swap, complete the audit record.

    Returns ``(audit record URI, None)``, or ``(None, problem)`` when the swap happened but its record could not be
    written (the intent stands and the next run completes it).
    """
    d = plan.details
    uri = target.manifest_uri(tenant, surface)
    new = Manifest(1, tenant, surface, dict(d["after_current"]), format_z(now))
    body = manifest_bytes(new)
    after = {"etag": etag_of(body), "manifest": new.to_dict(), "current": new.to_dict()["current"]}
    # The intent goes first: if it cannot be written, nothing is changed; if the process dies after the swap,
    # the next run finds the intent and completes it.
    rewrites = [dict(r, after=new.updated_at) if r["what"] == "updated_at" else r for r in d.get("rewrites") or []]
    intent_uri, intent = audit.begin(
        st, target, plan, tenant=tenant, scope=surface, now=now, actor=actor, runbook=runbook,
        before=d["before"], after=after, expect={"observed": plan.observed, "result": after["etag"]},
        manifest_uri=uri, rewrites=rewrites,
    )
    try:
        new_etag = st.put(uri, body, if_match=plan.observed, if_none_match=plan.observed is None)
    except Conflict:
        audit.complete(st, intent_uri, intent, state="abandoned",
                       note="another change won the compare-and-swap; nothing was changed")
        raise
    except ChecksError:
        raise  # the intent stays pending; the next run settles it from what the manifest shows
    after["etag"] = new_etag
    try:
        return audit.complete(st, intent_uri, intent, after=after), None
    except ChecksError as exc:
        return None, (f"the manifest of {tenant}/{surface} WAS rolled back ({moves}) but its audit record could not "
                      f"be written ({exc}); the intent {intent_uri} stands and the next rollback run completes it")



def _served_after(target: Target, plan: Plan, tenant: str, surface: str, *, actor: str | None,
                  runbook: str | None, invalidate_cache: bool, verified: bool) -> CheckResult | None:
    """What the service serves for the surface after a rollback (None without a service or a popularity move)."""
    if not target.base_url or not verified or not any(c.get("kind") == "popularity" for c in plan.changes):
        return None

    fix = (f"recsys-checks cache invalidate --tenant {tenant} --surface {surface} --targets popularity --execute")
    invalidated = ""
    if invalidate_cache:
        inv_plan = cache.plan_invalidate(target, tenant, ["popularity"], surface=surface,
                                         reason=f"serve the rolled-back manifest of {tenant}/{surface} now")
        try:
            inv = cache.apply_invalidate(target, inv_plan, execute=True, actor=actor, runbook=runbook,
                                         confirm=target.deployment)
            invalidated = f" (popularity cache invalidated, audit {inv.audit})"
        except ChecksError as exc:
            return CheckResult("manifest.rollback.service", "fail",
                               f"the popularity cache could not be invalidated ({exc}); run `{fix}`",
                               {"fix": fix, "exit_code": 1}, None, target.base_url)
    seen = check_served_vs_published(target, tenant, surface, max_age=timedelta(days=36500))
    verdict = seen.data.get("verdict")
    data = {"verdict": verdict, "served_version": seen.data.get("served_version"), "fix": fix,
            "invalidated": bool(invalidated)}
    if verdict == "consistent":
        return CheckResult("manifest.rollback.service", "ok",
                           f"the service serves the rolled-back popularity{invalidated}", data, seen.state,
                           target.base_url)
    if verdict in ("cache_stale", "empty"):
        what = (f"popularity {str(seen.data.get('served_version'))[:12]}" if verdict == "cache_stale"
                else "no items (most likely the cached artifact that was rolled back)")
        return CheckResult(
            "manifest.rollback.service", "fail",
            f"the service still serves {what} from its cache, not the rolled-back version; users get the old answer "
            f"until the cache TTL expires or `{fix}` (or re-run the rollback with --invalidate-cache)", data,
            seen.state, target.base_url)
    return CheckResult("manifest.rollback.service", "warn",
                       f"cannot confirm what the service serves ({seen.summary}); if it is cached, `{fix}`",
                       data, seen.state, target.base_url)



def _already_applied(found: ManifestRead, plan: Plan) -> bool:
    m = found.manifest
    return m is not None and all(m.current.get(c["kind"]) == c["after"] for c in plan.changes)



def _verify(target: Target, st: TargetStores, tenant: str, surface: str, plan: Plan) -> CheckResult:
    found = read_manifest(target, tenant, surface, stores=st).reachable()
    uri, m, etag = found.uri, found.manifest, found.etag
    if m is None:
        return CheckResult("manifest.rollback.verify", "fail", str(found.error), {}, None, uri)
    wrong = [c["kind"] for c in plan.changes if m.current.get(c["kind"]) != c["after"]]
    data = {"manifest": m.to_dict(), "wrong": wrong}
    if wrong:
        return CheckResult("manifest.rollback.verify", "fail",
                           f"{tenant}/{surface} does not point at the planned {', '.join(wrong)}", data, etag, uri)
    return CheckResult("manifest.rollback.verify", "ok",
                       f"{tenant}/{surface} points at the planned versions (updated_at {m.updated_at})", data, etag, uri)
