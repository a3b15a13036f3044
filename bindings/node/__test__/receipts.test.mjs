// Receipts: golden envelopes and live ones verified independently with node:crypto
// (Ed25519 over the DSSE pre-authentication encoding, SPEC §7), and by the binding.
import assert from 'node:assert/strict'
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

import { NOW, THREE, VECTORS, mmm, signal, sleep } from './helpers.mjs'

const TYPE = 'application/vnd.mmm.receipt+json'
const golden = () => JSON.parse(readFileSync(join(VECTORS, 'receipts', 'golden.json'), 'utf8'))

/** `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in ASCII decimal bytes. */
function pae(body) {
  const type = Buffer.from(TYPE)
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${body.length} `), body])
}

function publicKey(hex) {
  const x = Buffer.from(hex, 'hex').toString('base64url')
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' })
}

/** Verifies without the binding; returns the payload or throws. */
function independentVerify(envelope, publicHex) {
  assert.equal(envelope.payloadType, TYPE)
  const body = Buffer.from(envelope.payload, 'base64')
  const sig = Buffer.from(envelope.signatures[0].sig, 'base64')
  if (!verify(null, pae(body), publicKey(publicHex), sig)) throw new Error('bad signature')
  return JSON.parse(body.toString('utf8'))
}

/** RFC 8785 for the values receipts hold (strings, integers, booleans, null, arrays, objects). */
function jcs(value) {
  if (Array.isArray(value)) return `[${value.map(jcs).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs(value[k])}`).join(',')}}`
  }
  return JSON.stringify(value)
}

const envelopeHash = (envelope) => createHash('sha256').update(jcs(envelope)).digest('hex')

test('golden envelopes verify with node:crypto and with the binding, chained', () => {
  const g = golden()
  const envelopes = g.receipts.map((r) => JSON.parse(r.envelope_json))
  let previous = null
  for (const [i, r] of g.receipts.entries()) {
    const payload = independentVerify(envelopes[i], g.public_key_hex)
    assert.deepEqual(mmm.verifyReceipt(r.envelope_json, g.public_key_hex), payload)
    assert.deepEqual(mmm.verifyReceipt(envelopes[i], Buffer.from(g.public_key_hex, 'hex')), payload)
    const { chain, ...rest } = payload
    // Compared as JCS: the payload's `-0` is signed as `0`.
    assert.equal(jcs(rest), jcs(r.payload))
    assert.equal(chain.id, g.chain_id)
    if (previous) assert.equal(chain.prev_sha256, envelopeHash(previous))
    previous = envelopes[i]
  }
  assert.deepEqual(
    mmm.verifyChain(envelopes, g.public_key_hex).map((p) => p.chain.seq),
    [1, 2, 3],
  )
})

test('a tampered receipt is refused, with its index in a chain', () => {
  const g = golden()
  const envelopes = g.receipts.map((r) => JSON.parse(r.envelope_json))
  const body = JSON.parse(Buffer.from(envelopes[1].payload, 'base64').toString('utf8'))
  body.tenant_id = 'evil'
  envelopes[1] = { ...envelopes[1], payload: Buffer.from(jcs(body)).toString('base64') }
  assert.throws(() => independentVerify(envelopes[1], g.public_key_hex), /bad signature/)
  assert.throws(
    () => mmm.verifyChain(envelopes, g.public_key_hex),
    (e) => e.code === 'RECEIPT_INVALID' && e.index === 1 && e.name === 'ReceiptError',
  )
  assert.throws(() => mmm.verifyReceipt(envelopes[1], g.public_key_hex), { code: 'RECEIPT_INVALID' })
  assert.throws(() => mmm.verifyReceipt('{not json', g.public_key_hex), { code: 'RECEIPT_INVALID' })
  assert.throws(() => mmm.verifyReceipt(envelopes[0], '00'), { code: 'RECEIPT_INVALID' })
  const good = g.receipts.map((r) => r.envelope_json)
  assert.throws(
    () => mmm.verifyChain([good[0], good[1], '{"payloadType": 3}'], g.public_key_hex),
    (e) => e.code === 'RECEIPT_INVALID' && e.index === 2,
  )
  // Out of order: the chain is broken at the second one.
  assert.throws(() => mmm.verifyChain([good[0], good[2]], g.public_key_hex), (e) => e.index === 1)
})

class Sink {
  constructor(up = true) {
    this.up = up
    this.received = []
  }
  emit(envelope) {
    if (!this.up) throw new Error('ERIS is down')
    this.received.push(envelope)
  }
}

