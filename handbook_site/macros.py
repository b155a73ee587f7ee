"""mkdocs-macros module: renders each runbook's how-to page from its spec (``{{ runbook_page("empty-recs") }}``).

The spec is the single source: symptoms, the decision tree (as a Mermaid flowchart), each step with its command
and notebook cell, parameters, verification, the drill CI runs and read-next all come from ``runbooks/ID.yaml``.
The notebooks are copied into the built site so that each page links to its own.
"""

from __future__ import annotations

import importlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from handbook_site import drills
from recsys_checks.runbooks.spec import RunbookSpec, load_all, load_spec, notebooks_dir

ROOT = Path(__file__).resolve().parents[1]
_ROLE = {"check": "check", "info": "context", "diagnose": "decision", "act": "fix", "verify": "verification"}


def _label(text: str) -> str:
    """Text safe inside a Mermaid ``["..."]`` label."""
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;").replace("`", "")


_LEVER_COMMAND = re.compile(r"\s*:?\s*`(recsys-checks [^`]+)`\s*$")
# A lever's family, by the command it runs: the branches of the decision tree when the spec gives commands.
_FAMILIES = (("manifest rollback", "roll back the artifact"), ("rules revert", "revert the config or rules"),
             ("config revert", "revert the config or rules"), ("cache invalidate", "invalidate a cache"))
_NO_LEVER = "no lever in this runbook"
DRILL_STATUS_PAGE = "reference/drill-status.md"
# A runbook page's weight in the site's search (Material's ``search.boost``), against the explanations and references
# that share its words: a reader who types a symptom wants the runbook (tests/docs/test_browser.py checks each one).
RUNBOOK_SEARCH_BOOST = 2


@dataclass(frozen=True)
class Lever:
    """One row of a spec's decision table: the cause, when it holds, the lever in words and its dry-run command."""

    cause: str
    when: str
    text: str
    command: str | None

    @property
    def apply(self) -> str | None:
        """The command that applies the plan a reviewed dry run printed, and only that plan."""
        return f"{self.command} --execute --plan-id {{plan}}" if self.command else None

    @property
    def family(self) -> str:
        if not self.command:
            return _NO_LEVER
        verb = " ".join(self.command.split()[1:3])
        return next((name for prefix, name in _FAMILIES if verb == prefix), verb)


def levers(spec: RunbookSpec) -> list[Lever]:
    """The decision table of a spec. A lever may end with its dry-run command in a code span
    (``...: `recsys-checks rules revert --tenant {tenant} --previous` ``); the page shows that command for the cause,
    and the apply with ``--execute --plan-id``, instead of the act step's one command."""
    out = []
    for d in spec.decision:
        match = _LEVER_COMMAND.search(d["lever"])
        text = d["lever"][:match.start()] if match else d["lever"]
        out.append(Lever(d["cause"], d["when"], text, match.group(1) if match else None))
    return out


def flowchart(spec: RunbookSpec) -> str:
    """The decision tree as Mermaid. With lever commands in the spec, the causes are grouped by the lever they need
    and drawn left to right (the cause, its lever family, the causes in it), a handful of rows whatever the number
    of causes, so that the diagram fits a page's width at its natural size and its labels stay readable."""
    table = levers(spec)
    if any(lever.command for lever in table):
        lines = ["```mermaid", '%%{init: {"flowchart": {"rankSpacing": 40}}}%%', "flowchart LR", '  D{"cause?"}',
                 '  D -->|"nothing wrong"| H(["healthy"])']
        families: dict[str, list[str]] = {}
        for lever in sorted(table, key=lambda lever: lever.family == _NO_LEVER):  # the causes with no lever last
            families.setdefault(lever.family, []).append(lever.cause)
        for n, (family, causes) in enumerate(families.items()):
            listed = "<br/>".join(_label(c) for c in causes)
            lines.append(f'  D --> G{n}["{_label(family)}"] --- K{n}["{listed}"]')
        lines.append("```")
        return "\n".join(lines)
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


def lever_commands(spec: RunbookSpec) -> list[str]:
    """The act step's section of the page when the decision table gives commands: per lever, the causes it answers,
    its dry run, then its apply; then the causes with no lever here."""
    table = levers(spec)
    out = ["By hand, the lever depends on the cause the diagnosis named (its run record says which). Run the dry "
           "run, read the plan it prints, then apply exactly that plan with the id it printed in place of `{plan}`: "
           "if the deployment changed since, the apply exits 3 and changes nothing.", ""]
    grouped: dict[str, list[Lever]] = {}
    for lever in table:
        if lever.command:
            grouped.setdefault(lever.command, []).append(lever)
    for command, same in grouped.items():
        causes = ", ".join(f"`{lever.cause}`" for lever in same)
        out += [f"**{causes}**: {same[0].text.strip()}.", "", "Dry run (changes nothing):", "", "```bash", command,
                "```", "", "Apply the plan you read:", "", "```bash", same[0].apply, "```", ""]
    none = [lever for lever in table if not lever.command]
    if none:
        out += ["No lever in this runbook:", ""]
        out += [f"- `{lever.cause}`: {lever.text.strip()}" for lever in none]
        out.append("")
    return out


def _passed(spec: RunbookSpec, results: Path) -> tuple[list[tuple[str, str]], dict[tuple[str, str], dict]]:
    return [(d.fault, store) for d in spec.drills for store in d.stores], drills.read_results(spec.id, results)


def drill_line(spec: RunbookSpec, results: Path) -> str:
    """The one line a runbook page gives its drills' results: the last result when this build has one, and a link
    to the drill status page, which has the rest."""
    cases, passed = _passed(spec, results)
    link = f"[Drill status](../../{DRILL_STATUS_PAGE}#{spec.id})"
    done = [passed[c] for c in cases if c in passed]
    if not done:
        return f"Drill results: {link}."
    latest = max(doc["date"] for doc in done)
    return f"Drills: {len(done)} of {len(cases)} passed in this build's results, the latest on {latest} ({link})."


def drill_status_rows(spec: RunbookSpec, results: Path = drills.RESULTS_DIR) -> list[str]:
    """One row per drill (fault and store) of a runbook: when it last passed, at which commit, with which verdicts."""
    cases, passed = _passed(spec, results)
    rows = ["| fault | store | last passed | commit | verdicts (healthy, dry run, execute, rerun) |",
            "|---|---|---|---|---|"]
    for fault, store in cases:
        doc = passed.get((fault, store))
        if doc is None:
            rows.append(f"| `{fault}` | {store} | no result in this build | | |")
            continue
        commit = (doc.get("commit") or "")[:12] or "unknown"
        if doc.get("modified"):
            commit += " (with local changes)"
        verdicts = ", ".join(str(v.get("verdict")) for v in (doc.get("verdicts") or {}).values())
        rows.append(f"| `{fault}` | {store} | {doc.get('date')} | `{commit}` | {verdicts} |")
    return rows


def drill_status(results: Path = drills.RESULTS_DIR) -> str:
    """The drill status page's body: per runbook, its drills and the results this build found in ``.drills/``."""
    out = []
    for spec in load_all():
        out += [f"## {spec.title} {{ #{spec.id} }}", "", f"[Runbook page](../how-to/runbooks/{spec.id}.md)", ""]
        out += drill_status_rows(spec, results) if spec.drills else ["This runbook has no drill."]
        out.append("")
    return "\n".join(out)


def render(spec: RunbookSpec, results: Path = drills.RESULTS_DIR) -> str:
    table = levers(spec)
    by_hand = any(lever.command for lever in table)
    out = [f"# Runbook: {spec.title}", ""]
    out += [f'!!! tip "Run it ({spec.layer} layer)"',
            f"    From a shell: `recsys-checks runbook run {spec.id} -p tenant=demo -p surface=home` is a dry run "
            "that changes nothing; add `--execute` to let the fix step apply its plan.",
            "",
            f"    In Jupyter: open `notebooks/{spec.id}.ipynb` "
            f'(<a href="../../../notebooks/{spec.id}.ipynb" download>download</a>), set the parameters cell, run all.',
            "", spec.summary, "", "## Symptoms", "", "Open this runbook when you see one of these:", ""]
    # Each symptom is a heading, so that the site's search weighs its words as a title: a reader who types what
    # they see finds this runbook first (with the page's boost, RUNBOOK_SEARCH_BOOST; tests/docs/test_browser.py).
    out += [f"### {s}" for s in spec.symptoms]
    if spec.alerts:
        out += ["", "Alerts that lead here: " + ", ".join(f"`{a}`" for a in spec.alerts) + "."]
    out += ["", "## What healthy means", "", "The runbook checks these directly, whatever the cause; it says "
            "`healthy` only when every check step read its target and each holds. A step that could not read its "
            "target makes the run `inconclusive`; a failed invariant that no cause below explains is "
            "`action-required` with cause `unexplained` ([the verdict rule](../../reference/runbook-spec.md#verdicts)).",
            "", "| invariant | checked by |", "|---|---|"]
    out += [f"| {h['invariant']} | step `{h['step']}` |" for h in spec.healthy]
    out += ["", "## Decision tree", ""]
    if by_hand:
        out += ["| cause | when | lever |", "|---|---|---|"]
        out += [f"| `{lever.cause}` | {lever.when} | {lever.text.strip()} |" for lever in table]
        out += ["", "The commands of each lever are under [Pull the lever](#" + _act_anchor(spec) + ").", "",
                '??? abstract "The same tree as a diagram: the causes grouped by the lever they need"', "",
                *("    " + line if line else "" for line in flowchart(spec).splitlines()), ""]
    else:
        out += [flowchart(spec), "", "| cause | when | lever |", "|---|---|---|"]
        out += [f"| `{d['cause']}` | {d['when']} | {d['lever']} |" for d in spec.decision]
        out.append("")
    out += ["## Steps", "", "Each step is one cell of the notebook and one command you can also run by hand "
            "(with your tenant and surface in place of `{tenant}` and `{surface}`).", ""]
    for n, step in enumerate(spec.steps, 1):
        mark = " — changes the deployment only with `--execute`" if step.mutates else ""
        out += [f"### {n}. {step.title}", "", f"*{_ROLE[step.role]}{mark}.* {step.why}", ""]
        if step.role == "act" and by_hand:
            out += lever_commands(spec)
        elif step.command:
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
    out += ["", drill_line(spec, results)]
    if spec.read_next:
        out += ["", "## Read next", ""]
        out += [f"- [{r['title']}]({r['href']})" for r in spec.read_next]
    return "\n".join(out) + "\n"


def _act_anchor(spec: RunbookSpec) -> str:
    """The heading id Python-Markdown's toc gives the act step's heading (``### 5. Pull the lever (...)``)."""
    from markdown.extensions.toc import slugify

    n, step = next((n, s) for n, s in enumerate(spec.steps, 1) if s.role == "act")
    return slugify(f"{n}. {step.title}", "-")


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
        doc = getattr(importlib.import_module(f"recsys_checks.runbooks.steps.{module}"), name).__doc__ or step.why
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
    env.macro(drill_status)
    importlib.import_module("handbook_site.symptoms").define_env(env)  # {{ symptom_table() }}

    @env.macro
    def runbook_page(runbook_id: str) -> str:
        page = getattr(env, "page", None)
        if page is not None:  # Material's search reads the boost from the page's metadata, as from front matter
            page.meta.setdefault("search", {}).setdefault("boost", RUNBOOK_SEARCH_BOOST)
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
