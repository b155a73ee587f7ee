"""mkdocs-macros module: renders each runbook's how-to page from its spec (``{{ runbook_page("empty-recs") }}``).

The spec is the single source: symptoms, the decision tree (as a Mermaid flowchart), each step with its command
and notebook cell, parameters, verification, the drill CI runs and read-next all come from ``runbooks/ID.yaml``.
The notebooks are copied into the built site so that each page links to its own.
"""

from __future__ import annotations

import functools
import importlib
import shutil
from pathlib import Path

import yaml

from handbook_site import drills
from recsys_checks.runbooks.decision import Cause
from recsys_checks.runbooks.spec import RunbookSpec, load_all, load_spec, notebooks_dir

ROOT = Path(__file__).resolve().parents[1]
_ROLE = {"check": "check", "info": "context", "diagnose": "decision", "act": "fix", "verify": "verification"}


def _label(text: str) -> str:
    """Text safe inside a Mermaid ``["..."]`` label."""
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;").replace("`", "")


_NO_LEVER = "no lever in this runbook"
DRILL_STATUS_PAGE = "reference/drill-status.md"
# A runbook page's weight in the site's search (Material's ``search.boost``), against the explanations and references
# that share its words: a reader who types a symptom wants the runbook (tests/docs/test_browser.py checks each one).
RUNBOOK_SEARCH_BOOST = 2


def family(row: Cause) -> str:
    """The branch of the decision tree a row hangs from: its lever, else the runbook it hands off to."""
    if row.lever is not None:
        return row.lever.describe()
    if row.hand_off is not None:
        return f"follow {row.hand_off.runbook}"
    return _NO_LEVER


def page_commands(spec: RunbookSpec, row: Cause) -> list[dict[str, str]]:
    """The dry-run and apply commands of a row's lever as the page shows them (placeholders for what the run
    supplies); empty for a row with no lever."""
    if row.lever is None:
        return []
    return row.lever.commands(spec.id, "{tenant}", "{surface}")


def flowchart(spec: RunbookSpec) -> str:
    """The decision tree as Mermaid: the causes grouped by what answers them (a lever, a hand-off, a follow-up) and
    drawn left to right, a handful of rows whatever the number of causes, so that the diagram fits a page's width
    at its natural size and its labels stay readable."""
    lines = ["```mermaid", '%%{init: {"flowchart": {"rankSpacing": 40}}}%%', "flowchart LR", '  D{"cause?"}',
             '  D -->|"nothing wrong"| H(["healthy"])']
    families: dict[str, list[str]] = {}
    for row in sorted(spec.decision, key=lambda r: (r.lever is None, r.hand_off is None)):
        families.setdefault(family(row), []).append(row.cause)
    for n, (name, causes) in enumerate(families.items()):
        listed = "<br/>".join(_label(c) for c in causes)
        lines.append(f'  D --> G{n}["{_label(name)}"] --- K{n}["{listed}"]')
    lines.append("```")
    return "\n".join(lines)


def lever_commands(spec: RunbookSpec) -> list[str]:
    """The act step's section of the page: per lever, the causes it answers, its dry run, then its apply; then the
    causes with no lever here and what to do for each."""
    out = ["The lever depends on the cause the diagnosis named (its run record says which, with these commands "
           "filled in). By hand: run the dry run, read the plan it prints, then apply exactly that plan with the id "
           "it printed in place of `{plan}`: if the deployment changed since, the apply exits 3 and changes "
           "nothing. `{kind}`, `{to}` and the like are what the run record's `commands` fill in.", ""]
    grouped: dict[tuple[str, ...], list[Cause]] = {}
    for row in spec.decision:
        commands = page_commands(spec, row)
        if commands:
            grouped.setdefault(tuple(c["dry_run"] for c in commands), []).append(row)
    for _, same in grouped.items():
        causes = ", ".join(f"`{row.cause}`" for row in same)
        out += [f"**{causes}**: {same[0].lever.describe()}.", ""]  # type: ignore[union-attr]
        for command in page_commands(spec, same[0]):
            out += ["Dry run (changes nothing):", "", "```bash", command["dry_run"], "```", "",
                    "Apply the plan you read:" if "--plan-id" in command["apply"] else "Apply:", "", "```bash",
                    command["apply"], "```", ""]
    none = [row for row in spec.decision if row.lever is None]
    if none:
        out += ["No lever in this runbook:", ""]
        out += [f"- `{row.cause}`: {row.what_to_do}" for row in none]
        out.append("")
    return out


