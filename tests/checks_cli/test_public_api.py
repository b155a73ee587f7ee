"""The public API of recsys_checks: each name is the name of what it exports, and every name resolves."""

from __future__ import annotations

import recsys_checks


def test_every_public_name_is_the_name_of_its_function_or_class():
    """A notebook calls recsys_checks.check_manifest, and that is recsys_checks.manifest.check_manifest."""
    renamed = {name: attr for name, (_, attr) in recsys_checks._PUBLIC.items() if name != attr}
    assert renamed == {}


def test_every_public_name_resolves_and_every_check_follows_one_pattern():
    """Each name in __all__ imports; the read-only checks are all called check_<what>."""
    for name in recsys_checks.__all__:
        value = getattr(recsys_checks, name)
        assert getattr(value, "__name__", name) == name
    checks = {name for name, (module, _) in recsys_checks._PUBLIC.items()
              if module in ("health", "probe", "served_vs_published", "timeline", "freshness")}
    assert checks and all(name.startswith("check_") for name in checks)
