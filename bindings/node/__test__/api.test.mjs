// The API of SPEC §11 (Node): loading, deciding, outcomes, reload, validate, approvals,
// experiments; CommonJS and ESM.
import assert from 'node:assert/strict'
import { cpSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'

import * as esm from '../index.js'
import { NOW, PACKAGE, PLAYBOOKS, THREE, mmm, signal } from './helpers.mjs'

const scratch = mkdtempSync(join(tmpdir(), 'mmm-node-'))
after(() => rmSync(scratch, { recursive: true, force: true }))

test('the public names, through require and import', async () => {
  for (const name of ['Engine', 'validate', 'verifyReceipt', 'verifyChain', 'generateKey', 'rejected', 'ENGINE_VERSION']) {
    assert.ok(name in mmm, name)
    assert.equal(esm[name], mmm[name], name)
  }
  const dynamic = await import(PACKAGE + '/index.js')
  assert.equal(dynamic.Engine, mmm.Engine)
  assert.match(mmm.ENGINE_VERSION, /^\d+\.\d+\.\d+/)
  assert.throws(() => new mmm.Engine())
})

test('fromPath with every option, and decide with every form of now', () => {
  const engine = mmm.Engine.fromPath(PLAYBOOKS, {
    signingKey: null,
    llm: null,
    receipts: null,
    policy: null,
    iam: null,
    signals: null,
    dataGovernance: null,
    delivery: null,
    fatigue: null,
    config: null,
  })
  const s = signal({ payload: { lines_changed: 420, files_changed: 12, src_lines_changed: 300, test_files_changed: 2 } })
  for (const now of [NOW, new Date(NOW), undefined, null]) {
    const d = engine.decide(s, null, { now, explain: true })
    assert.ok(Array.isArray(d.explain))
  }
  assert.equal(engine.decide(s, null, { now: NOW }).decided_at, NOW)
  assert.equal(engine.decide(s, undefined, { now: new Date(NOW) }).decided_at, NOW)
  assert.ok(engine.decide(s).decided_at.endsWith('Z'))
  assert.throws(() => engine.decide(s, null, { now: 'yesterday' }), (e) => e instanceof RangeError && e.code === 'ERR_INVALID_ARG_VALUE')
  assert.throws(() => engine.decide(s, null, { now: 17 }), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE')
  assert.throws(() => engine.decide(s, null, { now: new Date('nope') }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => engine.decide(s, null, { nwo: NOW }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => engine.decide(s, null, { explain: 'yes' }), { code: 'ERR_INVALID_ARG_TYPE' })
})

test('decide returns plain data in the SPEC shape', () => {
  const engine = mmm.Engine.fromYaml(THREE)
  const d = engine.decide(signal({ payload: { lines: 420 } }), { tenant_policy: { max_actions_per_decision: 2 } }, { now: NOW })
  assert.deepEqual(Object.keys(d), [
    'decision_id', 'signal_id', 'tenant_id', 'actor_id', 'decided_at', 'actions', 'suppressed', 'degraded',
    'redacted', 'policy_snapshot_id', 'receipt', 'latency_us', 'latency_warning', 'explain',
  ])
  assert.deepEqual(
    d.actions.map((a) => a.type),
    ['mirror', 'mentor'],
  )
  assert.equal(d.actions[0].text, '420 lines')
  assert.equal(d.suppressed[0].reason, 'max_actions')
  assert.equal(d.actions[0].requires_consent, false)
  assert.equal(d.explain, null)
  assert.equal(Object.getPrototypeOf(d), Object.prototype)
  assert.equal(typeof d.latency_us, 'number')
})

test('engine options are checked', () => {
  assert.throws(() => mmm.Engine.fromYaml(THREE, { colour: 1 }), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => mmm.Engine.fromYaml(THREE, { llm: {} }), (e) => e instanceof TypeError && /generate/.test(e.message))
  assert.throws(() => mmm.Engine.fromYaml(THREE, { iam: 'iam' }), { code: 'ERR_INVALID_ARG_TYPE' })
  // Settings are the core's (EngineConfig), in camelCase; errors name the key as written.
  const config = (c, field, message) =>
    assert.throws(() => mmm.Engine.fromYaml(THREE, { config: c }), (e) => {
      assert.deepEqual([e.name, e.code, e.field, e.message], ['ConfigError', 'CONFIG_INVALID', field, `invalid setting \`${field}\`: ${message}`])
      return true
    })
  config({ colour: 1 }, 'colour', 'is not a setting')
  config({ policyTtlMs: -1 }, 'policyTtlMs', 'must be a whole number of milliseconds, not `-1`')
  config({ policyTtlMs: 1.5 }, 'policyTtlMs', 'must be a whole number of milliseconds, not `1.5`')
  config({ llmMaxTokens: 2 ** 40 }, 'llmMaxTokens', `\`${2 ** 40}\` is too large`)
  config({ maxContextBytes: NaN }, 'maxContextBytes', '`NaN` is not a number JSON can carry; NaN and infinities are refused')
  config({ outboxCapacity: 2n ** 64n }, 'outboxCapacity', `integer \`${2n ** 64n}\` does not fit in 64 bits (-2^63 to 2^64-1); pass it as a string`)
  config([1], 'config', 'must be an object of settings, not an array')
  assert.throws(() => mmm.Engine.fromYaml(THREE, { config: { maxDenyKeys: 'many' } }), { code: 'CONFIG_INVALID', field: 'maxDenyKeys' })
  mmm.Engine.fromYaml(THREE, { config: { ideDeadlineMs: 200, outboxCapacity: 10, llmMaxTokens: 64, maxContextBytes: 1024 } })
})

test('recordOutcome feeds the tenant counts', () => {
  const engine = mmm.Engine.fromYaml(THREE)
  const d = engine.decide(signal({ payload: { lines: 420 } }), null, { now: NOW })
  engine.recordOutcome({
    action_id: d.actions[0].action_id,
    tenant_id: 'acme',
    actor_id: 'dev-42',
    playbook_id: 'large-pr',
    result: 'accepted',
    at: NOW,
  })
  assert.deepEqual(engine.outcomeCounts('acme'), [{ playbook_id: 'large-pr', type: 'mirror', result: 'accepted', count: 1 }])
  assert.throws(
    () =>
      engine.recordOutcome({ action_id: 'a', tenant_id: 'acme', actor_id: 'x', playbook_id: 'p', result: 'loved', at: NOW }),
    (e) => e.code === 'OUTCOME_INVALID' && e.field === 'result' && e.name === 'OutcomeError',
  )
})

test('reload is atomic and a failed reload keeps the old set', () => {
  const dir = join(scratch, 'pb')
  cpSync(PLAYBOOKS, dir, { recursive: true })
  const engine = mmm.Engine.fromPath(dir)
  const s = signal({ payload: { lines_changed: 420, files_changed: 12 } })
  const before = engine.decide(s, null, { now: NOW })
  assert.ok(before.actions.length > 0)
  writeFileSync(join(dir, 'broken.yaml'), 'apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: BAD}\n')
  assert.throws(
    () => engine.reload(dir),
    (e) => e.code === 'PLAYBOOK_INVALID' && e.file.endsWith('broken.yaml') && e.diagnostics.length > 0,
  )
  // Another actor (the first is now inside large-pr's cooldown): the old set still decides.
  const after = engine.decide({ ...s, actor_id: 'dev-other' }, null, { now: NOW })
  assert.deepEqual(
    after.actions.map((a) => a.playbook),
    before.actions.map((a) => a.playbook),
  )
  unlinkSync(join(dir, 'broken.yaml'))
  mkdirSync(join(scratch, 'only'))
  writeFileSync(
    join(scratch, 'only', 'x.yaml'),
    "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: only, version: 1, tenant: '*', status: published}\n" +
      'spec:\n  triggers: [pr.opened]\n  actions: [{type: mirror, surfaces: [ide], title: T, text: only}]\n',
  )
  engine.reload(join(scratch, 'only'))
  assert.deepEqual(
    engine.decide({ ...s, actor_id: 'dev-third' }, null, { now: NOW }).actions.map((a) => a.text),
    ['only'],
  )
  assert.throws(() => engine.reloadYaml('apiVersion: nope'), { code: 'PLAYBOOK_INVALID' })
  assert.deepEqual(
    engine.decide({ ...s, actor_id: 'dev-fourth' }, null, { now: NOW }).actions.map((a) => a.text),
    ['only'],
  )
})

test('decisions in flight see the old set or the new one, never a mix', async () => {
  const set = (letter) =>
    [1, 2, 3]
      .map(
        (i) =>
          `apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: ${letter}${i}, version: 1, tenant: '*', status: published}\n` +
          `spec:\n  triggers: [pr.opened]\n  actions: [{type: mirror, surfaces: [ide], title: T, text: '${letter}'}]\n`,
      )
      .join('---\n')
  const engine = mmm.Engine.fromYaml(set('a'))
  const pending = []
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 10; i++) pending.push(engine.decideAsync(signal({ actor_id: `dev-${round}-${i}` }), null, { now: NOW }))
    engine.reloadYaml(set(round % 2 ? 'a' : 'b'))
  }
  const seen = new Set()
  for (const d of await Promise.all(pending)) {
    const texts = new Set(d.actions.map((a) => a.text))
    assert.equal(d.actions.length, 3)
    assert.equal(texts.size, 1, `a mixed decision: ${[...texts]}`)
    seen.add([...texts][0])
  }
  assert.ok(seen.size >= 1)
})

test('validate lists errors and warnings', () => {
  assert.deepEqual(mmm.validate(PLAYBOOKS), [])
  const dir = join(scratch, 'nag')
  mkdirSync(dir)
  writeFileSync(
    join(dir, 'nag.yaml'),
    "apiVersion: mmm/v1\nkind: Playbook\nmetadata: {id: nag, version: 1, tenant: '*', status: published}\n" +
      'spec:\n  triggers: [pr.opened]\n  actions: [{type: mirror, surfaces: [ide, fax], title: T, text: You must hurry}]\n',
  )
  const found = mmm.validate(dir)
  assert.equal(found[0].severity, 'error')
  assert.equal(found[0].rule, 'invalid-surface')
  assert.equal(found[0].line, 6)
  assert.ok(found[0].file.endsWith('nag.yaml'))
  assert.deepEqual(Object.keys(found[0]), ['severity', 'rule', 'message', 'file', 'line', 'column', 'playbook'])
})

test('approvals and experiments', () => {
  const yaml =
    THREE +
    `---
apiVersion: mmm/v1
kind: Playbook
metadata: {id: secret, version: 1, tenant: "*", status: published}
spec:
  triggers: [secret.detected]
  critical: true
  actions:
    - {type: multiplier, surfaces: [ide], title: Rotate, text: Rotates the exposed key and revokes the old one., operation: rotate_secret, dual_channel: true, reversible: false}
---
apiVersion: mmm/v1
kind: Experiment
metadata: {id: copy, tenant: "*", status: active}
spec:
  playbook: large-pr
  variants:
    - {name: a, weight: 1}
    - {name: b, weight: 1, set: {title: Big}}
`
  const engine = mmm.Engine.fromYaml(yaml)
  const action = engine.decide(signal({ kind: 'secret.detected' }), null, { now: NOW }).actions[0]
  const approval = engine.requestApproval(action, 'acme', 'dev-42')
  assert.equal(approval.state, 'pending')
  assert.equal(approval.operation, 'rotate_secret')
  assert.equal(engine.approve(approval.approval_id, 'chat', 'lead').state, 'partially_approved')
  assert.throws(() => engine.approve(approval.approval_id, 'chat', 'lead'), (e) => e.code === 'CONFLICT' && e.name === 'ConflictError')
  assert.equal(engine.approve(approval.approval_id, 'ide', 'owner').state, 'approved')
  assert.equal(engine.getApproval(approval.approval_id).state, 'approved')
  assert.throws(() => engine.reject(approval.approval_id, 'lead', 'too late'), { code: 'CONFLICT', name: 'ConflictError' })
  const second = engine.requestApproval(action, 'acme', 'dev-42')
  const rejected = engine.reject(second.approval_id, 'lead', 'not now')
  assert.equal(rejected.state, 'rejected')
  assert.deepEqual(rejected.rejection, ['lead', 'not now'])
  assert.throws(() => engine.getApproval('nope'), { code: 'NOT_FOUND', name: 'NotFoundError' })
  const mirror = engine.decide(signal({ payload: { lines: 420 } }), null, { now: NOW }).actions[0]
  assert.throws(() => engine.requestApproval(mirror, 'acme', 'dev-42'), { code: 'APPROVAL_REFUSED', name: 'ApprovalError' })
  assert.throws(() => engine.requestApproval({ not: 'an action' }, 'acme', 'dev-42'), { code: 'ERR_INVALID_ARG_VALUE' })

  assert.deepEqual(engine.experimentWeights('acme', 'copy'), { a: 0.5, b: 0.5 })
  assert.equal(engine.experimentWeights('acme', 'nope'), null)
  const d = engine.decide(signal({ payload: { lines: 420 } }), null, { now: NOW })
  assert.equal(d.actions[0].experiment.id, 'copy')
  engine.setExperimentStatus('copy', 'paused', 'admin')
  assert.equal(engine.decide(signal({ payload: { lines: 420 } }), null, { now: NOW }).actions[0].experiment, null)
  assert.throws(() => engine.setExperimentStatus('copy', 'asleep', 'admin'), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.throws(() => engine.setExperimentStatus('nope', 'paused', 'admin'), { code: 'NOT_FOUND', name: 'NotFoundError' })
  assert.equal(engine.breakerState('llm'), 'closed')
  assert.throws(() => engine.breakerState('fax'), { code: 'ERR_INVALID_ARG_VALUE' })
  assert.equal(engine.receiptPublicKey, null)
  assert.equal(engine.outboxLength, 0)
  engine.flushOutbox()
})

test('config takes every core setting, and types.d.ts and docs/node.md list each', async () => {
  const { readFileSync } = await import('node:fs')
  const { REPO } = await import('./helpers.mjs')
  const settings = readFileSync(join(REPO, 'mmm-engine', 'src', 'settings.rs'), 'utf8')
  const list = settings.slice(settings.indexOf('pub const KEYS'), settings.indexOf('];', settings.indexOf('pub const KEYS')))
  const keys = [...list.matchAll(/"([a-z_]+)"/g)].map((m) => m[1])
  assert.ok(keys.length >= 37, `${keys.length}`)
  const camel = keys.map((k) => k.replace(/_([a-z])/g, (_, c) => c.toUpperCase()))
  const types = readFileSync(join(PACKAGE, 'types.d.ts'), 'utf8')
  const declared = types.slice(types.indexOf('export interface EngineConfig {'))
  const guide = readFileSync(join(REPO, 'docs', 'node.md'), 'utf8')
  for (const key of camel) {
    mmm.Engine.fromYaml(THREE, { config: { [key]: 1 } })
    assert.ok(declared.includes(`  ${key}?: number | bigint\n`), `types.d.ts lacks ${key}`)
    assert.ok(guide.includes(`\`${key}\``), `docs/node.md lacks ${key}`)
  }
})

test('an audit port records every audited change, and a throwing one stops the change', () => {
  const yaml =
    THREE +
    `---
apiVersion: mmm/v1
kind: Playbook
metadata: {id: secret, version: 1, tenant: "*", status: published}
spec:
  triggers: [secret.detected]
  critical: true
  actions:
    - {type: multiplier, surfaces: [ide], title: Rotate, text: Rotates the exposed key and revokes the old one., operation: rotate_secret, dual_channel: true, reversible: false}
---
apiVersion: mmm/v1
kind: Experiment
metadata: {id: copy, tenant: "*", status: active}
spec:
  playbook: large-pr
  variants: [{name: a, weight: 1}, {name: b, weight: 1}]
`
  const events = []
  let up = true
  const audit = {
    record(event) {
      if (!up) throw new Error('audit log full')
      events.push(event)
    },
  }
  const engine = mmm.Engine.fromYaml(yaml, { audit })
  const action = engine.decide(signal({ kind: 'secret.detected' }), null, { now: NOW }).actions[0]
  const approval = engine.requestApproval(action, 'acme', 'dev-42')
  engine.approve(approval.approval_id, 'chat', 'lead')
  engine.setExperimentStatus('copy', 'paused', 'admin')
  engine.reloadYaml(yaml)
  assert.deepEqual(
    events.map((e) => [e.kind, e.subject === approval.approval_id || e.subject]),
    [
      ['approval.created', true],
      ['approval.partially_approved', true],
      ['experiment.state_changed', 'copy'],
      [events[3].kind, events[3].subject],
    ],
  )
  assert.equal(events.length, 4)
  assert.deepEqual([events[2].by, events[2].before, events[2].after], ['admin', { status: 'active' }, { status: 'paused' }])
  up = false
  assert.throws(() => engine.approve(approval.approval_id, 'ide', 'owner'), (e) => e.code === 'UNAVAILABLE' && /audit log full/.test(e.message))
  assert.equal(engine.getApproval(approval.approval_id).state, 'partially_approved', 'nothing changed')
  assert.throws(() => engine.setExperimentStatus('copy', 'active', 'admin'), { code: 'AUDIT_FAILED', name: 'AuditFailedError' })
  assert.throws(() => engine.reloadYaml(yaml), { code: 'AUDIT_FAILED' })
  assert.throws(() => mmm.Engine.fromYaml(THREE, { audit: {} }), (e) => e instanceof TypeError && /record/.test(e.message))
})
