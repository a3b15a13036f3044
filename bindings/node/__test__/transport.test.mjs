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
