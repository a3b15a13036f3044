// Each degraded mode of SPEC §6, shown through JavaScript ports that throw, in a
// synchronous `decide` (ports run on the JS thread while decide waits) and in
// `decideAsync` (ports run on the free JS thread through a threadsafe function).
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { NOW, THREE, down, mmm, signal, sleep } from './helpers.mjs'

const modes = {
  decide: (engine, ...args) => engine.decide(...args),
  decideAsync: (engine, ...args) => engine.decideAsync(...args),
}

class Policy {
  constructor() {
    this.up = true
  }
  snapshot() {
    if (!this.up) throw new Error('policy service timed out')
    return { snapshot_id: 'pol-js', denied_action_types: [], denied_operations: [], denied_playbooks: [] }
  }
}

for (const [mode, decide] of Object.entries(modes)) {
  describe(`degraded modes through ${mode}`, () => {
    test('LLM down: the mentor falls back', async () => {
      const engine = mmm.Engine.fromYaml(THREE, { llm: down('llm') })
      const d = await decide(engine, signal({ payload: { lines: 420 } }), null, { now: NOW })
      assert.equal(d.actions[1].text, 'Smaller changes are reviewed faster.')
      assert.deepEqual(d.degraded, ['llm_unavailable'])
      assert.deepEqual(
        d.actions.map((a) => a.type),
        ['mirror', 'mentor', 'multiplier'],
      )
    })

    test('LLM answers are used, unsafe ones fall back', async () => {
      const requests = []
      const llm = (status) => ({
        generate(request) {
          requests.push(request)
          return { text: 'Split by directory.', safety: { status, risk_flags: ['x'] } }
        },
      })
      let d = await decide(mmm.Engine.fromYaml(THREE, { llm: llm('pass') }), signal({ payload: { lines: 420 } }), null, {
        now: NOW,
      })
      assert.equal(d.actions[1].text, 'Split by directory.')
      assert.equal(requests[0].prompt, 'split 420')
      assert.equal(requests[0].playbook_id, 'large-pr')
      assert.equal(requests[0].max_tokens, 512)
      d = await decide(mmm.Engine.fromYaml(THREE, { llm: llm('fail') }), signal({ payload: { lines: 420 } }), null, {
        now: NOW,
      })
      assert.equal(d.actions[1].text, 'Smaller changes are reviewed faster.')
    })

    test('receipts down: queued, the decision does not wait', async () => {
      const [seed] = mmm.generateKey()
      const engine = mmm.Engine.fromYaml(THREE, { signingKey: seed, receipts: down('receipts') })
      const started = performance.now()
      const d = await decide(engine, signal({ payload: { lines: 420 } }), null, { now: NOW })
      // The port never comes back: a decision that waited for it would hang, which the
      // bound (far above the milliseconds a decision takes) catches on any machine.
      assert.ok(performance.now() - started < 5000)
      assert.equal(d.receipt.status, 'queued')
      assert.deepEqual(d.degraded, ['receipts_queued'])
    })

    test('a full outbox means no actions', async () => {
      const [seed] = mmm.generateKey()
      const engine = mmm.Engine.fromYaml(THREE, {
        signingKey: seed,
        receipts: down('receipts'),
        config: { outboxCapacity: 1 },
      })
      const first = await decide(engine, signal({ payload: { lines: 420 } }), null, { now: NOW })
      assert.equal(first.receipt.status, 'queued')
      const d = await decide(engine, signal({ payload: { lines: 420 } }), null, { now: NOW })
      assert.deepEqual(d.actions, [])
      assert.ok(d.degraded.includes('receipts_backpressure'))
      assert.deepEqual(new Set(d.suppressed.map((s) => s.reason)), new Set(['receipts_backpressure']))
    })

    test('policy down: safety-critical tenants get nothing, others mirrors only', async () => {
      const engine = mmm.Engine.fromYaml(THREE, { policy: down('policy') })
      let d = await decide(engine, signal({ payload: { lines: 420 } }), { tenant: { safety_critical: true } }, { now: NOW })
      assert.deepEqual(d.actions, [])
      assert.deepEqual(d.degraded, ['policy_unavailable'])
      assert.deepEqual(new Set(d.suppressed.map((s) => s.reason)), new Set(['policy_unavailable']))
      d = await decide(engine, signal({ payload: { lines: 420 } }), null, { now: NOW })
      assert.deepEqual(
        d.actions.map((a) => a.type),
        ['mirror'],
      )
    })

    test('policy down after an answer: the cached snapshot stands in', async () => {
      const policy = new Policy()
      const engine = mmm.Engine.fromYaml(THREE, { policy, config: { policyTtlMs: 0 } })
      let d = await decide(engine, signal({ payload: { lines: 420 } }), null, { now: NOW })
      assert.equal(d.policy_snapshot_id, 'pol-js')
      assert.deepEqual(d.degraded, [])
      policy.up = false
      d = await decide(engine, signal({ payload: { lines: 420 } }), null, { now: NOW })
      assert.deepEqual(d.degraded, ['policy_cached'])
      assert.equal(d.policy_snapshot_id, 'pol-js')
      assert.equal(d.actions.length, 3)
    })

    test('UBI down: an empty list', async () => {
      let d = await decide(mmm.Engine.fromYaml(THREE, { signals: down('signals') }), signal({ kind: 'ci.failed' }), null, {
        now: NOW,
      })
      assert.deepEqual(d.actions, [])
      assert.deepEqual(d.degraded, ['ubi_unavailable'])
      const ubi = {
        recent(tenantId, actorId, limit) {
          assert.equal(limit, 50)
          return [
            { kind: 'ci.failed', occurred_at: '2026-11-22T09:50:00Z' },
            { kind: 'ci.failed', occurred_at: '2026-11-22T09:40:00Z' },
          ]
        },
      }
      d = await decide(mmm.Engine.fromYaml(THREE, { signals: ubi }), signal({ kind: 'ci.failed' }), null, { now: NOW })
      assert.deepEqual(
        d.actions.map((a) => a.playbook.id),
        ['repeated-ci'],
      )
    })

    test('an answer in the wrong shape is a dependency down', async () => {
      const ubi = { recent: () => 'not a list' }
      const d = await decide(mmm.Engine.fromYaml(THREE, { signals: ubi }), signal({ kind: 'ci.failed' }), null, {
        now: NOW,
      })
      assert.deepEqual(d.degraded, ['ubi_unavailable'])
      // A number the engine refuses (NaN, a BigInt beyond 64 bits) is an answer in the wrong shape.
      const bigint = { recent: () => [{ kind: 'ci.failed', occurred_at: NOW, payload: { n: 2n ** 64n, m: NaN } }] }
      const d2 = await decide(mmm.Engine.fromYaml(THREE, { signals: bigint }), signal({ kind: 'ci.failed' }), null, {
        now: NOW,
      })
      assert.deepEqual(d2.degraded, ['ubi_unavailable'])
    })

    test('data governance down: default tenant config', async () => {
      const d = await decide(
        mmm.Engine.fromYaml(THREE, { dataGovernance: down('dg') }),
        signal({ payload: { lines: 420, diff: '+x' } }),
        null,
        { now: NOW },
      )
      assert.deepEqual(d.degraded, ['data_governance_unavailable'])
      assert.deepEqual(d.redacted, ['payload.diff'])
    })

    test('IAM down fails the decision; business answers forbid without tripping the breaker', async () => {
      await assert.rejects(
        async () => decide(mmm.Engine.fromYaml(THREE, { iam: down('iam') }), signal(), null, { now: NOW }),
        (e) => e.code === 'UNAVAILABLE' && e.name === 'UnavailableError',
      )
      const iam = {
        validateActor(tenantId, actorId) {
          if (actorId === 'ghost') throw mmm.rejected('no such actor')
          return { active: actorId !== 'gone', roles: ['dev'] }
        },
      }
      const engine = mmm.Engine.fromYaml(THREE, { iam })
      assert.equal((await decide(engine, signal({ payload: { lines: 420 } }), null, { now: NOW })).actions.length, 3)
      for (const actor of ['ghost', 'gone']) {
        await assert.rejects(
          async () => decide(engine, signal({ actor_id: actor }), null, { now: NOW }),
          (e) => e.code === 'FORBIDDEN' && e.name === 'ForbiddenError',
        )
      }
      for (let i = 0; i < 6; i++) {
        await assert.rejects(async () => decide(engine, signal({ actor_id: 'ghost' }), null, { now: NOW }), {
          code: 'FORBIDDEN',
        })
      }
      assert.equal(engine.breakerState('iam'), 'closed')
    })

    test('a failing port opens its breaker', async () => {
      const engine = mmm.Engine.fromYaml(THREE, { signals: down('signals') })
      for (let i = 0; i < 5; i++) await decide(engine, signal({ kind: 'ci.failed' }), null, { now: NOW })
      assert.equal(engine.breakerState('signals'), 'open')
    })

    test('a JavaScript fatigue store', async () => {
      const seen = []
      const fatigue = {
        checkAndRecord(request) {
          seen.push(request)
          return seen.length > 1 ? { verdict: 'cooldown' } : { verdict: 'allowed', actions: 3 }
        },
      }
      const engine = mmm.Engine.fromYaml(THREE, { fatigue })
      assert.equal((await decide(engine, signal({ payload: { lines: 420 } }), null, { now: NOW })).actions.length, 3)
      const d = await decide(engine, signal({ payload: { lines: 420 } }), null, { now: NOW })
      assert.deepEqual(new Set(d.suppressed.map((s) => s.reason)), new Set(['fatigue_cooldown']))
      assert.equal(seen[0].playbook_id, 'large-pr')
      assert.equal(seen[0].actions, 3)
      assert.equal(seen[0].now, NOW)
    })

    test('a slow port passes the deadline and the LLM is skipped', async () => {
      let llmCalls = 0
      const slowUbi = {
        recent() {
          // A synchronous port that blocks the JS thread for 300 ms.
          const until = Date.now() + 300
          while (Date.now() < until);
          return []
        },
      }
      const llm = {
        generate() {
          llmCalls += 1
          return { text: 'generated', safety: { status: 'pass' } }
        },
      }
      const engine = mmm.Engine.fromYaml(THREE, { signals: slowUbi, llm, config: { ideDeadlineMs: 100 } })
      const started = performance.now()
      const d = await decide(engine, signal({ payload: { lines: 420 }, surface: 'ide' }), null, { now: NOW })
      // `deadline_exceeded` below says the deadline ended the wait; the bound only catches
      // a hang.
      assert.ok(performance.now() - started < 10000)
      assert.ok(d.degraded.includes('deadline_exceeded'), d.degraded.join())
      assert.ok(d.degraded.includes('ubi_unavailable'))
      assert.equal(d.latency_warning, true)
      assert.equal(d.actions[1].text, 'Smaller changes are reviewed faster.')
      assert.equal(llmCalls, 0)
    })

    test('delivery gets each action on each surface', async () => {
      const delivered = []
      const delivery = {
        deliver(action, surface, rendered) {
          delivered.push([action.playbook.id, action.type, surface, rendered])
        },
      }
      const engine = mmm.Engine.fromYaml(THREE, { delivery })
      const d = await decide(engine, signal({ payload: { lines: 420 } }), null, { now: NOW })
      // Delivery does not hold up the decision; it lands once the JS thread is free.
      const deadline = Date.now() + 10000
      while (delivered.length < 4 && Date.now() < deadline) await sleep(10)
      const expected = d.actions.flatMap((a) => a.surfaces.map((s) => [a.playbook.id, a.type, s, a.rendered[s]]))
      assert.deepEqual(
        delivered.sort((a, b) => a.join().localeCompare(b.join())),
        expected.sort((a, b) => a.join().localeCompare(b.join())),
      )
    })
  })
}

