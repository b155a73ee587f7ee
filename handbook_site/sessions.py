"""Shell sessions shown on the docs pages, executed and compared with what the tools really print.

A session is a fenced block with the ``console`` language. Each line starting with ``$ `` is a command; the lines
up to the next command are its expected standard output. The commands of a page run in order, in one workspace,
with the environment and directory each one leaves carried to the next (``eval``, ``export``, ``cd`` and ``.``
work as in a terminal). Every command must exit 0: a session that shows a failing check writes
``; echo "exit $?"`` after it, so the reader sees the exit code too.

Values that differ on every run are written as placeholders in the expected output:

========== ===================================================================
``<hash>``  8 to 64 lowercase hex digits (versions, ETags, plan ids)
``<time>``  a UTC timestamp, ``2026-01-02T01:23:45Z`` or ``20260102T012345.123Z``
``<day>``   a date, ``2026-01-02``
``<n>``     a number, ``3`` or ``0.034``
``<any>``   any text within the line
``<lines>`` on a line of its own: any number of lines, including none
========== ===================================================================

Everything else must match exactly, after trailing spaces are removed from each line.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PLACEHOLDERS = {
    "<hash>": r"[0-9a-f]{8,64}",
    "<time>": r"(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z|\d{8}T\d{6}(?:\.\d+)?Z)",
    "<day>": r"\d{4}-\d{2}-\d{2}",
    "<n>": r"-?\d+(?:\.\d+)?",
    "<any>": r".*?",
}
_TOKEN = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))
_BLOCK = re.compile(r"^```console[^\n]*\n(.*?)^```\s*$", re.S | re.M)


@dataclass
class Command:
    """One ``$ `` line of a page and the output shown under it."""

    line: int
    command: str
    expected: list[str] = field(default_factory=list)


def sessions(markdown: str) -> list[Command]:
    """The commands of every ``console`` block of a page, in order. A command ends with ``\\`` to continue."""
    commands: list[Command] = []
    for block in _BLOCK.finditer(markdown):
        first_line = markdown.count("\n", 0, block.start(1)) + 1
        current: Command | None = None
        continuing = False
        for offset, text in enumerate(block.group(1).splitlines()):
            if continuing and current is not None:
                current.command += "\n" + text
                continuing = text.endswith("\\")
            elif text.startswith("$ "):
                current = Command(first_line + offset, text[2:])
                commands.append(current)
                continuing = text.endswith("\\")
            elif current is None:
                raise ValueError(f"line {first_line + offset}: output before the first command of a console block")
            else:
                current.expected.append(text)
    return commands


def pattern(expected: list[str]) -> re.Pattern[str]:
    """The regular expression an output must match in full for the expected lines."""
    parts = []
    for text in expected:
        text = text.rstrip()
        if text == "<lines>":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        pieces, last = [], 0
        for token in _TOKEN.finditer(text):
            pieces.append(re.escape(text[last:token.start()]))
            pieces.append(PLACEHOLDERS[token.group(0)])
            last = token.end()
        pieces.append(re.escape(text[last:]))
        parts.append("".join(pieces) + r"\n")
    return re.compile("".join(parts), re.S)


def normalise(output: str) -> str:
    """Output as compared: trailing spaces removed from each line, and one newline after the last line."""
    lines = [line.rstrip() for line in output.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "".join(line + "\n" for line in lines)


def matches(expected: list[str], output: str) -> bool:
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    return pattern(expected).fullmatch(normalise(output)) is not None


class Shell:
    """Runs commands one at a time in ``workdir``, carrying the environment and the directory between them."""

    def __init__(self, workdir: Path, env: dict[str, str], timeout: float = 300) -> None:
        self.workdir = workdir
        self.state = workdir / ".session"
        self.state.mkdir(exist_ok=True)
        (self.state / "cwd").write_text(str(workdir))
        self.env = env
        self.timeout = timeout

    def run(self, command: str) -> subprocess.CompletedProcess:
        state = self.state
        script = (
            f'[ -f "{state}/env" ] && . "{state}/env"\n'
            f'cd "$(cat "{state}/cwd")" || exit 97\n'
            f"{command}\n"
            "__rc=$?\n"
            f'export -p | grep -v -E "^declare -x (OLDPWD|PWD|SHLVL|_)=" > "{state}/env"\n'
            f'pwd > "{state}/cwd"\n'
            "exit $__rc\n"
        )
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=self.timeout,
                              env=self.env, stdin=subprocess.DEVNULL)
