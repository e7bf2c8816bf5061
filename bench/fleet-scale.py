#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The fleet scope's load on etcd, by arithmetic (docs/fleet.md, "At scale").

For a number of hosts and a workload (seats held per host, how long a seat lives, the
lease's TTL, how many hosts wait on one name), prints what etcd carries: keys, writes per
second (joins, leaves; keepalives, which the leader serves without the raft log), reads,
the watch events and recounts that one delete causes, and how fast the history grows
against the backend quota. No etcd is needed.

    python3 bench/fleet-scale.py [--hosts 1000,10000] [--seats 4] [--life 60] [--ttl 10]
"""
import argparse

# Sizes, in bytes, as the agent writes them (docs/fleet.md, "Keys").
KEY = len("/headcount/") + 24 + len("/s/") + 24 + 1 + 36 + 1 + 12   # name, host ~24
VALUE = 160          # {"host":..,"pid":..,"uid":..,"joined_usec":..,"tag":""} and a tag
REVISION = 60        # bbolt's and the key index's overhead per stored revision
QUOTA = 2 << 30      # etcd's default --quota-backend-bytes
WRITES_OK = 10000    # writes per second that etcd sustains, order of magnitude, good disks


def model(hosts, seats, life, ttl, waiting_hosts, n):
    keys = hosts * seats
    joins = keys / life                         # seats taken per second, fleet-wide
    writes = 2 * joins                          # a put (the join's txn) and a delete each
    keepalives = hosts / (ttl / 3)              # one unary keepalive per host per TTL/3
    reads = joins                               # the rank: one count-only range per join
    history = writes * (KEY + VALUE + REVISION)  # bytes of new revisions per second
    # A delete of one busy name's seat: every host with a waiter on it hears it on its
    # watch and counts its rank again: one count-only range over the name's keys each.
    name_deletes = n / life
    herd_events = name_deletes * waiting_hosts
    herd_keys_scanned = herd_events * (n + waiting_hosts)
    return {
        "hosts": hosts,
        "seat keys": keys,
        "live data (MB)": keys * (KEY + VALUE + REVISION) / 1e6,
        "joins/s": joins,
        "writes/s (joins+leaves)": writes,
        "writes/s vs ~10k/s": writes / WRITES_OK,
        "keepalives/s (leader only)": keepalives,
        "rank reads/s": reads,
        "history (MB/h)": history * 3600 / 1e6,
        "hours to 2 GiB uncompacted": QUOTA / history / 3600 if history else float("inf"),
        "busy name: deletes/s": name_deletes,
        "busy name: watch events/s": herd_events,
        "busy name: keys scanned/s by recounts": herd_keys_scanned,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", default="1000,10000")
    ap.add_argument("--seats", type=float, default=4, help="seats held per host, on average")
    ap.add_argument("--life", type=float, default=60, help="seconds a seat is held, on average")
    ap.add_argument("--ttl", type=float, default=10, help="headcountd --ttl")
    ap.add_argument("--n", type=int, default=100, help="N of the busiest name")
    ap.add_argument("--waiting", type=float, default=0.1,
                    help="share of hosts with a waiter on the busiest name")
    a = ap.parse_args()
    rows = [model(h, a.seats, a.life, a.ttl, int(h * a.waiting), a.n)
            for h in (int(x) for x in a.hosts.split(","))]
    print("seats/host %g, seat life %g s, TTL %g s, busiest name N=%d with %g%% of hosts waiting"
          % (a.seats, a.life, a.ttl, a.n, a.waiting * 100))
    print("| quantity | " + " | ".join("%d hosts" % r["hosts"] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for k in rows[0]:
        if k == "hosts":
            continue
        print("| %s | %s |" % (k, " | ".join(
            ("%.0f" % r[k]) if r[k] >= 100 else ("%.2f" % r[k]) for r in rows)))


if __name__ == "__main__":
    main()