describe('ports answering with Promises', () => {
  const asyncLlm = {
    async generate(request) {
      await sleep(5)
      return { text: `async ${request.prompt}`, safety: { status: 'pass' } }
    },
  }

  test('decideAsync awaits them', async () => {
    const engine = mmm.Engine.fromYaml(THREE, { llm: asyncLlm })
    const d = await engine.decideAsync(signal({ payload: { lines: 420 } }), null, { now: NOW })
    assert.equal(d.actions[1].text, 'async split 420')
    assert.deepEqual(d.degraded, [])
  })

  test('a rejected promise is a dependency down, REJECTED a business answer', async () => {
    const llm = { generate: async () => Promise.reject(new Error('gateway 502')) }
    let d = await mmm.Engine.fromYaml(THREE, { llm }).decideAsync(signal({ payload: { lines: 420 } }), null, { now: NOW })
    assert.deepEqual(d.degraded, ['llm_unavailable'])
    const iam = { validateActor: async () => Promise.reject(mmm.rejected('unknown actor')) }
    await assert.rejects(mmm.Engine.fromYaml(THREE, { iam }).decideAsync(signal(), null, { now: NOW }), {
      code: 'FORBIDDEN',
    })
  })

  test('a synchronous decide cannot await them: down at once, never a deadlock', async () => {
    const engine = mmm.Engine.fromYaml(THREE, { llm: asyncLlm })
    const started = performance.now()
    const d = engine.decide(signal({ payload: { lines: 420 } }), null, { now: NOW })
    // Waiting for the promise would end only at the 500 ms deadline and add
    // `deadline_exceeded` below; the bound only catches a deadlock.
    assert.ok(performance.now() - started < 5000, `${performance.now() - started} ms`)
    assert.equal(d.actions[1].text, 'Smaller changes are reviewed faster.')
    assert.deepEqual(d.degraded, ['llm_unavailable'])
    // And a rejected promise left behind is handled, not an unhandled rejection.
    const failing = { generate: () => Promise.reject(new Error('later')) }
    mmm.Engine.fromYaml(THREE, { llm: failing }).decide(signal({ payload: { lines: 420 } }), null, { now: NOW })
    await sleep(20)
  })

  test('a port that never settles times out instead of hanging', async () => {
    const never = { snapshot: () => new Promise(() => {}) }
    const engine = mmm.Engine.fromYaml(THREE, { policy: never, config: { policyTimeoutMs: 50 } })
    const d = await engine.decideAsync(signal({ payload: { lines: 420 } }), null, { now: NOW })
    assert.deepEqual(d.degraded, ['policy_unavailable'])
  })
})

test('a port may decide again from inside a synchronous decide (pumps nest)', () => {
  const llm = { generate: () => ({ text: 'inner text', safety: { status: 'pass' } }) }
  const inner = mmm.Engine.fromYaml(THREE, { llm })
  const policy = {
    snapshot(tenantId) {
      const d = inner.decide(signal({ payload: { lines: 500 } }), null, { now: NOW })
      return { snapshot_id: `nested-${d.actions[1].text}-${tenantId}` }
    },
  }
  const engine = mmm.Engine.fromYaml(THREE, { policy })
  const d = engine.decide(signal({ payload: { lines: 420 } }), null, { now: NOW })
  assert.equal(d.policy_snapshot_id, 'nested-inner text-acme')
})
