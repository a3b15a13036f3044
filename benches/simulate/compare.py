#!/usr/bin/env python3
"""`mmm simulate` on nudge-1k against zen-engine's Python `evaluate_batch`, in one run.

Workload: the one of benches/python/nudge1k.py (1,000 playbooks over 20 kinds, each
`when: signal.payload.lines > T && signal.payload.files > F` with one mirror action;
20,000 random signals from 500 actors). zen-engine gets the same rules as a decision table
with the collect hit policy.

Ours, end to end per signal with process start and compile excluded: `mmm simulate` is run
on all N signals and on the first one only; the difference of the two wall times divided
by N - 1 is the time per signal (reading, deciding with each actor's history carried along,
tallying). Each is run --runs times, alternating, and the medians are used.
Theirs: `evaluate_batch` on the same N signals (flattened), per item, median of --runs.

Run (after `cargo build --release -p mmm-runner` and a venv with zen-engine, e.g.
`python3 -m venv .venv && .venv/bin/pip install zen-engine`):

    .venv/bin/python benches/simulate/compare.py [--mmm target/release/mmm]

Prints both figures and the ratio (target: <= 7 us per signal and >= 5x zen-engine).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
try:
    import mmm_engine  # noqa: F401
except ImportError:
    # nudge1k.py imports the Python binding, which the replay does not use: the workload
    # is shared without it.
    import types
    sys.modules["mmm_engine"] = types.ModuleType("mmm_engine")
from nudge1k import flat, mmm_playbooks, workload, zen_table  # noqa: E402

import zen  # noqa: E402


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mmm", default=os.path.join(root, "target", "release", "mmm"), help="the mmm binary")
    parser.add_argument("--signals", type=int, default=20_000, help="signals replayed (default 20000)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each measurement (default 5)")
    args = parser.parse_args()

    rule_list, signal_list = workload(signals=args.signals)
    with tempfile.TemporaryDirectory() as tmp:
        playbooks = os.path.join(tmp, "playbooks")
        os.mkdir(playbooks)
        with open(os.path.join(playbooks, "nudge-1k.yaml"), "w") as f:
            f.write(mmm_playbooks(rule_list))
        full = os.path.join(tmp, "signals.jsonl")
        one = os.path.join(tmp, "one.jsonl")
        with open(full, "w") as f:
            f.writelines(json.dumps(s) + "\n" for s in signal_list)
        with open(one, "w") as f:
            f.write(json.dumps(signal_list[0]) + "\n")

        timed([args.mmm, "simulate", "--playbooks", playbooks, "--signals", one])  # warm the page cache
        full_runs, one_runs = [], []
        for _ in range(args.runs):
            full_runs.append(timed([args.mmm, "simulate", "--playbooks", playbooks, "--signals", full]))
            one_runs.append(timed([args.mmm, "simulate", "--playbooks", playbooks, "--signals", one]))
    ours_us = (statistics.median(full_runs) - statistics.median(one_runs)) / (len(signal_list) - 1) * 1e6

    batch = [{"key": "nudge-1k", "context": flat(s)} for s in signal_list]
    engine = zen.ZenEngine({"loader": {"type": "static", "content": {"nudge-1k": json.loads(zen_table(rule_list))}}})
    engine.evaluate_batch(batch[:10])  # warm the loader
    zen_runs = []
    for _ in range(args.runs):
        start = time.perf_counter()
        engine.evaluate_batch(batch)
        zen_runs.append((time.perf_counter() - start) / len(batch) * 1e6)
    zen_us = statistics.median(zen_runs)

    n = len(signal_list)
    print(f"nudge-1k replay (1,000 rules, 20 kinds, {n:,} signals, {args.runs} runs, medians)")
    print(f"  mmm simulate              {ours_us:8.2f} us per signal "
          f"(all {statistics.median(full_runs):.3f} s, first signal only {statistics.median(one_runs):.3f} s)")
    print(f"  zen evaluate_batch        {zen_us:8.2f} us per item")
    print(f"  mmm simulate is {zen_us / ours_us:.1f}x faster than zen-engine's evaluate_batch "
          f"(target: <= 7 us and >= 5x)")
    ok = ours_us <= 7 and zen_us / ours_us >= 5
    print("  targets met" if ok else "  TARGETS MISSED")


if __name__ == "__main__":
    main()
