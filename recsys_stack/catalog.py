"""The stack's item catalog: 120 deterministic items with tags, brand and category.

The service uses it for tag/brand/category rules and constraints, the event generator to decide what gets shown.
It is computed, not random, so every run of the stack (and every test) sees the same catalog.
"""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = ("books", "music", "games", "outdoor", "kitchen", "toys")

_BRANDS: dict[str, tuple[str, ...]] = {
    "books": ("inkwell", "paperlane"),
    "music": ("soundforge", "tempo"),
    "games": ("pixelworks", "dicehouse"),
    "outdoor": ("trailmark", "summit"),
    "kitchen": ("copperpot", "freshcut"),
    "toys": ("brickbox", "wonderkin"),
}

_CATEGORY_TAGS: dict[str, tuple[str, ...]] = {
    "books": ("fiction", "nonfiction", "kids"),
    "music": ("vinyl", "jazz", "rock"),
    "games": ("board", "video", "puzzle"),
    "outdoor": ("camping", "hiking", "cycling"),
    "kitchen": ("cookware", "baking", "knives"),
    "toys": ("kids", "puzzle", "outdoor-play"),
}

# Cross-cutting tags give constraints (max_per_tag, forbidden_tags) something to bite on across categories.
_SHARED_TAGS: tuple[str, ...] = ("new", "sale", "bestseller", "gift")

ITEM_COUNT = 120


def _item(n: int) -> dict:
    category = CATEGORIES[(n - 1) % len(CATEGORIES)]
    brands = _BRANDS[category]
    own = _CATEGORY_TAGS[category]
    tags = [own[(n // len(CATEGORIES)) % len(own)]]
    if n % 3 == 0:
        tags.append(_SHARED_TAGS[(n // 3) % len(_SHARED_TAGS)])
    if n % 7 == 0:
        tags.append("gift" if "gift" not in tags else "new")
    return {
        "item_id": f"sku-{n:04d}",
        "tags": tags,
        "brand": brands[(n // len(CATEGORIES)) % len(brands)],
        "category": category,
    }


ITEMS: list[dict] = [_item(n) for n in range(1, ITEM_COUNT + 1)]
BY_ID: dict[str, dict] = {item["item_id"]: item for item in ITEMS}
TAGS: tuple[str, ...] = tuple(sorted({tag for item in ITEMS for tag in item["tags"]}))
BRANDS: tuple[str, ...] = tuple(sorted({item["brand"] for item in ITEMS}))
