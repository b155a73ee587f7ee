"""Hostile and broken input to both CLIs: each case exits with the documented code, prints one clear line (no
traceback), never prints a secret, and changes nothing."""

from __future__ import annotations

import socket

import pytest

from recsys_checks.cli import commands as cli
from recsys_stack import cli as stack_cli

SECRET = "sk-hostile-0123456789abcdef-SECRET"
S = ["--tenant", "demo", "--surface", "home"]


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


CLOSED = _closed_port()

# (id, argv, environment changes, expected exit code)
CASES = [
    ("empty-tenant", ["manifest", "status", "--tenant", "", "--surface", "home"], {}, 2),
    ("dot-tenant", ["manifest", "status", "--tenant", ".", "--surface", "home"], {}, 2),
    ("dotdot-tenant", ["manifest", "status", "--tenant", "..", "--surface", "home"], {}, 2),
    ("slash-tenant", ["manifest", "status", "--tenant", "a/b", "--surface", "home"], {}, 2),
    ("backslash-tenant", ["manifest", "status", "--tenant", "a\\b", "--surface", "home"], {}, 2),
    ("spaced-tenant", ["manifest", "status", "--tenant", " demo", "--surface", "home"], {}, 2),
    ("newline-tenant", ["manifest", "status", "--tenant", "de\nmo", "--surface", "home"], {}, 2),
    ("traversal-surface", ["manifest", "status", "--tenant", "demo", "--surface", "../x"], {}, 2),
    # A percent-encoded name is a plain (safe) name that no tenant of the registry has: a name to check, exit 2.
    ("percent-traversal-status", ["manifest", "status", "--tenant", "..%2fcurrent%2fdemo", "--surface", "home"],
     {}, 2),
    ("percent-nul-tenant", ["manifest", "status", "--tenant", "%00", "--surface", "home"], {}, 2),
    ("percent-traversal-rollback", ["manifest", "rollback", "--tenant", "..%2f..%2f..%2f..%2fX", "--surface", "home",
                                    "--previous", "--execute"], {}, 2),
    ("huge-max-age", ["manifest", "status", *S, "--max-age", "99999999999d"], {}, 2),
    ("zero-max-age", ["manifest", "status", *S, "--max-age", "0s"], {}, 2),
    ("negative-max-age", ["manifest", "status", *S, "--max-age", "-5h"], {}, 2),
    ("word-max-age", ["manifest", "status", *S, "--max-age", "soon"], {}, 2),
    ("exponent-max-age", ["manifest", "status", *S, "--max-age", "1e400h"], {}, 2),
    ("huge-freshness-age", ["freshness", "--max-age", "999999999d"], {}, 2),
    ("huge-since", ["timeline", "--tenant", "demo", "--since", "3000000d"], {}, 2),
    ("zero-since", ["timeline", "--tenant", "demo", "--since", "0d"], {}, 2),
    ("non-hex-version", ["manifest", "rollback", *S, "--to", "zzzzzzzzzz"], {}, 2),
    ("short-version", ["manifest", "rollback", *S, "--to", "1234"], {}, 2),
    ("unknown-version", ["manifest", "rollback", *S, "--to", "deadbeefdeadbeef"], {}, 2),
    ("to-and-previous", ["manifest", "rollback", *S, "--to", "deadbeefdead", "--previous"], {}, 2),
    ("no-destination", ["manifest", "rollback", *S], {}, 2),
    ("unknown-kind", ["manifest", "rollback", *S, "--previous", "--kind", "bogus"], {}, 2),
    ("history-unknown-kind", ["manifest", "history", *S, "--kind", "bogus"], {}, 2),
    ("k-zero", ["recs", "probe", *S, "-k", "0"], {}, 2),
    ("k-too-big", ["recs", "probe", *S, "-k", "201"], {}, 2),
    ("k-word", ["recs", "probe", *S, "-k", "ten"], {}, 2),
    ("limit-zero", ["config", "history", "--tenant", "demo", "--limit", "0"], {}, 2),
    ("limit-negative", ["rules", "history", "--tenant", "demo", "--limit", "-1"], {}, 2),
    ("empty-targets", ["cache", "invalidate", "--tenant", "demo", "--targets", ""], {}, 2),
    ("unknown-targets", ["cache", "invalidate", "--tenant", "demo", "--targets", "bogus"], {}, 2),
    ("port-not-a-number", ["health"], {"RECSYS_BASE_URL": "http://127.0.0.1:notaport"}, 2),
    ("port-out-of-range", ["health"], {"RECSYS_BASE_URL": "http://127.0.0.1:99999"}, 2),
    ("broken-ipv6", ["health"], {"RECSYS_BASE_URL": "http://[::1"}, 2),
    ("ftp-url", ["health"], {"RECSYS_BASE_URL": "ftp://example.org"}, 2),
    ("spaced-url", ["health"], {"RECSYS_BASE_URL": "http://exa mple.org"}, 2),
    ("key-newline", ["config", "show", "--tenant", "demo"], {"RECSYS_API_KEY": SECRET + "\n"}, 2),
    ("key-space", ["config", "show", "--tenant", "demo"], {"RECSYS_API_KEY": SECRET + " x"}, 2),
    ("key-non-ascii", ["config", "show", "--tenant", "demo"], {"RECSYS_API_KEY": SECRET + "é"}, 2),
    ("no-base-url", ["config", "show", "--tenant", "demo"], {"RECSYS_BASE_URL": None}, 2),
    ("http-template", ["manifest", "status", *S], {"RECSYS_ARTIFACT_MANIFEST_TEMPLATE": "http://x/{tenant}/{surface}"},
     2),
    ("template-no-tenant", ["manifest", "status", *S],
     {"RECSYS_ARTIFACT_MANIFEST_TEMPLATE": "file:///tmp/{surface}/manifest.json"}, 2),
    ("s3-endpoint-not-url", ["manifest", "status", *S], {"RECSYS_ARTIFACT_S3_ENDPOINT": "not-a-url"}, 2),
    ("s3-endpoint-bad-port", ["manifest", "status", *S], {"RECSYS_ARTIFACT_S3_ENDPOINT": "http://127.0.0.1:x"}, 2),
    ("max-bytes-word", ["manifest", "status", *S], {"RECSYS_ARTIFACT_MAX_BYTES": "lots"}, 2),
    ("max-bytes-negative", ["manifest", "status", *S], {"RECSYS_ARTIFACT_MAX_BYTES": "-1"}, 2),
    ("unknown-command", ["reboot"], {}, 2),
    ("health-closed-port", ["health"], {"RECSYS_BASE_URL": CLOSED}, 2),
    ("probe-closed-port", ["recs", "probe", *S], {"RECSYS_BASE_URL": CLOSED}, 2),
    ("show-closed-port", ["config", "show", "--tenant", "demo"], {"RECSYS_BASE_URL": CLOSED}, 2),
    ("revert-closed-port", ["rules", "revert", "--tenant", "demo", "--previous", "--execute"],
     {"RECSYS_BASE_URL": CLOSED}, 2),
    ("invalidate-closed-port", ["cache", "invalidate", "--tenant", "demo", "--targets", "config", "--execute"],
     {"RECSYS_BASE_URL": CLOSED}, 2),
]


