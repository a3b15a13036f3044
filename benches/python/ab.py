#!/usr/bin/env python3
"""Interleaved A/B of builds of the extension: `ab.py a.so b.so [...]`.

Each file is a build of `mmm_engine/_native.abi3.so`. All are loaded side by side in one
process (each copy is its own module to the dynamic loader), each gets an engine on the
nudge-1k workload of nudge1k.py, and chunks of 200 `decide` calls alternate between them,
so every build sees the same minutes of a shared, noisy machine. Prints each build's
median, 10th percentile and minimum time per call, in microseconds. ROUNDS (environment,
default 300) sets the number of chunks per build.

    cargo build --release -p mmm-engine-python --features pyo3/extension-module
    cp target/release/lib_native.so /tmp/new.so     # and a base build as /tmp/base.so
    .venv/bin/python benches/python/ab.py /tmp/base.so /tmp/new.so
"""

import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time

from nudge1k import NOW, mmm_playbooks, workload


def load(path, directory):
    target = os.path.join(directory, "_native.abi3.so")
    shutil.copy(path, target)
    spec = importlib.util.spec_from_file_location("_native", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    builds = sys.argv[1:]
    if not builds:
        sys.exit(__doc__)
    rounds = int(os.environ.get("ROUNDS", "300"))
    rule_list, signals = workload()
    text = mmm_playbooks(rule_list)
    with tempfile.TemporaryDirectory() as scratch:
        engines = []
        for i, path in enumerate(builds):
            directory = os.path.join(scratch, str(i))
            os.mkdir(directory)
            engines.append(load(path, directory).Engine.from_yaml(text))
        for engine in engines:
            for s in signals[:2000]:
                engine.decide(s, now=NOW)
        times = [[] for _ in engines]
        at = 0
        for _ in range(rounds):
            for engine, out in zip(engines, times):
                decide = engine.decide
                start = time.perf_counter()
                for k in range(200):
                    decide(signals[(at + k) % len(signals)], now=NOW)
                out.append((time.perf_counter() - start) / 200 * 1e6)
            at += 200
    for path, out in zip(builds, times):
        out.sort()
        print(f"{os.path.basename(path):28s} median {statistics.median(out):6.2f} us"
              f"  p10 {out[len(out) // 10]:6.2f}  min {out[0]:6.2f}")


if __name__ == "__main__":
    main()
