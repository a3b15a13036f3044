// Hostile inputs, as in the Rust suite (`mmm-engine/tests/hostile_inputs.rs`) and the
// Python suite (`test_hostile_inputs.py`): each ends in neutralised output or a clean error
// that names the field, with the same codes, fields and messages in every binding.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { NOW, mmm, signal } from './helpers.mjs'

const HOSTILE =
  'feat/\u202aa\u202bb\u202cc\u202dd\u202ee\u2066f\u2067g\u2068h\u2069i\u200bj\u200ck\u200dl' +
  '\u200em\u200fn\u061co\ufeffp\u2060q\u{e0041}\u{e0042}\u{e007f}r\u2028s\u2029t\x1b[31mu\x85v\xadw'
const LEGIT = 'Café naïve 漢字 한국어 👩\u200d💻 ❤\ufe0f 👍🏽'
const HIDDEN = /[\x00-\x1f\x7f-\x9f\xad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\u{e0000}-\u{e0fff}]/u

const PLAYBOOK = `apiVersion: mmm/v1
kind: Playbook
metadata: {id: branch-note, version: 1, tenant: "*", status: published, category: general}
spec:
  triggers: [pr.opened]
  actions:
    - {type: mirror, surfaces: [ide, alert, pr_comment, ci_summary, chat], title: "Branch {{ signal.repo.branch }}", text: "On {{ signal.repo.branch }} by {{ ctx.actor.name }}: {{ signal.payload.note }}"}
    - {type: mentor, surfaces: [ide, chat], title: Advice, prompt: advise, fallback: none}
`

// The inputs hash the Rust suite asserts for the same signal (ZERO_INPUTS_SHA256).
const ZERO_INPUTS_SHA256 = 'de6e48a5b56097d0052248a23627f8bd4ff97e6626e7f495636ebcd289457d96'

const hostileLlm = {
  generate: () => ({ text: `Split it.\u202egnirts\u2066 ${LEGIT}`, safety: { status: 'pass', risk_flags: [] } }),
}

const engine = (options) => mmm.Engine.fromYaml(PLAYBOOK, options)

function caught(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  assert.fail('expected an error')
}

function assertClean(message) {
  assert.ok(message.length < 400, message.slice(0, 200))
  assert.ok(!HIDDEN.test(message), JSON.stringify(message))
}

test('rendering neutralises hidden characters on every surface and field', () => {
  const s = signal({ payload: { note: `${HOSTILE} ${LEGIT}` } })
  s.repo.branch = `${HOSTILE} ${LEGIT}`
  const ctx = { actor: { name: `Ada\u202e${LEGIT}` }, tenant_policy: { max_actions_per_decision: 5 } }
  const d = engine({ llm: hostileLlm }).decide(s, ctx, { now: NOW })
  assert.equal(d.actions.length, 2, JSON.stringify(d.suppressed))
  for (const action of d.actions) {
    const texts = [action.text, ...Object.values(action.rendered)]
    if (action.type === 'mirror') texts.push(action.title)
    for (const text of texts) {
      assert.ok(!HIDDEN.test(text.replaceAll(LEGIT, '').replaceAll('\n', '')), JSON.stringify(text))
      assert.ok(text.includes('\ufffd'))
      assert.ok(text.includes(LEGIT))
    }
  }
  assert.equal(
    d.actions[0].title,
    'Branch feat/\ufffda\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg\ufffdh\ufffdi\ufffdj\ufffdk\ufffdl' +
      `\ufffdm\ufffdn\ufffdo\ufffdp\ufffdq\ufffdr s t [31mu v\ufffdw ${LEGIT}`,
  )
  assert.equal(d.actions[1].rendered.ide, `Advice\nSplit it.\ufffdgnirts\ufffd ${LEGIT}`)
})

const EVIL = 'x\x1b[31mred\u202ekcab'
const BIG = 'Y'.repeat(10 << 20)

