#!/usr/bin/env node
// nudge-1k from Node: mmm-engine's per-call `decide` against @gorules/zen-engine's
// per-call `evaluate` (a decision table, collect hit policy) and json-rules-engine's
// per-call `run`, on the same 1,000 rules.
//
// Workload (as in the Rust and Python benchmarks): 1,000 playbooks over 20 signal kinds,
// each `when: signal.payload.lines > T && signal.payload.files > F` with random
// thresholds and one mirror action, no fatigue limits; 20,000 random signals. Before
// timing, the three engines are checked to find the same matching rules for a sample of
// signals. zen-engine and json-rules-engine only evaluate asynchronously, so their calls
// are awaited one after another; mmm-engine's `decide` is synchronous (its `decideAsync`
// is timed too, the same way).
//
// Run (after scripts/test-node.sh, or `npm ci && npm run build` in bindings/node):
//   cd benches/node && npm ci && node nudge1k.mjs [--calls 20000] [--zen-calls 2000] [--jre-calls 200]
// Prints medians in microseconds per call.
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { NOW, KINDS, workload, mmmPlaybooks } from './workload.mjs'

const require = createRequire(import.meta.url)
const mmm = require('mmm-engine')
const { ZenEngine } = require('@gorules/zen-engine')
const { Engine: RulesEngine } = require('json-rules-engine')

function zenTable(ruleList) {
  const inputs = [
    { id: 'kind', name: 'Kind', type: 'expression', field: 'kind' },
    { id: 'lines', name: 'Lines', type: 'expression', field: 'lines' },
    { id: 'files', name: 'Files', type: 'expression', field: 'files' },
  ]
  const outputs = [{ id: 'playbook', name: 'Playbook', type: 'expression', field: 'playbook' }]
  const rules = ruleList.map((p) => ({
    _id: p.id,
    kind: JSON.stringify(p.kind),
    lines: `> ${p.lines}`,
    files: `> ${p.files}`,
    playbook: JSON.stringify(p.id),
  }))
  return {
    contentType: 'application/vnd.gorules.decision',
    nodes: [
      { id: 'in', type: 'inputNode', name: 'Request', position: { x: 0, y: 0 } },
      {
        id: 'table',
        type: 'decisionTableNode',
        name: 'nudge-1k',
        position: { x: 200, y: 0 },
        content: { hitPolicy: 'collect', inputs, outputs, rules },
      },
      { id: 'out', type: 'outputNode', name: 'Response', position: { x: 400, y: 0 } },
    ],
    edges: [
      { id: 'e1', sourceId: 'in', targetId: 'table', type: 'edge' },
      { id: 'e2', sourceId: 'table', targetId: 'out', type: 'edge' },
    ],
  }
}

function jsonRulesEngine(ruleList) {
  const engine = new RulesEngine([], { allowUndefinedFacts: true })
  for (const p of ruleList) {
    engine.addRule({
      name: p.id,
      conditions: {
        all: [
          { fact: 'kind', operator: 'equal', value: p.kind },
          { fact: 'lines', operator: 'greaterThan', value: p.lines },
          { fact: 'files', operator: 'greaterThan', value: p.files },
        ],
      },
      event: { type: p.id },
    })
  }
  return engine
}

const flat = (s) => ({ kind: s.kind, lines: s.payload.lines, files: s.payload.files })

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** Median over chunks of `chunk` calls of the time per call, in microseconds. */
async function medianPerCall(fn, items, calls, chunk) {
  const perCall = []
  for (let i = 0; i < calls; i += chunk) {
    const start = process.hrtime.bigint()
    for (let k = 0; k < chunk; k++) await fn(items[(i + k) % items.length])
    perCall.push(Number(process.hrtime.bigint() - start) / 1e3 / chunk)
  }
  return median(perCall)
}

/** As `medianPerCall`, for a synchronous function (no `await` in the timed loop). */
function medianPerCallSync(fn, items, calls, chunk) {
  const perCall = []
  for (let i = 0; i < calls; i += chunk) {
    const start = process.hrtime.bigint()
    for (let k = 0; k < chunk; k++) fn(items[(i + k) % items.length])
    perCall.push(Number(process.hrtime.bigint() - start) / 1e3 / chunk)
  }
  return median(perCall)
}

const sameSet = (a, b) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i])

async function main() {
  const { values } = parseArgs({
    options: {
      calls: { type: 'string', default: '20000' },
      'zen-calls': { type: 'string', default: '2000' },
      'jre-calls': { type: 'string', default: '200' },
    },
  })
  const calls = Number(values.calls)
  const zenCalls = Number(values['zen-calls'])
  const jreCalls = Number(values['jre-calls'])

  const { ruleList, signalList } = workload()
  let t = performance.now()
  const engine = mmm.Engine.fromYaml(mmmPlaybooks(ruleList))
  const mmmCompile = performance.now() - t
  t = performance.now()
  const zen = new ZenEngine().createDecision(zenTable(ruleList))
  const zenCompile = performance.now() - t
  t = performance.now()
  const jre = jsonRulesEngine(ruleList)
  const jreCompile = performance.now() - t

  // The same rules match in all three engines.
  const uncapped = { tenant_policy: { max_actions_per_decision: 1000 } }
  for (const s of signalList.slice(0, 200)) {
    const ours = engine.decide(s, uncapped, { now: NOW }).actions.map((a) => a.playbook.id)
    const zens = (await zen.evaluate(flat(s))).result.map((r) => r.playbook)
    const jres = (await jre.run(flat(s))).events.map((e) => e.type)
    if (!sameSet(ours, zens) || !sameSet(ours, jres)) {
      throw new Error(`engines disagree on ${JSON.stringify(s)}: ${ours} / ${zens} / ${jres}`)
    }
  }

  const flatSignals = signalList.map(flat)
  const options = { now: NOW }
  const mmmUs = medianPerCallSync((s) => engine.decide(s, null, options), signalList, calls, 500)
  const mmmAsyncUs = await medianPerCall((s) => engine.decideAsync(s, null, options), signalList, Math.min(calls, 5000), 100)
  const zenUs = await medianPerCall((c) => zen.evaluate(c), flatSignals, zenCalls, 100)
  const jreUs = await medianPerCall((c) => jre.run(c), flatSignals, jreCalls, 20)

  const f = (x) => x.toFixed(2).padStart(9)
  console.log(`nudge-1k from Node ${process.version} (1,000 rules, ${KINDS} kinds, ${signalList.length.toLocaleString('en')} signals)`)
  console.log(`  compile          mmm-engine ${f(mmmCompile)} ms   zen-engine ${f(zenCompile)} ms   json-rules-engine ${f(jreCompile)} ms`)
  console.log(`  per call median  mmm-engine decide             ${f(mmmUs)} us`)
  console.log(`                   mmm-engine decideAsync        ${f(mmmAsyncUs)} us   (awaited one at a time)`)
  console.log(`                   zen-engine evaluate           ${f(zenUs)} us   (awaited one at a time)`)
  console.log(`                   json-rules-engine run         ${f(jreUs)} us   (awaited one at a time)`)
  console.log(`  mmm-engine decide is ${(zenUs / mmmUs).toFixed(1)}x faster per call than zen-engine, ${(jreUs / mmmUs).toFixed(1)}x than json-rules-engine`)
  const ok = mmmUs <= 12 && zenUs / mmmUs >= 35
  console.log(`  target (issue 11): decide <= 12 us and >= 35x zen-engine: ${ok ? 'met' : 'MISSED'}`)
}

await main()
