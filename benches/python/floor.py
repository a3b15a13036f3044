#!/usr/bin/env python3
"""The floor under `Engine.decide` from Python: what CPython itself needs to build the
SPEC §4 decision dicts, whoever builds them.

For the nudge-1k decisions `decide` returns, this times, per decision:
  - `Engine.decide` itself (core, argument and decision conversion);
  - `marshal.loads` of the decision: CPython's own C code building the same dicts, lists,
    strings and numbers from a compact binary form, with no Python code and no parsing
    of text; the fastest way CPython offers to make that object graph;
  - `json.loads` of the decision's JSON text (the C accelerator), for comparison;
  - dict and list literals: one compiled function per shape of decision, building it with
    `BUILD_CONST_KEY_MAP` and `BUILD_LIST` from leaf values that already exist (no string
    or number is made). This is the least any builder can do: the containers alone.
All rebuild exactly what `decide` returns, so `decide` minus `marshal.loads` is what the
engine and the binding cost on top of the unavoidable object building.

Run: .venv/bin/python benches/python/floor.py  (after scripts/test-python.sh).
"""

import argparse
import json
import marshal
import statistics
import time

import mmm_engine
from nudge1k import NOW, mmm_playbooks, workload


def literal(value, leaves):
    """Python source that builds `value` with dict and list literals; every leaf value is
    appended to `leaves` and read back as `c[i]`."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {literal(v, leaves)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v, leaves) for v in value) + "]"
    leaves.append(value)
    return f"c[{len(leaves) - 1}]"


def literal_builders(decisions):
    """For each decision, a function building it from its leaves (one function per shape,
    so that each is called often) and the leaves."""
    by_shape = {}
    out = []
    for d in decisions:
        leaves = []
        source = literal(d, leaves)
        build = by_shape.get(source)
        if build is None:
            build = by_shape[source] = eval("lambda c: " + source)  # noqa: S307 - our own source
        assert build(leaves) == d
        out.append((build, leaves))
    return out, len(by_shape)


def median_per_item(fn, items, rounds=15):
    """Median over `rounds` passes of the time per item, in microseconds."""
    per_item = []
    for _ in range(rounds):
        start = time.perf_counter()
        for item in items:
            fn(item)
        per_item.append((time.perf_counter() - start) / len(items) * 1e6)
    return statistics.median(per_item)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=2_000, help="decisions measured (default 2000)")
    args = parser.parse_args()

    rule_list, signal_list = workload()
    engine = mmm_engine.Engine.from_yaml(mmm_playbooks(rule_list))
    signals = signal_list[: args.signals]
    decisions = [engine.decide(s, now=NOW) for s in signals]
    marshalled = [marshal.dumps(d) for d in decisions]
    texts = [json.dumps(d) for d in decisions]
    assert all(marshal.loads(m) == d for m, d in zip(marshalled, decisions))

    dicts = statistics.mean(
        1 + len(d["actions"]) * 4 + len(d["suppressed"]) * 2 + sum(len(a["rationale"]["evidence"]) for a in d["actions"])
        for d in decisions)
    builders, shapes = literal_builders(decisions)
    decide_us = median_per_item(lambda s: engine.decide(s, now=NOW), signals)
    marshal_us = median_per_item(marshal.loads, marshalled)
    json_us = median_per_item(json.loads, texts)
    literal_us = median_per_item(lambda b: b[0](b[1]), builders)
    print(f"nudge-1k decisions from Python ({len(signals)} signals, about {dicts:.0f} dicts per decision)")
    print(f"  Engine.decide                 {decide_us:7.2f} us per call")
    print(f"  marshal.loads of the decision {marshal_us:7.2f} us (CPython building the same objects)")
    print(f"  json.loads of its JSON        {json_us:7.2f} us")
    print(f"  literals, leaves already made {literal_us:7.2f} us (the containers alone; {shapes} shapes)")
    print(f"  decide above the floor        {decide_us - marshal_us:7.2f} us")


if __name__ == "__main__":
    main()