test('error messages quote user values short, escaped, and name the field', () => {
  const cases = [
    ['tenant_id', EVIL], ['tenant_id', BIG], ['kind', EVIL], ['kind', BIG], ['surface', BIG],
    ['occurred_at', EVIL], ['occurred_at', BIG], ['actor_id', BIG], ['signal_id', BIG],
  ]
  for (const [field, value] of cases) {
    const e = caught(() => engine().decide(signal({ [field]: value }), null, { now: NOW }))
    assert.deepEqual([e.name, e.code, e.field], ['SignalError', 'SIGNAL_INVALID', field])
    assertClean(e.message)
    if (value === EVIL) assert.ok(e.message.includes('`x\\u{1b}[31mred\\u{202e}kcab`'), e.message)
    if (value === BIG && !['actor_id', 'signal_id'].includes(field)) {
      assert.ok(e.message.includes(`(${10 << 20} characters)`), e.message)
    }
  }
})

test('context and outcome errors quote user values too', () => {
  const evil = 'Mars\x1b[2J\u202e' + 'z'.repeat(10 << 20)
  const cases = [
    [{ actor: { timezone: evil } }, 'actor.timezone'],
    [{ preferences: { snooze_until: evil } }, 'preferences.snooze_until'],
    [{ tenant_policy: { enabled_surfaces: [evil] } }, 'tenant_policy.enabled_surfaces[0]'],
    [{ recent_signals: [{ kind: 'x', occurred_at: evil }] }, 'recent_signals[0].occurred_at'],
  ]
  // The context limit would refuse a 10 MB context before any field is read.
  const roomy = engine({ config: { maxContextBytes: 64 << 20 } })
  for (const [ctx, field] of cases) {
    const e = caught(() => roomy.decide(signal(), ctx, { now: NOW }))
    assert.deepEqual([e.name, e.code, e.field], ['ContextError', 'CONTEXT_INVALID', field])
    assertClean(e.message)
  }
  const e = caught(() =>
    engine().recordOutcome({ action_id: 'a', tenant_id: 'acme', actor_id: 'dev-42', playbook_id: 'p', result: evil, at: NOW }),
  )
  assert.equal(e.field, 'result')
  assertClean(e.message)
})

test('NaN and infinities are refused with their path, not turned into null', () => {
  for (const [value, literal] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [-Infinity, '-Infinity']]) {
    const e = caught(() => engine().decide(signal({ payload: { items: [1, { x: value }] } }), null, { now: NOW }))
    assert.deepEqual([e.code, e.field], ['SIGNAL_INVALID', 'payload.items[1].x'])
    assert.equal(
      e.message,
      `invalid signal: field \`payload.items[1].x\`: \`${literal}\` is not a number JSON can carry; NaN and infinities are refused`,
    )
    const c = caught(() => engine().decide(signal(), { tenant: { config: { y: value } } }, { now: NOW }))
    assert.deepEqual([c.code, c.field], ['CONTEXT_INVALID', 'tenant.config.y'])
    // The async path refuses it the same way, before anything runs.
    assert.throws(() => engine().decideAsync(signal({ payload: { x: value } }), null, { now: NOW }), {
      code: 'SIGNAL_INVALID',
      field: 'payload.x',
    })
  }
  // A real null is still a null.
  const d = engine().decide(signal({ payload: { note: null } }), { actor: { name: 'a' } }, { now: NOW })
  assert.equal(d.suppressed[0].reason, 'template_error')
})

test('unsafe integers are refused; BigInts are exact up to 64 bits', () => {
  for (const value of [2 ** 53, -(2 ** 60), 1e21, 1.5e300]) {
    const e = caught(() => engine().decide(signal({ payload: { n: value } }), null, { now: NOW }))
    assert.deepEqual([e.code, e.field], ['SIGNAL_INVALID', 'payload.n'])
    assert.ok(e.message.includes("beyond JavaScript's safe integers"), e.message)
  }
  for (const value of [2n ** 64n, -(2n ** 63n) - 1n]) {
    const e = caught(() => engine().decide(signal({ payload: { n: [value] } }), null, { now: NOW }))
    assert.deepEqual([e.code, e.field], ['SIGNAL_INVALID', 'payload.n[0]'])
    assert.ok(e.message.includes('does not fit in 64 bits'), e.message)
  }
  const yaml = PLAYBOOK.replace('{{ signal.payload.note }}', '{{ signal.payload.n }}')
  for (const [value, text] of [
    [2n ** 64n - 1n, '18446744073709551615'],
    [-(2n ** 63n), '-9223372036854775808'],
    [2n ** 53n + 1n, '9007199254740993'],
    [2 ** 53 - 1, '9007199254740991'],
    [1.5, '1.5'],
  ]) {
    const d = mmm.Engine.fromYaml(yaml).decide(signal({ payload: { n: value } }), { actor: { name: 'a' } }, { now: NOW })
    assert.ok(d.actions[0].text.endsWith(`: ${text}`), d.actions[0].text)
  }
})

