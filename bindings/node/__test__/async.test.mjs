// decideAsync under concurrency: every call resolves with its own decision, and the event
// loop stays free while decisions (and their ports) are in flight.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { NOW, THREE, mmm, normalise, signal, sleep } from './helpers.mjs'

const N = 100

function inputs() {
  return Array.from({ length: N }, (_, i) => signal({ actor_id: `dev-${i}`, payload: { lines: 401 + i } }))
}

/** Schedules a timer for `ms` and reports how late it fired. */
function lateness(ms) {
  const scheduled = performance.now()
  return new Promise((resolve) => setTimeout(() => resolve(performance.now() - scheduled - ms), ms))
}

test(`${N} concurrent decideAsync calls resolve with the decisions decide gives`, async () => {
  const engine = mmm.Engine.fromYaml(THREE)
  const reference = mmm.Engine.fromYaml(THREE)
  const all = inputs()
  const timer = lateness(20)
  const decisions = await Promise.all(all.map((s) => engine.decideAsync(s, null, { now: NOW })))
  assert.ok((await timer) < 100, 'the timer fired on time')
  for (const [i, d] of decisions.entries()) {
    assert.equal(d.actor_id, `dev-${i}`)
    assert.equal(d.actions[0].text, `${401 + i} lines`)
    assert.deepEqual(normalise(d), normalise(reference.decide(all[i], null, { now: NOW })))
  }
})

test(`${N} concurrent decideAsync calls with slow asynchronous ports: the event loop stays responsive`, async () => {
  let inFlight = 0
  let most = 0
  const policy = {
    async snapshot(tenantId) {
      inFlight += 1
      most = Math.max(most, inFlight)
      await sleep(30)
      inFlight -= 1
      return { snapshot_id: `pol-${tenantId}` }
    },
  }
  const llm = {
    async generate(request) {
      await sleep(10)
      return { text: `for ${request.actor_id}`, safety: { status: 'pass' } }
    },
  }
  const engine = mmm.Engine.fromYaml(THREE, { policy, llm, config: { policyTtlMs: 0 } })
  const started = performance.now()
  const ticks = []
  const interval = setInterval(() => ticks.push(performance.now()), 10)
  const timer = lateness(50)
  const decisions = await Promise.all(inputs().map((s) => engine.decideAsync(s, null, { now: NOW })))
  const late = await timer
  clearInterval(interval)
  const elapsed = performance.now() - started
  assert.ok(late < 100, `the timer fired ${late.toFixed(1)} ms late`)
  const gaps = ticks.slice(1).map((t, i) => t - ticks[i])
  assert.ok(Math.max(...gaps) < 150, `longest event-loop gap ${Math.max(...gaps).toFixed(1)} ms`)
  for (const [i, d] of decisions.entries()) {
    assert.equal(d.policy_snapshot_id, 'pol-acme')
    assert.deepEqual(d.degraded, [])
    assert.equal(d.actions[1].text, `for dev-${i}`)
  }
  // The decisions waited for their ports side by side, not one after another.
  assert.ok(most > 10, `at most ${most} policy calls were in flight at once`)
  assert.ok(elapsed < 40 * N, `took ${elapsed.toFixed(0)} ms`)
})

test('synchronous JS ports serve concurrent decideAsync calls too', async () => {
  let calls = 0
  const signals = {
    recent(tenantId, actorId) {
      calls += 1
      const n = Number(actorId.slice(4)) % 3
      return Array.from({ length: n }, (_, k) => ({ kind: 'ci.failed', occurred_at: `2026-11-22T09:5${k}:00Z` }))
    },
  }
  const engine = mmm.Engine.fromYaml(THREE, { signals })
  const all = Array.from({ length: N }, (_, i) => signal({ kind: 'ci.failed', actor_id: `dev-${i}` }))
  const decisions = await Promise.all(all.map((s) => engine.decideAsync(s, null, { now: NOW })))
  assert.equal(calls, N)
  for (const [i, d] of decisions.entries()) {
    assert.equal(d.actions.length, i % 3 === 2 ? 1 : 0, `dev-${i}`)
  }
})

test('a synchronous decide between asynchronous ones', async () => {
  const llm = {
    generate(request) {
      return { text: `sync for ${request.actor_id}`, safety: { status: 'pass' } }
    },
  }
  const engine = mmm.Engine.fromYaml(THREE, { llm })
  const pending = inputs()
    .slice(0, 20)
    .map((s) => engine.decideAsync(s, null, { now: NOW }))
  const d = engine.decide(signal({ actor_id: 'dev-sync', payload: { lines: 999 } }), null, { now: NOW })
  assert.equal(d.actions[1].text, 'sync for dev-sync')
  const rest = await Promise.all(pending)
  assert.deepEqual(
    rest.map((x) => x.actions[1].text),
    inputs()
      .slice(0, 20)
      .map((s) => `sync for ${s.actor_id}`),
  )
})

test('fatigue holds under concurrent decisions for one actor', async () => {
  const yaml = THREE.replace('  when: signal.payload.lines > 400\n', '  when: signal.payload.lines > 400\n  fatigue: {max: 1, window: 1d}\n')
  const engine = mmm.Engine.fromYaml(yaml)
  const decisions = await Promise.all(
    Array.from({ length: 20 }, () => engine.decideAsync(signal({ payload: { lines: 420 } }), null, { now: NOW })),
  )
  assert.equal(decisions.filter((d) => d.actions.length > 0).length, 1)
})

test('a synchronous decide is not held up by decideAsync calls waiting for their ports', async () => {
  const slow = {
    async snapshot() {
      await sleep(300)
      return { snapshot_id: 'slow' }
    },
  }
  const busy = mmm.Engine.fromYaml(THREE, { policy: slow, config: { policyTimeoutMs: 2000, defaultDeadlineMs: 2000 } })
  // More than the 64 threads decideAsync has: every one of them waits for the JS thread.
  const pending = Array.from({ length: 80 }, (_, i) =>
    busy.decideAsync(signal({ actor_id: `dev-${i}`, payload: { lines: 420 } }), null, { now: NOW }),
  )
  await sleep(20)
  const quick = mmm.Engine.fromYaml(THREE, { policy: { snapshot: () => ({ snapshot_id: 'quick' }) } })
  const started = performance.now()
  const d = quick.decide(signal({ payload: { lines: 420 } }), null, { now: NOW })
  assert.ok(performance.now() - started < 200, `${(performance.now() - started).toFixed(0)} ms`)
  assert.equal(d.policy_snapshot_id, 'quick')
  assert.deepEqual(d.degraded, [])
  for (const x of await Promise.all(pending)) assert.equal(x.policy_snapshot_id, 'slow')
})
