// The TypeScript declarations: precise (no `any`), and they reject misuse.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { test } from 'node:test'

import { PACKAGE } from './helpers.mjs'

test('index.d.ts declares no `any`', () => {
  const dts = readFileSync(join(PACKAGE, 'index.d.ts'), 'utf8')
  const code = dts.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '')
  assert.doesNotMatch(code, /\bany\b/)
  for (const name of ['Signal', 'Context', 'Decision', 'Action', 'EngineOptions', 'LlmPort', 'MmmError']) {
    assert.match(dts, new RegExp(`export (interface|type) ${name}\\b`), name)
  }
})

test('the declarations type-check real use and refuse misuse (tsc --strict)', () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  const args = [
    tsc,
    '--noEmit',
    '--strict',
    '--target', 'es2022',
    '--module', 'nodenext',
    '--moduleResolution', 'nodenext',
    '--types', 'node',
    '--skipLibCheck', 'false',
    join(PACKAGE, '__test__', 'types-check.ts'),
  ]
  try {
    execFileSync(process.execPath, args, { cwd: PACKAGE, encoding: 'utf8', stdio: 'pipe' })
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`)
  }
})
