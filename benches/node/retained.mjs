#!/usr/bin/env node
// Sync `decide` on nudge-1k after the process has kept N decisions (default 2000), and, with
// `--stringify`, after it has also `JSON.stringify`d them all: `node retained.mjs [N]
// [--stringify] [--clone]` (`--clone` keeps `structuredClone`s of the decisions instead).
// Round 7 found `decide` slower in the second case with every builder (see
// docs/perf-notes/round7.md); this is the reproduction. Prints the median per call, in µs.
import { createRequire } from 'node:module'
import { NOW, medianPerItem, workload, mmmPlaybooks } from './workload.mjs'

const require = createRequire(import.meta.url)
const mmm = require('mmm-engine')
const keep = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 2000)
const stringify = process.argv.includes('--stringify')
const clone = process.argv.includes('--clone')
const { ruleList, signalList } = workload()
const engine = mmm.Engine.fromYaml(mmmPlaybooks(ruleList))
const signals = signalList.slice(0, 2000)
const options = { now: NOW }
let kept = signalList.slice(0, keep).map((s) => engine.decide(s, null, options))
if (clone) kept = kept.map((d) => structuredClone(d))
let bytes = 0
if (stringify) for (const d of kept) bytes += JSON.stringify(d).length

const us = medianPerItem((s) => engine.decide(s, null, options), signals)
console.log(`kept ${kept.length}${clone ? ' (clones)' : ''}${stringify ? `, stringified (${bytes} bytes)` : ''}: decide ${us.toFixed(2)} us per call`)
