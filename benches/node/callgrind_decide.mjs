#!/usr/bin/env node
// The Node binding's cost per sync `decide`, for callgrind (issue 11, item 4): the nudge-1k
// workload of nudge1k.mjs (1,000 playbooks, seed 1), 200 warm-up calls, then `calls`
// calls of `engine.decide(signal, null, { now })`. Run it twice under callgrind with
// different call counts; the difference of the totals, divided by the difference of the
// calls, is the instructions per call, JS side included (wrapper, builder, GC):
//
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/a.cg node callgrind_decide.mjs 0
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/b.cg node callgrind_decide.mjs 2000
//
// `--toggle-collect='*decide_c_callback*'` instead counts only the native method (and the
// JS it calls), as docs/perf-notes/bind.md did.
import { createRequire } from 'node:module'
import { NOW, workload, mmmPlaybooks } from './workload.mjs'

const require = createRequire(import.meta.url)
const mmm = require('mmm-engine')
const { ruleList: rules, signalList: signals } = workload(1000, 2000)
const yaml = mmmPlaybooks(rules)

const engine = mmm.Engine.fromYaml(yaml)
const options = { now: NOW }
let sink = 0
for (let i = 0; i < 200; i++) sink += engine.decide(signals[i % signals.length], null, options).actions.length
const calls = Number(process.argv[2] ?? 2000)
for (let i = 0; i < calls; i++) sink += engine.decide(signals[i % signals.length], null, options).actions.length
if (process.argv[3] === '--stats') {
  let actions = 0
  let suppressed = 0
  for (const s of signals) {
    const d = engine.decide(s, null, options)
    actions += d.actions.length
    suppressed += d.suppressed.length
  }
  console.log(`${actions / signals.length} actions, ${suppressed / signals.length} suppressions per decision`)
}
if (process.argv[3] === "--show") console.log(JSON.stringify(engine.decide(signals[5], null, options)))
console.log(sink)
