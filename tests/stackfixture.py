"""A running local stack for tests: ``recsys-stack up --detach`` in a temporary root, ``down`` afterwards.

Importable from every test directory (``tests/conftest.py`` puts ``tests/`` on ``sys.path``)::

    from stackfixture import running_stack

    with running_stack("s3", tmp_path / "stack") as handle:
        target = Target.from_env(handle.env)

The fixtures ``stack_file`` and ``stack_s3`` share one stack per store for the whole session; ``stack`` runs a test
once against each. ``fresh_stack`` is for tests that break a stack: ``with fresh_stack("s3") as handle:`` hands over
one stack per store per session (per xdist worker), put back by ``recsys-stack reset`` to the state ``up`` seeded
before every use after the first; a stack that cannot be reset is replaced by a new one. Tests that use them start
real servers and are marked ``@pytest.mark.stack``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from recsys_stack.processes import client_env, read_secrets

UP_TIMEOUT = 180
CLI_TIMEOUT = 120


@dataclass(frozen=True)
class StackHandle:
    """A running stack: its root, its ``stack.json`` and the environment a client of it needs (with secrets)."""

    root: Path
    info: dict
    env: dict[str, str] = field(repr=False)

    @property
    def base_url(self) -> str:
        return self.info["base_url"]

    @property
    def api_key(self) -> str:
        return self.env["RECSYS_API_KEY"]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``recsys-stack ARGS --root ROOT`` against this stack; raise on a non-zero exit when ``check``."""
        return run_cli(*args, "--root", str(self.root), check=check)

    def pids(self) -> dict[str, int]:
        return dict(self.info.get("processes") or {})


def run_cli(*args: str, check: bool = True, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """Run ``python -m recsys_stack.cli ARGS`` in a subprocess and capture its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "recsys_stack.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=_cli_env(),
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"recsys-stack {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def _cli_env() -> dict[str, str]:
    # The stack generates its own key; an operator's RECSYS_* settings must not leak into a test stack.
    return {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return True
    return state not in ("Z", "X")


@contextmanager
def running_stack(store: str, root: Path, *extra_up_args: str) -> Iterator[StackHandle]:
    """Start a stack with ``store`` ("file" or "s3") in ``root``; always stop it and check no process is left."""
    root = Path(root)
    try:
        run_cli("up", "--detach", "--root", str(root), "--store", store, *extra_up_args, timeout=UP_TIMEOUT)
        info = json.loads((root / "stack.json").read_text())
        yield StackHandle(root=root, info=info, env=client_env(info, read_secrets(root)))
    finally:
        down_and_check(root)


def down_and_check(root: Path) -> None:
    """``recsys-stack down`` the stack in ``root``, and fail if any process it had started is still running."""
    started = {}
    if (root / "stack.json").exists():
        started = json.loads((root / "stack.json").read_text()).get("processes") or {}
    run_cli("down", "--root", str(root))
    left = {name: pid for name, pid in started.items() if pid_alive(int(pid))}
    if left:
        raise AssertionError(f"recsys-stack down left processes running: {left}")


def read_handle(root: Path) -> StackHandle:
    """The handle of the stack running in ``root``, as its ``stack.json`` and ``secrets.env`` say now."""
    info = json.loads((Path(root) / "stack.json").read_text())
    return StackHandle(root=Path(root), info=info, env=client_env(info, read_secrets(Path(root))))


class FreshStacks:
    """One stack per store, started on first use and reset before every later one (see ``fresh_stack``)."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self._stacks: dict[str, tuple[ExitStack, StackHandle]] = {}
        self.resets = 0

    def _start(self, store: str) -> StackHandle:
        exits = ExitStack()
        handle = exits.enter_context(running_stack(store, self._factory.mktemp(f"fresh-{store}")))
        self._stacks[store] = (exits, handle)
        return handle

    @contextmanager
    def __call__(self, store: str) -> Iterator[StackHandle]:
        if store not in self._stacks:
            handle = self._start(store)
        else:
            exits, handle = self._stacks[store]
            proc = handle.cli("reset", check=False)
            if proc.returncode == 0:
                handle = read_handle(handle.root)
                self._stacks[store] = (exits, handle)
                self.resets += 1
            else:  # e.g. a test stopped the S3 server: a new stack, and the old one stopped (checked) first
                del self._stacks[store]
                exits.close()
                handle = self._start(store)
        yield handle

    def close(self) -> None:
        while self._stacks:
            _, (exits, _handle) = self._stacks.popitem()
            exits.close()


@pytest.fixture(scope="session")
def fresh_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshStacks]:
    """``with fresh_stack(store) as handle:`` a running stack of ``store`` in the state ``up`` seeded, the test's to
    break: one per store per session, reset (``recsys-stack reset``) between uses instead of started afresh."""
    stacks = FreshStacks(tmp_path_factory)
    try:
        yield stacks
    finally:
        stacks.close()


@pytest.fixture(scope="session")
def stack_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    """One running stack on the file store, shared by the session."""
    with running_stack("file", tmp_path_factory.mktemp("stack-file")) as handle:
        yield handle


@pytest.fixture(scope="session")
def stack_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    """One running stack on moto's S3 server, shared by the session."""
    with running_stack("s3", tmp_path_factory.mktemp("stack-s3")) as handle:
        yield handle


@pytest.fixture(scope="session", params=["file", "s3"])
def stack(request: pytest.FixtureRequest) -> StackHandle:
    """The shared running stack of each store in turn (the test runs once per store)."""
    return request.getfixturevalue(f"stack_{request.param}")
