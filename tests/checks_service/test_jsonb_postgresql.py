"""Document versions against a real PostgreSQL: our canonical text equals ``jsonb::text`` over a generated corpus.

The suite versions config and rules by the SHA-256 of PostgreSQL's jsonb text. This starts a private PostgreSQL
(a socket in a temporary directory, no TCP port), asks it for the jsonb text of every document of the corpus, and
compares with what the checks and the stack compute. Skipped when PostgreSQL is not installed
(Debian: ``apt-get install postgresql``).
"""

from __future__ import annotations

import glob
import os
import pwd
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys_checks.core import jsonio
from recsys_checks.judge.serving.documents import canonical_jsonb
from recsys_stack.formats import canonical_jsonb as stack_canonical_jsonb
from recsys_stack.formats import loads_document


def _bindir() -> Path | None:
    initdb = shutil.which("initdb")
    candidates = [Path(os.path.realpath(initdb)).parent] if initdb else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    return next((d for d in candidates if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)


@pytest.fixture(scope="module")
def jsonb_text() -> Iterator:
    """A function giving PostgreSQL's ``jsonb::text`` of each given JSON text; the server is stopped afterwards."""
    bindir = _bindir()
    psql = shutil.which("psql") or (str(bindir / "psql") if bindir else None)
    if bindir is None or psql is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="recsys-pg-", dir="/tmp"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            pytest.skip("running as root and there is no postgres account to run PostgreSQL as")
        os.chown(base, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, sock = base / "data", base / "sock"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=60, check=True)

    run("mkdir", str(sock))
    run(str(bindir / "initdb"), "-D", str(data), "-U", "recsys", "--auth=trust", "-E", "UTF8", "--locale=C")
    run(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
        "-o", f"-k {sock} -c listen_addresses=''", "start")

    def query(texts: list[str]) -> list[str]:
        sql = "".join(f"SELECT $recsys${t}$recsys$::jsonb::text;\n" for t in texts)
        script = base / "q.sql"
        script.write_text(sql, encoding="utf-8")
        os.chmod(script, 0o644)
        out = run(psql, "-h", str(sock), "-U", "recsys", "-d", "postgres", "-At", "-v", "ON_ERROR_STOP=1",
                  "-f", str(script))
        return out.stdout.split("\n")[: len(texts)]

    try:
        yield query
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


NUMBERS = ["0", "-0", "7", "-12", "0.70", "1.10", "2.50", "-0.0", "0.000", "1E+2", "1e2", "-1.0E+1", "1.5e-3",
           "100e-2", "1E-7", "3.14159265358979323846", "12345678901234567890", "0.1", "1e20", "2.5E-10", "10.0"]
KEYS = ["a", "pop", "cooc", "emb", "weights", "é", "zz", "Ω", "aa", "b", "ключ", "max_k", "", "a b", "x\"y"]
STRINGS = ["", "x", "é", "ü", "line\nbreak", "tab\t", "quote\"", "back\\slash", "\u0001", "€", "/"]


def _value(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        keys = rng.sample(KEYS, rng.randint(0, 4))
        import json
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=rng.random() < 0.3)}: {_value(rng, depth + 1)}"
                               for k in keys) + "}"
    if depth < 3 and roll < 0.4:
        return "[" + ",".join(_value(rng, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
    if roll < 0.75:
        return rng.choice(NUMBERS)
    if roll < 0.9:
        import json
        return json.dumps(rng.choice(STRINGS), ensure_ascii=rng.random() < 0.5)
    return rng.choice(["true", "false", "null"])


def corpus(n: int = 300) -> list[str]:
    rng = random.Random(20261129)
    docs = [f'{{"weights": {{"pop": {x}}}}}' for x in NUMBERS]
    while len(docs) < n:
        docs.append("{" + ", ".join(f'"{k}": {_value(rng, 1)}' for k in rng.sample(KEYS[:12], rng.randint(1, 5))) + "}")
    return docs


@pytest.mark.slow
def test_canonical_text_equals_postgresql_jsonb_text(jsonb_text):
    """Every document of the corpus: the checks' and the stack's canonical text equal PostgreSQL's jsonb::text."""
    docs = corpus()
    expected = jsonb_text(docs)
    checks = [canonical_jsonb(jsonio.loads_exact(d)) for d in docs]
    stack = [stack_canonical_jsonb(loads_document(d)) for d in docs]
    mismatches = [(d, e, c) for d, e, c in zip(docs, expected, checks, strict=True) if e != c]
    assert not mismatches, mismatches[:5]
    assert stack == expected
