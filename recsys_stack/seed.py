"""The stack's starting state: two tenants, two surfaces each, five published days and an admin history.

Every surface gets the days D-5..D-1 (D = today, UTC) published with the real publisher, each earlier day stamped
as if the daily job had run at 01:30 UTC the morning after, the newest stamped now so that the manifest is fresh.
Each tenant gets three config and three rules versions with backdated audit entries, so that every rollback runbook
has somewhere to go back to from the first minute.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

TENANTS: dict[str, tuple[str, ...]] = {"demo": ("home", "search"), "acme": ("home", "search")}
HISTORY_DAYS = 5
# The daily job's usual run time after the end of the day it covers.
PUBLISH_DELAY = timedelta(minutes=90)
SEED_ACTOR = {"actor_sub": "recsys-stack", "actor_type": "system"}

# Oldest first; the last one is current. Each step is a plausible change an operator would want to undo.
CONFIG_HISTORY: tuple[dict, ...] = (
    {"weights": {"pop": 1.0, "cooc": 0.0, "emb": 0.0}, "flags": {}, "limits": {"max_k": 200}, "algo": "popularity"},
    {
        "weights": {"pop": 1.0, "cooc": 0.5, "emb": 0.0}, "flags": {"cooc_enabled": True}, "limits": {"max_k": 200},
        "algo": "blend",
    },
    {
        "weights": {"pop": 1.0, "cooc": 0.8, "emb": 0.0}, "flags": {"cooc_enabled": True}, "limits": {"max_k": 100},
        "algo": "blend",
    },
)
RULES_HISTORY: tuple[list, ...] = (
    [],
    [{"action": "block", "target_type": "item", "item_ids": ["sku-0007"], "priority": 10, "enabled": True}],
    [
        {"action": "block", "target_type": "item", "item_ids": ["sku-0007"], "priority": 10, "enabled": True},
        {
            "action": "boost", "target_type": "category", "target_key": "books", "boost_value": 5,
            "priority": 5, "enabled": True,
        },
    ],
)
# Days before now at which each version above was written (matches the order of the lists).
HISTORY_AGES = (timedelta(days=5, hours=2), timedelta(days=3, hours=4), timedelta(days=1, hours=6))


def history_days(today: date) -> list[date]:
    """The seeded days, oldest first: D-5 .. D-1."""
    return [today - timedelta(days=n) for n in range(HISTORY_DAYS, 0, -1)]


def publish_time(day: date) -> datetime:
    """When the daily job would have published ``day``: the end of the day plus the usual delay."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) + PUBLISH_DELAY


def seed_artifacts(store, root: Path, now: datetime | None = None) -> list[dict]:
    """Publish the history of every surface; returns the run logs."""
    from .publisher import publish

    now = (now or datetime.now(UTC)).astimezone(UTC)
    runs = []
    days = history_days(now.date())
    for tenant, surfaces in TENANTS.items():
        for surface in surfaces:
            for day in days:
                stamp = now if day == days[-1] else min(publish_time(day), now)
                runs.append(publish(store, Path(root), tenant=tenant, surface=surface, day=day, now=stamp))
    return runs


def seed_admin(db_path: Path, now: datetime | None = None) -> dict[str, dict[str, str]]:
    """Write the config and rules history of every tenant; returns the current versions by tenant and kind."""
    from .service.adminstore import AdminStore

    now = (now or datetime.now(UTC)).astimezone(UTC)
    admin = AdminStore(Path(db_path))
    current: dict[str, dict[str, str]] = {}
    try:
        for tenant in TENANTS:
            admin.ensure_tenant(tenant)
            for kind, history in (("config", CONFIG_HISTORY), ("rules", RULES_HISTORY)):
                for doc, age in zip(history, HISTORY_AGES, strict=True):
                    version, _ = admin.put(tenant, kind, doc, occurred_at=now - age, **SEED_ACTOR)
                current.setdefault(tenant, {})[kind] = version
    finally:
        close = getattr(admin, "close", None)
        if close is not None:
            close()
    return current


def seed_evaluation(root: Path) -> None:
    """A clean evaluation dataset (exposures, outcomes, assignments) for every surface, as a deployment logs them."""
    from .evalgen import generate

    for tenant, surfaces in TENANTS.items():
        for surface in surfaces:
            generate(Path(root) / "eval" / tenant / surface, "clean", tenant=tenant, surface=surface)


def seed(store, root: Path, db_path: Path, now: datetime | None = None) -> None:
    """Seed artifacts and admin documents for every tenant, and a clean evaluation dataset for every surface."""
    seed_artifacts(store, root, now)
    seed_admin(db_path, now)
    seed_evaluation(root)
