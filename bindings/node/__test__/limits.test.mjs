// The engine's limits, seen from Node (as `mmm-engine/tests/limits.rs` and the Python
// suite's `test_limits.py`): the context's size (`maxContextBytes`), the deny list's length
// and key size (`maxDenyKeys`, `maxDenyKeyBytes`), the actors the fatigue store tracks
// (`fatigueMaxActors`), and numbers JSON cannot carry. Each test sees the default limit
// refuse and the setting move it, so each fails if the limit were gone.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { NOW, mmm, signal } from './helpers.mjs'

const ANY = `apiVersion: mmm/v1
kind: Playbook
metadata: {id: any, version: 1, tenant: "*", status: published}
spec:
  triggers: [pr.opened]
  actions: [{type: mirror, surfaces: [ide], title: T, text: t}]
`

const ONCE_A_DAY = `apiVersion: mmm/v1
kind: Playbook
metadata: {id: once, version: 1, tenant: "*", status: published}
spec:
  triggers: [pr.opened]
  fatigue: {max: 1, window: 1d}
  actions: [{type: mirror, surfaces: [ide], title: T, text: t}]
`

const engine = (options) => mmm.Engine.fromYaml(ANY, options)

function caught(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  assert.fail('expected an error')
}

function contextError(e, context) {
  const err = caught(() => e.decide(signal(), context, { now: NOW }))
  assert.deepEqual([err.name, err.code], ['ContextError', 'CONTEXT_INVALID'])
  return err
}

const keys = (n) => Array.from({ length: n }, (_, i) => `key${i}`)
const denying = (list) => ({ tenant: { config: { deny_payload_keys: list } } })

test('a context over maxContextBytes is refused naming the limit', () => {
  const big = { actor: { notes: 'x'.repeat(300 * 1024) } }
  const e = contextError(engine(), big)
  assert.equal(e.field, 'context')
  assert.equal(e.message, 'invalid context: field `context`: is larger than 262144 bytes serialized (`max_context_bytes`)')
  const fits = { actor: { notes: 'x'.repeat(200 * 1024) } }
  assert.equal(engine().decide(signal(), fits, { now: NOW }).actions.length, 1)
  // The limit is a setting, both ways.
  assert.equal(contextError(engine({ config: { maxContextBytes: 64 } }), fits).field, 'context')
  assert.equal(engine({ config: { maxContextBytes: 1 << 20 } }).decide(signal(), big, { now: NOW }).actions.length, 1)
})

test('a deny list over maxDenyKeys is refused naming the limit', () => {
  const e = contextError(engine(), denying(keys(10_001)))
  assert.equal(e.field, 'tenant.config.deny_payload_keys')
  assert.equal(
    e.message,
    'invalid context: field `tenant.config.deny_payload_keys`: has 10001 keys; at most 10000 are allowed (`max_deny_keys`)',
  )
  // At the limit it is used.
  const d = engine().decide(signal({ payload: { key9999: 1 } }), denying(keys(10_000)), { now: NOW })
  assert.deepEqual(d.redacted, ['payload.key9999'])
  const small = contextError(engine({ config: { maxDenyKeys: 3 } }), denying(keys(4)))
  assert.ok(small.message.endsWith('has 4 keys; at most 3 are allowed (`max_deny_keys`)'), small.message)
})

test('a deny key over maxDenyKeyBytes is refused naming the limit', () => {
  const e = contextError(engine(), denying(['diff', 'k'.repeat(257)]))
  assert.equal(e.field, 'tenant.config.deny_payload_keys[1]')
  assert.ok(e.message.includes('(`max_deny_key_bytes`)'), e.message)
  const d = engine().decide(signal({ payload: { diff: 1 } }), denying(['diff', 'k'.repeat(256)]), { now: NOW })
  assert.deepEqual(d.redacted, ['payload.diff'])
  const small = contextError(engine({ config: { maxDenyKeyBytes: 4 } }), denying(['diff', 'token']))
  assert.equal(small.field, 'tenant.config.deny_payload_keys[1]')
})

