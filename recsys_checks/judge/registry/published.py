"""What the registry publishes for one surface's popularity, read the way serving reads it.

:func:`read_manifest_state` follows manifest → popularity URI → blob and names the first thing that is wrong;
:func:`read_published_versions` lists the newest published popularity versions with their items. Both are the
default readers of :mod:`recsys_checks.judge.serving.probe` and :mod:`recsys_checks.judge.serving.served`, which take them as
arguments so that the service side and the registry side can be tested apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from recsys_checks.core import jsonio
from recsys_checks.core.errors import ChecksError, Unreachable
from recsys_checks.judge.registry.artifact import validate_artifact, version_from_uri
from recsys_checks.judge.registry.manifest import read_manifest
from recsys_checks.judge.registry.version_records import version_history
from recsys_checks.reach.settings import Target
from recsys_checks.reach.store import TargetStores


@dataclass
class ManifestState:
    """What the registry says for one surface's popularity, as far as serving is concerned.

    ``state``: ``ok`` | ``missing`` (no manifest) | ``no_popularity`` | ``missing_blob`` | ``invalid`` (manifest or
    blob unreadable, wrong type, hash mismatch) | ``empty`` (valid artifact, no items) | ``unreachable``.
    ``items`` are the popularity artifact's ``{item_id, count}`` in artifact order when it was read.
    """

    state: str
    detail: str = ""
    manifest_uri: str | None = None
    etag: str | None = None
    updated_at: str | None = None
    uri: str | None = None
    version: str | None = None
    items: list[dict[str, Any]] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["item_count"] = None if self.items is None else len(self.items)
        d.pop("items")
        return d


@dataclass
class PublishedVersion:
    """One published popularity version from the registry's records, with its items when they could be read."""

    version: str
    uri: str
    window_end: str | None = None
    built_at: str | None = None
    items: list[dict[str, Any]] | None = field(default=None, repr=False)


ManifestReader = Callable[[Target, str, str], ManifestState]
HistoryReader = Callable[[Target, str, str], list[PublishedVersion]]


def _artifact_items(raw: bytes) -> list[dict[str, Any]] | None:
    try:
        doc = jsonio.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return None
    return [i for i in items if isinstance(i, dict) and "item_id" in i]


def read_manifest_state(target: Target, tenant: str, surface: str) -> ManifestState:
    """Default manifest reader: manifest → popularity URI → blob, through the registry and the object store."""
    with TargetStores(target) as stores:
        return _manifest_state(target, tenant, surface, stores)


def _manifest_state(target: Target, tenant: str, surface: str, stores: TargetStores) -> ManifestState:
    """:func:`read_manifest_state` on the caller's stores; the manifest is read by
    :func:`recsys_checks.judge.registry.manifest.read_manifest`, whose states map onto the first ones here."""
    found = read_manifest(target, tenant, surface, stores=stores)
    uri = found.uri
    if found.state in ("missing", "unreachable"):
        return ManifestState(found.state, found.problem or "", manifest_uri=uri)
    if found.manifest is None:
        return ManifestState("invalid", f"manifest at {uri} is not valid: {found.summary}", manifest_uri=uri)
    man = found.manifest
    state = ManifestState("ok", manifest_uri=uri, etag=found.etag, updated_at=man.updated_at)
    pop = man.current.get("popularity")
    if not pop:
        state.state, state.detail = "no_popularity", f"manifest at {uri} has no current.popularity"
        return state
    state.uri, state.version = pop, version_from_uri(pop)
    try:
        if not stores.exists(pop):
            state.state, state.detail = "missing_blob", f"popularity blob {pop} does not exist"
            return state
        raw, _ = stores.get(pop)
        items = _artifact_items(raw)
        if items == []:
            state.state, state.detail, state.items = "empty", f"popularity artifact {pop} has no items", []
            return state
        checked = validate_artifact(target, pop, tenant=tenant, surface=surface, kind="popularity", stores=stores)
    except Unreachable as exc:
        state.state, state.detail = "unreachable", str(exc)
        return state
    except ChecksError as exc:
        state.state, state.detail = "invalid", f"popularity artifact {pop} is not valid: {exc}"
        return state
    if checked.status == "fail" or items is None:
        state.state, state.detail = "invalid", f"popularity artifact {pop} is not valid: {checked.summary}"
        return state
    state.items = items
    state.detail = f"popularity {state.version} with {len(items)} items"
    return state


def read_published_versions(target: Target, tenant: str, surface: str, *, limit: int = 10) -> list[PublishedVersion]:
    """Default history reader: the newest ``limit`` popularity records with their items."""

    out: list[PublishedVersion] = []
    with TargetStores(target) as stores:
        version_records = version_history(target, tenant, surface, kind="popularity", stores=stores)[:limit]
        for rec in version_records:
            items: list[dict[str, Any]] | None = None
            try:
                items = _artifact_items(stores.get(rec.uri)[0])
            except ChecksError:
                items = None
            out.append(
                PublishedVersion(
                    version=rec.version, uri=rec.uri, window_end=_text(rec.window_end), built_at=_text(rec.built_at),
                    items=items,
                )
            )
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)
