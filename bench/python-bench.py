# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Python module's speed, as ratios to Python's own ways measured in the same rounds:

  join+leave        ``with headcount.join(NAME): pass`` in a loop (the module keeps the
                    region open after the first join of NAME in the process, so these are
                    warm joins), against a pidfile with fcntl.flock (os.open,
                    flock(LOCK_EX|LOCK_NB), the pid written, os.close): target <= 2x; and
                    against filelock.FileLock (a new lock object each time,
                    ``with lock: pass``): target < 1x
  first join        a process's first join of a name (cold, by name): the same, with the
                    module's memory of the names it joined emptied before each join (as
                    in a fresh process), against the pidfile: target <= 2x
  (reported)        the library's bare hc_join + hc_leave (a join by name, options built
                    once) and bare hc_region_join + hc_leave (through a handle opened
                    once), made as the module makes them (through headcount._fast when it
                    loads, else ctypes), against the pidfile: the floors under the cold and
                    the warm join; the module against the latter: what the binding adds;
                    and the bare cold pair through headcount._fast against the same through
                    ctypes: what ctypes' calls would cost
  count             ``headcount.count(NAME)`` (one holder) against spawning the CLI's
                    ``headcount count NAME``: target >= 20x faster

Each of 15 rounds times the reference and then the candidate; the table gives the median
of the per-round ratios and the median times. Usage: python-bench.py HEADCOUNT-CLI [ROUNDS]
"""
import fcntl
import os
import statistics
import subprocess
import sys
import tempfile
import time

import headcount

try:
    import filelock
except ImportError:
    filelock = None


def per_op(fn, n):
    t0 = time.perf_counter_ns()
    fn(n)
    return (time.perf_counter_ns() - t0) / n


def fmt(ns):
    return f"{ns / 1000:.1f} µs" if ns < 1e6 else f"{ns / 1e6:.2f} ms"


def main():
    cli = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    d = tempfile.mkdtemp(prefix="headcount-pybench.", dir="/dev/shm")
    os.chmod(d, 0o700)
    pidfile = os.path.join(d, "flock.pid")
    lockfile = os.path.join(d, "filelock.lock")
    pid = str(os.getpid()).encode()
    env = dict(os.environ, HEADCOUNT_DIR=d)

    def hc_join(n):
        for _ in range(n):
            with headcount.join("bench", dir=d):
                pass

    def hc_first(n):
        # every join the process's first of the name: the regions kept dropped once, and
        # the module's memory of the names it joined emptied before each join, as in a
        # fresh process (a dict's clear(), about 1% of the pidfile's cycle)
        headcount._regions_forget()
        seen = headcount._seen
        for _ in range(n):
            seen.clear()
            with headcount.join("bench", dir=d):
                pass

    def flock_pidfile(n):
        for _ in range(n):
            fd = os.open(pidfile, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.write(fd, pid)
            os.close(fd)

    def file_lock(n):
        for _ in range(n):
            with filelock.FileLock(lockfile, timeout=0):
                pass

    # the library's own cost: hc_join + hc_leave with options built once, through
    # headcount._fast as the module makes them when it loads, and through ctypes
    import ctypes
    fast = headcount._fast
    bare_o = headcount._opts(d, False, False)
    bare_oa = ctypes.addressof(bare_o)
    bare_slot = ctypes.c_void_p()
    bare_name = b"bench"

    def hc_bare_ctypes(n):
        join, leave = headcount._lib.hc_join, headcount._lib.hc_leave
        o, slot = bare_o, bare_slot
        for _ in range(n):
            join(bare_name, o, slot)
            leave(slot.value)

    def hc_bare_fast(n):
        join, leave, o = fast.join, fast.leave, bare_oa
        for _ in range(n):
            leave(join(bare_name, o))

    warm_h = ctypes.c_void_p()
    assert headcount._lib.hc_region_open(bare_name, ctypes.byref(bare_o),
                                         ctypes.byref(warm_h)) == 0

    def hc_bare_warm(n):
        if fast:
            join, leave, h, o = fast.region_join, fast.leave, warm_h.value, bare_oa
            for _ in range(n):
                leave(join(h, o))
            return
        join, leave = headcount._lib.hc_region_join, headcount._lib.hc_leave
        h, o, slot = warm_h, bare_o, bare_slot
        for _ in range(n):
            join(h, o, slot)
            leave(slot.value)

    hc_bare = hc_bare_fast if fast else hc_bare_ctypes

    def hc_count(n):
        for _ in range(n):
            headcount.count("counted", dir=d)

    def cli_count(n):
        for _ in range(n):
            subprocess.run([cli, "count", "counted"], env=env, stdout=subprocess.DEVNULL,
                           check=True)

    holder = headcount.join("counted", dir=d)
    rows = [("join+leave", hc_join, "fcntl.flock pidfile", flock_pidfile, 2000, 2000,
             "<= 2.00x", lambda r: r <= 2.0)]
    if filelock:
        rows.append(("join+leave", hc_join, "filelock.FileLock", file_lock, 2000, 2000,
                     "< 1.00x", lambda r: r < 1.0))
    rows.append(("first join (cold)", hc_first, "fcntl.flock pidfile", flock_pidfile, 2000,
                 2000, "<= 2.00x", lambda r: r <= 2.0))
    rows.append(("bare hc_join+leave", hc_bare, "fcntl.flock pidfile", flock_pidfile, 2000, 2000,
                 "(the cold floor)", lambda r: True))
    rows.append(("bare region_join", hc_bare_warm, "fcntl.flock pidfile", flock_pidfile, 2000,
                 2000, "(the warm floor)", lambda r: True))
    rows.append(("join+leave", hc_join, "bare hc_region_join+leave", hc_bare_warm, 2000, 2000,
                 "(the module's overhead)", lambda r: True))
    if fast:
        rows.append(("bare hc_join+leave", hc_bare_fast, "the same through ctypes",
                     hc_bare_ctypes, 2000, 2000, "(ctypes' cost)", lambda r: True))
    rows.append(("headcount.count()", hc_count, "spawning 'headcount count'", cli_count,
                 2000, 40, "<= 0.05x (20x faster)", lambda r: r <= 0.05))
    for _, cand, _, ref, nc, nr, _, _ in rows:          # warm up caches and the allocator
        ref(max(1, nr // 10))
        cand(max(1, nc // 10))
    results = []
    for what, cand, refname, ref, nc, nr, target, ok in rows:
        ratios, tc, tr = [], [], []
        for _ in range(rounds):
            r = per_op(ref, nr)
            c = per_op(cand, nc)
            tr.append(r)
            tc.append(c)
            ratios.append(c / r)
        results.append((what, statistics.median(tc), refname, statistics.median(tr),
                        statistics.median(ratios), target, ok(statistics.median(ratios))))
    holder.leave()
    headcount._lib.hc_region_close(warm_h)
    headcount._regions_forget()                 # the regions' files go below
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)
    print(f"Python {sys.version.split()[0]} ({sys.executable}), {rounds} rounds, "
          "median of per-round ratios; the module's joins and leaves through "
          + ("headcount._fast" if fast else "ctypes (headcount._fast is not built here)"))
    print(f"| {'operation':<18} | {'time':>9} | {'reference':<27} | {'time':>9} | "
          f"{'ratio':>7} | target |")
    print(f"|{'-' * 20}|{'-' * 11}|{'-' * 29}|{'-' * 11}|{'-' * 9}|--------|")
    for what, c, refname, r, ratio, target, met in results:
        shown = f"{ratio:.3f}x" if ratio < 0.1 else f"{ratio:.2f}x"
        print(f"| {what:<18} | {fmt(c):>9} | {refname:<27} | {fmt(r):>9} | {shown:>7} | "
              f"{target}{'' if target.startswith('(') else (', met' if met else ', MISSES')} |")
    if not filelock:
        print("(no filelock here: install python3-filelock for that row)")


if __name__ == "__main__":
    main()
