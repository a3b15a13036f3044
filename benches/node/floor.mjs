#!/usr/bin/env node
// The floor under `decide` from Node: what V8 itself needs to build the SPEC §4 decision
// objects, whoever builds them.
//
// For the nudge-1k decisions `decide` returns, this times, per decision:
//   - `engine.decide` itself (core, argument and decision conversion);
//   - `structuredClone` of the decision: V8 copying the same objects, arrays, strings and
//     numbers in C++, with no JavaScript and no parsing of text;
//   - `JSON.parse` of the decision's JSON text;
//   - object and array literals: one compiled function per shape of decision, building it
//     from leaf values that already exist (no string or number is made). This is the least
//     any builder can do: the containers alone.
// All rebuild exactly what `decide` returns, so `decide` minus the cheaper of the first two
// is what the engine and the binding cost on top of building the objects.
//
// Run (after scripts/test-node.sh): cd benches/node && npm ci && node floor.mjs [--signals 2000]
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { isDeepStrictEqual } from 'node:util'
import { NOW, medianPerItem, workload, mmmPlaybooks } from './workload.mjs'

const require = createRequire(import.meta.url)
const mmm = require('mmm-engine')

// JavaScript source that builds `value` with object and array literals; every leaf value
// is pushed to `leaves` and read back as `c[i]`.
function literal(value, leaves) {
  if (Array.isArray(value)) return '[' + value.map((v) => literal(v, leaves)).join(', ') + ']'
  if (value !== null && typeof value === 'object') {
    return '{' + Object.entries(value).map(([k, v]) => JSON.stringify(k) + ': ' + literal(v, leaves)).join(', ') + '}'
  }
  leaves.push(value)
  return `c[${leaves.length - 1}]`
}

const { values } = parseArgs({ options: { signals: { type: 'string', default: '2000' } } })
const { ruleList, signalList } = workload()
const engine = mmm.Engine.fromYaml(mmmPlaybooks(ruleList))
const signals = signalList.slice(0, Number(values.signals))
const options = { now: NOW }
const decisions = signals.map((s) => engine.decide(s, null, options))
const texts = decisions.map((d) => JSON.stringify(d))
for (let i = 0; i < decisions.length; i++) {
  if (!isDeepStrictEqual(JSON.parse(texts[i]), decisions[i]) || !isDeepStrictEqual(structuredClone(decisions[i]), decisions[i])) {
    throw new Error(`decision ${i} does not round-trip`)
  }
}
// One function per shape, so that each is called often enough for V8 to optimise it.
const shapes = new Map()
const builders = decisions.map((d) => {
  const leaves = []
  const source = literal(d, leaves)
  let build = shapes.get(source)
  if (!build) {
    build = new Function('c', 'return ' + source)
    shapes.set(source, build)
  }
  if (!isDeepStrictEqual(build(leaves), d)) throw new Error('a literal builder does not rebuild its decision')
  return [build, leaves]
})
const decideUs = medianPerItem((s) => engine.decide(s, null, options), signals)
const cloneUs = medianPerItem(structuredClone, decisions)
const parseUs = medianPerItem(JSON.parse, texts)
const literalUs = medianPerItem(([build, leaves]) => build(leaves), builders)
const floor = Math.min(cloneUs, parseUs)
console.log(`nudge-1k decisions from Node (${signals.length} signals)`)
console.log(`  engine.decide                    ${decideUs.toFixed(2).padStart(7)} us per call`)
console.log(`  structuredClone of the decision  ${cloneUs.toFixed(2).padStart(7)} us (V8 building the same objects)`)
console.log(`  JSON.parse of its JSON           ${parseUs.toFixed(2).padStart(7)} us`)
console.log(`  literals, leaves already made    ${literalUs.toFixed(2).padStart(7)} us (the containers alone; ${shapes.size} shapes)`)
console.log(`  decide above the floor           ${(decideUs - floor).toFixed(2).padStart(7)} us`)
