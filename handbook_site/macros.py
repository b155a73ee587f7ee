"""mkdocs-macros module: renders each runbook's how-to page from its spec (``{{ runbook_page("empty-recs") }}``).

The spec is the single source: symptoms, the decision tree (as a Mermaid flowchart), each step with its command
and notebook cell, parameters, verification, the drill CI runs and read-next all come from ``runbooks/ID.yaml``.
The notebooks are copied into the built site so that each page links to its own.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import yaml

from handbook_site import drills
from recsys_checks.runbook import RunbookSpec, load_all, load_spec, notebooks_dir

ROOT = Path(__file__).resolve().parents[1]
_ROLE = {"check": "check", "info": "context", "diagnose": "decision", "act": "fix", "verify": "verification"}


def _label(text: str) -> str:
    """Text safe inside a Mermaid ``["..."]`` label."""
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;").replace("`", "")


def flowchart(spec: RunbookSpec) -> str:
    lines = ["```mermaid", "flowchart TD"]
    checks = [s for s in spec.steps if s.role in ("check", "info")]
    first = _label(spec.symptoms[0]) if spec.symptoms else _label(spec.title)
    lines.append(f'  S["{first}"] --> C["{_label(" · ".join(s.title for s in checks))}"]')
    lines.append('  C --> D{"What is the cause?"}')
    lines.append('  D -->|"nothing wrong"| H(["healthy: nothing to do"])')
    for n, d in enumerate(spec.decision):
        lines.append(f'  D -->|"{_label(d["cause"])}"| K{n}["{_label(d["when"])}"]')
        lines.append(f'  K{n} --> L{n}["{_label(d["lever"])}"]')
    lines.append("```")
    return "\n".join(lines)


def _verified(spec: RunbookSpec, results: Path) -> tuple[str, list[str]]:
    """A one-line status for the top of the page and the table of each drill's last pass."""
    passed = drills.read_results(spec.id, results)
    cases = [(d.fault, store) for d in spec.drills for store in d.stores]
    rows = ["| fault | store | last passed | commit | verdicts (healthy, dry run, execute, rerun) |",
            "|---|---|---|---|---|"]
    for fault, store in cases:
        doc = passed.get((fault, store))
        if doc is None:
            rows.append(f"| `{fault}` | {store} | **not verified** | | |")
            continue
        commit = (doc.get("commit") or "")[:12] or "unknown"
        if doc.get("modified"):
            commit += " (with local changes)"
        verdicts = ", ".join(str(v.get("verdict")) for v in (doc.get("verdicts") or {}).values())
        rows.append(f"| `{fault}` | {store} | {doc.get('date')} | `{commit}` | {verdicts} |")
    done = [passed[c] for c in cases if c in passed]
    if not cases:
        line = "**Not verified**: this runbook has no drill."
    elif not done:
        line = "**Not verified**: no drill of this runbook has passed in the build that made this page."
    else:
        latest = max(doc["date"] for doc in done)
        line = (f"**Verified** {len(done)} of {len(cases)} drill(s) passed; the latest on {latest}"
                + ("." if len(done) == len(cases) else "; the others are **not verified**."))
    return line, rows