test('negative zero is zero, with the inputs hash of every binding', () => {
  const yaml =
    "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: zero, version: 1, tenant: '*', status: published, " +
    'category: general}\nspec:\n  triggers: [pr.opened]\n  actions:\n    - {type: mirror, surfaces: [ide], ' +
    'title: T, text: "x={{ signal.payload.x }} list={{ signal.payload.list }} y={{ ctx.tenant.config.y }}"}\n'
  const [seed] = mmm.generateKey()
  const e = mmm.Engine.fromYaml(yaml, { signingKey: seed })
  const s = {
    signal_id: 's-zero',
    tenant_id: 'acme',
    actor_id: 'dev-42',
    kind: 'pr.opened',
    occurred_at: NOW,
    payload: { x: -0, list: [-0, 1.5, 0] },
  }
  const d = e.decide(s, { tenant: { config: { y: -0 } } }, { now: NOW })
  assert.equal(d.actions[0].text, 'x=0 list=0, 1.5, 0 y=0')
  const payload = JSON.parse(Buffer.from(d.receipt.envelope.payload, 'base64').toString('utf8'))
  assert.equal(payload.inputs_sha256, ZERO_INPUTS_SHA256)
})

test('valid RFC 3339 is accepted everywhere', () => {
  for (const text of ['9999-12-31T23:59:59Z', '2026-11-22T10:00:00.1234567891234Z', '2016-12-31T23:59:60Z', '2026-11-22t11:00:00+01:00']) {
    const ctx = { preferences: { snooze_until: text }, recent_signals: [{ kind: 'x', occurred_at: text }] }
    engine().decide(signal({ occurred_at: text }), ctx, { now: text })
  }
})

test('loose timestamps are refused, naming the field', () => {
  for (const text of ['2026-11-22T10:00:00+25:00', '2026-11-22T10:00Z', '2026-11-22 10:00:00Z', '20261122T100000Z', '2026-11-22T10:00:00']) {
    const e = caught(() => engine().decide(signal({ occurred_at: text }), null, { now: NOW }))
    assert.equal(e.field, 'occurred_at')
    assert.equal(
      e.message,
      `invalid signal: field \`occurred_at\`: \`${text}\` is not an RFC 3339 timestamp with an offset (e.g. \`2026-11-22T10:00:00Z\`)`,
    )
    const c = caught(() => engine().decide(signal(), { preferences: { snooze_until: text } }, { now: NOW }))
    assert.equal(c.field, 'preferences.snooze_until')
    assert.throws(() => engine().decide(signal(), null, { now: text }), (err) => {
      assert.ok(err instanceof RangeError)
      assert.ok(err.message.includes('is not an RFC 3339 timestamp'), err.message)
      return true
    })
    const o = caught(() =>
      engine().recordOutcome({ action_id: 'a', tenant_id: 'acme', actor_id: 'dev-42', playbook_id: 'p', result: 'accepted', at: text }),
    )
    assert.equal(o.field, 'at')
  }
})

test('a receipt line with a byte-order mark is read', () => {
  const [seed, pub] = mmm.generateKey()
  const d = mmm.Engine.fromYaml(PLAYBOOK, { signingKey: seed }).decide(signal(), { actor: { name: 'a' } }, { now: NOW })
  const line = '\ufeff' + JSON.stringify(d.receipt.envelope)
  assert.ok(mmm.verifyReceipt(line, pub).inputs_sha256)
})
