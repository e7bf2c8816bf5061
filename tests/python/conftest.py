# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures of the Python module's tests: a scope directory of their own, the build
tree's CLI, and holders in other processes (run by tests/python/run.sh)."""
import os
import subprocess
import sys
import time

import pytest


@pytest.fixture
def d(tmp_path, monkeypatch):
    """A fresh scope directory, also the CLI's (HEADCOUNT_DIR)."""
    path = tmp_path / "scope"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("HEADCOUNT_DIR", str(path))
    return str(path)


def cli(*args, **kw):
    """Runs the build tree's headcount(1)."""
    return subprocess.run([os.environ.get("HC_TEST_CLI", "headcount"), *args],
                          capture_output=True, text=True, timeout=30, **kw)


def until(what, cond, bound=10.0):
    """Waits for COND() with a bound; fails naming WHAT when it never holds."""
    deadline = time.monotonic() + bound
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {bound} s")
        time.sleep(0.005)


HOLDER = """
import sys, headcount
seat = headcount.join(sys.argv[1], max=int(sys.argv[2]), dir=sys.argv[3])
print(seat.index, flush=True)
sys.stdin.read()
"""


@pytest.fixture
def python_holder():
    """Starts Python processes that hold a seat until killed or their stdin closes."""
    procs = []

    def start(name, d, max=1):
        p = subprocess.Popen([sys.executable, "-c", HOLDER, name, str(max), d],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(p)
        line = p.stdout.readline()
        assert line.strip().isdigit(), f"holder did not join: {line!r}"
        return p

    yield start
    for p in procs:
        p.kill()
        p.wait()
