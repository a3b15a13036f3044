#!/usr/bin/env python3
"""Callgrind driver for the Python binding's cost per `Engine.decide` (issue 11).

The nudge-1k workload of nudge1k.py (same rules, same signals), W warm-up calls (default
200) then N calls of `engine.decide(signal, now=NOW)`: `cg.py N [W]`. Run under callgrind and read the inclusive
instructions of the binding's entry (`__pymethod_decide__`) and of its callees:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/py.cg \
        .venv/bin/python benches/python/cg.py 2000
    callgrind_annotate --inclusive=yes --tree=calling /tmp/py.cg | grep -A20 '__pymethod_decide__ \\['

Divide by N + W (the warm-up calls are counted too). No timing here: on a shared machine
instruction counts are the evidence.
"""

import sys

import mmm_engine

from nudge1k import NOW, mmm_playbooks, workload


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    warm = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    rule_list, signal_list = workload()
    engine = mmm_engine.Engine.from_yaml(mmm_playbooks(rule_list))
    decide = engine.decide
    for i in range(warm):
        decide(signal_list[i % len(signal_list)], now=NOW)
    for i in range(calls):
        decide(signal_list[(warm + i) % len(signal_list)], now=NOW)


if __name__ == "__main__":
    main()
