# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fleet scope from Python: a real etcd (tests/common/etcd-launch, killed by pid) and
two headcountd --etcd agents for hosts "a" and "b". Skipped where etcd or headcountd's
fleet agent is missing."""
import asyncio
import ctypes
import errno
import os
import signal
import subprocess
import time

import pytest

import headcount
from conftest import cli

ETCD = "/usr/bin/etcd"


def _pdeathsig():
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)      # PR_SET_PDEATHSIG: gone with us


def _until(what, cond, bound=30.0):
    deadline = time.monotonic() + bound
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {bound} s")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    launch = os.environ.get("HC_TEST_ETCD_LAUNCH", "")
    daemon = os.environ.get("HC_TEST_HEADCOUNTD", "")
    if not os.access(ETCD, os.X_OK) or not os.path.exists(launch):
        pytest.skip("no etcd (Debian's etcd-server)")
    if not os.access(daemon, os.X_OK):
        pytest.skip("no headcountd in this build (--disable-daemon)")
    top = tmp_path_factory.mktemp("fleet")
    procs = []
    try:
        etcd = subprocess.Popen([launch, str(top / "etcd")], preexec_fn=_pdeathsig,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(etcd)
        (top / "etcd").mkdir()
        endpoints = top / "etcd" / "endpoints"
        _until("etcd is up", lambda: endpoints.exists() or etcd.poll() is not None)
        if etcd.poll() is not None:
            pytest.skip("etcd did not start")
        dirs = {}
        for host in ("a", "b"):
            d = top / f"host-{host}"
            d.mkdir(mode=0o700)
            log = open(top / f"host-{host}.log", "w")
            p = subprocess.Popen([daemon, "--dir", str(d), "--bus=none", "--log-target", "stderr",
                                  "--host", host, "--etcd", endpoints.read_text().strip(),
                                  "--etcd-prefix", f"/python-{os.getpid()}/"],
                                 stdout=log, stderr=log, preexec_fn=_pdeathsig)
            procs.append(p)
            sock = d / ".headcountd.fleet"
            _until(f"headcountd for {host} serves the fleet scope",
                   lambda: sock.exists() or p.poll() is not None)
            if p.poll() is not None:
                if "fleet" in (top / f"host-{host}.log").read_text():
                    pytest.skip("headcountd has no fleet agent (--disable-fleet)")
                pytest.fail((top / f"host-{host}.log").read_text())
            dirs[host] = str(d)
        yield dirs
    finally:
        for p in reversed(procs):                # by pid: the launcher kills its members
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_fleet_seat_across_hosts(hosts):
    a, b = hosts["a"], hosts["b"]
    with headcount.join("report", max=1, tag="nightly", dir=a, fleet=True) as seat:
        assert seat.index == 0 and isinstance(seat.fence, int) and seat.fence > 0
        assert seat.lost is False and seat.lost_fd() >= 0
        with pytest.raises(headcount.Busy) as e:       # the other host is refused
            headcount.join("report", max=1, dir=b, fleet=True)
        assert e.value.errno == errno.EBUSY
        assert headcount.count("report", dir=b, fleet=True) == 1
        [i] = headcount.list("report", dir=b, fleet=True)
        assert (i.host, i.fence, i.pid, i.tag) == ("a", seat.fence, os.getpid(), "nightly")
        assert headcount.primary("report", dir=b, fleet=True).host == "a"
        assert ("report", 1, None) in headcount.names(dir=a, fleet=True)
        r = cli("--fleet", "count", "report", env={**os.environ, "HEADCOUNT_DIR": b})
        assert r.stdout.strip() == "1", r.stderr
        assert headcount.wait("report", below=1, timeout=0.1, dir=b, fleet=True) is False
    assert headcount.wait("report", below=1, timeout=10, dir=b, fleet=True) is True
    with headcount.join("report", max=1, dir=b, fleet=True) as later:
        assert later.fence > seat.fence                # fences grow with every admission


def test_fleet_asyncio(hosts):
    a, b = hosts["a"], hosts["b"]

    async def main():
        seat = await headcount.join_async("aio", dir=a, fleet=True)
        waiting = asyncio.ensure_future(headcount.join_async("aio", wait=30, dir=b, fleet=True))
        asyncio.get_running_loop().call_later(0.05, seat.leave)
        other = await asyncio.wait_for(waiting, 20)
        assert other.fence > seat.fence
        other.leave()
        assert await headcount.wait_async("aio", below=1, timeout=10, dir=a, fleet=True)

    asyncio.run(main())


def test_unreachable_agent(tmp_path):
    d = tmp_path / "nobody"
    d.mkdir(mode=0o700)
    with pytest.raises(headcount.Unavailable) as e:
        headcount.join("x", dir=str(d), fleet=True)
    assert e.value.errno == errno.EHOSTDOWN
    with pytest.raises(headcount.Unavailable):
        headcount.count("x", dir=str(d), fleet=True)