@pytest.mark.parametrize(("argv", "env", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_recsys_checks_refuses_hostile_input_cleanly(file_registry, monkeypatch, capsys, argv, env, expected):
    """Exit code as documented, a clear message without a traceback or a secret, and no byte changed."""
    monkeypatch.setenv("RECSYS_ARTIFACT_MANIFEST_TEMPLATE", file_registry.target.manifest_template)
    monkeypatch.setenv("RECSYS_BASE_URL", CLOSED)
    monkeypatch.setenv("RECSYS_API_KEY", SECRET)
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    before = file_registry.snapshot()
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == expected, (out, err)
    assert "Traceback" not in out + err and "internal error" not in err
    assert SECRET not in out + err
    if err:
        assert len(err.strip().splitlines()) <= 2 and "error" in err.splitlines()[0]
    else:
        assert out.strip()
    assert file_registry.snapshot() == before


STACK_CASES = [
    ("stack-status-no-stack", ["status", "--root", "{tmp}/nothing"], {}, 2),
    ("stack-inject-unknown", ["inject", "no-such-fault", "--root", "{tmp}/nothing"], {}, 2),
    ("stack-inject-no-stack", ["inject", "stale-manifest", "--root", "{tmp}/nothing"], {}, 2),
    ("stack-publish-no-stack", ["publish", "--root", "{tmp}/nothing"], {}, 2),
    ("stack-up-key-newline", ["up", "--root", "{tmp}/new"], {"RECSYS_API_KEY": SECRET + "\n"}, 2),
    ("stack-up-key-space", ["up", "--root", "{tmp}/new"], {"RECSYS_API_KEY": "a " + SECRET}, 2),
    ("stack-unknown-command", ["explode"], {}, 2),
]


@pytest.mark.parametrize(("argv", "env", "expected"), [c[1:] for c in STACK_CASES], ids=[c[0] for c in STACK_CASES])
def test_recsys_stack_refuses_hostile_input_cleanly(tmp_path, monkeypatch, capsys, argv, env, expected):
    """The stack's CLI: one line, the documented code, no traceback, no secret, nothing started or written."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = stack_cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code == expected, (out, err)
    assert "Traceback" not in out + err and SECRET not in out + err
    assert err.strip() and len(err.strip().splitlines()) <= 3
    assert not (tmp_path / "new").exists() and not (tmp_path / "nothing").exists()


def test_a_closed_pipe_ends_quietly_with_the_commands_exit_code(file_registry, monkeypatch, capsys):
    """`... --json | head -c 10`: the reader goes away; no BrokenPipeError traceback, the exit code is kept."""
    import contextlib
    import io
    import os
    import sys

    monkeypatch.setenv("RECSYS_ARTIFACT_MANIFEST_TEMPLATE", file_registry.target.manifest_template)
    read_end, write_end = os.pipe()
    os.close(read_end)
    saved = os.dup(1)
    stream = io.TextIOWrapper(os.fdopen(write_end, "wb"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        code = cli.main(["manifest", "history", "--tenant", "demo", "--surface", "home", "--json"])
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        with contextlib.suppress(OSError):  # the reader is gone: closing cannot flush
            stream.close()
    assert code == 0
    assert "Traceback" not in capsys.readouterr().err


def test_an_unexpected_failure_of_a_stack_command_is_one_line(monkeypatch, capsys):
    """Any exception inside a recsys-stack command (e.g. a fault injected over another) is one line, exit 1."""
    def broken(args):
        raise json_error

    json_error = ValueError("Expecting value: line 1 column 1 (char 0)")
    monkeypatch.setitem(stack_cli.COMMANDS, "faults", broken)
    code = stack_cli.main(["faults"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "ValueError" in err and "RECSYS_STACK_DEBUG" in err
