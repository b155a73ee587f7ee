"""A runbook's notebook, generated from its spec: one parameters cell, one tagged cell per step, one record cell.

``make notebooks`` writes ``notebooks/ID.ipynb`` for every spec; a test fails when a committed notebook differs
from what its spec generates, so the two cannot drift.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from recsys_checks.runbooks.spec import RunbookSpec, load_all, notebooks_dir, runbooks_dir

KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def _literal(value: object) -> str:
    return repr(value)


def _shell(spec: RunbookSpec) -> str:
    """The sentence that says how to read the steps' shell commands, when they name the tenant or the surface."""
    if not any("{tenant}" in (s.command or "") or "{surface}" in (s.command or "") for s in spec.steps):
        return ""
    return (" Each step also shows the command that runs it from a shell: type it with the tenant and surface of the "
            "parameters below in place of {tenant} and {surface}.")


def build(spec: RunbookSpec) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"},
                   "recsys_runbook": {"id": spec.id, "generated_from": f"runbooks/{spec.id}.yaml"}}
    cells = [nbformat.v4.new_markdown_cell(
        f"# Runbook: {spec.title}\n\n{spec.summary}\n\n"
        "Set the parameters below and run every cell. With `execute = False` (the default) nothing is changed: "
        "mutating steps only show their plan. Credentials come from the environment (`RECSYS_API_KEY`, the S3 "
        f"keys), never from a parameter. The last cell writes the run record and prints the verdict.{_shell(spec)}\n\n"
        f"*Generated from `runbooks/{spec.id}.yaml` by `make notebooks`: edit the spec, not this notebook.*")]
    lines = []
    for name, p in spec.parameters.items():
        comment = f"  # {p.type}: {p.help}" if p.help else f"  # {p.type}"
        lines.append(f"{name} = {_literal(p.default)}{comment}")
    cells.append(nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["parameters"]}))
    modules = sorted({s.function.rsplit(".", 1)[0] for s in spec.steps})
    given = ", ".join(f"{n}={n}" for n in spec.parameters)  # every parameter, as the runner passes them
    setup = (f"from recsys_checks import RunbookRun\nfrom recsys_checks.runbooks.steps import {', '.join(modules)}\n\n"
             f"run = RunbookRun({spec.id!r}, {given})")
    cells.append(nbformat.v4.new_code_cell(setup, metadata={"tags": ["setup"]}))
    for n, step in enumerate(spec.steps, 1):
        kind = " (changes the deployment only when `execute = True`)" if step.mutates else ""
        command = f"\n\nFrom a shell: `{step.command}`" if step.command else ""
        cells.append(nbformat.v4.new_markdown_cell(f"## {n}. {step.title}{kind}\n\n{step.why}{command}"))
        cells.append(nbformat.v4.new_code_cell(f"run.step({step.id!r}, {step.function})",
                                               metadata={"tags": [f"step:{step.id}"]}))
    cells.append(nbformat.v4.new_markdown_cell("## Verdict and run record"))
    cells.append(nbformat.v4.new_code_cell("record = run.finish()", metadata={"tags": ["record"]}))
    nb.cells = cells
    for n, cell in enumerate(nb.cells):  # stable ids, so that regenerating gives the same bytes
        cell.id = f"{spec.id}-{n}"[:64]
    return nb


def text(spec: RunbookSpec) -> str:
    return json.dumps(nbformat.from_dict(build(spec)), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(directory: Path | None = None) -> list[Path]:
    """Write every spec's notebook; returns the paths written."""
    specs = load_all(runbooks_dir() if directory is None else directory)
    out = notebooks_dir(directory)
    out.mkdir(exist_ok=True)
    written = []
    for spec in specs:
        path = out / f"{spec.id}.ipynb"
        path.write_text(text(spec), encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path | None = None) -> list[str]:
    """Ids whose committed notebook differs from what the spec generates (or is missing)."""
    out = []
    for spec in load_all(runbooks_dir() if directory is None else directory):
        path = notebooks_dir(directory) / f"{spec.id}.ipynb"
        if not path.is_file() or path.read_text(encoding="utf-8") != text(spec):
            out.append(spec.id)
    return out


if __name__ == "__main__":  # pragma: no cover - `make notebooks`
    for written in write_all():
        print(f"wrote {written}")
