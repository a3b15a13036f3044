// The shared vectors give the same decisions in Node as in Rust, through `decide` and
// through `decideAsync`.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'

import { VECTORS, mmm, normalise } from './helpers.mjs'

const files = readdirSync(VECTORS)
  .filter((f) => f.endsWith('.json'))
  .sort()

test('the vectors are there', () => {
  assert.ok(files.length >= 10, `found ${files.length}`)
})

function check(step, i, name, got) {
  const expected = step.expected
  if ('error' in expected) {
    assert.ok(got instanceof Error, `${name} step ${i}: expected an error`)
    assert.equal(got.code, expected.error.code, `${name} step ${i}`)
    assert.equal(got.field, expected.error.field ?? null, `${name} step ${i}`)
    assert.equal(got.message, expected.error.message, `${name} step ${i}`)
  } else {
    assert.ok(!(got instanceof Error), `${name} step ${i}: ${got?.message}`)
    assert.deepEqual(normalise(got), expected, `${name} step ${i}`)
  }
}

for (const mode of ['decide', 'decideAsync']) {
  describe(`shared vectors through ${mode}`, () => {
    for (const name of files) {
      test(name, async () => {
        const vector = JSON.parse(readFileSync(join(VECTORS, name), 'utf8'))
        const engine = mmm.Engine.fromYaml(vector.playbooks)
        for (const [i, step] of vector.steps.entries()) {
          const options = { now: step.now, explain: step.explain ?? false }
          let got
          try {
            got = await engine[mode](step.signal, step.context ?? null, options)
          } catch (e) {
            got = e
          }
          check(step, i, name, got)
        }
      })
    }
  })
}
