// The decision crosses from Rust packed (numbers, texts, and JSON only for values that need
// it; see src/decision.rs). These check the values that take each path: texts with every
// kind of character, evidence values of each JSON type, integers past 2^15 and past
// JavaScript's safe range, and the async path against the sync one.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { NOW, mmm, signal } from './helpers.mjs'

const PLAYBOOK = `apiVersion: mmm/v1
kind: Playbook
metadata: {id: transport, version: 70000, tenant: '*', status: published, category: "størrelse 𝄞"}
spec:
  triggers: [pr.opened]
  when: signal.payload.big > 0 && signal.payload.neg < 0 && signal.payload.f > 1.0 && signal.payload.s != "" && signal.payload.n == 40000
  actions:
    - {type: mirror, surfaces: [ide, pr_comment], title: "Tïtle 𝄞", text: 'Line "{{ signal.payload.t }}" {{ signal.payload.n }}'}
`

const TEXT = 'héllo 𝄞 \u0000 \u001f "q" \\ \u2028 \ud83d\ude00'
// Rendering turns control characters into spaces, so the template reads a text without them.
const SHOWN = 'héllo 𝄞 "q" \\ \ud83d\ude00 <b>'
const PAYLOAD = { big: 2n ** 60n, neg: -5, f: 1.5, s: TEXT, n: 40000, t: SHOWN }

test('every kind of value and text arrives as JSON would carry it', () => {
  const engine = mmm.Engine.fromYaml(PLAYBOOK)
  const d = engine.decide(signal({ payload: PAYLOAD }), null, { now: NOW })
  const [a] = d.actions
  assert.deepEqual(a.playbook, { id: 'transport', version: 70000 })
  assert.equal(a.category, 'størrelse 𝄞')
  assert.equal(a.title, 'Tïtle 𝄞')
  assert.equal(a.text, `Line "${SHOWN}" 40000`)
  assert.equal(a.rendered.ide, `Tïtle 𝄞\nLine "${SHOWN}" 40000`)
  assert.deepEqual(Object.keys(a.rendered), ['ide', 'pr_comment'])
  assert.deepEqual(a.rationale.evidence, [
    { path: 'signal.payload.big', value: JSON.parse(String(2n ** 60n)) },
    { path: 'signal.payload.neg', value: -5 },
    { path: 'signal.payload.f', value: 1.5 },
    { path: 'signal.payload.s', value: TEXT },
    { path: 'signal.payload.n', value: 40000 },
  ])
  assert.deepEqual(Object.keys(a), [
    'action_id', 'fingerprint', 'playbook', 'type', 'category', 'priority', 'surfaces', 'title', 'text',
    'rendered', 'rationale', 'requires_consent', 'dual_channel', 'operation', 'params', 'experiment',
  ])
  assert.equal(typeof d.latency_us, 'number')
  assert.equal(d.receipt.status, 'disabled')
  assert.ok(!('envelope' in d.receipt))
})

test('decideAsync builds the same decision as decide', async () => {
  const engine = mmm.Engine.fromYaml(PLAYBOOK)
  const s = signal({ payload: PAYLOAD })
  const sync = engine.decide(s, null, { now: NOW, explain: true })
  const later = await engine.decideAsync(s, null, { now: NOW, explain: true })
  const strip = (d) => ({ ...d, decision_id: 0, latency_us: 0, actions: d.actions.map((a) => ({ ...a, action_id: 0 })) })
  assert.deepEqual(strip(later), strip(sync))
  assert.ok(Array.isArray(sync.explain) && sync.explain.length === 1)
})

test('strings the table already holds and new ones mix in one decision', () => {
  // Two engines' worth of playbooks, decided alternately: each decision both reuses
  // table entries and adds new ones.
  const many = Array.from({ length: 40 }, (_, i) => PLAYBOOK.replace('id: transport', `id: pb-${i}`).replace('størrelse 𝄞', `cat-${i % 7}`)).join('---\n')
  const engine = mmm.Engine.fromYaml(many)
  for (let round = 0; round < 3; round++) {
    const d = engine.decide(signal({ payload: PAYLOAD }), { tenant_policy: { max_actions_per_decision: 5 } }, { now: NOW })
    assert.equal(d.actions.length, 5)
    assert.equal(d.suppressed.length, 35)
    const ids = [...d.actions.map((a) => a.playbook.id), ...d.suppressed.map((x) => x.playbook.id)].sort()
    assert.deepEqual(ids, Array.from({ length: 40 }, (_, i) => `pb-${i}`).sort())
    for (const a of d.actions) assert.equal(a.category, `cat-${Number(a.playbook.id.slice(3)) % 7}`)
    for (const x of d.suppressed) assert.equal(x.detail, 'the decision already has 5 actions')
  }
})