def render(spec: RunbookSpec, results: Path = drills.RESULTS_DIR) -> str:
    status, verified_rows = _verified(spec, results)
    out = [f"# Runbook: {spec.title}", ""]
    out += [f'!!! tip "Run it ({spec.layer} layer)"',
            f"    From a shell: `recsys-checks runbook run {spec.id} -p tenant=demo -p surface=home` is a dry run "
            "that changes nothing; add `--execute` to let the fix step apply its plan.",
            "",
            f"    In Jupyter: open `notebooks/{spec.id}.ipynb` "
            f'(<a href="../../../notebooks/{spec.id}.ipynb" download>download</a>), set the parameters cell, run all.',
            "", status + " ([Drill](#drill))", "", spec.summary, "", "## Symptoms", ""]
    out += [f"- {s}" for s in spec.symptoms]
    if spec.alerts:
        out += ["", "Alerts that lead here: " + ", ".join(f"`{a}`" for a in spec.alerts) + "."]
    out += ["", "## What healthy means", "", "The runbook checks these directly, whatever the cause; it says "
            "`healthy` only when every check step read its target and each holds. A step that could not read its "
            "target makes the run `inconclusive`; a failed invariant that no cause below explains is "
            "`action-required` with cause `unexplained` ([the verdict rule](../../reference/runbook-spec.md#verdicts)).",
            "", "| invariant | checked by |", "|---|---|"]
    out += [f"| {h['invariant']} | step `{h['step']}` |" for h in spec.healthy]
    out += ["", "## Decision tree", "", flowchart(spec), ""]
    out += ["| cause | when | lever |", "|---|---|---|"]
    out += [f"| `{d['cause']}` | {d['when']} | {d['lever']} |" for d in spec.decision]
    out += ["", "## Steps", "", "Each step is one cell of the notebook and one command you can also run by hand "
            "(with your tenant and surface in place of `{tenant}` and `{surface}`).", ""]
    for n, step in enumerate(spec.steps, 1):
        mark = " — changes the deployment only with `--execute`" if step.mutates else ""
        out += [f"### {n}. {step.title}", "", f"*{_ROLE[step.role]}{mark}.* {step.why}", ""]
        if step.command:
            out += ["```bash", step.command, "```", ""]
        out += [f"Notebook cell `step:{step.id}`: `run.step({step.id!r}, {step.function})`", ""]
    out += ["## Parameters", "", "Set with `-p NAME=VALUE` or in the notebook's parameters cell. Credentials are "
            "never parameters: they come from the environment.", "", "| name | type | default | meaning |",
            "|---|---|---|---|"]
    for p in spec.parameters.values():
        default = f"`{p.default!r}`"
        out.append(f"| `{p.name}` | {p.described_type} | {default} | {p.help.replace('|', '/')} |")
    if spec.manual:
        out += ["", "## Checked by hand", "", "| item | what to look at |", "|---|---|"]
        out += [f"| {m['item']} | {m['look_at']} |" for m in spec.manual]
    out += ["", "## Verification", "", spec.verification, ""]
    out += ["## Drill", "", "CI runs this runbook against the local stack with each fault below injected "
            "(`make test`): a healthy run finds nothing, a dry run finds the cause and changes nothing, "
            "`--execute` ends as shown, and a run after a fix finds nothing again.", "",
            "| fault | stores | dry run | with `--execute` |", "|---|---|---|---|"]
    for d in spec.drills:
        cause = f" (`{d.dry_run.cause}`)" if d.dry_run.cause else ""
        out.append(f"| `{d.fault}` | {', '.join(d.stores)} | {d.dry_run.verdict}{cause} | {d.execute.verdict} |")
    out += ["", "### Verified status", "", "When each drill last passed, from the results the drills wrote "
            "(`.drills/`) when this site was built. A drill that fails removes its result, so it shows as not "
            "verified until it passes again.", "", *verified_rows]
    if spec.read_next:
        out += ["", "## Read next", ""]
        out += [f"- [{r['title']}]({r['href']})" for r in spec.read_next]
    return "\n".join(out) + "\n"


def alerts_table() -> str:
    """observability/alerts.yaml as a table: alert, expression, for, severity and the runbook page it links to."""
    doc = yaml.safe_load((ROOT / "observability" / "alerts.yaml").read_text())
    rows = ["| alert | fires when | for | severity | runbook |", "|---|---|---|---|---|"]
    for group in doc["groups"]:
        for rule in group["rules"]:
            expr = " ".join(rule["expr"].split()).replace("|", "\\|")
            url = rule["annotations"]["runbook_url"]
            runbook = url.removeprefix("how-to/runbooks/").strip("/")
            rows.append(f"| `{rule['alert']}` | `{expr}` | {rule.get('for', '0m')} | {rule['labels']['severity']} "
                        f"| [{runbook}](../how-to/runbooks/{runbook}.md) |")
    return "\n".join(rows)


def alert_specs_rows() -> str:
    """One table row per alert a runbook spec names: the alert and the runbooks that list it."""
    named: dict[str, list[str]] = {}
    for spec in load_all():
        for alert in spec.alerts:
            named.setdefault(alert, []).append(spec.id)
    return "\n".join(f"| `{alert}` | " + ", ".join(f"[{r}](../how-to/runbooks/{r}.md)" for r in ids) + " |"
                     for alert, ids in sorted(named.items()))


def checklist_tables(runbook_id: str = "production-readiness") -> str:
    """The checked items of a checklist runbook (title, what passes, command) and its items checked by hand."""
    spec = load_spec(runbook_id)
    rows = ["| area | passes when | command |", "|---|---|---|"]
    for step in spec.steps:
        if step.role != "check":
            continue
        module, name = step.function.rsplit(".", 1)
        doc = getattr(importlib.import_module(f"recsys_checks.steps.{module}"), name).__doc__ or step.why
        passes = " ".join(doc.split()).rstrip(".")
        command = f"`{step.command}`" if step.command else ""
        rows.append(f"| {step.title} | {passes} | {command} |")
    rows += ["", "| area | what to look at |", "|---|---|"]
    rows += [f"| {m['item']} | {m['look_at']} |" for m in spec.manual]
    return "\n".join(rows)


def define_env(env) -> None:  # noqa: ANN001 - the mkdocs-macros hook
    env.macro(alerts_table)
    env.macro(checklist_tables)
    env.macro(alert_specs_rows)

    @env.macro
    def runbook_page(runbook_id: str) -> str:
        return render(load_spec(runbook_id))

    @env.macro
    def runbook_table() -> str:
        rows = ["| runbook | layer | symptoms |", "|---|---|---|"]
        for spec in load_all():
            rows.append(f"| [{spec.title}]({spec.id}.md) | {spec.layer} | {spec.symptoms[0]} |")
        return "\n".join(rows)


def on_post_build(env) -> None:  # noqa: ANN001 - the mkdocs-macros hook
    site = Path(env.conf["site_dir"]) / "notebooks"
    site.mkdir(parents=True, exist_ok=True)
    for notebook in sorted(notebooks_dir().glob("*.ipynb")):
        shutil.copy2(notebook, site / notebook.name)