test('envelopes are read as DSSE says: URL-safe base64, no padding, keyid optional, unknown fields, any valid signature', () => {
  const g = golden()
  const x = Buffer.from(g.public_key_hex, 'hex').toString('base64url')
  const d = Buffer.from(g.seed_hex, 'hex').toString('base64url')
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x, d }, format: 'jwk' })
  // Signed here, independently of the engine; its base64 holds `+` and `/`.
  const payload = { chain: { id: 'c', prev_sha256: null, seq: 1 }, receipt_id: '~~~???>>>' }
  const body = Buffer.from(jcs(payload))
  assert.match(body.toString('base64'), /\+.*\/|\/.*\+/)
  const good = sign(null, pae(body), key)
  const wrong = sign(null, pae(body), generateKeyPairSync('ed25519').privateKey)
  const envelope = {
    payloadType: TYPE,
    payload: body.toString('base64url'),
    signatures: [
      { keyid: '21fe31dfa154a261', sig: wrong.toString('base64') },
      { sig: good.toString('base64url'), cert: 'unknown field' },
    ],
    annotations: { unknown: true },
  }
  assert.deepEqual(mmm.verifyReceipt(envelope, g.public_key_hex), payload)
  assert.deepEqual(mmm.verifyReceipt(JSON.stringify(envelope), g.public_key_hex), payload)
  assert.deepEqual(mmm.verifyChain([envelope], g.public_key_hex), [payload])
  // Only the first (wrong) signature left: refused.
  assert.throws(
    () => mmm.verifyReceipt({ ...envelope, signatures: envelope.signatures.slice(0, 1) }, g.public_key_hex),
    (e) => e.code === 'RECEIPT_INVALID' && /bad signature/.test(e.message),
  )
  // Standard base64 with the padding removed reads too.
  const unpadded = { ...envelope, payload: body.toString('base64').replace(/=+$/, ''), signatures: [{ sig: good.toString('base64') }] }
  assert.deepEqual(mmm.verifyReceipt(unpadded, g.public_key_hex), payload)
})

test('decisions are signed, chained and free of the payload', () => {
  const [seed, publicHex] = mmm.generateKey()
  const sink = new Sink()
  const engine = mmm.Engine.fromYaml(THREE, { signingKey: Buffer.from(seed, 'hex'), receipts: sink })
  assert.equal(engine.receiptPublicKey, publicHex)
  for (let i = 0; i < 5; i++) {
    const d = engine.decide(signal({ payload: { lines: 420 + i, secret_note: 'hunter2-value' } }), null, {
      now: `2026-11-22T10:0${i}:00Z`,
    })
    assert.equal(d.receipt.status, 'emitted')
  }
  assert.equal(sink.received.length, 5)
  let previous = null
  for (const envelope of sink.received) {
    const payload = independentVerify(envelope, publicHex)
    assert.ok(!JSON.stringify(payload).includes('hunter2-value'))
    if (previous) {
      assert.equal(payload.chain.seq, previous.seq + 1)
      assert.equal(payload.chain.prev_sha256, previous.hash)
    }
    previous = { seq: payload.chain.seq, hash: envelopeHash(envelope) }
  }
  mmm.verifyChain(sink.received, publicHex)
})

test('without a receipts port the signed envelope comes back in the decision', () => {
  const [seed, publicHex] = mmm.generateKey()
  const engine = mmm.Engine.fromYaml(THREE, { signingKey: seed })
  const d = engine.decide(signal({ payload: { lines: 420 } }), null, { now: NOW })
  assert.equal(d.receipt.status, 'emitted')
  const payload = independentVerify(d.receipt.envelope, publicHex)
  assert.equal(payload.receipt_id, d.receipt.receipt_id)
  assert.equal(payload.decision_id, d.decision_id)
  assert.deepEqual(
    payload.actions.map((a) => a.action_id),
    d.actions.map((a) => a.action_id),
  )
  assert.equal(mmm.Engine.fromYaml(THREE).decide(signal(), null, { now: NOW }).receipt.status, 'disabled')
})

test('a throwing receipts port queues without waiting, and the outbox worker delivers through the JS thread', async () => {
  const [seed, publicHex] = mmm.generateKey()
  const sink = new Sink(false)
  const engine = mmm.Engine.fromYaml(THREE, { signingKey: seed, receipts: sink })
  const started = performance.now()
  const d = engine.decide(signal({ payload: { lines: 500 } }), null, { now: NOW })
  // The port stays down until after the decision: a decision that waited for it would
  // hang, which the bound (far above the milliseconds a decision takes) catches.
  assert.ok(performance.now() - started < 5000)
  assert.equal(d.receipt.status, 'queued')
  assert.ok(d.degraded.includes('receipts_queued'))
  assert.equal(d.actions.length, 3)
  assert.equal(engine.outboxLength, 1)
  sink.up = true
  // The worker retries from its own thread; the JS port runs when this thread is free. A
  // receipt the worker is handing to the port still counts as waiting, so an empty outbox
  // means the port has it.
  const deadline = Date.now() + 5000
  while (engine.outboxLength > 0 && Date.now() < deadline) await sleep(50)
  assert.equal(engine.outboxLength, 0)
  assert.deepEqual(
    sink.received.map((e) => independentVerify(e, publicHex).receipt_id),
    [d.receipt.receipt_id],
  )
})

test('keys as Buffer or hex, and bad keys', () => {
  const [seed] = mmm.generateKey()
  mmm.Engine.fromYaml('', { signingKey: Buffer.from(seed, 'hex') })
  mmm.Engine.fromYaml('', { signingKey: seed })
  assert.throws(() => mmm.Engine.fromYaml('', { signingKey: Buffer.from('short') }), {
    code: 'RECEIPT_INVALID',
    name: 'ReceiptError',
  })
  assert.throws(() => mmm.Engine.fromYaml('', { signingKey: 'zz' }), { code: 'RECEIPT_INVALID' })
  assert.throws(() => mmm.Engine.fromYaml('', { signingKey: 42 }), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE')
})
