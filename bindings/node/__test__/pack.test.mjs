// `npm pack` gives a package that installs into another project on this platform and
// loads there through require and import.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'

import { PACKAGE, THREE } from './helpers.mjs'

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const work = mkdtempSync(join(tmpdir(), 'mmm-pack-'))
after(() => rmSync(work, { recursive: true, force: true }))

const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

test('npm pack installs into another project, and require and import both load it', { timeout: 120_000 }, () => {
  const packed = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', work], PACKAGE))
  const files = packed[0].files.map((f) => f.path).sort()
  assert.ok(files.includes('index.js') && files.includes('index.d.ts') && files.includes('package.json'), files.join())
  assert.ok(files.some((f) => f.endsWith('.node')), 'the native addon is in the package')
  assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('__test__/')), files.join())

  const consumer = join(work, 'consumer')
  run('mkdir', ['-p', consumer], work)
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }))
  run(npm, ['install', '--offline', '--no-audit', '--no-fund', join(work, packed[0].filename)], consumer)

  writeFileSync(join(consumer, 'playbooks.yaml'), THREE)
  const script = (load) => `${load}
const engine = Engine.fromPath('playbooks.yaml')
const d = engine.decide({ tenant_id: 'acme', actor_id: 'dev-1', kind: 'pr.opened', occurred_at: '2026-11-22T10:00:00Z', payload: { lines: 420 } })
console.log(d.actions.map((a) => a.type).join(','))`
  writeFileSync(join(consumer, 'cjs.cjs'), script("const { Engine } = require('mmm-engine')"))
  writeFileSync(join(consumer, 'esm.mjs'), script("import { Engine } from 'mmm-engine'"))
  assert.equal(run(process.execPath, ['cjs.cjs'], consumer).trim(), 'mirror,mentor,multiplier')
  assert.equal(run(process.execPath, ['esm.mjs'], consumer).trim(), 'mirror,mentor,multiplier')
})
