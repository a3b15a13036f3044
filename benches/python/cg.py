#!/usr/bin/env python3
"""Callgrind driver for the Python binding's cost per `Engine.decide` (issue 11).

The nudge-1k workload of nudge1k.py (same rules, same signals), 200 warm-up calls then N
calls of `engine.decide(signal, now=NOW)`. Run under callgrind and read the inclusive
instructions of the binding's entry (`__pymethod_decide__`) and of its callees:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/py.cg \
        .venv/bin/python benches/python/cg.py 2000
    callgrind_annotate --inclusive=yes --tree=calling /tmp/py.cg | grep -A20 '__pymethod_decide__ \\['

Divide by N + 200 (the warm-up calls are counted too). No timing here: on a shared machine
instruction counts are the evidence.
"""

import sys

import mmm_engine

from nudge1k import NOW, mmm_playbooks, workload


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rule_list, signal_list = workload()
    engine = mmm_engine.Engine.from_yaml(mmm_playbooks(rule_list))
    decide = engine.decide
    for s in signal_list[:200]:
        decide(s, now=NOW)
    for i in range(calls):
        decide(signal_list[i % len(signal_list)], now=NOW)


if __name__ == "__main__":
    main()
