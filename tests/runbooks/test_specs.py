"""Runbook specs: validated on load with errors naming the file and field; notebooks and pages in sync with them."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
import specskit
import yaml

from recsys_checks.core.errors import BadInput
from recsys_checks.runbooks import notebook
from recsys_checks.runbooks.spec import load_spec, notebooks_dir, runbooks_dir
from recsys_stack.faults import FAULTS

ROOT = Path(__file__).resolve().parents[2]
IDS = ["empty-recs", "stale-manifest", "stale-artifacts", "pipeline-failed", "validation-failed", "limit-exceeded",
       "service-not-ready", "rollback-config-rules", "rollback-manifest", "production-readiness", "eval-report-suspect",
       "hold-changes"]


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """A copy of runbooks/ that a test may break."""
    target = tmp_path / "runbooks"
    shutil.copytree(runbooks_dir(), target)
    return target


def _edit(spec_dir: Path, runbook_id: str, change) -> None:
    path = spec_dir / f"{runbook_id}.yaml"
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_every_runbook_exists_with_spec_notebook_and_page():
    """The twelve runbooks each have a spec, a generated notebook and a how-to page."""
    assert set(IDS) <= {s.id for s in specskit.all_specs()}
    for runbook_id in IDS:
        assert (notebooks_dir() / f"{runbook_id}.ipynb").is_file(), runbook_id
        page = ROOT / "docs" / "how-to" / "runbooks" / f"{runbook_id}.md"
        assert page.is_file(), page
        assert f'runbook_page("{runbook_id}")' in page.read_text(), f"{page} does not render its spec"


def test_committed_notebooks_are_what_the_specs_generate():
    """A notebook that drifted from its spec (or was edited by hand) fails: run `make notebooks`."""
    assert notebook.stale() == []


def test_each_spec_step_has_exactly_one_cell_and_each_tagged_cell_a_step():
    """One `step:<id>` cell per spec step, in spec order; a parameters cell first; the record cell last."""
    for spec in specskit.all_specs():
        nb = json.loads((notebooks_dir() / f"{spec.id}.ipynb").read_text())
        tags = [t for c in nb["cells"] for t in (c.get("metadata", {}).get("tags") or [])]
        steps = [t.removeprefix("step:") for t in tags if t.startswith("step:")]
        assert steps == [s.id for s in spec.steps], spec.id
        assert tags[0] == "parameters" and tags[-1] == "record", spec.id
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        for cell in code:
            source = "".join(cell["source"])
            logic = [type(n).__name__ for n in ast.walk(ast.parse(source))
                     if isinstance(n, (ast.If, ast.For, ast.While, ast.Try, ast.IfExp, ast.comprehension))]
            assert not logic, f"{spec.id}: logic ({', '.join(logic)}) in a notebook cell:\n{source}"


def test_every_drill_fault_exists_and_every_fault_has_its_runbook():
    """Drills name real faults of the stack; every fault's runbook exists."""
    specs = {s.id: s for s in specskit.all_specs()}
    for spec in specs.values():
        for drill in spec.drills:
            assert drill.fault in FAULTS, f"{spec.id} drills unknown fault {drill.fault}"
    for fault in FAULTS.values():
        assert fault.runbook in specs, f"fault {fault.name} names runbook {fault.runbook}, which does not exist"


def test_the_serving_and_pipeline_faults_are_each_drilled_by_their_runbook():
    """The game day (`make demo`) recovers each of these faults with the runbook it names."""
    specs = {s.id: s for s in specskit.all_specs()}
    for name in ("stale-manifest", "stale-cache", "bad-publish", "missing-blob", "corrupt-manifest",
                 "partial-publish", "validation-failed", "limit-exceeded", "bad-rules", "bad-config", "store-down",
                 "foreign-artifact", "rules-hide-most", "weights-overflow", "stale-data", "shrunk-publish",
                 "not-ready"):
        fault = FAULTS[name]
        assert name in {d.fault for d in specs[fault.runbook].drills}, f"{fault.runbook} does not drill {name}"


def test_parameters_never_carry_a_secret():
    """No spec declares a credential-looking parameter, and the loader refuses one by name."""
    for spec in specskit.all_specs():
        for name in spec.parameters:
            assert not any(w in name for w in ("key", "secret", "token", "password")), (spec.id, name)
    with pytest.raises(BadInput, match="credential"):
        specskit.spec("empty-recs").parse_parameters({"api_key": "x"})


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(colour="red"), r"empty-recs\.yaml: unknown key 'colour'"),
    (lambda d: d["steps"][0].update(function="serving.no_such_check"), r"steps\[0\]\.function.*no public function"),
    (lambda d: d["steps"][0].update(function="nomodule.fn"), r"steps\[0\]\.function.*no module"),
    (lambda d: d["parameters"].update(user_id={"default": "u"}), r"parameters\.user_id: missing key 'type'"),
    (lambda d: d["parameters"].update(user_id={"type": "colour", "default": "u"}), r"parameters\.user_id\.type"),
    (lambda d: d["parameters"].update(api_token={"type": "str", "default": ""}), r"looks like a credential"),
    (lambda d: d["steps"][0].update(role="act"), r"only the act step mutates"),
    (lambda d: d.update(layer="frontend"), r"layer 'frontend'"),
    (lambda d: d["drills"][0].update(stores=["nfs"]), r"drills\[0\]\.stores"),
    (lambda d: d["drills"][0]["dry_run"].update(verdict="fine"), r"drills\[0\]\.dry_run\.verdict"),
    (lambda d: d["steps"][1].update(id="probe"), r"steps\[1\]\.id 'probe' is used twice"),
])
def test_a_broken_spec_is_refused_naming_file_and_field(spec_dir, change, message):
    _edit(spec_dir, "empty-recs", change)
    with pytest.raises(BadInput, match=message):
        load_spec("empty-recs", spec_dir)


def test_unknown_and_unsafe_runbook_ids_are_bad_input():
    with pytest.raises(BadInput, match="unknown runbook 'no-such'; known runbooks: empty-recs"):
        load_spec("no-such")
    with pytest.raises(BadInput, match="lowercase"):
        load_spec("../runbooks/empty-recs")


@pytest.mark.parametrize(("given", "message"), [
    ({"tenant": "../etc"}, "parameter tenant"),
    ({"execute": "maybe"}, "not true or false"),
    ({"max_age": "soon"}, "parameter max_age"),
    ({"colour": "red"}, "has no parameter 'colour'"),
])
def test_parameters_are_type_checked(given, message):
    with pytest.raises(BadInput, match=message):
        specskit.spec("empty-recs").parse_parameters(given)


def test_parameters_are_typed_from_text():
    params = specskit.spec("empty-recs").parse_parameters({"execute": "true", "tenant": "acme"})
    assert params["execute"] is True and params["tenant"] == "acme" and params["surface"] == "home"


def test_the_setup_cell_hands_every_parameter_to_the_run():
    """A parameter the setup cell forgets would be silently ignored (e.g. a reviewed plan id): none is."""
    for spec in specskit.all_specs():
        nb = json.loads((notebooks_dir() / f"{spec.id}.ipynb").read_text())
        setup = next("".join(c["source"]) for c in nb["cells"] if "setup" in (c["metadata"].get("tags") or []))
        call = next(n for n in ast.walk(ast.parse(setup)) if isinstance(n, ast.Call) and getattr(n.func, "id", "")
                    == "RunbookRun")
        assert {k.arg for k in call.keywords} == set(spec.parameters), spec.id
