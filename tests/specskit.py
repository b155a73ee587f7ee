"""The runbook specs of the checkout, parsed once per test process.

Parsing a spec's YAML is most of what many tests spend (about 0.1 s of CPU per load_all()), and the checkout's specs
do not change while the tests run. Tests that check loading itself (refusals, other folders) call
``recsys_checks.runbooks.spec.load_spec`` and ``load_all`` directly; the others read these. A spec is frozen: a test
that needs a changed one makes it with ``dataclasses.replace``.
"""

from __future__ import annotations

import functools

from recsys_checks.runbooks.spec import RunbookSpec, load_all


@functools.cache
def all_specs() -> tuple[RunbookSpec, ...]:
    """``load_all()`` of the checkout's runbooks/, in its order."""
    return tuple(load_all())


def spec(runbook_id: str) -> RunbookSpec:
    """The checkout's spec ``runbook_id`` (KeyError when there is none)."""
    return {s.id: s for s in all_specs()}[runbook_id]
