// The addon loads wherever Node loads it. Its allocator (mimalloc) keeps its thread-local
// state in dynamic TLS: with the static kind, a library loaded by `dlopen` takes from
// glibc's small static reserve, and a process that has already loaded other such
// libraries fails to load it ("cannot allocate memory in static TLS block").
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'

import { NOW, PACKAGE, THREE, signal } from './helpers.mjs'

const scratch = mkdtempSync(join(tmpdir(), 'mmm-node-load-'))
after(() => rmSync(scratch, { recursive: true, force: true }))

test('the addon loads next to other copies of itself', () => {
  // Each copy is a separate library to the dynamic loader, with its own TLS; three of them
  // exhaust the static reserve if the allocator asks for static TLS.
  const addon = readdirSync(PACKAGE).find((f) => f.endsWith('.node'))
  assert.ok(addon, 'the built addon')
  const copies = [0, 1, 2].map((i) => {
    const dir = join(scratch, `copy${i}`)
    mkdirSync(dir)
    copyFileSync(join(PACKAGE, addon), join(dir, addon))
    return join(dir, addon)
  })
  const script = `
    const [copies, yaml, input, now] = JSON.parse(process.argv[1])
    require(${JSON.stringify(PACKAGE)})
    for (const path of copies) {
      const { Engine } = require(path)
      console.log(Engine.fromYaml(yaml).decide(input, null, { now }).actions.length)
    }`
  const out = execFileSync(process.execPath, ['-e', script, JSON.stringify([copies, THREE, signal({ payload: { lines: 500 } }), NOW])],
    { encoding: 'utf8', timeout: 60_000 })
  assert.deepEqual(out.trim().split('\n'), ['3', '3', '3'])
})
