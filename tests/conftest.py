"""Shared test setup: make ``tests/`` importable (for ``stackfixture``), register the stack fixtures, and give every
test directory the same S3 server on loopback and the same closed port."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

import socket  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from isolation import is_fast_tier, isolate  # noqa: E402
from stackfixture import fresh_stack, stack, stack_file, stack_s3  # noqa: E402,F401

from recsys_checks.runbooks.runner import _skip_unused_format_checkers  # noqa: E402

# The tests read and write notebooks (nbformat) as the runner runs them: without jsonschema's optional format
# checkers (the IRI grammar alone is about 2 s of CPU in every test process), which no notebook field uses. Before
# any test module imports nbformat.
_skip_unused_format_checkers()



@pytest.fixture(scope="session", autouse=True)
def _session_away_from_checkout_and_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Session fixtures (stacks, servers) start in an empty working directory with an empty home folder, not in the
    checkout or the home of whoever runs the suite (see isolation.py)."""
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch, tmp_path_factory.getbasetemp())
        yield


@pytest.fixture(autouse=True)
def _away_from_checkout_and_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test runs with its own empty working directory, home folder and XDG folders (see isolation.py)."""
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch, tmp_path_factory.getbasetemp())
        yield


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The one S3 server of the session: moto on 127.0.0.1 (free port), stopped at the end of the session.

    Tests that need a clean server reset it themselves; tests that need a bucket create it.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        if server._server is not None:  # stop() leaves the listening socket open
            server._server.server_close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _refuse_processes(what: str):
    def refuse(*args, **kwargs):
        pytest.fail(f"{what} in the fast tier: a test that starts a process (a command, a kernel, a notebook run, a "
                    f"browser, a stack) must be marked subprocess (or stack, docs, slow)", pytrace=True)

    return refuse


@pytest.fixture(scope="session", autouse=True)
def _fast_tier_starts_no_process(request: pytest.FixtureRequest) -> Iterator[None]:
    """Keep the fast tier honest: when the marker expression deselects every heavy marker, starting a process
    (subprocess and asyncio subprocesses, os.fork, posix_spawn, system, popen: so also papermill kernels, browsers
    and stacks) fails the test, or the fixture, that tries. Session-wide and first, so fixtures are held to it too."""
    if not is_fast_tier(request.config):
        yield
        return
    import subprocess

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", _refuse_processes("subprocess"))
        for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "popen"):
            if hasattr(os, name):
                patch.setattr(os, name, _refuse_processes(f"os.{name}"))
        yield


# Files whose tests are independent scenarios (each resets or starts its own stack): under `make test` each of their
# tests may go to any pytest-xdist worker; every other file runs whole on one worker, so that its module stacks start
# once and its tests keep their order.
SPREAD_FILES = ("tests/runbooks/test_drills.py", "tests/stack_cli/test_reset.py")


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile`` as `make test` uses it: a file per worker, but the tests of ``SPREAD_FILES`` one by one."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FilesAndSpreadScenarios(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return nodeid if path in SPREAD_FILES else path

    return FilesAndSpreadScenarios(config, log)


def _declares_a_long_run(item) -> bool:
    """A test that raises its own timeout past the suite's default says it runs long (the game day, the generated
    incidents): its file is started first, so that it does not end the run alone on one worker."""
    marker = item.get_closest_marker("timeout")
    default = float(item.config.getini("timeout") or 0)
    return marker is not None and bool(marker.args) and float(marker.args[0]) > default


def pytest_collection_modifyitems(items: list) -> None:
    """Run the S3 server's conformance tests (conditional writes, races) before any test that relies on them, then
    the files of the tests that declare a long run (see _declares_a_long_run), then everything else in its order.

    This sort is the one ordering mechanism: no file is named to sort first."""
    long_files = {item.nodeid.split("::", 1)[0] for item in items if _declares_a_long_run(item)}
    items.sort(key=lambda item: 0 if "store_conformance" in item.nodeid
               else 1 if item.nodeid.split("::", 1)[0] in long_files else 2)
