"""Incidents made on a running local stack, and the Hypothesis strategies that generate them.

Each incident is a small dataclass that says what it breaks (its ``repr`` is what a shrunk failing example prints)
and applies itself to a file-store stack, the way production breaks: admin documents through the admin API, bad
artifact contents published past the validator (a blob with its true version hash, a record and a manifest swap),
blobs replaced on disk, old versions put back, and an admin API behind a peer on 127.0.0.1 that answers 503 or
slowly (:mod:`adminpeer`). None of them is a fault of ``recsys-stack inject``: these are the kinds of incident the
faults are samples of.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clienttruth import RawStack, read_json
from hypothesis import strategies as st

from recsys_stack import formats
from recsys_stack.catalog import BRANDS, CATEGORIES, ITEMS, TAGS
from recsys_stack.objstore import FileStore, blob_key, manifest_key, record_key
from recsys_stack.seed import publish_time

CATALOG_IDS = [item["item_id"] for item in ITEMS]
SURFACES = (("demo", "home"), ("demo", "search"), ("acme", "home"), ("acme", "search"))


@dataclass
class Bench:
    """A running stack the incidents break: raw access for the writes, the admin API for the documents."""

    raw: RawStack
    tenant: str
    surface: str
    peer: str | None = None  # "503" or "slow": the runbooks reach the admin API through such a peer
    store: FileStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = FileStore(self.raw.root / "store")

    def put_document(self, kind: str, doc: Any) -> None:
        answer = self.raw.http("PUT", f"/v1/admin/tenants/{self.tenant}/{kind}", self.tenant, json=doc)
        assert answer.status_code == 200, (kind, doc, answer.status_code, answer.text[:300])

    def rules(self) -> list[dict[str, Any]]:
        doc = self.raw.document(self.tenant, "rules")
        return list(doc) if isinstance(doc, list) else list((doc or {}).get("rules") or [])

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.store.get(manifest_key(self.tenant, self.surface)))

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.store.put(manifest_key(self.tenant, self.surface), formats.manifest_bytes(manifest))

    def blob_path(self, kind: str) -> Path:
        return Path(self.manifest()["current"][kind].removeprefix("file://"))

    def current_blob(self, kind: str) -> dict[str, Any] | None:
        """The current ``kind`` artifact, or ``None`` when an earlier incident left it unreadable (never opened when it
        is a FIFO)."""
        return read_json(self.blob_path(kind))

    def flush(self) -> None:
        answer = self.raw.http("POST", f"/v1/admin/tenants/{self.tenant}/cache/invalidate", self.tenant,
                               json={"targets": ["popularity", "config", "rules"], "surface": self.surface})
        assert answer.status_code == 200, answer.text[:300]


# --- admin documents ------------------------------------------------------------------------------------------


@dataclass
class AddRules:
    """Rules added to the tenant's current list (any action, target, scope, window and priority)."""

    rules: list[dict[str, Any]]
    kind = "rules"

    def apply(self, bench: Bench) -> None:
        bench.put_document("rules", bench.rules() + self.rules)


@dataclass
class WrapRules:
    """A recall (a block of the surface's most popular item) PUT wrapped as ``{"rules": [...]}``, not the list."""

    kind = "rules wrapped"

    def apply(self, bench: Bench) -> None:
        blob = bench.current_blob("popularity") or {}
        top = next((i["item_id"] for i in blob.get("items") or [] if isinstance(i, dict)), "sku-0001")
        recall = {"action": "block", "target_type": "item", "item_ids": [top], "priority": 100}
        bench.put_document("rules", {"rules": [*bench.rules(), recall]})


@dataclass
class SetConfig:
    """Config fields changed: weights, ``limits.max_k``, a key outside the schema, or the whole document wrapped."""

    weights: dict[str, float] | None = None
    max_k: int | None = None
    extra: str | None = None
    wrap: bool = False
    kind = "config"

    def apply(self, bench: Bench) -> None:
        config = bench.raw.document(bench.tenant, "config") or {}
        if self.weights is not None:
            config["weights"] = {**config.get("weights", {}), **self.weights}
        if self.max_k is not None:
            config.setdefault("limits", {})["max_k"] = self.max_k
        if self.extra is not None:
            config[self.extra] = True
        bench.put_document("config", {"config": config} if self.wrap else config)


# --- artifacts ------------------------------------------------------------------------------------------------


