// Hostile conditions end in `condition_error` for their playbook, the rest of the decision
// goes on, and the process survives (SPEC §3). The same cases run in Rust
// (mmm-engine/tests/hostile.rs) and Python.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { NOW, mmm, signal } from './helpers.mjs'

function playbooks(when) {
  const doc = (id, cond) => `apiVersion: mmm/v1
kind: Playbook
metadata: {id: ${id}, version: 1, tenant: "*", status: published, category: general}
spec:
  triggers: [x.y]
  when: '${cond.replaceAll("'", "''")}'
  actions:
    - {type: mirror, surfaces: [ide], title: T, text: "${id} fired"}
`
  return [doc('hostile', when), doc('fine', 'true')].join('---\n')
}

const big = (name, n) => `let ${name} = ""; ${name}.pad(${n}, "x");`

const CASES = [
  // The reported inputs.
  [`${big('s', 128 * 1024)} s.replace("x", s); true`, 'Length of string too large'],
  ['sleep(3600); true', 'Function not found: sleep'],
  [`${big('s', 128 * 1024)} glob("*a*a*ab", s)`, 'glob: the text is 131072 bytes, longer than `max_glob_text_size` (4096 bytes)'],
  ['glob("[", "x")', 'glob: invalid pattern `[`'],
  // Members of the same classes.
  ['loop { } true', 'Too many operations'],
  ['fn f(x) { f(x + 1) } f(1)', 'Stack overflow'],
  ['let s = ""; s.pad(100000, "ΐ"); s.to_upper(); true', 'Length of string too large'],
  [`${big('s', 200 * 1024)} s.split("").len() > 0`, 'Size of array/BLOB too large'],
  ['let s = "y"; s.pad(27, "y"); let a = []; a.pad(9000, s); `${a}` != ""', 'Length of string too large'],
  ['let a = []; a.pad(1000, 0); a.some(|x| { let i = 0; while i < 200 { i += 1; } false })', 'Too many operations'],
  ['let a = []; for i in 0..300 { a.push(a.split(0)); } a == a', 'nested deeper than 128 levels'],
  ['let a = [2, 1]; a.sort(|x, y| x - y); true', '`sort` is not available in conditions'],
  ['recent_count("x", "1w") > 0', 'recent_count: the window `1w` is not a duration'],
  ['hours_since("yesterday") > 1.0', 'hours_since: `yesterday` is not an RFC 3339 timestamp'],
]

for (const [when, detail] of CASES) {
  test(`condition_error: ${detail}`, async () => {
    // A time limit no loaded machine reaches first: the limit each case names ends it.
    const engine = mmm.Engine.fromYaml(playbooks(when), { config: { conditionTimeLimitMs: 600000 } })
    for (const d of [engine.decide(signal({ kind: 'x.y' }), null, { now: NOW }),
      await engine.decideAsync(signal({ kind: 'x.y' }), null, { now: NOW })]) {
      assert.deepEqual(d.actions.map((a) => a.playbook.id), ['fine'])
      assert.equal(d.suppressed.length, 1)
      const [s] = d.suppressed
      assert.deepEqual([s.playbook.id, s.reason], ['hostile', 'condition_error'])
      assert.ok(s.detail.includes(detail), s.detail)
    }
  })
}

test('an empty padding no longer hangs', () => {
  const engine = mmm.Engine.fromYaml(playbooks('let s = "a"; s.pad(10, ""); s == "a"'))
  const d = engine.decide(signal({ kind: 'x.y' }), null, { now: NOW })
  assert.deepEqual(d.actions.map((a) => a.playbook.id).sort(), ['fine', 'hostile'])
  assert.deepEqual(d.suppressed, [])
})
