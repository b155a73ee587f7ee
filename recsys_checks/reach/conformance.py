"""Does the object store honour conditional writes? The check; its command line is
``python -m recsys_checks.cli.conformance`` (:mod:`recsys_checks.cli.conformance`).

Every action of ``recsys-checks`` relies on them: a rollback replaces the manifest only if it is still the one the
plan read (S3 ``If-Match``), an audit record or a hold marker is created only if it does not exist yet
(``If-None-Match: *``). A store that ignores those headers accepts every write, so a rollback could overwrite a
publish that happened in between. This check writes one small probe object under
``<registry root>/probes/conditional-writes/`` of the configured deployment and tries each kind of write:

1. create a new object with ``If-None-Match: *``: must succeed;
2. create it again with ``If-None-Match: *``: must be refused;
3. replace it with ``If-Match`` and a wrong ETag: must be refused;
4. replace it with ``If-Match`` and its ETag: must succeed.

The probe object is left in place (the tools never delete). :func:`check` raises BadInput for a misconfigured
target and another ChecksError for a store that cannot be used.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from recsys_checks.core.errors import Conflict
from recsys_checks.reach.settings import Target
from recsys_checks.reach.store import TargetStores

PROBE_DIR = "probes/conditional-writes"


def probe_uri(target: Target) -> str:
    return f"{target.registry_root().rstrip('/')}/{PROBE_DIR}/{uuid.uuid4().hex}.json"


def check(target: Target) -> list[tuple[str, bool, str]]:
    """The four writes as (what, as expected, detail); raises ChecksError when the store cannot be used at all."""
    uri = probe_uri(target)
    body = json.dumps({"probe": "conditional-writes", "at": datetime.now(UTC).isoformat()}).encode()
    results: list[tuple[str, bool, str]] = []
    with TargetStores(target) as stores:
        etag = stores.put(uri, body, if_none_match=True)
        results.append(("create with If-None-Match: *", True, f"created {uri}"))
        try:
            stores.put(uri, body + b" ", if_none_match=True)
            results.append(("create again with If-None-Match: *", False, "accepted: the store overwrote the object"))
        except Conflict:
            results.append(("create again with If-None-Match: *", True, "refused"))
        try:
            stores.put(uri, body + b"  ", if_match="0" * 32)
            results.append(("replace with a wrong If-Match", False, "accepted: the store ignored If-Match"))
        except Conflict:
            results.append(("replace with a wrong If-Match", True, "refused"))
        stores.put(uri, body, if_match=etag)
        results.append(("replace with the right If-Match", True, "accepted"))
    return results
