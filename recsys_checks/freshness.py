"""Fleet-wide freshness: every (tenant, surface) manifest under ``<registry>/current/``, checked concurrently.

Each surface is classified ``healthy``, ``stale`` (older than ``max_age``), ``missing`` (a surface directory
without a manifest, or a tenant without surfaces), ``invalid`` (a manifest or a blob it names fails validation) or
``held`` (publishing stopped on purpose with ``recsys-checks hold set``: shown, but not a failure).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime, timedelta
from typing import Any

from .config import Target, safe_segment
from .errors import BadInput, ChecksError
from .manifest import DEFAULT_MAX_AGE, status
from .results import CheckResult
from .store import Stores

CONDITIONS = ("healthy", "stale", "missing", "invalid", "unreachable", "held")
Progress = Callable[[int, int, str], None]


def _label(row: dict[str, Any]) -> str:
    return f"{row['tenant']}/{row['surface'] or '*'}: {row['condition']}"


def _missing_row(tenant: str, surface: str | None, why: str, uri: str) -> dict[str, Any]:
    return {"tenant": tenant, "surface": surface, "condition": "missing", "status": "fail", "summary": why,
            "manifest_uri": uri, "updated_at": None, "age_seconds": None, "etag": None}


def fleet(
    target: Target,
    max_age: timedelta = DEFAULT_MAX_AGE,
    tenant: str | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    *,
    workers: int = 8,
) -> CheckResult:
    """Check every surface of the registry (or of one tenant); fail when any is not healthy.

    ``progress(done, total, label)`` is called from the calling thread as each surface finishes, with a label
    such as ``"demo/home: stale"``. Rows in ``data["rows"]`` are sorted by tenant and surface.
    """
    now = now or datetime.now(UTC)
    root = target.registry_root()
    current_prefix = f"{root}/current/"
    if tenant is not None:
        safe_segment(tenant, "tenant")
    rows: list[dict[str, Any]] = []
    pairs: list[tuple[str, str]] = []
    with Stores(target) as st:
        tenants = [tenant] if tenant is not None else st.children(current_prefix)
        for t in tenants:
            try:
                safe_segment(t, "tenant")
            except BadInput as exc:
                rows.append({**_missing_row(t, None, str(exc), current_prefix + t), "condition": "invalid"})
                continue
            surfaces = st.children(f"{current_prefix}{t}/")
            if not surfaces:
                rows.append(_missing_row(t, None, f"tenant {t} has no surfaces under {current_prefix}{t}/",
                                         f"{current_prefix}{t}/"))
                continue
            for s in surfaces:
                try:
                    safe_segment(s, "surface")
                except BadInput as exc:
                    rows.append({**_missing_row(t, s, str(exc), f"{current_prefix}{t}/"), "condition": "invalid"})
                    continue
                pairs.append((t, s))  # a surface directory without a manifest is reported missing by status()
        total = len(rows) + len(pairs)
        done = 0
        for row in rows:
            done += 1
            if progress:
                progress(done, total, _label(row))

        def _one(pair: tuple[str, str]) -> dict[str, Any]:
            t, s = pair
            try:
                res = status(target, t, s, max_age, now, stores=st)
            except ChecksError as exc:
                return {"tenant": t, "surface": s, "condition": "unreachable", "status": "fail",
                        "summary": str(exc), "manifest_uri": target.manifest_uri(t, s), "updated_at": None,
                        "age_seconds": None, "etag": None}
            return {"tenant": t, "surface": s, "condition": res.data.get("condition"), "status": res.status,
                    "summary": res.summary, "manifest_uri": res.target, "updated_at": res.data.get("updated_at"),
                    "age_seconds": res.data.get("age_seconds"), "etag": res.state}

        if pairs:
            with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pairs)))) as pool:
                futures = [pool.submit(_one, p) for p in pairs]
                for fut in as_completed(futures):
                    row = fut.result()
                    rows.append(row)
                    done += 1
                    if progress:
                        progress(done, total, _label(row))
    rows.sort(key=lambda r: (r["tenant"], r["surface"] or ""))
    counts = {c: sum(1 for r in rows if r["condition"] == c) for c in CONDITIONS}
    data = {"registry": root, "tenant": tenant, "max_age_seconds": int(max_age.total_seconds()), "rows": rows,
            "counts": counts}
    scope = f"tenant {tenant}" if tenant else "the registry"
    if not rows:
        return CheckResult("freshness", "fail", f"no surfaces found under {current_prefix} for {scope}: check "
                           "RECSYS_ARTIFACT_MANIFEST_TEMPLATE", data, None, current_prefix)
    bad = [r for r in rows if r["condition"] not in ("healthy", "held")]
    healthy = sum(1 for r in rows if r["condition"] == "healthy")
    held = [f"{r['tenant']}/{r['surface']}" for r in rows if r["condition"] == "held"]
    if not bad and held:
        return CheckResult("freshness", "warn", f"{healthy} of {len(rows)} surface(s) of {scope} fresh and valid; "
                           f"held (not published on purpose): {', '.join(held)}", data, None, current_prefix)
    if not bad:
        return CheckResult("freshness", "ok", f"all {len(rows)} surface(s) of {scope} are fresh and valid", data,
                           None, current_prefix)
    parts = []
    for cond in CONDITIONS[1:]:
        names = [f"{r['tenant']}/{r['surface'] or '*'}" for r in rows if r["condition"] == cond]
        if names:
            parts.append(f"{cond}: {', '.join(names)}")
    return CheckResult("freshness", "fail", f"{healthy} of {len(rows)} surface(s) healthy; " + "; ".join(parts),
                       data, None, current_prefix)
