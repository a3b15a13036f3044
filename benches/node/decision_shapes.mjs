#!/usr/bin/env node
// How the decision object is cheapest to build on the JS side (issue 11, item 4): one
// `JSON.parse` of the keyed SPEC §4 text, against the positional forms the binding sends
// (arrays in a fixed order rebuilt with object literals): the form before issue 11, with
// every word as a string, and the current one, with vocabulary words as indices and
// repeated suppression details elided (the binding's form at the end of round 1; since
// then it also flattens the suppressions into one array and sends playbook ids and
// categories as indices into a per-engine table, see docs/perf-notes/node.md, which
// callgrind_decide.mjs measures in the binding itself). Each decision of the nudge-1k workload is encoded
// in the three forms here (in JS, mirroring bindings/node/src/decision.rs), then each
// decoder is timed on the same decisions, interleaved, and every result is checked to be
// deep-equal to the engine's own object.
//
// Run (after scripts/test-node.sh): cd benches/node && node decision_shapes.mjs [--rounds 30]
// Prints the median microseconds per decision of each decoder.
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { deepStrictEqual } from 'node:assert'
import { NOW, workload, mmmPlaybooks } from './workload.mjs'

const require = createRequire(import.meta.url)
const mmm = require('mmm-engine')
const { ruleList: rules, signalList: signals } = workload(1000, 2000)
const yaml = mmmPlaybooks(rules)

// Word tables as the binding compiles them (the order of the core's `ALL` lists is only
// needed for encoding here, so it is taken from the words seen).
const table = () => { const words = []; return { words, index: (w) => { let i = words.indexOf(w); if (i < 0) { i = words.length; words.push(w) } return i } } }
const TYPES = table(), SURFACES = table(), REASONS = table(), DEGRADED = table(), STATUSES = table()

const oldAction = (a) => [a.action_id, a.fingerprint, a.playbook.id, a.playbook.version, a.type, a.category, a.priority, a.surfaces, a.title, a.text, a.rendered, a.rationale.why, a.rationale.trigger, a.rationale.evidence, a.requires_consent, a.dual_channel, a.operation, a.params, a.experiment]
const encodeOld = (d) => JSON.stringify([d.decision_id, d.signal_id, d.tenant_id, d.actor_id, d.decided_at, d.actions.map(oldAction),
  d.suppressed.map((s) => [s.playbook.id, s.playbook.version, s.action_index, s.type, s.reason, s.detail]),
  d.degraded, d.redacted, d.policy_snapshot_id, d.receipt.receipt_id, d.receipt.status, d.receipt.envelope ?? null, d.latency_us, d.latency_warning, d.explain])
const encodeNew = (d) => {
  let last = null
  return JSON.stringify([d.decision_id, d.signal_id, d.tenant_id, d.actor_id, d.decided_at,
    d.actions.map((a) => { const x = oldAction(a); x[4] = TYPES.index(a.type); x[7] = a.surfaces.map(SURFACES.index); return x }),
    d.suppressed.map((s) => { const x = [s.playbook.id, s.playbook.version, s.action_index, TYPES.index(s.type), REASONS.index(s.reason), s.detail === last ? 0 : s.detail]; last = s.detail; return x }),
    d.degraded.map(DEGRADED.index), d.redacted, d.policy_snapshot_id, d.receipt.receipt_id, STATUSES.index(d.receipt.status), d.receipt.envelope ?? null, d.latency_us, d.latency_warning, d.explain])
}