def causes_glossary() -> str:
    """Every cause any runbook can name, with the runbooks that name it and when it holds (the first one's words)."""
    seen: dict[str, list[tuple[RunbookSpec, Cause]]] = {}
    for spec in load_all():
        for row in spec.decision:
            seen.setdefault(row.cause, []).append((spec, row))
    rows = ["| cause | when | runbooks |", "|---|---|---|"]
    for cause in sorted(seen):
        (first, row), *_ = seen[cause]
        where = ", ".join(f"[{spec.id}](../how-to/runbooks/{spec.id}.md)" for spec, _ in seen[cause])
        rows.append(f"| `{cause}` | {row.when.replace('|', '/')} | {where} |")
    return "\n".join(rows)


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
    out = [f"# Runbook: {spec.title}", ""]
    out += [f'!!! tip "Run it ({spec.layer} layer)"',
            f"    From a shell: `recsys-checks runbook run {spec.id} -p tenant=demo -p surface=home` is a dry run "
            "that changes nothing; add `--execute` to let the fix step apply its plan.",
            "",
            f"    In Jupyter: open `notebooks/{spec.id}.ipynb` "
            f'(<a href="../../../notebooks/{spec.id}.ipynb" download>download</a>), set the parameters cell, run all.',
            "", spec.summary, "", "## Symptoms", "", "Open this runbook when you see one of these:", ""]
    # A list, not headings: the table of contents stays the page's sections; the symptoms are the page's search tags
    # (runbook_page), so that a reader who types what they see finds this runbook first (tests/docs/test_browser.py).
    out += [f"- {s}" for s in spec.symptoms]
    if spec.alerts:
        out += ["", "Alerts that lead here: " + ", ".join(f"`{a}`" for a in spec.alerts) + "."]
    out += ["", "## What healthy means", "", "The runbook checks these directly, whatever the cause; it says "
            "`healthy` only when every check step read its target and each holds. A step that could not read its "
            "target makes the run `inconclusive`; a failed invariant that no cause below explains is "
            "`action-required` with cause `unexplained` ([the verdict rule](../../reference/runbook-spec.md#verdicts)).",
            "", "| invariant | checked by |", "|---|---|"]
    out += [f"| {h['invariant']} | step `{h['step']}` |" for h in spec.healthy]
    out += ["", "## Decision tree", "", "| cause | when | what to do |", "|---|---|---|"]
    out += [f"| `{row.cause}` | {row.when.replace('|', '/')} | {row.what_to_do.replace('|', '/')} |"
            for row in spec.decision]
    out += ["", "Each cause the diagnosis can name, in this order; the run record names the one it found, with its "
            "evidence.", ""]
    if any(s.role == "act" for s in spec.steps):
        out += ["The commands of each lever are under [Pull the lever](#" + _act_anchor(spec) + ").", ""]
    out += ['??? abstract "The same tree as a diagram: the causes grouped by what answers them"', "",
            *("    " + line if line else "" for line in flowchart(spec).splitlines()), ""]
    out += ["## Steps", "", "Each step is one cell of the notebook and one command you can also run by hand "
            "(with your tenant and surface in place of `{tenant}` and `{surface}`).", ""]
    for n, step in enumerate(spec.steps, 1):
        mark = " — changes the deployment only with `--execute`" if step.mutates else ""
        out += [f"### {n}. {step.title}", "", f"*{_ROLE[step.role]}{mark}.* {step.why}", ""]
        if step.role == "act":
            out += lever_commands(spec)
        elif step.command:
            out += ["```bash", step.command, "```", ""]
        out += [f"Notebook cell `step:{step.id}`: `run.step({step.id!r}, {step.function})`", ""]
    out += picture_section(spec)
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


PICTURES_DIR = Path(__file__).resolve().parents[1] / "docs" / "pictures"
# Pictures drawn outside a runbook's steps, by the alert receiver on its incident page (recsys_checks.alerts.render).
RECEIVER_DRAWS = {"freshness": "the alert receiver's triage of a staleness alert, on the incident page"}


