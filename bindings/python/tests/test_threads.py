"""One Engine shared by many threads; the GIL is released while Rust works."""

import random
import threading
import time

import mmm_engine
from conftest import NOW


def nudge(n=300, kinds=5, seed=7):
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        docs.append(
            "apiVersion: mmm/v1\nkind: Playbook\n"
            f"metadata: {{id: nudge-{i:04d}, version: 1, tenant: '*', status: published}}\n"
            f"spec:\n  triggers: [kind.k{i % kinds}]\n"
            f"  when: signal.payload.lines > {rng.randint(0, 1000)} && signal.payload.files > {rng.randint(0, 50)}\n"
            "  actions: [{type: mirror, surfaces: [ide], title: Size, text: 'Lines: {{ signal.payload.lines }}'}]\n")
    return "---\n".join(docs)


def signals(count=200, kinds=5, seed=3, max_lines=1200):
    rng = random.Random(seed)
    return [{"tenant_id": "acme", "actor_id": f"dev-{i % 17}", "kind": f"kind.k{rng.randrange(kinds)}",
             "occurred_at": NOW, "payload": {"lines": rng.randint(0, max_lines), "files": rng.randint(0, 60)}}
            for i in range(count)]


def test_four_threads_decide_without_errors():
    engine = mmm_engine.Engine.from_yaml(nudge())
    batch = signals()
    errors = []

    def work():
        try:
            for s in batch:
                d = engine.decide(s, {"tenant_policy": {"max_actions_per_decision": 2}}, now=NOW)
                assert len(d["actions"]) <= 2
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def rate(engine, batch, threads, seconds=0.6):
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


def test_two_threads_give_more_throughput_than_one():
    # Many candidates per kind, few of which fire: the work is Rust's (GIL released),
    # not the conversion of a large decision back to Python (GIL held).
    engine = mmm_engine.Engine.from_yaml(nudge(n=2000))
    batch = signals(max_lines=80)
    # Up to ten tries: the machine is shared (a neighbour can take a core for seconds),
    # so noisy windows must not decide; one clean window shows the scaling.
    ratios = []
    for _ in range(10):
        one = rate(engine, batch, 1)
        two = rate(engine, batch, 2)
        ratios.append(two / one)
        if two > 1.15 * one:
            return
    raise AssertionError(f"2 threads / 1 thread throughput ratios: {ratios}")
