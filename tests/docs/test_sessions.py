"""Shell sessions on the tutorial and how-to pages run against a fresh local stack and print what the page shows.

The runner is handbook_site/sessions.py; its own behaviour (parsing, placeholders, carried environment) is tested
first, then every page with a ``console`` block is executed in a workspace of its own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from handbook_site import sessions as doc_sessions

ROOT = Path(__file__).resolve().parents[2]

PAGES = sorted(p for folder in ("tutorials", "how-to") for p in (ROOT / "docs" / folder).rglob("*.md")
               if "```console" in p.read_text())


def test_sessions_are_parsed_in_order_with_their_output():
    md = "text\n```console\n$ echo one\none\n$ printf 'a\\\\\n' \\\n  && true\n```\n\n```bash\nnot run\n```\n"
    commands = doc_sessions.sessions(md)
    assert [c.command for c in commands] == ["echo one", "printf 'a\\\\\n' \\\n  && true"]
    assert commands[0].expected == ["one"] and commands[0].line == 3


def test_output_before_any_command_is_an_error():
    with pytest.raises(ValueError, match="output before the first command"):
        doc_sessions.sessions("```console\nstray\n$ true\n```\n")


@pytest.mark.parametrize(("expected", "output", "ok"), [
    (["v <hash> at <time>"], "v 9ac8f5c63764 at 2026-11-29T20:31:36Z\n", True),
    (["v <hash>"], "v not-hex\n", False),
    (["a", "<lines>", "z"], "a\nb\nc\nz\n", True),
    (["a", "<lines>", "z"], "a\nz\n", True),
    (["a", "z"], "a\nb\nz\n", False),
    (["took <n> s on <day>"], "took 0.034 s on 2026-01-02\n", True),
    (["path <any>/x"], "path /tmp/a b/x   \n\n", True),
    (["exact"], "exact but more\n", False),
    (["one"], "", False),
])
def test_placeholders_match_only_what_they_stand_for(expected, output, ok):
    assert doc_sessions.matches(expected, output) is ok


@pytest.mark.subprocess
def test_the_shell_carries_environment_and_directory_between_commands(tmp_path):
    shell = doc_sessions.Shell(tmp_path, dict(os.environ))
    (tmp_path / "sub").mkdir()
    assert shell.run('eval "$(echo export GREETING=hello)"').returncode == 0
    assert shell.run("cd sub").returncode == 0
    proc = shell.run('echo "$GREETING from $(basename "$PWD")"')
    assert proc.stdout == "hello from sub\n"
    assert shell.run("false").returncode == 1


def _workspace(tmp_path: Path) -> Path:
    """A directory that looks like the repository root to the commands of a page, with its own .stack/."""
    work = tmp_path / "repo"
    work.mkdir()
    for name in (".venv", "Makefile", "pyproject.toml", "runbooks", "notebooks"):
        (work / name).symlink_to(ROOT / name)
    return work


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT / "docs")))
def test_every_session_on_the_page_prints_what_the_page_shows(page: Path, tmp_path: Path):
    commands = doc_sessions.sessions(page.read_text())
    work = _workspace(tmp_path)
    # A reader's shell: no deployment variables, no virtualenv, and not inside `make test` (a nested make would
    # announce the directories it enters).
    inherited = ("VIRTUAL_ENV", "MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_")) and k not in inherited}
    env["NO_COLOR"] = "1"
    shell = doc_sessions.Shell(work, env)
    try:
        for command in commands:
            proc = shell.run(command.command)
            where = f"{page.relative_to(ROOT)}:{command.line}: $ {command.command}"
            assert proc.returncode == 0, f"{where}\nexited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            assert doc_sessions.matches(command.expected, proc.stdout), (
                f"{where}\n--- shown on the page\n" + "\n".join(command.expected)
                + f"\n--- printed\n{doc_sessions.normalise(proc.stdout)}--- stderr\n{proc.stderr}")
    finally:
        if (work / ".stack" / "stack.json").exists():
            subprocess.run([str(ROOT / ".venv" / "bin" / "recsys-stack"), "down", "--root", str(work / ".stack")],
                           capture_output=True, timeout=120)
