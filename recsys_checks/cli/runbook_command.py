"""The one builder of a ``recsys-checks runbook run`` command line, for the programs that run one or print one: the
alert receiver (its dry runs, and the command it shows to apply a plan), and the handbook's drills.

The option names are :mod:`recsys_checks.cli.commands`' own; a test parses what this builds with that parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def runbook_run_args(runbook: str, params: Mapping[str, object], *, execute: bool = False,
                     plan_id: str | None = None, confirm: str | None = None, reason: str | None = None,
                     out: str | Path | None = None, json: bool = False) -> list[str]:
    """The arguments after ``recsys-checks`` (or ``python -m recsys_checks.cli``): ``runbook run RUNBOOK``, each
    parameter as ``-p NAME=VALUE`` in order, then ``--execute``, ``--plan-id``, ``--confirm``, ``--reason``,
    ``--out`` and ``--json`` as given."""
    args = ["runbook", "run", runbook]
    for name, value in params.items():
        args += ["-p", f"{name}={value}"]
    if execute:
        args.append("--execute")
    for option, value in (("--plan-id", plan_id), ("--confirm", confirm), ("--reason", reason)):
        if value:
            args += [option, value]
    if out is not None:
        args += ["--out", str(out)]
    if json:
        args.append("--json")
    return args
