// The playbooks' strings (ids, categories) that a synchronous `decide` sends to the
// decision builder as indices into a table the builder keeps per engine
// (src/decision.rs): decisions made through the table, call after call and across a
// reload, are the decisions `decideAsync` (which sends every string as text) makes.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { NOW, mmm, normalise } from './helpers.mjs'

/** `n` playbooks over three signal kinds and four categories; ids carry `prefix`. */
function playbooks(n, prefix) {
  return Array.from({ length: n }, (_, i) =>
    'apiVersion: mmm/v1\nkind: Playbook\n' +
    `metadata: {id: ${prefix}-${i}, version: ${1 + (i % 3)}, tenant: '*', status: published, category: cat-${i % 4}}\n` +
    `spec:\n  triggers: [kind.k${i % 3}]\n  when: signal.payload.lines > ${i * 7}\n` +
    "  actions:\n    - {type: mirror, surfaces: [ide], title: Size, text: 'n={{ signal.payload.lines }}'}\n",
  ).join('---\n')
}

function signals(count) {
  return Array.from({ length: count }, (_, i) => ({
    signal_id: `s-${i}`,
    tenant_id: 'acme',
    actor_id: `dev-${i % 7}`,
    kind: `kind.k${i % 3}`,
    occurred_at: NOW,
    payload: { lines: (i * 37) % 400 },
  }))
}

async function sameAsAsync(engine, reference, all) {
  for (const s of all) {
    const d = engine.decide(s, null, { now: NOW })
    const expected = await reference.decideAsync(s, null, { now: NOW })
    assert.deepEqual(normalise(d), normalise(expected))
  }
}

test('decide through the string table gives the decisions decideAsync gives', async () => {
  const yaml = playbooks(60, 'pb')
  const engine = mmm.Engine.fromYaml(yaml)
  const reference = mmm.Engine.fromYaml(yaml)
  const all = signals(40)
  // Twice: the first pass fills the table, the second reads only indices.
  await sameAsAsync(engine, reference, all)
  await sameAsAsync(engine, reference, all)
  const d = engine.decide(all[39], null, { now: NOW })
  assert.ok(d.suppressed.length > 0, 'the workload has suppressions')
  assert.ok(d.suppressed.every((x) => /^pb-\d+$/.test(x.playbook.id)))
})

test('after a reload, old and new ids come back right', async () => {
  const engine = mmm.Engine.fromYaml(playbooks(40, 'old'))
  const all = signals(30)
  await sameAsAsync(engine, mmm.Engine.fromYaml(playbooks(40, 'old')), all)
  // New ids interleaved with strings the table already holds (the categories).
  const next = playbooks(50, 'new') + '---\n' + playbooks(10, 'old')
  engine.reloadYaml(next)
  await sameAsAsync(engine, mmm.Engine.fromYaml(next), all)
  await sameAsAsync(engine, mmm.Engine.fromYaml(next), all)
})

test('decideAsync between synchronous decisions leaves the table right', async () => {
  const yaml = playbooks(60, 'mix')
  const engine = mmm.Engine.fromYaml(yaml)
  const reference = mmm.Engine.fromYaml(yaml)
  for (const s of signals(30)) {
    const pending = engine.decideAsync(s, null, { now: NOW })
    const d = engine.decide(s, null, { now: NOW })
    assert.deepEqual(normalise(await pending), normalise(d))
    assert.deepEqual(normalise(d), normalise(reference.decide(s, null, { now: NOW })))
  }
})
