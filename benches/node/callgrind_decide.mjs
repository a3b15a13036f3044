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

const require = createRequire(import.meta.url)
const mmm = require('mmm-engine')
const NOW = '2026-11-22T10:00:00Z'

function rng(seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return { int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), below: (n) => Math.floor(next() * n) }
}
const pad = (n, w) => String(n).padStart(w, '0')
const r = rng(1)
const rules = Array.from({ length: 1000 }, (_, i) => ({ id: `nudge-${pad(i, 4)}`, kind: `kind.k${pad(i % 20, 2)}`, lines: r.int(0, 1000), files: r.int(0, 50) }))
const signals = Array.from({ length: 2000 }, () => ({
  tenant_id: 'acme', actor_id: `dev-${r.below(500)}`, kind: `kind.k${pad(r.below(20), 2)}`, occurred_at: NOW,
  payload: { lines: r.int(0, 1200), files: r.int(0, 60) },
}))
const yaml = rules.map((p) => 'apiVersion: mmm/v1\nkind: Playbook\n' +
  `metadata: {id: ${p.id}, version: 1, tenant: '*', status: published, category: size}\n` +
  `spec:\n  triggers: [${p.kind}]\n  when: signal.payload.lines > ${p.lines} && signal.payload.files > ${p.files}\n` +
  "  actions:\n    - {type: mirror, surfaces: [ide], title: Size, text: 'This change touches {{ signal.payload.lines }} lines.'}\n").join('---\n')

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