def pictures_table() -> str:
    """The reference table of the pictures: each kind, its figure data function, the steps that draw it (the
    drawing module's ``DRAWN_BY``) and what it shows (its ``SHOWS``, the runbook pages' captions)."""
    from recsys_checks.runbooks import pictures

    rows = ["| picture | figure data | drawn by | shows |", "|---|---|---|---|"]
    for kind in pictures.KINDS:
        steps = [f"`{function}`" for function, drawn in pictures.DRAWN_BY.items() if drawn == kind]
        steps += [RECEIVER_DRAWS[kind]] if kind in RECEIVER_DRAWS else []
        rows.append(f"| {kind} | `{kind}_figure` | {', '.join(steps)} | {pictures.SHOWS[kind]} |")
    return "\n".join(rows)


def picture_section(spec: RunbookSpec, directory: Path = PICTURES_DIR) -> list[str]:
    """The pictures the runbook's steps draw, each with an example drawn at build time from figure data captured
    in a drill (``docs/pictures/<kind>.json``, by ``scripts/capture_pictures.py``), so the example is what the
    current code draws."""
    import base64

    from recsys_checks.runbooks import pictures

    kinds: dict[str, list[str]] = {}
    for step in spec.steps:
        kind = pictures.DRAWN_BY.get(step.function)
        if kind:
            kinds.setdefault(kind, []).append(step.id)
    if not kinds:
        return []
    out = ["## Pictures", "", "Where a picture is faster read than a table, the step draws one under its table in "
           "the executed notebook (and so in the receiver's HTML of the notebook). The examples below come from a "
           "drill on the local stack.", ""]
    for kind, steps in kinds.items():
        path = directory / f"{kind}.json"
        image = base64.b64encode(_example_svg(str(path), path.stat().st_mtime_ns).encode("utf-8")).decode("ascii")
        where = ", ".join(f"`step:{s}`" for s in steps)
        out += [f"**{kind.capitalize()}** ({where}): {pictures.SHOWS[kind]}.", "",
                f'<img alt="example {kind} picture from a drill" src="data:image/svg+xml;base64,{image}">', ""]
    return out


@functools.lru_cache(maxsize=32)
def _example_svg(path: str, mtime_ns: int) -> str:  # noqa: ARG001 - the file's time is the cache key
    """The example picture drawn from a captured figure file, once per version of the file in a process (every page
    that shows the kind, and every render of the page, reuses it)."""
    import json

    from recsys_checks.runbooks import pictures

    return pictures.svg(json.loads(Path(path).read_text(encoding="utf-8")))

def verdict_table() -> str:
    """Every verdict a run can end with, its exit code and what it means (the verdict rule's own declaration)."""
    from recsys_checks.runbooks.verdict import OK_VERDICTS, VERDICT_MEANINGS, VERDICTS

    rows = ["| verdict | exit | meaning |", "|---|---|---|"]
    rows += [f"| `{v}` | `{0 if v in OK_VERDICTS else 1}` | {VERDICT_MEANINGS[v]} |" for v in VERDICTS]
    return "\n".join(rows)


def define_env(env) -> None:  # noqa: ANN001 - the mkdocs-macros hook
    env.macro(alerts_table)
    env.macro(verdict_table)
    env.macro(pictures_table)
    env.macro(checklist_tables)
    env.macro(alert_specs_rows)
    env.macro(drill_status)
    env.macro(causes_glossary)
    importlib.import_module("handbook_site.symptoms").define_env(env)  # {{ symptom_table() }}
    importlib.import_module("handbook_site.propertycounts").define_env(env)  # {{ incident_property_counts() }}

    @env.macro
    def runbook_page(runbook_id: str) -> str:
        page = getattr(env, "page", None)
        spec = load_spec(runbook_id)
        if page is not None:  # Material's search reads the boost from the page's metadata, as from front matter
            page.meta.setdefault("search", {}).setdefault("boost", RUNBOOK_SEARCH_BOOST)
            # The symptoms as the page's search tags: indexed with the weight of a title, so that a reader who types
            # what they see finds this runbook first, while the page shows them as a plain list.
            page.meta["tags"] = list(spec.symptoms)
        return render(spec)

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
