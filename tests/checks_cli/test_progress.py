"""Progress of the long commands: shown on a terminal's stderr, never on a pipe or with --json; Ctrl-C says how far
the work got and leaves nothing behind."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from recsys_checks.cli import progress_display
from recsys_checks.cli.commands import main
from recsys_checks.core import progress
from recsys_stack.evalgen import EXPERIMENT_ID, generate


def _eval_argv(paths: dict[str, Path], *extra: str) -> list[str]:
    return ["eval", "quality", "--exposures", str(paths["exposure"]), "--outcomes", str(paths["outcome"]),
            "--assignments", str(paths["assignment"]), "--experiment-id", EXPERIMENT_ID, *extra]


def _run(argv: list[str], *, stderr_on_terminal: bool) -> tuple[int, str, str]:
    """Run recsys-checks with stdout on a pipe and stderr on a pseudo-terminal (or a pipe); (exit, out, err)."""
    command = [sys.executable, "-m", "recsys_checks.cli.commands", *argv]
    env = {**os.environ, "COLUMNS": "100"}
    if not stderr_on_terminal:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    # A new pseudo-terminal is 0 x 0; a real one has a size, which the bars fit themselves to.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # the terminal closed once the process ended
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=follower, timeout=120, env=env)
    finally:
        os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    return done.returncode, done.stdout.decode(), b"".join(chunks).decode(errors="replace")


@pytest.mark.subprocess
def test_eval_quality_shows_progress_on_a_terminal_and_nothing_on_a_pipe(tmp_path):
    """On a terminal stderr shows what is being read; through a pipe stderr is empty and stdout the same text."""
    paths = generate(tmp_path, "clean", requests=3000)
    code_tty, out_tty, err_tty = _run(_eval_argv(paths), stderr_on_terminal=True)
    code_pipe, out_pipe, err_pipe = _run(_eval_argv(paths), stderr_on_terminal=False)
    assert code_tty == code_pipe == 0
    assert "reading the exposure log" in err_tty and "joining the logs" in err_tty
    assert err_pipe == ""
    assert out_tty == out_pipe and "reading the" not in out_pipe


@pytest.mark.subprocess
def test_json_output_shows_no_progress_even_on_a_terminal(tmp_path):
    """--json is for programs: nothing but the document, wherever stderr goes."""
    paths = generate(tmp_path, "clean", requests=500)
    code, out, err = _run(_eval_argv(paths, "--json"), stderr_on_terminal=True)
    assert code == 0 and out.lstrip().startswith("{")
    assert "reading the" not in err


def test_the_display_is_wanted_only_for_long_commands_writing_text_to_a_terminal(monkeypatch):
    """The rule itself: a long command, text output, a terminal, and not turned off."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term, pipe = Terminal(), io.StringIO()
    assert progress_display.wanted(("eval", "quality"), machine_output=False, stream=term)
    assert progress_display.wanted(("freshness", None), machine_output=False, stream=term)
    assert progress_display.wanted(("timeline", None), machine_output=False, stream=term)
    assert not progress_display.wanted(("eval", "quality"), machine_output=False, stream=pipe)
    assert not progress_display.wanted(("eval", "quality"), machine_output=True, stream=term)
    assert not progress_display.wanted(("health", None), machine_output=False, stream=term)
    monkeypatch.setenv(progress_display.PROGRESS_ENV, "0")
    assert not progress_display.wanted(("eval", "quality"), machine_output=False, stream=term)


def test_ctrl_c_says_how_far_eval_quality_got_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """An interruption while the exposures are read: exit 130, the stage and the bytes read so far on stderr,
    and no temporary partition left behind."""
    paths = generate(tmp_path / "data", "clean", requests=6000)
    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setenv("TMPDIR", str(work))
    monkeypatch.setattr("tempfile.tempdir", None)
    original = progress.Stage.to

    def interrupt(self: progress.Stage, done: int) -> None:
        original(self, done)
        if self.what == "reading the exposure log" and done > 0 and done < (self.total or 0):
            raise KeyboardInterrupt

    monkeypatch.setattr(progress.Stage, "to", interrupt)
    code = main(_eval_argv(paths))
    err = capsys.readouterr().err
    size = paths["exposure"].stat().st_size
    assert code == 130
    assert "interrupted while reading the exposure log:" in err and f"of {size:,} bytes" in err
    assert "nothing further was changed" in err
    assert list(work.iterdir()) == []


def test_a_stage_remembers_where_it_was_for_an_interruption():
    """where() names the open stage, and still the last one once an exception closed it."""
    with pytest.raises(KeyboardInterrupt), progress.stage("checking surfaces", total=40, unit="surfaces") as st:
        st.advance(12)
        assert progress.where() == "checking surfaces: 12 of 40 surfaces (30%)"
        raise KeyboardInterrupt
    assert progress.where() == "checking surfaces: 12 of 40 surfaces (30%)"
