"""The "stop shipping" lever: a hold marker beside a surface's manifest that publishers must respect.

The marker is ``hold.json`` in the manifest's folder (``<registry>/current/<tenant>/<surface>/hold.json``, derived
from the manifest template), in the same store: a file or an S3 object. Setting and clearing are actions like the
others: a plan first, dry-run by default, compare-and-swap on the marker's ETag, one audit record per change, and
idempotent. Nothing is deleted: clearing writes the marker again with ``held: false`` (keeping who cleared it and
why), so the object itself shows the last change and the audit trail shows them all.

Marker (v1)::

    {"v": 1, "tenant": "demo", "surface": "home", "held": true, "reason": "...", "by": "alice",
     "at": "2026-01-02T03:04:05Z", "plan_hash": "<hex>"}

A marker that cannot be read as this is treated as held (fail closed): a publish gated on a broken marker waits
for a person rather than shipping.
"""

from __future__ import annotations

from typing import Any

from recsys_checks.core import jsonio
from recsys_checks.core.errors import BadInput, NotFound
from recsys_checks.core.results import CheckResult
from recsys_checks.reach.settings import Target, safe_segment
from recsys_checks.reach.store import TargetStores

__all__ = ["check_hold", "hold_uri", "read_hold"]

_MANIFEST_NAME = "/manifest.json"
_MAX_MARKER_BYTES = 64 * 1024


def hold_uri(target: Target, tenant: str, surface: str) -> str:
    """URI of the surface's hold marker: ``hold.json`` beside its manifest."""
    uri = target.manifest_uri(tenant, surface)
    if not uri.endswith(_MANIFEST_NAME):
        raise BadInput(f"cannot place the hold marker: the manifest URI {uri} does not end in {_MANIFEST_NAME}; "
                       "use the suite's registry layout for RECSYS_ARTIFACT_MANIFEST_TEMPLATE")
    return uri[: -len(_MANIFEST_NAME)] + "/hold.json"


def _parse(raw: bytes, tenant: str, surface: str) -> dict[str, Any]:
    if len(raw) > _MAX_MARKER_BYTES:
        raise BadInput(f"hold marker is larger than {_MAX_MARKER_BYTES} bytes")
    doc = jsonio.load_object(raw, "hold marker")
    if doc.get("v") != 1 or not isinstance(doc.get("held"), bool):
        raise BadInput("hold marker is not a v1 marker with a boolean 'held'")
    if (doc.get("tenant"), doc.get("surface")) != (tenant, surface):
        raise BadInput(f"hold marker is for {doc.get('tenant')}/{doc.get('surface')}, not {tenant}/{surface}")
    return doc


def read_hold(target: Target, tenant: str, surface: str, *, stores: TargetStores | None = None
              ) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """``(marker, etag, problem)``: ``(None, None, None)`` when there is no marker; a broken one has a problem."""
    uri = hold_uri(target, safe_segment(tenant, "tenant"), safe_segment(surface, "surface"))
    st = stores or TargetStores(target)
    try:
        try:
            raw, etag = st.get(uri)
        except NotFound:
            return None, None, None
    finally:
        if stores is None:
            st.close()
    try:
        return _parse(raw, tenant, surface), etag, None
    except BadInput as exc:
        return None, etag, f"{exc} at {uri}"


def is_held(marker: dict[str, Any] | None, problem: str | None) -> bool:
    """Whether a hold marker holds the surface: an unreadable marker counts as held, as publishers read it."""
    return problem is not None or bool(marker and marker.get("held"))


def _describe(marker: dict[str, Any] | None) -> str:
    if not marker:
        return ""
    parts = [f"since {marker.get('at')}" if marker.get("at") else "", f"by {marker.get('by')}" if marker.get("by")
             else "", f"reason: {marker.get('reason')}" if marker.get("reason") else ""]
    return ", ".join(p for p in parts if p)


def check_hold(target: Target, tenant: str, surface: str, *, stores: TargetStores | None = None) -> CheckResult:
    """``fail`` while the surface is held (or its marker is unreadable), ``ok`` otherwise; ``state`` is the ETag.

    A scheduler gates its publish job on this: exit 1 from ``recsys-checks hold status`` means do not publish.
    """
    safe_segment(tenant, "tenant")
    safe_segment(surface, "surface")
    uri = hold_uri(target, tenant, surface)
    marker, etag, problem = read_hold(target, tenant, surface, stores=stores)
    held = is_held(marker, problem)
    described = problem or _describe(marker) or ("held, no reason given" if held else "")
    data = {"tenant": tenant, "surface": surface, "held": held, "marker_uri": uri, "marker": marker,
            "problem": problem, "description": described}
    if problem:
        return CheckResult("hold.status", "fail", f"{tenant}/{surface} is treated as held: {problem}; set or clear "
                           f"the hold again with `recsys-checks hold set|clear --tenant {tenant} --surface {surface}`",
                           data, etag, uri)
    if held:
        return CheckResult("hold.status", "fail", f"{tenant}/{surface} is held ({_describe(marker)}): do not publish; "
                           f"clear with `recsys-checks hold clear --tenant {tenant} --surface {surface} --execute`",
                           data, etag, uri)
    last = f" (last cleared {_describe(marker)})" if marker else ""
    return CheckResult("hold.status", "ok", f"{tenant}/{surface} is not held{last}: publishing may go on", data,
                       etag, uri)


