# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Python module against the real library, CLI and kernel: seats, counts, waits,
messages, threads, fork and asyncio. Every test works in a scope directory of its own."""
import asyncio
import ctypes
import datetime
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

import headcount
from conftest import cli, until


def test_context_manager(d):
    with headcount.join("cm", tag="worker 3", dir=d) as seat:
        assert seat.index == 0 and seat.fence is None and seat.held
        assert headcount.count("cm", dir=d) == 1
        [i] = headcount.list("cm", dir=d)
        assert (i.seat, i.pid, i.uid, i.tag) == (0, os.getpid(), os.getuid(), "worker 3")
        assert i.verified and i.host is None and i.user is not None
        assert abs(i.joined - datetime.datetime.now(datetime.timezone.utc)).total_seconds() < 60
        assert headcount.primary("cm", dir=d) == i
        assert headcount.names(dir=d) == [("cm", 1, 64)]
    assert not seat.held and seat.index == 0
    seat.leave()                                   # once is enough
    assert headcount.count("cm", dir=d) == 0
    assert headcount.list("cm", dir=d) == []
    assert headcount.primary("cm", dir=d) is None
    assert headcount.count("never-made", dir=d) == 0


def test_busy_and_the_cli_sees_the_seat(d):
    with headcount.join("busy", max=1, dir=d):
        with pytest.raises(headcount.Busy) as e:
            headcount.join("busy", max=1, dir=d)
        assert e.value.errno == errno.EBUSY
        assert isinstance(e.value, headcount.Error) and isinstance(e.value, OSError)
        r = cli("run", "busy", "--", "true")
        assert r.returncode == 75, r.stderr
        assert cli("count", "busy").stdout.strip() == "1"
        assert str(os.getpid()) in cli("list", "busy").stdout
    assert cli("run", "busy", "--", "true").returncode == 0


def test_sigkill_of_a_python_holder_wakes_wait(d, python_holder):
    p = python_holder("killed", d)
    assert headcount.count("killed", dir=d) == 1
    woke = threading.Event()
    result = []

    def waiter():
        result.append(headcount.wait("killed", below=1, timeout=30, dir=d))
        woke.set()

    t = threading.Thread(target=waiter)
    t.start()
    p.send_signal(signal.SIGKILL)
    assert woke.wait(1.0), "wait(below=1) still asleep 1 s after the holder's SIGKILL"
    t.join()
    assert result == [True]
    assert headcount.count("killed", dir=d) == 0


def test_wait_times_out(d):
    with headcount.join("stay", dir=d):
        t0 = time.monotonic()
        assert headcount.wait("stay", below=1, timeout=0.2, dir=d) is False
        assert time.monotonic() - t0 >= 0.19
        assert headcount.wait("stay", below=2, timeout=0, dir=d) is True
    assert headcount.wait("stay", below=1, timeout=0, dir=d) is True


def test_join_wait_is_admitted_when_a_cli_run_ends(d):
    run = subprocess.Popen([os.environ["HC_TEST_CLI"], "run", "turn", "--", "cat"],
                           stdin=subprocess.PIPE)
    try:
        until("the CLI holds its seat", lambda: headcount.count("turn", dir=d) == 1)
        with pytest.raises(headcount.Busy):
            headcount.join("turn", dir=d)
        got = []
        t = threading.Thread(target=lambda: got.append(headcount.join("turn", wait=30, dir=d)))
        t.start()
        run.stdin.close()                          # the command ends, and its seat with it
        assert run.wait(10) == 0
        t.join(10)
        assert got and got[0].index == 0
        got[0].leave()
    finally:
        run.kill()
        run.wait()
    with headcount.join("turn", dir=d), pytest.raises(headcount.Busy) as e:
        headcount.join("turn", wait=0.1, dir=d)
    assert e.value.errno == errno.ETIMEDOUT


def test_four_threads_hold_four_seats(d):
    barrier = threading.Barrier(5)
    seats = []
    lock = threading.Lock()

    def worker(k):
        with headcount.join("pool", max=4, tag=f"thread {k}", dir=d) as s:
            with lock:
                seats.append(s.index)
            barrier.wait(10)                     # all four hold theirs now
            barrier.wait(10)                     # until the main thread has looked

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    barrier.wait(10)
    assert sorted(seats) == [0, 1, 2, 3]
    assert headcount.count("pool", dir=d) == 4
    tags = sorted(i.tag for i in headcount.list("pool", dir=d))
    assert tags == [f"thread {k}" for k in range(4)]
    with pytest.raises(headcount.Busy):
        headcount.join("pool", max=4, dir=d)
    barrier.wait(10)
    for t in threads:
        t.join(10)
    assert headcount.count("pool", dir=d) == 0


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "a\0b", "x" * 201, "with space",
                                  "caf\u00e9", "..", b"bytes/slash"])
def test_invalid_names(d, name):
    for call in (lambda: headcount.join(name, dir=d), lambda: headcount.count(name, dir=d),
                 lambda: headcount.list(name, dir=d), lambda: headcount.primary(name, dir=d),
                 lambda: headcount.wait(name, timeout=0, dir=d),
                 lambda: headcount.history(name, dir=d),
                 lambda: headcount.send(name, b"x", dir=d),
                 lambda: headcount.listen(name, dir=d)):
        with pytest.raises(ValueError):
            call()
    assert os.listdir(d) == []                     # nothing touched the disk


def test_invalid_arguments(d):
    for call in (lambda: headcount.join("a", max=0, dir=d),
                 lambda: headcount.join("a", tag="t" * 65, dir=d),
                 lambda: headcount.join("a", wait=-1, dir=d),
                 lambda: headcount.wait("a", below=0, dir=d),
                 lambda: headcount.count("a", system=True, fleet=True)):
        with pytest.raises(ValueError):
            call()


def test_send_and_listen_round_trips(d):
    with pytest.raises(headcount.Error) as e:
        headcount.send("app", b"nobody", dir=d)
    assert e.value.errno in (errno.ENOENT, errno.ECONNREFUSED)
    ready = threading.Event()
    seen = []

    def primary():
        with headcount.listen("app", dir=d) as inbox:
            ready.set()
            for msg in inbox:
                seen.append((msg.data, msg.pid, msg.uid))
                if msg.data == b"drop":
                    msg.drop()
                    continue
                msg.reply(b"ok: " + msg.data)
                if msg.data == b"quit":
                    break

    t = threading.Thread(target=primary)
    t.start()
    try:
        assert ready.wait(10)
        with pytest.raises(headcount.Busy):      # the primary listens already
            headcount.listen("app", dir=d)
        assert headcount.send("app", b"open file.txt", timeout=3, dir=d) == b"ok: open file.txt"
        big = bytes(range(256)) * 100
        assert headcount.send("app", big, dir=d) == b"ok: " + big
        with pytest.raises(headcount.Error) as e:
            headcount.send("app", b"drop", dir=d)
        assert e.value.errno == errno.ECONNRESET
        # from another process, through the same module
        r = subprocess.run([sys.executable, "-c",
                            "import headcount, sys; sys.stdout.buffer.write("
                            "headcount.send('app', b'child', dir=sys.argv[1]))", d],
                           capture_output=True, timeout=30)
        assert r.stdout == b"ok: child", r.stderr
    finally:
        headcount.send("app", b"quit", dir=d)
        t.join(10)
    assert seen[0] == (b"open file.txt", os.getpid(), os.getuid())
    assert headcount.count("app", dir=d) == 0      # listen() gave its own seat back


FORKER = """
import os, sys, headcount
seat = headcount.join("forked", dir=sys.argv[1])
if os.fork() == 0:              # the child inherits the seat, and holds it until stdin ends
    sys.stdin.read()
    os._exit(0)