test('a deny list from data governance over the limit is the port being down', () => {
  const patient = { defaultDeadlineMs: 60_000, dataGovernanceTimeoutMs: 60_000, maxContextBytes: 64 << 20 }
  const governance = { tenantConfig: () => ({ deny_payload_keys: keys(10_001) }) }
  const s = signal({ payload: { key5: 1, diff: 2 } })
  let d = engine({ dataGovernance: governance, config: patient }).decide(s, null, { now: NOW })
  assert.deepEqual(d.degraded, ['data_governance_unavailable'])
  assert.deepEqual(d.redacted, ['payload.diff'], 'the default deny list applies instead')
  // Within a raised limit the same answer is used.
  d = engine({ dataGovernance: governance, config: { ...patient, maxDenyKeys: 20_000 } }).decide(s, null, { now: NOW })
  assert.deepEqual([d.degraded, d.redacted], [[], ['payload.key5']])
})

test('the fatigue store tracks at most fatigueMaxActors', () => {
  // The store spreads actors over 64 shards, each holding its share of the cap, so a cap
  // of 64 tracks at most one actor per shard: of 500 actors, at most 64 get their nudge.
  const actors = Array.from({ length: 500 }, (_, i) => `dev-${i}`)
  const capped = mmm.Engine.fromYaml(ONCE_A_DAY, { config: { fatigueMaxActors: 64 } })
  const decisions = actors.map((a) => [a, capped.decide(signal({ actor_id: a }), null, { now: NOW })])
  const nudged = decisions.filter(([, d]) => d.actions.length > 0).map(([a]) => a)
  assert.ok(nudged.length >= 1 && nudged.length <= 64, `${nudged.length}`)
  for (const [, d] of decisions.filter(([, d]) => d.actions.length === 0)) {
    assert.deepEqual(d.suppressed.map((s) => s.reason), ['fatigue_cooldown'])
    assert.ok(d.suppressed[0].detail.includes('`fatigue_max_actors`'), d.suppressed[0].detail)
  }
  // Those tracked are still limited; with the default cap every actor is tracked.
  assert.equal(capped.decide(signal({ actor_id: nudged[0] }), null, { now: NOW }).actions.length, 0)
  const open = mmm.Engine.fromYaml(ONCE_A_DAY)
  assert.ok(actors.every((a) => open.decide(signal({ actor_id: a }), null, { now: NOW }).actions.length === 1))
})

test('numbers JSON cannot carry are refused naming the field everywhere', () => {
  const outcome = (extra) => ({ action_id: 'a', tenant_id: 'acme', actor_id: 'dev-42', playbook_id: 'p', result: 'accepted', at: NOW, ...extra })
  for (const [value, literal] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [-Infinity, '-Infinity']]) {
    const message = `\`${literal}\` is not a number JSON can carry; NaN and infinities are refused`
    let e = caught(() => engine().recordOutcome(outcome({ extra: [value] })))
    assert.deepEqual([e.name, e.code, e.field], ['OutcomeError', 'OUTCOME_INVALID', 'extra[0]'])
    assert.ok(e.message.endsWith(message), e.message)
    e = caught(() => engine({ config: { ideDeadlineMs: value } }))
    assert.deepEqual([e.code, e.field], ['CONFIG_INVALID', 'ideDeadlineMs'])
    assert.ok(e.message.endsWith(message), e.message)
    e = contextError(engine(), { actor: { score: value } })
    assert.deepEqual([e.field, e.message], ['actor.score', `invalid context: field \`actor.score\`: ${message}`])
  }
})

test('integers beyond 64 bits or past the safe integers are refused naming the field everywhere', () => {
  for (const big of [2n ** 64n, -(2n ** 63n) - 1n]) {
    const e = contextError(engine(), { tenant: { config: { n: [big] } } })
    assert.equal(e.field, 'tenant.config.n[0]')
    assert.ok(e.message.includes(`integer \`${big}\` does not fit in 64 bits`), e.message)
    const o = caught(() =>
      engine().recordOutcome({ action_id: 'a', tenant_id: 'acme', actor_id: 'dev-42', playbook_id: 'p', result: 'accepted', at: NOW, n: big }),
    )
    assert.deepEqual([o.code, o.field], ['OUTCOME_INVALID', 'n'])
  }
  const e = contextError(engine(), { tenant: { config: { n: 2 ** 60 } } })
  assert.equal(e.field, 'tenant.config.n')
  assert.ok(e.message.includes("beyond JavaScript's safe integers"), e.message)
})
