"""``python -m recsys_checks.cli.conformance``: does the object store honour conditional writes?

The check is :mod:`recsys_checks.reach.conformance`; this is its command line. Exit codes: 0 honoured, 1 not
honoured, 2 the store cannot be reached or the target is misconfigured. As everywhere in ``recsys-checks``, no
credential from the environment is ever printed, whatever built the message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recsys_checks.core import credentials
from recsys_checks.core.errors import BadInput, ChecksError, Unhealthy
from recsys_checks.reach.conformance import check
from recsys_checks.reach.settings import Target

PROG = "python -m recsys_checks.cli.conformance"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check that the object store of the configured deployment honours conditional writes "
        "(If-None-Match: *, If-Match). Writes one probe object under <registry root>/probes/conditional-writes/.",
    )
    parser.parse_args(argv)
    try:
        results = check(Target.from_env())
    except BadInput as exc:
        print(f"ERROR {credentials.mask(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except ChecksError as exc:
        print(f"ERROR the store cannot be used: {credentials.mask(str(exc))}", file=sys.stderr)
        return BadInput.exit_code  # nothing was observed: could not look
    for what, ok, detail in results:
        print(credentials.mask(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}"))
    honoured = all(ok for _, ok, _ in results)
    print("conditional writes: " + ("honoured" if honoured else "NOT honoured: do not run actions against this store"))
    return 0 if honoured else Unhealthy.exit_code


if __name__ == "__main__":
    sys.exit(main())
