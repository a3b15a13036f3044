#!/usr/bin/env python3
"""nudge-1k from Python: mmm_engine's per-call `decide` against zen-engine's per-call
`evaluate` on the same 1,000 rules (a decision table with the collect hit policy).

Workload (as in the Rust benchmark): 1,000 playbooks over 20 signal kinds, each
`when: signal.payload.lines > T && signal.payload.files > F` with random thresholds and one
mirror action, no fatigue limits; 20,000 random signals. Before timing, both engines are
checked to find the same matching rules for a sample of signals.

Run: .venv/bin/python benches/python/nudge1k.py   (after scripts/test-python.sh or
`pip install ./bindings/python zen-engine`). Prints medians in microseconds.
"""

import argparse
import json
import random
import statistics
import time

import mmm_engine
import zen

NOW = "2026-11-22T10:00:00Z"
KINDS = 20


def workload(rules=1000, signals=20_000, seed=1):
    rng = random.Random(seed)
    rule_list = [(f"nudge-{i:04d}", f"kind.k{i % KINDS:02d}", rng.randint(0, 1000), rng.randint(0, 50)) for i in range(rules)]
    signal_list = [{"tenant_id": "acme", "actor_id": f"dev-{rng.randrange(500)}", "kind": f"kind.k{rng.randrange(KINDS):02d}",
                    "occurred_at": NOW, "payload": {"lines": rng.randint(0, 1200), "files": rng.randint(0, 60)}}
                   for _ in range(signals)]
    return rule_list, signal_list


def mmm_playbooks(rule_list):
    return "---\n".join(
        "apiVersion: mmm/v1\nkind: Playbook\n"
        f"metadata: {{id: {pid}, version: 1, tenant: '*', status: published, category: size}}\n"
        f"spec:\n  triggers: [{kind}]\n  when: signal.payload.lines > {t} && signal.payload.files > {f}\n"
        "  actions:\n    - {type: mirror, surfaces: [ide], title: Size, text: 'This change touches {{ signal.payload.lines }} lines.'}\n"
        for pid, kind, t, f in rule_list)


def zen_table(rule_list):
    inputs = [{"id": "kind", "name": "Kind", "type": "expression", "field": "kind"},
              {"id": "lines", "name": "Lines", "type": "expression", "field": "lines"},
              {"id": "files", "name": "Files", "type": "expression", "field": "files"}]
    outputs = [{"id": "playbook", "name": "Playbook", "type": "expression", "field": "playbook"}]
    rules = [{"_id": pid, "kind": json.dumps(kind), "lines": f"> {t}", "files": f"> {f}", "playbook": json.dumps(pid)}
             for pid, kind, t, f in rule_list]
    return json.dumps({
        "contentType": "application/vnd.gorules.decision",
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "Request", "position": {"x": 0, "y": 0}},
            {"id": "table", "type": "decisionTableNode", "name": "nudge-1k", "position": {"x": 200, "y": 0},
             "content": {"hitPolicy": "collect", "inputs": inputs, "outputs": outputs, "rules": rules}},
            {"id": "out", "type": "outputNode", "name": "Response", "position": {"x": 400, "y": 0}},
        ],
        "edges": [{"id": "e1", "sourceId": "in", "targetId": "table", "type": "edge"},
                  {"id": "e2", "sourceId": "table", "targetId": "out", "type": "edge"}],
    })


def flat(signal):
    return {"kind": signal["kind"], "lines": signal["payload"]["lines"], "files": signal["payload"]["files"]}


def median_per_call(fn, items, calls, chunk=500):
    """Median over chunks of `chunk` calls of the time per call, in microseconds."""
    per_call = []
    i = 0
    while i < calls:
        start = time.perf_counter()
        for k in range(chunk):
            fn(items[(i + k) % len(items)])
        per_call.append((time.perf_counter() - start) / chunk * 1e6)
        i += chunk
    return statistics.median(per_call)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000, help="calls timed per engine (default 20000)")
    parser.add_argument("--zen-calls", type=int, default=2_000, help="zen per-call evaluations timed (slower)")
    args = parser.parse_args()

    rule_list, signal_list = workload()
    started = time.perf_counter()
    engine = mmm_engine.Engine.from_yaml(mmm_playbooks(rule_list))
    mmm_compile = (time.perf_counter() - started) * 1e3
    zen_engine = zen.ZenEngine()
    started = time.perf_counter()
    table = zen_engine.create_decision(zen_table(rule_list))
    zen_compile = (time.perf_counter() - started) * 1e3

    # The same rules match in both engines.
    uncapped = {"tenant_policy": {"max_actions_per_decision": 1000}}
    for s in signal_list[:200]:
        ours = sorted(a["playbook"]["id"] for a in engine.decide(s, uncapped, now=NOW)["actions"])
        theirs = sorted(r["playbook"] for r in table.evaluate(flat(s))["result"])
        assert ours == theirs, (s, ours, theirs)

    flat_signals = [flat(s) for s in signal_list]
    mmm_us = median_per_call(lambda s: engine.decide(s, now=NOW), signal_list, args.calls)
    zen_us = median_per_call(table.evaluate, flat_signals, args.zen_calls, chunk=100)
    batch = [{"key": "nudge-1k", "context": c} for c in flat_signals[:1000]]
    zen_batch_engine = zen.ZenEngine({"loader": {"type": "static", "content": {"nudge-1k": json.loads(zen_table(rule_list))}}})
    zen_batch_engine.evaluate_batch(batch[:10])  # warm the loader
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        zen_batch_engine.evaluate_batch(batch)
        runs.append((time.perf_counter() - start) / len(batch) * 1e6)
    zen_batch_us = statistics.median(runs)

    print("nudge-1k from Python (1,000 rules, 20 kinds, 20,000 signals)")
    print(f"  compile          mmm_engine {mmm_compile:8.1f} ms   zen-engine {zen_compile:8.1f} ms")
    print(f"  per call median  mmm_engine.decide   {mmm_us:8.2f} us")
    print(f"                   zen evaluate        {zen_us:8.2f} us")
    print(f"                   zen evaluate_batch  {zen_batch_us:8.2f} us per item")
    print(f"  mmm_engine is {zen_us / mmm_us:.1f}x faster per call than zen-engine "
          f"(target, issue 11: decide <= 10 us and >= 40x)")
    ok = mmm_us <= 10 and zen_us / mmm_us >= 40
    print("  targets met" if ok else "  TARGETS MISSED")


if __name__ == "__main__":
    main()
