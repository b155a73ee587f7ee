"""A runbook page's act step shows each cause's own lever command, taken from the spec's decision table: the dry run
first, then the apply of the plan it printed (``--execute --plan-id``). Never one rollback for every cause."""

from __future__ import annotations

import argparse
import html
import re
import shlex
from pathlib import Path

import pytest
import specskit
import yaml

from handbook_site import macros
from recsys_checks.cli.commands import build_parser
from recsys_checks.runbooks.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "runbooks" / "empty-recs.yaml"
# Values a reader puts in place of the placeholders, only to check that each command parses.
FILL = {"tenant": "demo", "surface": "home", "kind": "popularity", "version": "0123abcd", "document": "rules",
        "plan": "0123456789ab"}


def _spec_commands(doc: dict) -> dict[str, str | None]:
    """cause -> the dry-run command a lever of the raw YAML ends with (read here, not through the macros)."""
    out = {}
    for row in doc["decision"]:
        found = re.findall(r"`(recsys-checks [^`]+)`", row["lever"])
        out[row["cause"]] = found[-1] if found and row["lever"].rstrip().endswith("`") else None
    return out


def _act_section(page: str) -> str:
    start = re.search(r"^### \d+\. Pull the lever.*$", page, flags=re.M)
    assert start, "the page has no act step"
    rest = page[start.end():]
    return rest.split("\n### ", 1)[0].split("\n## ", 1)[0]


def _bash_blocks(markdown: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", markdown, flags=re.S)]


def _expected(commands: dict[str, str | None]) -> list[str]:
    """Each distinct command once, in the table's order: its dry run, then its apply."""
    seen: list[str] = []
    for command in commands.values():
        if command and command not in seen:
            seen.append(command)
    return [line for c in seen for line in (c, f"{c} --execute --plan-id {{plan}}")]


def test_the_empty_recs_act_step_shows_the_spec_commands_dry_run_first():
    doc = yaml.safe_load(SPEC.read_text())
    commands = _spec_commands(doc)
    section = _act_section(macros.render(specskit.spec("empty-recs")))
    blocks = _bash_blocks(section)
    assert blocks == _expected(commands)
    assert not any("--execute" in b and "--plan-id" not in b for b in blocks), "an apply without the reviewed plan"


def test_rules_and_config_causes_get_their_own_lever_not_a_manifest_rollback():
    section = _act_section(macros.render(specskit.spec("empty-recs")))
    for cause, verb in (("rules_block_all", "rules revert"), ("config_weights", "config revert"),
                        ("cache_stale", "cache invalidate"), ("empty_artifact", "manifest rollback")):
        after = section.split(f"`{cause}`", 1)[1]
        first = _bash_blocks(after)[0]
        assert first.startswith(f"recsys-checks {verb} "), (cause, first)
    assert "`request_filters`: none" in section, "the causes with no lever are listed as such"


def test_the_commands_follow_the_spec_when_the_spec_changes(tmp_path):
    """Change one lever's command in a copy of the spec: the page shows the new one, and the old one is gone."""
    doc = yaml.safe_load(SPEC.read_text())
    row = next(r for r in doc["decision"] if r["cause"] == "rules_block_all")
    old = _spec_commands(doc)["rules_block_all"]
    new = "recsys-checks rules revert --tenant {tenant} --to {version}"
    row["lever"] = row["lever"].replace(old, new)
    path = tmp_path / "empty-recs.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    blocks = _bash_blocks(_act_section(macros.render(parse_spec(doc, path))))
    assert new in blocks and f"{new} --execute --plan-id {{plan}}" in blocks
    assert old not in blocks and blocks == _expected(_spec_commands(doc))


@pytest.mark.parametrize("spec", [s for s in specskit.all_specs() if any(c for c in _spec_commands(
    {"decision": list(s.decision)}).values())], ids=lambda s: s.id)
def test_every_lever_command_of_a_spec_is_a_real_command_line(spec):
    """Each dry run and apply parses with the recsys-checks parser once its placeholders are filled in."""
    parser = build_parser()
    for command in _expected(_spec_commands({"decision": list(spec.decision)})):
        argv = shlex.split(command.format(**FILL))[1:]
        try:
            parser.parse_args(argv)
        except SystemExit as exc:  # argparse reports a bad command line by exiting
            raise AssertionError(f"{spec.id}: {command!r} does not parse") from exc
        except argparse.ArgumentError as exc:
            raise AssertionError(f"{spec.id}: {command!r}: {exc}") from exc


def test_the_built_page_shows_the_spec_commands(built_site):
    page = (built_site / "how-to" / "runbooks" / "empty-recs" / "index.html").read_text()
    start = re.search(r'<h3 id="(\d+-pull-the-lever[^"]*)"', page)
    assert start, "no act step heading on the built page"
    section = page[start.end():].split("<h3", 1)[0]
    blocks = [html.unescape(re.sub(r"<[^>]+>", "", b)).strip()
              for b in re.findall(r"<pre[^>]*>(.*?)</pre>", section, flags=re.S)]
    assert blocks == _expected(_spec_commands(yaml.safe_load(SPEC.read_text())))
