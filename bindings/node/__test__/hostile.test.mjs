// Hostile playbooks through the binding: each throws an Error with a stable `code`
// (PLAYBOOK_INVALID, or IO for files that cannot be read) naming the rule, line and column,
// and the process survives. Each case runs in a child Node process with a 10 s ceiling, so a
// stack overflow or an abort shows as that child dying, and a hang as a timeout.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'

import { PACKAGE } from './helpers.mjs'

const GOOD = `apiVersion: mmm/v1
kind: Playbook
metadata: {id: good, version: 1, tenant: "*", status: published}
spec:
  triggers: [pr.opened]
  actions:
    - {type: multiplier, surfaces: [ide], title: T, text: Creates a draft pull request., operation: split_pr, reversible: true, params: PARAMS}
`

const CHILD = `
const mmm = require(process.argv[1])
const [how, arg] = process.argv.slice(2)
const fs = require('node:fs')
try {
  if (how === 'yaml') mmm.Engine.fromYaml(fs.readFileSync(arg, 'utf8'))
  else if (how === 'path') mmm.Engine.fromPath(arg)
  else {
    console.log(JSON.stringify({ validate: mmm.validate(arg) }))
    process.exit(0)
  }
  console.log(JSON.stringify({ loaded: true }))
} catch (e) {
  if (!(e instanceof Error)) throw e
  const { name, code, rule, line, column, file, message } = e
  console.log(JSON.stringify({ name, code, rule, line, column, file, message }))
}
`

/** What the binding threw in a child process, as an object. */
function run(how, arg) {
  const done = spawnSync(process.execPath, ['-e', CHILD, PACKAGE, how, arg], {
    encoding: 'utf8',
    timeout: 10_000,
    maxBuffer: 64 << 20,
  })
  assert.equal(done.error, undefined, `child did not finish: ${done.error}`)
  assert.equal(done.status, 0, `child died (${done.status} ${done.signal}):\n${done.stderr.slice(-2000)}`)
  return JSON.parse(done.stdout)
}

function tempDir() {
  return mkdtempSync(join(tmpdir(), 'mmm-node-hostile-'))
}

function deepBlock(levels) {
  let text = 'apiVersion: mmm/v1\nspec:\n'
  for (let i = 0; i < levels; i++) text += `${' '.repeat(i + 1)}k:\n`
  return text
}

function bomb() {
  let text = 'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n'
  const names = 'abcdefghi'
  for (let i = 1; i < names.length; i++) {
    text += `${names[i]}: &${names[i]} [${Array(9).fill(`*${names[i - 1]}`).join(', ')}]\n`
  }
  return text
}

const CASES = [
  ['undefined-alias', 'apiVersion: mmm/v1\nfoo: *nope\n', 'yaml', 2],
  ['bom-two-keys', '\ufeffa: 1\nb: 2\n', 'unknown-field', 1],
  ['block-10000-levels', deepBlock(10_000), 'limit', 1],
  ['block-2000-levels', deepBlock(2_000), 'limit', 66],
  ['flow-100000-levels', `apiVersion: mmm/v1\nspec: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, 'limit', 2],
  ['billion-laughs', bomb(), 'limit', null],
  ['many-documents', '---\n'.repeat(60_000), 'limit', 50_001],
  ['params-nan', GOOD.replace('PARAMS', '{x: .nan}'), 'invalid-number', 7],
  ['params-big-integer', GOOD.replace('PARAMS', '{x: 123456789012345678901234567890}'), 'invalid-number', 7],
  ['unclosed-flow', 'apiVersion: mmm/v1\nspec: {a: [1, 2\n', 'yaml', 2],
]

for (const [name, text, rule, line] of CASES) {
  test(`hostile YAML: ${name} throws PLAYBOOK_INVALID and the process survives`, () => {
    const dir = tempDir()
    try {
      const path = join(dir, `${name}.yaml`)
      writeFileSync(path, text)
      for (const how of ['yaml', 'path']) {
        const e = run(how, path)
        assert.equal(e.name, 'PlaybookError', `${how}: ${JSON.stringify(e)}`)
        assert.equal(e.code, 'PLAYBOOK_INVALID', how)
        assert.equal(e.rule, rule, `${how}: ${e.message}`)
        if (line !== null) assert.equal(e.line, line, `${how}: ${e.message}`)
        assert.equal(typeof e.column, 'number', how)
      }
      const found = run('validate', path).validate
      assert.equal(found[0].severity, 'error')
      assert.equal(found[0].rule, rule)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
}

test('a number JSON cannot hold is refused naming its field', () => {
  const dir = tempDir()
  try {
    const path = join(dir, 'inf.yaml')
    writeFileSync(path, GOOD.replace('PARAMS', '{deep: [1, {x: -.inf}]}'))
    const e = run('yaml', path)
    assert.match(e.message, /`spec\.actions\[0\]\.params\.deep\[1\]\.x`/)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a file that is not UTF-8 is refused at the first bad byte', () => {
  const dir = tempDir()
  try {
    const path = join(dir, 'latin1.yaml')
    writeFileSync(path, Buffer.from('apiVersion: mmm/v1\nkind: Caf\xe9\n', 'latin1'))
    const e = run('path', path)
    assert.deepEqual([e.code, e.rule, e.line, e.column], ['PLAYBOOK_INVALID', 'encoding', 2, 10])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('directory walks refuse devices, FIFOs and symlink loops with code IO', { skip: process.platform === 'win32' }, () => {
  const dir = tempDir()
  try {
    writeFileSync(join(dir, 'good.yaml'), GOOD.replace('PARAMS', '{}'))
    symlinkSync('/dev/zero', join(dir, 'zero.yaml'))
    let e = run('path', dir)
    assert.deepEqual([e.code, e.rule], ['IO', 'io'])
    assert.match(e.message, /a device/)
    unlinkSync(join(dir, 'zero.yaml'))
    const fifo = spawnSync('mkfifo', [join(dir, 'pipe.yaml')])
    assert.equal(fifo.status, 0)
    e = run('path', dir)
    assert.equal(e.code, 'IO')
    assert.match(e.message, /a FIFO/)
    e = run('path', join(dir, 'pipe.yaml'))
    assert.match(e.message, /a FIFO/)
    unlinkSync(join(dir, 'pipe.yaml'))
    mkdirSync(join(dir, 'team'))
    symlinkSync('..', join(dir, 'team', 'up'))
    e = run('path', dir)
    assert.equal(e.code, 'IO')
    assert.match(e.message, /symlink loop/)
    assert.equal(run('validate', dir).validate.length, 1)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