test('decide reads its arguments the same way on the fast path and off it', () => {
  // The common case is read in one call into JavaScript; everything else falls back to
  // reading each argument on its own. Each case here takes one of the two.
  const engine = mmm.Engine.fromYaml(PLAYBOOK)
  const s = signal({ payload: PAYLOAD })
  const outcome = (context, options) => {
    try {
      const d = engine.decide(s, context, options)
      return [d.decided_at, d.explain === null ? 'plain' : 'explain', d.actions.length]
    } catch (e) {
      return [e.code, e.message]
    }
  }
  const ok = (explain = 'plain') => [NOW, explain, 1]
  assert.deepEqual(outcome(null, { now: NOW }), ok())
  assert.deepEqual(outcome(undefined, { now: NOW, explain: true }), ok('explain'))
  assert.deepEqual(outcome(null, { now: NOW, explain: null }), ok())
  assert.deepEqual(outcome(null, { now: new Date(NOW) }), ok())
  assert.deepEqual(outcome(null, Object.create({ now: NOW })), ok())
  assert.deepEqual(outcome({ tenant_policy: { max_actions_per_decision: 0 } }, { now: NOW }), [NOW, 'plain', 0])
  assert.deepEqual(outcome(() => 1, { now: NOW }), ok())
  let reads = 0
  assert.deepEqual(outcome(null, { get now() { reads += 1; return NOW } }), ok())
  assert.equal(reads, 1)
  const notTimestamp = (text) => ['ERR_INVALID_ARG_VALUE', `\`now\`: \`${text}\` is not an RFC 3339 timestamp with an offset (e.g. \`2026-11-22T10:00:00Z\`)`]
  assert.deepEqual(outcome(null, { now: '' }), notTimestamp(''))
  assert.deepEqual(outcome(null, { now: `${NOW}\u0000` }), notTimestamp(`${NOW}\\u{0}`))
  assert.deepEqual(outcome(null, { now: new Date('nope') }), ['ERR_INVALID_ARG_VALUE', '`now` is an invalid Date'])
  assert.deepEqual(outcome(null, { now: new Date(8.64e15) }), ['ERR_INVALID_ARG_VALUE', '`now` is out of range'])
  assert.deepEqual(outcome(null, { now: new Date(Date.parse(NOW) + 1) }), ['2026-11-22T10:00:00.001Z', 'plain', 1])
  assert.deepEqual(outcome(null, { now: 17 }), ['ERR_INVALID_ARG_TYPE', '`now` must be an RFC 3339 string or a Date'])
  assert.deepEqual(outcome(null, { explain: 'yes' }), ['ERR_INVALID_ARG_TYPE', '`explain` must be a boolean'])
  assert.deepEqual(outcome(null, ['x']), ['ERR_INVALID_ARG_VALUE', 'unknown decide option `0` (expected `now`, `explain`)'])
  assert.deepEqual(outcome(null, Object.create({ colour: 1 })), ['ERR_INVALID_ARG_VALUE', 'unknown decide option `colour` (expected `now`, `explain`)'])
  assert.deepEqual(outcome(null, 'x'), ['ERR_INVALID_ARG_TYPE', '`options` must be an object'])
  assert.deepEqual(outcome({ tenant_policy: { max_actions_per_decision: NaN } }, { now: NOW }), [
    'CONTEXT_INVALID',
    'invalid context: field `tenant_policy.max_actions_per_decision`: `NaN` is not a number JSON can carry; NaN and infinities are refused',
  ])
  assert.deepEqual(outcome({ tenant_policy: { max_actions_per_decision: 2n } }, { now: NOW }), [NOW, 'plain', 1])
})