@dataclass
class BadContents:
    """A ``kind`` artifact published past the validator with damaged contents: duplicates, ids that do not exist,
    zero or negative counts, empty, one item repeated. Its version hash is true, so only its contents are wrong."""

    artifact: str  # popularity | cooc
    variant: str  # duplicates | ghost_ids | zero_counts | negative_count | empty | one_item
    share: float = 0.3
    kind = "artifact contents"

    def apply(self, bench: Bench) -> None:
        blob = bench.current_blob(self.artifact)
        key = "items" if self.artifact == "popularity" else "neighbors"
        if blob is None or not isinstance(blob.get(key), list) or not blob[key]:
            return  # an earlier incident of the case already broke it
        payload = _damaged(self.artifact, blob[key], self.variant, self.share)
        _publish_past_validator(bench, self.artifact, blob, payload)


def _damaged(artifact: str, rows: list[dict[str, Any]], variant: str, share: float) -> list[dict[str, Any]]:
    n = max(1, int(len(rows) * share))
    rows = json.loads(json.dumps(rows))
    if variant == "empty":
        return []
    if variant == "duplicates":
        return rows + rows[:n]
    if variant == "one_item":
        return [rows[0]] * len(rows)
    elements = rows if artifact == "popularity" else [i for r in rows for i in r["items"]]
    for number, element in enumerate(elements[:n] if variant != "negative_count" else elements[:1]):
        if variant == "ghost_ids":
            element["item_id"] = f"ghost-{number:04d}"
        elif variant == "zero_counts":
            element["count"] = 0
        elif variant == "negative_count":
            element["count"] = -element["count"] - 1
    return rows


def _publish_past_validator(bench: Bench, kind: str, old: dict[str, Any], payload: list[Any]) -> None:
    window = old["window"]
    artifact = formats.build_artifact(kind, bench.tenant, bench.surface, window["start"], window["end"], payload,
                                      segment=old.get("segment") or "")
    version = artifact["build"]["version"]
    bench.store.put(blob_key(bench.tenant, bench.surface, kind, version), formats.artifact_bytes(artifact))
    uri = bench.store.uri(blob_key(bench.tenant, bench.surface, kind, version))
    record = formats.record_dict(bench.tenant, bench.surface, kind, version, uri, window["start"], window["end"],
                                 datetime.now(UTC))
    bench.store.put(record_key(bench.tenant, bench.surface, kind, version), formats.record_bytes(record))
    manifest = bench.manifest()
    manifest["current"][kind] = uri
    manifest["updated_at"] = formats.rfc3339(datetime.now(UTC).replace(microsecond=0))
    bench.write_manifest(manifest)


