// The shape of the errors: `Error`s with a stable `code`, a `name`, and every structured
// field of the core's ErrorInfo (`null` when it does not apply).
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { NOW, THREE, mmm, signal } from './helpers.mjs'

const FIELDS = ['code', 'field', 'rule', 'file', 'line', 'column', 'playbook']

function caught(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  assert.fail('expected an error')
}

function shape(e) {
  assert.ok(e instanceof Error)
  assert.equal(typeof e.message, 'string')
  assert.equal(typeof e.stack, 'string')
  return Object.fromEntries(['name', ...FIELDS].map((k) => [k, e[k]]))
}

test('playbook errors name file, line, column, rule and playbook, with every diagnostic', () => {
  const yaml =
    "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: p, version: 1, tenant: '*', status: published}\n" +
    'spec:\n  triggers: [pr.opened]\n  when: signal.payload.x > > 1\n' +
    '  actions: [{type: mirror, surfaces: [ide], title: T, text: t}]\n'
  const e = caught(() => mmm.Engine.fromYaml(yaml))
  assert.deepEqual(shape(e), {
    name: 'PlaybookError',
    code: 'PLAYBOOK_INVALID',
    field: null,
    rule: 'condition',
    file: '<yaml>',
    line: 6,
    column: 28,
    playbook: 'p',
  })
  assert.equal(e.diagnostics[0].severity, 'error')
  assert.equal(e.diagnostics[0].line, 6)
  assert.equal(e.diagnostics[0].column, 28)
  const io = caught(() => mmm.Engine.fromPath('/nonexistent/playbooks'))
  assert.equal(io.code, 'IO')
  assert.equal(io.name, 'IoError')
})

test('signal and context errors name the field', () => {
  const engine = mmm.Engine.fromYaml(THREE)
  const bad = signal()
  delete bad.tenant_id
  assert.deepEqual(shape(caught(() => engine.decide(bad, null, { now: NOW }))), {
    name: 'SignalError',
    code: 'SIGNAL_INVALID',
    field: 'tenant_id',
    rule: null,
    file: null,
    line: null,
    column: null,
    playbook: null,
  })
  const ctx = caught(() => engine.decide(signal(), { preferences: { snooze_until: 'soon' } }, { now: NOW }))
  assert.deepEqual([ctx.name, ctx.code, ctx.field], ['ContextError', 'CONTEXT_INVALID', 'preferences.snooze_until'])
  assert.match(ctx.message, /snooze_until/)
  // What JSON cannot carry is an input error, not a crash.
  const cyclic = signal()
  cyclic.payload.self = cyclic
  assert.deepEqual(
    [caught(() => engine.decide(cyclic)).code, caught(() => engine.decide(cyclic)).field],
    ['SIGNAL_INVALID', 'signal'],
  )
  // A BigInt is exact within 64 bits and refused beyond, naming its path.
  engine.decide(signal({ payload: { n: 10n } }), null, { now: NOW })
  const big = caught(() => engine.decide(signal({ payload: { n: 2n ** 64n } })))
  assert.deepEqual([big.code, big.field], ['SIGNAL_INVALID', 'payload.n'])
  const bigCtx = caught(() => engine.decide(signal(), { tenant: { big: 2n ** 64n } }))
  assert.deepEqual([bigCtx.code, bigCtx.field], ['CONTEXT_INVALID', 'tenant.big'])
  assert.equal(caught(() => engine.decide('not a signal')).code, 'SIGNAL_INVALID')
  assert.equal(caught(() => engine.decide(signal({ kind: 'Not Dotted' }))).field, 'kind')
})

test('decideAsync rejects with the same errors', async () => {
  const engine = mmm.Engine.fromYaml(THREE)
  await assert.rejects(engine.decideAsync(signal({ tenant_id: '' }), null, { now: NOW }), (e) => {
    assert.deepEqual(shape(e), {
      name: 'SignalError',
      code: 'SIGNAL_INVALID',
      field: 'tenant_id',
      rule: null,
      file: null,
      line: null,
      column: null,
      playbook: null,
    })
    return true
  })
  // Arguments that cannot be read throw at once, as from decide.
  const cyclic = signal()
  cyclic.payload.self = cyclic
  assert.throws(() => engine.decideAsync(cyclic), { code: 'SIGNAL_INVALID' })
})

test('dependency errors: UNAVAILABLE and FORBIDDEN', () => {
  const iam = { validateActor: () => ({ active: false }) }
  const e = caught(() => mmm.Engine.fromYaml(THREE, { iam }).decide(signal(), null, { now: NOW }))
  assert.deepEqual([e.name, e.code, e.field], ['ForbiddenError', 'FORBIDDEN', null])
  const down = {
    validateActor: () => {
      throw new Error('IAM is down')
    },
  }
  const u = caught(() => mmm.Engine.fromYaml(THREE, { iam: down }).decide(signal(), null, { now: NOW }))
  assert.deepEqual([u.name, u.code], ['UnavailableError', 'UNAVAILABLE'])
  assert.match(u.message, /IAM is down/)
})

test('receipt errors', () => {
  const e = caught(() => mmm.verifyReceipt({ payloadType: 'x' }, '00'.repeat(32)))
  assert.deepEqual([e.name, e.code, e.field], ['ReceiptError', 'RECEIPT_INVALID', null])
  assert.equal(caught(() => mmm.verifyReceipt({}, 42)).code, 'ERR_INVALID_ARG_TYPE')
})

test('a port rejection helper', () => {
  const r = mmm.rejected('no such actor')
  assert.ok(r instanceof Error)
  assert.equal(r.code, 'REJECTED')
  assert.equal(r.message, 'no such actor')
})

test('messages follow the house style: lower-case, no trailing period', () => {
  const engine = mmm.Engine.fromYaml(THREE)
  for (const e of [
    caught(() => engine.decide(signal({ tenant_id: '' }))),
    caught(() => mmm.verifyReceipt('{', '00')),
    caught(() => engine.decide(signal(), null, { now: 'then' })),
  ]) {
    assert.match(e.message, /^[a-z`]/)
    assert.doesNotMatch(e.message, /\.$/)
  }
})