print("forked", flush=True)     # and the parent exits without leaving
"""


def test_fork_child_inherits_the_seat(d):
    # the child's leave() drops only the child's copy
    seat = headcount.join("forked", dir=d)
    pid = os.fork()
    if pid == 0:
        seat.leave()
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert headcount.count("forked", dir=d) == 1
    seat.leave()
    assert headcount.count("forked", dir=d) == 0
    # a child holds the inherited seat after its parent exits
    p = subprocess.Popen([sys.executable, "-c", FORKER, d], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "forked\n"
        assert p.wait(10) == 0
        assert headcount.count("forked", dir=d) == 1
        with pytest.raises(headcount.Busy):
            headcount.join("forked", dir=d)
    finally:
        p.stdin.close()                            # the child ends, and the seat with it
    assert headcount.wait("forked", below=1, timeout=10, dir=d)


HANDER = """
import os, subprocess, sys, headcount
seat = headcount.join("handed", dir=sys.argv[1])
child = subprocess.Popen(["sleep", "60"], pass_fds=[seat.fileno()], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
os._exit(0)                     # without leaving: the child's copy holds the seat
"""


def test_a_seat_handed_to_a_child_program(d):
    r = subprocess.run([sys.executable, "-c", HANDER, d], capture_output=True, text=True,
                       timeout=30)
    child = int(r.stdout)
    try:
        assert headcount.count("handed", dir=d) == 1
        with pytest.raises(headcount.Busy):
            headcount.join("handed", dir=d)
    finally:
        os.kill(child, signal.SIGKILL)
    assert headcount.wait("handed", below=1, timeout=10, dir=d)


def test_asyncio_wait_and_join(d, python_holder):
    p = python_holder("aio", d)

    async def main():
        assert await headcount.wait_async("aio", below=1, timeout=0.1, dir=d) is False
        # it sleeps: a second of waiting costs little CPU (no loop that wakes itself)
        cpu = time.process_time()
        assert await headcount.wait_async("aio", below=1, timeout=1, dir=d) is False
        assert time.process_time() - cpu < 0.3
        waiter = asyncio.ensure_future(headcount.wait_async("aio", below=1, timeout=30, dir=d))
        await asyncio.sleep(0)
        assert not waiter.done()
        p.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(waiter, 5) is True
        seat = headcount.join("aio", dir=d)
        joiner = asyncio.ensure_future(headcount.join_async("aio", wait=30, dir=d))
        await asyncio.sleep(0)
        assert not joiner.done()
        asyncio.get_running_loop().call_later(0.05, seat.leave)
        with await asyncio.wait_for(joiner, 5) as again:
            assert again.index == 0
            assert headcount.count("aio", dir=d) == 1
            with pytest.raises(headcount.Busy):
                await headcount.join_async("aio", wait=0.05, dir=d)
        assert await headcount.wait_async("never-made", timeout=0, dir=d) is True

    asyncio.run(main())
    assert threading.active_count() == 1           # no thread was needed
    assert headcount.count("aio", dir=d) == 0


def test_history_of_runs_that_left_died_and_run(d, python_holder):
    assert headcount.history("hist", dir=d) == []  # no such region
    pids = []                                      # (the command's, the wrapper's)
    for script, code in (("exit 0", 0), ("exit 1", 1), ("kill -KILL $$", 128 + 9),
                         ("exec sleep 0.2", 0)):
        run = subprocess.Popen([os.environ["HC_TEST_CLI"], "run", "hist", "--", "sh", "-c",
                                "echo $$; " + script], stdout=subprocess.PIPE, text=True)
        out, _ = run.communicate(timeout=30)
        assert run.returncode == code, script
        pids.append((int(out), run.pid))
    died = python_holder("hist", d)
    died.kill()                                    # while it holds the seat
    died.wait()
    running = python_holder("hist", d)             # its join finds the death
    runs = headcount.history("hist", dir=d)
    # a run's record names its command, or the wrapper when the command let go of the
    # seat before the wrapper could name it
    assert all(x.pid in pair for x, pair in zip(runs, pids)), (runs, pids)
    assert [x.pid for x in runs[4:]] == [died.pid, running.pid]
    assert [(x.how, x.exit, x.signal) for x in runs] == [
        ("left", 0, None), ("left", 1, None), ("left", None, signal.SIGKILL),
        ("left", 0, None), ("died", None, None), ("running", None, None)]
    assert [x.signal_name for x in runs] == [None, None, "KILL", None, None, None]
    assert [(x.seat, x.run) for x in runs] == [(0, k) for k in range(1, 7)]
    assert [x.seq for x in runs] == sorted(x.seq for x in runs)
    assert len({x.seq for x in runs}) == 6
    now = datetime.datetime.now(datetime.timezone.utc)
    for x in runs:
        assert (x.uid, x.tag, x.verified) == (os.getuid(), "", True)
        assert not x.other_pid_namespace
        assert x.user is not None
        assert x.started.tzinfo is not None and abs(x.started - now).total_seconds() < 60
    for x in runs[:4]:                             # ended, on the kernel's tick
        assert x.ended is not None and x.ended.tzinfo is not None
        assert x.ended >= x.started and abs(x.ended - now).total_seconds() < 60
        assert datetime.timedelta(0) <= x.duration < datetime.timedelta(seconds=5)
        assert abs((x.ended - x.started) - x.duration) < datetime.timedelta(milliseconds=50)
    assert datetime.timedelta(seconds=0.18) <= runs[3].duration < datetime.timedelta(seconds=5)
    assert runs[0].duration < runs[3].duration
    assert (runs[4].ended, runs[4].duration) == (None, None)      # nobody saw it die
    assert runs[5].ended is None and runs[5].duration >= datetime.timedelta(0)
    assert runs[5].duration < datetime.timedelta(seconds=60)
    # headcount history says the same
    r = cli("history", "hist", "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)["runs"]
    assert [(j["pid"], j["how"], j["exit"], j["signal"]) for j in shown] == \
        [(x.pid, x.how, x.exit, x.signal_name) for x in runs]
    assert headcount.history("hist", dir=d)[:5] == runs[:5]      # the finished ones stay


def test_history_of_a_python_seat_and_its_limits(d):
    with headcount.join("seated", tag="worker 3", dir=d) as seat:
        [x] = headcount.history("seated", dir=d)
        assert (x.how, x.pid, x.tag, x.ended, x.exit) == ("running", os.getpid(), "worker 3",
                                                          None, None)
        time.sleep(0.05)
    [y] = headcount.history("seated", dir=d)
    assert (y.how, y.pid, y.tag, y.exit, y.signal) == ("left", os.getpid(), "worker 3",
                                                      None, None)
    assert (y.seat, y.run, y.seq, y.started) == (seat.index, x.run, x.seq, x.started)
    assert y.ended is not None and y.duration >= datetime.timedelta(milliseconds=30)
    assert headcount.history("never-made", dir=d) == []
    assert "never-made" not in " ".join(os.listdir(d))    # looking made nothing
    with pytest.raises(ValueError, match="fleet"):
        headcount.history("seated", fleet=True)
    with pytest.raises(ValueError):
        headcount.history("seated", system=True, fleet=True)
    assert cli("history", "--fleet", "seated").returncode == 64     # the CLI's usage error


def test_every_python3_imports_it(d):
    """The python3 first on PATH and Debian's /usr/bin/python3 both load the module."""
    pythons = {}
    for p in (shutil.which("python3"), "/usr/bin/python3", sys.executable):
        if p and os.path.exists(p):
            real = subprocess.run([p, "-c", "import sys; print(sys.executable)"],
                                  capture_output=True, text=True).stdout.strip()
            pythons.setdefault(real, p)
    fast = "True" if EXTENSION else "False"      # an extension built loads in every CPython
    for p in pythons.values():
        r = subprocess.run([p, "-c", "import headcount, sys\n"
                            "with headcount.join('py', dir=sys.argv[1]):\n"
                            "    print(headcount.count('py', dir=sys.argv[1]))\n"
                            "print(headcount._fast is not None)", d],
                           capture_output=True, text=True, timeout=30)
        assert (r.returncode, r.stdout) == (0, f"1\n{fast}\n"), (p, r.stderr)


# tests/python/run.sh says whether this build has headcount._fast (configure found Python.h)
EXTENSION = os.environ.get("HC_TEST_PY_EXTENSION") == "yes"


def test_the_extension_makes_the_joins_and_leaves_when_built(d):
    if not EXTENSION:
        assert headcount._fast is None and headcount._leave is headcount._lib.hc_leave
        pytest.skip("this build has no headcount._fast (configure found no Python.h)")
    fast = headcount._fast
    assert headcount._leave is fast.leave and headcount._fast_join is fast.join
    o = headcount._opts(d, False, False)
    oa = ctypes.addressof(o)
    v = fast.join(b"direct", oa)                   # the seat's address
    assert v > 0 and headcount.count("direct", dir=d) == 1
    assert cli("count", "direct").stdout.strip() == "1"
    assert fast.join(b"direct", oa) == -errno.EBUSY
    h = ctypes.c_void_p()
    assert headcount._lib.hc_region_open(b"direct", o, ctypes.byref(h)) == 0
    assert fast.region_join(h.value, oa) == -errno.EBUSY
    fast.leave(v)
    assert cli("count", "direct").stdout.strip() == "0"
    w = fast.region_join(h.value, oa)
    assert w > 0 and cli("count", "direct").stdout.strip() == "1"
    headcount._lib.hc_leave(w)                    # a seat of either path leaves through either
    headcount._lib.hc_region_close(h)
    assert cli("count", "direct").stdout.strip() == "0"
    assert fast.join(b"no/such", oa) == -errno.EINVAL
    for bad in ((), ("direct", oa), (b"direct", 0), (b"direct", -1), (b"direct", oa, 1)):
        with pytest.raises((TypeError, ValueError, OverflowError)):
            fast.join(*bad)
    for bad in (0, None, "x"):
        with pytest.raises((TypeError, ValueError)):
            fast.leave(bad)


CTYPES_ONLY = """
import asyncio, sys
sys.modules["headcount._fast"] = None          # as in a Python that cannot load it
import headcount
d = sys.argv[1]
assert headcount._fast is None
out = []
for k in range(3):                             # cold, then warm through the region kept
    with headcount.join("pure", max=2, dir=d) as a:
        with headcount.join("pure", max=2, dir=d) as b:
            out.append((sorted((a.index, b.index)), headcount.count("pure", dir=d)))
            try:
                headcount.join("pure", max=2, dir=d)
            except headcount.Busy:
                out.append("busy")
    out.append(headcount.count("pure", dir=d))
async def main():
    s = await headcount.join_async("pure", max=1, dir=d)
    out.append((s.index, headcount.count("pure", dir=d)))
    s.leave()
asyncio.run(main())
out.append(headcount.count("pure", dir=d))
print(out)
"""


def test_without_the_extension_the_joins_go_through_ctypes(d):
    r = subprocess.run([sys.executable, "-c", CTYPES_ONLY, d], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str([([0, 1], 2), "busy", 0] * 3 + [(0, 1), 0])
    runs = headcount.history("pure", dir=d)
    assert len(runs) == 7 and {x.how for x in runs} == {"left"}


def test_help_shows_docstrings():
    assert "max" in headcount.join.__doc__ and "Busy" in headcount.join.__doc__
    for f in headcount.__all__:
        assert getattr(headcount, f).__doc__, f


# ---- The regions the module keeps open ------------------------------------------------


def kept(name):
    """Whether the module keeps region NAME open (any scope)."""
    return any(key[0] == name.encode() for key in headcount._regions)


@pytest.fixture
def fresh():
    """The module as in a process that has joined nothing and never forked (the children
    of the tests before are gone)."""
    headcount._regions_forget()
    headcount._forks = 0
    yield
    headcount._regions_forget()


def test_a_join_with_max_1_is_at_seat_0_cold_and_warm(d, fresh):
    # the module does not ask the library for the index of a seat taken with max 1: the
    # library's own list says where it is, after seats 1 and 2 were the last ones taken
    # through the region kept
    for k in range(2):
        with headcount.join("one", max=1, dir=d) as s:        # cold, then warm
            assert s.index == 0
            assert [i.seat for i in headcount.list("one", dir=d)] == [0]
    a, b, c = (headcount.join("one", max=3, dir=d) for _ in range(3))
    assert (a.index, b.index, c.index) == (0, 1, 2)
    a.leave()
    c.leave()
    with headcount.join("one", max=1, dir=d) as s:
        assert s.index == 0
        assert sorted(i.seat for i in headcount.list("one", dir=d)) == [0, 1]
    b.leave()


def test_repeated_joins_keep_the_region_and_the_count(d, fresh):
    with headcount.join("again", max=2, dir=d):    # the first: by name, nothing kept
        assert cli("count", "again").stdout.strip() == "1"
        assert not kept("again")
    for k in range(5):
        with headcount.join("again", max=2, dir=d) as a:
            assert cli("count", "again").stdout.strip() == "1"
            with headcount.join("again", max=2, dir=d) as b:
                assert {a.index, b.index} == {0, 1}
                assert cli("count", "again").stdout.strip() == "2"
                with pytest.raises(headcount.Busy):
                    headcount.join("again", max=2, dir=d)
            assert cli("count", "again").stdout.strip() == "1"
        assert cli("count", "again").stdout.strip() == "0"
        assert headcount.count("again", dir=d) == 0
        assert kept("again")                       # from the second join on: warm
    runs = headcount.history("again", dir=d)
    assert len(runs) == 11 and {r.how for r in runs} == {"left"}
    assert {r.pid for r in runs} == {os.getpid()}


def test_a_region_removed_between_joins_is_joined_again_by_name(d, fresh):
    for _ in range(2):
        with headcount.join("gone", dir=d):
            pass
    assert kept("gone")
    before = [rg for key, rg in headcount._regions.items() if key[0] == b"gone"]
    r = cli("remove", "gone")
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(d, "gone"))
    with headcount.join("gone", dir=d):
        assert os.path.exists(os.path.join(d, "gone"))
        assert cli("count", "gone").stdout.strip() == "1"
        assert str(os.getpid()) in cli("list", "gone").stdout
        with pytest.raises(headcount.Busy):
            headcount.join("gone", dir=d)
    assert cli("count", "gone").stdout.strip() == "0"
    after = [rg for key, rg in headcount._regions.items() if key[0] == b"gone"]
    assert after and after != before and before[0].h is None   # the old handle was closed
    # and once more, through the handle opened after the removal
    with headcount.join("gone", dir=d):
        assert cli("count", "gone").stdout.strip() == "1"


def test_the_same_name_in_two_scopes_is_two_regions(d, fresh, tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    for _ in range(3):
        with headcount.join("twin", dir=d) as a, headcount.join("twin", dir=str(other)) as b:
            assert (a.index, b.index) == (0, 0)
            assert cli("count", "twin").stdout.strip() == "1"
            assert cli("--dir", str(other), "count", "twin").stdout.strip() == "1"
            assert headcount.count("twin", dir=d) == 1
            assert headcount.count("twin", dir=str(other)) == 1
    # without dir=: $HEADCOUNT_DIR at the call decides
    for _ in range(2):
        with headcount.join("env"):
            assert headcount.count("env", dir=d) == 1
            assert headcount.count("env", dir=str(other)) == 0
    monkeypatch.setenv("HEADCOUNT_DIR", str(other))
    with headcount.join("env"):
        assert headcount.count("env", dir=d) == 0
        assert headcount.count("env", dir=str(other)) == 1
    # a relative dir=: the working directory at the call decides
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        with headcount.join("rel", dir="scope"):
            assert headcount.count("rel", dir=d) == 1
    monkeypatch.chdir(other)
    (other / "scope").mkdir(mode=0o700)
    with headcount.join("rel", dir="scope"):
        assert headcount.count("rel", dir=d) == 0
        assert headcount.count("rel", dir=str(other / "scope")) == 1


def test_a_fork_child_joins_after_its_parent(d, fresh):
    for _ in range(2):
        with headcount.join("fk", dir=d):
            pass
    assert kept("fk")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            fresh = not headcount._regions        # the child keeps nothing of its parent's
            with headcount.join("fk", dir=d) as seat:
                os.write(w, b"%d %d\n" % (fresh, seat.index))
                time.sleep(0.5)
            with headcount.join("fk", dir=d):        # a second join: through a handle of its own
                time.sleep(0.5)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    before = [rg for key, rg in headcount._regions.items() if key[0] == b"fk"]
    with os.fdopen(r) as f:
        assert f.readline() == "1 0\n"
    until("the child's seat", lambda: cli("count", "fk").stdout.strip() == "1")
    with pytest.raises(headcount.Busy):
        headcount.join("fk", dir=d)
    assert os.waitpid(pid, 0)[1] == 0
    assert cli("count", "fk").stdout.strip() == "0"
    with headcount.join("fk", dir=d):
        assert cli("count", "fk").stdout.strip() == "1"
    assert cli("count", "fk").stdout.strip() == "0"
    # nor does the parent join through what it kept before fork(): it opened it again
    after = [rg for key, rg in headcount._regions.items() if key[0] == b"fk"]
    assert before and after and after[0] is not before[0] and before[0].h is None


FORK_THEN_JOIN = """
import os, sys, headcount
d, how = sys.argv[1], sys.argv[2]
# kept: the region kept open, with a spare description in it; once: joined by name, the
# library's spare description of that lock file kept, and joined again after fork() by
# another spelling of the directory (which the module cannot tell is the same region)
for _ in range(3 if how == "kept" else 1):
    with headcount.join("pf", dir=d):
        pass
child = os.fork()
if child == 0:                     # lives on, touching nothing of headcount
    sys.stdin.read()
    os._exit(0)
seat = headcount.join("pf", dir=d if how == "kept" else d + "/")
print(child, flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("how", ["kept", "once"])
def test_a_seat_taken_after_fork_dies_with_its_holder(d, how):
    # A description the child inherited must not carry the parent's later seat: the
    # parent's death frees it while the child lives on.
    p = subprocess.Popen([sys.executable, "-c", FORK_THEN_JOIN, d, how],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(p.stdout.readline())
        assert cli("count", "pf").stdout.strip() == "1"
        p.kill()
        p.wait(10)
        assert headcount.wait("pf", below=1, timeout=10, dir=d)
        assert cli("count", "pf").stdout.strip() == "0"
        os.kill(child, 0)                          # the child still lives
    finally:
        p.kill()
        if child:
            os.kill(child, signal.SIGKILL)


def test_threads_join_and_leave_one_name_at_once(d, fresh, monkeypatch):
    # one region kept, so that the evictor's joins close the one the workers use, and
    # the threads switched often
    monkeypatch.setattr(headcount, "REGIONS_KEPT", 1)
    interval = sys.getswitchinterval()
    held, most, errors, others = [0], [0], [], [0]
    count_lock = threading.Lock()
    stop = threading.Event()

    def worker():
        try:
            for _ in range(150):
                with headcount.join("crowd", max=3, wait=30, dir=d) as seat:
                    assert 0 <= seat.index < 3
                    with count_lock:
                        held[0] += 1
                        most[0] = max(most[0], held[0])
                    assert headcount.count("crowd", dir=d) <= 3
                    with count_lock:
                        held[0] -= 1
        except BaseException as e:                 # noqa: B036 - reported below
            errors.append(e)

    def evictor():
        # other names, so that "crowd" is evicted and opened again while in use
        k = 0
        while not stop.is_set():
            with headcount.join(f"other{k % 4}", dir=d):
                pass
            k += 1
            others[0] += 1

    sys.setswitchinterval(1e-5)
    try:
        ev = threading.Thread(target=evictor)
        ev.start()
        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        stop.set()
        ev.join(30)
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors
    assert 1 <= most[0] <= 3
    assert cli("count", "crowd").stdout.strip() == "0"
    assert headcount.count("crowd", dir=d) == 0
    assert len(headcount._regions) <= 1
    assert others[0] > 0                          # each of them evicted another


def test_eviction_keeps_a_held_seat_and_few_descriptors(d, fresh):
    def fds():
        return len(os.listdir("/proc/self/fd"))

    with headcount.join("held", dir=d):
        pass
    seat = headcount.join("held", dir=d)          # through the handle kept open
    assert kept("held")
    base = fds()
    for k in range(3 * headcount.REGIONS_KEPT):
        for _ in range(2):
            with headcount.join(f"many{k}", dir=d):
                pass
    assert not kept("held")                        # evicted, the seat still holds it
    assert len(headcount._regions) == headcount.REGIONS_KEPT
    assert fds() - base <= 3 * headcount.REGIONS_KEPT
    assert cli("count", "held").stdout.strip() == "1"
    assert str(os.getpid()) in cli("list", "held").stdout
    with pytest.raises(headcount.Busy):
        headcount.join("held", dir=d)
    seat.leave()
    assert cli("count", "held").stdout.strip() == "0"
    assert [r.how for r in headcount.history("held", dir=d)][-1] == "left"
    with headcount.join("held", dir=d):
        assert cli("count", "held").stdout.strip() == "1"


def test_wait_async_wakes_at_a_leave_through_a_region_kept_open(d, fresh, monkeypatch):
    # such a leave closes nothing: the waiter counts as one (HC_WATCH), so that the leave
    # raises an event. With the periodic re-check pushed far past the timeout, only that
    # event can wake the waiter before it times out (at 20 s, it returns True too: the
    # count is 0 by then).
    monkeypatch.setattr(headcount, "HC_WAIT_RECHECK_MS", 3600 * 1000)
    for _ in range(2):
        with headcount.join("woken", dir=d):
            pass
    assert kept("woken")

    async def main():
        seat = headcount.join("woken", dir=d)
        waiting = asyncio.ensure_future(headcount.wait_async("woken", below=1, timeout=20, dir=d))
        await asyncio.sleep(0.2)            # the waiter is watching (it cannot return yet)
        assert not waiting.done()
        seat.leave()
        left = time.monotonic()
        assert await waiting is True
        return time.monotonic() - left

    # woken by the event, not at its timeout (20 s) nor at a re-check (an hour)
    assert asyncio.run(main()) < 10


def test_join_arguments_are_checked_after_a_join_like_them(d):
    # a join with max=1 (its options kept for the next) does not let max=1.0 in
    with headcount.join("typed", dir=d):
        pass
    for bad in (1.0, 1.5):
        with pytest.raises((TypeError, ValueError)):
            headcount.join("typed", max=bad, dir=d)
    with pytest.raises((TypeError, ValueError)):
        headcount.join("typed", wait="1", dir=d)