// The decoders: the builder before issue 11 and the one of round 1 (bindings/node/src/decision.rs then).
const oldBuilder = (function () {
  const action = (a) => ({
    action_id: a[0], fingerprint: a[1], playbook: { id: a[2], version: a[3] }, type: a[4],
    category: a[5], priority: a[6], surfaces: a[7], title: a[8], text: a[9], rendered: a[10],
    rationale: { why: a[11], trigger: a[12], evidence: a[13] }, requires_consent: a[14],
    dual_channel: a[15], operation: a[16], params: a[17], experiment: a[18],
  })
  const suppressed = (s) => ({ playbook: { id: s[0], version: s[1] }, action_index: s[2], type: s[3], reason: s[4], detail: s[5] })
  return function (text) {
    const x = JSON.parse(text)
    const receipt = x[12] === null ? { receipt_id: x[10], status: x[11] } : { receipt_id: x[10], status: x[11], envelope: x[12] }
    return { decision_id: x[0], signal_id: x[1], tenant_id: x[2], actor_id: x[3], decided_at: x[4], actions: x[5].map(action), suppressed: x[6].map(suppressed), degraded: x[7], redacted: x[8], policy_snapshot_id: x[9], receipt, latency_us: x[13], latency_warning: x[14], explain: x[15] }
  }
})()
const newBuilder = (T, S, R, D, ST) => {
  const surface = (i) => S[i]
  const action = (a) => ({
    action_id: a[0], fingerprint: a[1], playbook: { id: a[2], version: a[3] }, type: T[a[4]],
    category: a[5], priority: a[6], surfaces: a[7].map(surface), title: a[8], text: a[9], rendered: a[10],
    rationale: { why: a[11], trigger: a[12], evidence: a[13] }, requires_consent: a[14],
    dual_channel: a[15], operation: a[16], params: a[17], experiment: a[18],
  })
  const suppressed = (list) => {
    const out = []
    let detail = null
    for (const s of list) {
      if (s[5] !== 0) detail = s[5]
      out.push({ playbook: { id: s[0], version: s[1] }, action_index: s[2], type: T[s[3]], reason: R[s[4]], detail })
    }
    return out
  }
  return function (text) {
    const x = JSON.parse(text)
    const receipt = x[12] === null ? { receipt_id: x[10], status: ST[x[11]] } : { receipt_id: x[10], status: ST[x[11]], envelope: x[12] }
    return { decision_id: x[0], signal_id: x[1], tenant_id: x[2], actor_id: x[3], decided_at: x[4], actions: x[5].map(action), suppressed: suppressed(x[6]), degraded: x[7].map((i) => D[i]), redacted: x[8], policy_snapshot_id: x[9], receipt, latency_us: x[13], latency_warning: x[14], explain: x[15] }
  }
}

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '30' } } })
const engine = mmm.Engine.fromYaml(yaml)
const decisions = signals.map((s) => engine.decide(s, null, { now: NOW }))
const keyed = decisions.map((d) => JSON.stringify(d))
const oldText = decisions.map(encodeOld)
const newText = decisions.map(encodeNew)
const build = newBuilder(TYPES.words, SURFACES.words, REASONS.words, DEGRADED.words, STATUSES.words)
const decoders = [
  ['JSON.parse of the keyed text', (i) => JSON.parse(keyed[i])],
  ['positional, words as strings (before)', (i) => oldBuilder(oldText[i])],
  ['positional, words as indices (round 1)', (i) => build(newText[i])],
]
for (const [name, decode] of decoders) {
  for (let i = 0; i < 50; i++) deepStrictEqual(decode(i), decisions[i], name)
}
const times = decoders.map(() => [])
for (let round = 0; round < Number(values.rounds); round++) {
  decoders.forEach(([, decode], k) => {
    const start = process.hrtime.bigint()
    for (let i = 0; i < decisions.length; i++) decode(i)
    times[k].push(Number(process.hrtime.bigint() - start) / 1e3 / decisions.length)
  })
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[s.length >> 1] }
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length
console.log(`decision objects on Node ${process.version}: ${decisions.length} nudge-1k decisions, ` +
  `${mean(decisions.map((d) => d.actions.length)).toFixed(1)} actions and ${mean(decisions.map((d) => d.suppressed.length)).toFixed(1)} suppressions each`)
console.log(`  text bytes per decision: keyed ${mean(keyed.map((t) => t.length)).toFixed(0)}, positional before ${mean(oldText.map((t) => t.length)).toFixed(0)}, now ${mean(newText.map((t) => t.length)).toFixed(0)}`)
decoders.forEach(([name], k) => console.log(`  ${name.padEnd(40)} ${median(times[k]).toFixed(2).padStart(7)} us per decision (median of ${times[k].length} rounds)`))
