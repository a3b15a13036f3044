// decideAsync under concurrency: every call resolves with its own decision, and the event
// loop stays free while decisions (and their ports) are in flight.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { NOW, THREE, mmm, normalise, signal, sleep } from './helpers.mjs'

const N = 100

function inputs() {
  return Array.from({ length: N }, (_, i) => signal({ actor_id: `dev-${i}`, payload: { lines: 401 + i } }))
}

test(`${N} concurrent decideAsync calls resolve with the decisions decide gives`, async () => {
  const engine = mmm.Engine.fromYaml(THREE)
  const reference = mmm.Engine.fromYaml(THREE)
  const all = inputs()
  const decisions = await Promise.all(all.map((s) => engine.decideAsync(s, null, { now: NOW })))
  for (const [i, d] of decisions.entries()) {
    assert.equal(d.actor_id, `dev-${i}`)
    assert.equal(d.actions[0].text, `${401 + i} lines`)
    assert.deepEqual(normalise(d), normalise(reference.decide(all[i], null, { now: NOW })))
  }
})

test(`${N} concurrent decideAsync calls with slow asynchronous ports: the event loop stays free`, async () => {
  let inFlight = 0
  let most = 0
  let open
  const gate = new Promise((resolve) => {
    open = resolve
  })
  const policy = {
    async snapshot(tenantId) {
      inFlight += 1
      most = Math.max(most, inFlight)
      await gate
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
  // Time enough for any machine: only the gate below ends the ports' wait.
  const config = { policyTtlMs: 0, policyTimeoutMs: 30000, defaultDeadlineMs: 30000 }
  const engine = mmm.Engine.fromYaml(THREE, { policy, llm, config })
  const pending = Promise.all(inputs().map((s) => engine.decideAsync(s, null, { now: NOW })))
  // The gate opens from a timer, once many policy calls wait on it side by side: the
  // decisions can finish only if the event loop runs timers while they are in flight.
  // (Should the calls never overlap, it opens after 20 s and the count below fails.)
  const watch = setInterval(() => {
    if (inFlight > 10) open()
  }, 5)
  const giveUp = setTimeout(open, 20000)
  const decisions = await pending
  clearInterval(watch)
  clearTimeout(giveUp)
  for (const [i, d] of decisions.entries()) {
    assert.equal(d.policy_snapshot_id, 'pol-acme')
    assert.deepEqual(d.degraded, [])
    assert.equal(d.actions[1].text, `for dev-${i}`)
  }
  // The decisions waited for their ports side by side, not one after another.
  assert.ok(most > 10, `at most ${most} policy calls were in flight at once`)
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
  // Held up, it would wait for threads that wait for this (blocked) JS thread until its
  // 500 ms deadline, and say so in `degraded`; the bound only catches a hang.
  assert.ok(performance.now() - started < 5000, `${(performance.now() - started).toFixed(0)} ms`)
  assert.equal(d.policy_snapshot_id, 'quick')
  assert.deepEqual(d.degraded, [])
  for (const x of await Promise.all(pending)) assert.equal(x.policy_snapshot_id, 'slow')
})
