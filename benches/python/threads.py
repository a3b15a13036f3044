#!/usr/bin/env python3
"""Throughput of one shared `Engine` from 1, 2, … Python threads (decisions per second).

`decide` releases the GIL while Rust works (proved, without timing, by
`bindings/python/tests/test_threads.py`); this measures what that buys. The workload keeps
the work in Rust: 2,000 playbooks over 5 kinds, each `when: lines > T && files > F` with
random thresholds, and signals of which few match, so little comes back to convert with
the GIL held. Each thread count runs for `--seconds` (default 2); the best of `--rounds`
(default 3) is printed, since a neighbour on a shared machine can take a core for a while.

Run: .venv/bin/python benches/python/threads.py [--threads 4]   (after scripts/test-python.sh)
"""

import argparse
import random
import threading
import time

import mmm_engine

NOW = "2026-11-22T10:00:00Z"


def playbooks(n=2000, kinds=5, seed=7):
    rng = random.Random(seed)
    return "---\n".join(
        "apiVersion: mmm/v1\nkind: Playbook\n"
        f"metadata: {{id: nudge-{i:04d}, version: 1, tenant: '*', status: published}}\n"
        f"spec:\n  triggers: [kind.k{i % kinds}]\n"
        f"  when: signal.payload.lines > {rng.randint(0, 1000)} && signal.payload.files > {rng.randint(0, 50)}\n"
        "  actions: [{type: mirror, surfaces: [ide], title: Size, text: 'Lines: {{ signal.payload.lines }}'}]\n"
        for i in range(n))


def signals(count=200, kinds=5, seed=3, max_lines=80):
    rng = random.Random(seed)
    return [{"tenant_id": "acme", "actor_id": f"dev-{i % 17}", "kind": f"kind.k{rng.randrange(kinds)}",
             "occurred_at": NOW, "payload": {"lines": rng.randint(0, max_lines), "files": rng.randint(0, 60)}}
            for i in range(count)]


def rate(engine, batch, threads, seconds):
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def work(k):
        i = 0
        while time.perf_counter() < stop:
            engine.decide(batch[i % len(batch)], now=NOW)
            i += 1
        done[k] = i

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(done) / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="most threads (default 2)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per thread count")
    args = parser.parse_args()
    engine = mmm_engine.Engine.from_yaml(playbooks())
    batch = signals()
    one = None
    print("decisions per second from one shared Engine (2,000 playbooks, few matching)")
    for n in range(1, args.threads + 1):
        best = max(rate(engine, batch, n, args.seconds) for _ in range(args.rounds))
        one = one or best
        print(f"  {n} thread{'s' if n > 1 else ' '}  {best:10.0f}/s   {best / one:4.2f}x one thread")


if __name__ == "__main__":
    main()