@dataclass
class Unreadable:
    """The current ``artifact`` blob replaced by a directory, a FIFO, or the first half of its bytes."""

    artifact: str  # popularity | cooc
    how: str  # directory | fifo | truncated
    kind = "blob unreadable"

    def apply(self, bench: Bench) -> None:
        path = bench.blob_path(self.artifact)
        if bench.current_blob(self.artifact) is None:
            return  # an earlier incident of the case already broke it
        data = path.read_bytes()
        path.unlink()
        if self.how == "directory":
            path.mkdir()
        elif self.how == "fifo":
            os.mkfifo(path)
        else:
            path.write_bytes(data[: len(data) // 2])
        self.path = path

    def release(self) -> None:
        """Let every reader still waiting on the FIFO go (a writer opens and closes it: they read an empty blob), so
        that the service stops at once when the stack is reset."""
        path = getattr(self, "path", None)
        if self.how != "fifo" or path is None:
            return
        for _ in range(20):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # ENXIO: no reader is waiting (any more)
                return
            time.sleep(0.05)


@dataclass
class OldData:
    """The pipeline has not published for ``days`` days: the manifest names the versions of that many days before
    the newest, with the publish time they had."""

    days: int
    kind = "old data"

    def apply(self, bench: Bench) -> None:
        manifest = bench.manifest()
        end = None
        for kind in manifest["current"]:
            folder = bench.raw.key_path(f"registry/records/{bench.tenant}/{bench.surface}/{kind}")
            records = sorted((json.loads(p.read_text()) for p in folder.glob("*.json")),
                             key=lambda r: r["Window"]["End"])
            chosen = records[max(0, len(records) - 1 - self.days)]
            manifest["current"][kind] = chosen["URI"]
            end = chosen["Window"]["End"]
        day = datetime.fromisoformat(str(end).replace("Z", "+00:00")) - timedelta(days=1)
        manifest["updated_at"] = formats.rfc3339(publish_time(day.date()))
        bench.write_manifest(manifest)


@dataclass
class AdminPeer:
    """The runbooks reach the service through a peer on 127.0.0.1 whose admin API answers 503, or slowly."""

    mode: str  # 503 | slow
    kind = "admin api"

    def apply(self, bench: Bench) -> None:
        bench.peer = self.mode


# --- strategies -----------------------------------------------------------------------------------------------

GHOST_IDS = ("sku-9999", "sku-00O7", "SKU-0001", "sku-0001 ", "sku-01200")


def item_targets() -> st.SearchStrategy[list[str]]:
    few = st.lists(st.sampled_from(CATALOG_IDS + list(GHOST_IDS)), min_size=1, max_size=4, unique=True)
    many = st.builds(lambda n, seed: random.Random(seed).sample(CATALOG_IDS, n), st.integers(1, len(CATALOG_IDS)),
                     st.integers(0, 99))
    return st.one_of(few, many)


def _window(now: datetime, which: str) -> dict[str, str]:
    z = lambda t: formats.rfc3339(t.replace(microsecond=0))  # noqa: E731
    return {"none": {}, "active": {"valid_from": z(now - timedelta(days=1)), "valid_until": z(now + timedelta(days=1))},
            "expired": {"valid_from": z(now - timedelta(days=3)), "valid_until": z(now - timedelta(days=1))},
            "future": {"valid_from": z(now + timedelta(days=1)), "valid_until": z(now + timedelta(days=3))}}[which]


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    """One rule of any action the suite has, with a random target, scope, time window and priority."""
    action = draw(st.sampled_from(("block", "pin", "boost")))
    target = draw(st.sampled_from(("item", "tag", "brand", "category")))
    rule: dict[str, Any] = {"action": action, "target_type": target}
    if target == "item":
        rule["item_ids"] = draw(item_targets())
    else:
        known = {"tag": TAGS, "brand": BRANDS, "category": CATEGORIES}[target]
        rule["target_key"] = draw(st.sampled_from((*known, "no-such-" + target)))
    if (surface := draw(st.sampled_from((None, "home", "search")))) is not None:
        rule["surface"] = surface
    if (segment := draw(st.sampled_from((None, "default", "vip")))) is not None:
        rule["segment"] = segment
    rule.update(_window(datetime.now(UTC), draw(st.sampled_from(("none", "active", "expired", "future")))))
    rule["priority"] = draw(st.integers(-5, 50))
    if not draw(st.booleans() | st.just(True)):
        rule["enabled"] = False
    if action == "boost":
        rule["boost_value"] = draw(st.sampled_from((1, 5, 100, -1000, 1e6)))
    if action == "pin" and draw(st.booleans()):
        rule["max_pins"] = draw(st.integers(1, 3))
    return rule


def configs() -> st.SearchStrategy[SetConfig]:
    weight = st.sampled_from((0.0, 0.5, 1.0, 2.0, 1e6, 1e300))
    weights = st.dictionaries(st.sampled_from(("pop", "cooc", "emb")), weight, min_size=1, max_size=3)
    return st.builds(SetConfig, weights=st.none() | weights, max_k=st.none() | st.integers(1, 200),
                     extra=st.none() | st.sampled_from(("experiment", "limit")), wrap=st.booleans())


def incidents() -> st.SearchStrategy[Any]:
    """One incident of any kind."""
    return st.one_of(
        st.builds(AddRules, st.lists(rules(), min_size=1, max_size=3)),
        st.just(WrapRules()),
        configs(),
        st.builds(BadContents, st.sampled_from(("popularity", "cooc")),
                  st.sampled_from(("duplicates", "ghost_ids", "zero_counts", "negative_count", "empty", "one_item")),
                  st.sampled_from((0.1, 0.3, 0.9))),
        st.builds(Unreadable, st.sampled_from(("popularity", "cooc")),
                  st.sampled_from(("directory", "fifo", "truncated"))),
        st.builds(OldData, st.integers(1, 4)),
        st.builds(AdminPeer, st.sampled_from(("503", "slow"))),
    )


@dataclass
class Case:
    """What one example breaks: a surface, up to two incidents at once (none: the quiet case), and the runbook a
    quiet case is judged by."""

    tenant: str
    surface: str
    incidents: list[Any]
    quiet_runbook: str


def cases() -> st.SearchStrategy[Case]:
    return st.builds(lambda where, found, quiet: Case(where[0], where[1], found, quiet),
                     st.sampled_from(SURFACES), st.lists(incidents(), max_size=2),
                     st.sampled_from(("empty-recs", "rollback-config-rules", "service-not-ready")))
