"""Does the object store honour conditional writes? ``python -m recsys_checks.reach.conformance``.

Every action of ``recsys-checks`` relies on them: a rollback replaces the manifest only if it is still the one the
plan read (S3 ``If-Match``), an audit record or a hold marker is created only if it does not exist yet
(``If-None-Match: *``). A store that ignores those headers accepts every write, so a rollback could overwrite a
publish that happened in between. This check writes one small probe object under
``<registry root>/probes/conditional-writes/`` of the configured deployment and tries each kind of write:

1. create a new object with ``If-None-Match: *``: must succeed;
2. create it again with ``If-None-Match: *``: must be refused;
3. replace it with ``If-Match`` and a wrong ETag: must be refused;
4. replace it with ``If-Match`` and its ETag: must succeed.

The probe object is left in place (the tools never delete). Exit codes: 0 honoured, 1 not honoured, 2 the store
cannot be reached or the target is misconfigured.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime

from recsys_checks.core.errors import BadInput, ChecksError, Conflict
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recsys_checks.reach.conformance",
        description="Check that the object store of the configured deployment honours conditional writes "
        "(If-None-Match: *, If-Match). Writes one probe object under <registry root>/probes/conditional-writes/.",
    )
    parser.parse_args(argv)
    try:
        results = check(Target.from_env())
    except BadInput as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        return 2
    except ChecksError as exc:
        print(f"ERROR the store cannot be used: {exc}", file=sys.stderr)
        return 2
    for what, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}")
    honoured = all(ok for _, ok, _ in results)
    print("conditional writes: " + ("honoured" if honoured else "NOT honoured: do not run actions against this store"))
    return 0 if honoured else 1


if __name__ == "__main__":
    sys.exit(main())
