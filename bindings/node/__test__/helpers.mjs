// Shared paths and helpers. Paths are resolved from this file, not the working directory.
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
export const PACKAGE = resolve(here, '..')
export const REPO = resolve(here, '../../..')
export const VECTORS = join(REPO, 'mmm-engine', 'tests', 'vectors')
export const PLAYBOOKS = join(REPO, 'playbooks')
export const NOW = '2026-11-22T10:00:00Z'

// The package as a user loads it (CommonJS entry; the ESM import is tested on its own).
export const mmm = createRequire(import.meta.url)(PACKAGE)

/** What the shared vectors compare: the decision minus per-run ids and timings. */
export function normalise(decision) {
  const d = { ...decision }
  delete d.decision_id
  delete d.latency_us
  delete d.latency_warning
  d.receipt = { ...d.receipt }
  delete d.receipt.receipt_id
  d.actions = d.actions.map((a) => {
    const copy = { ...a }
    delete copy.action_id
    return copy
  })
  return d
}

export function signal(overrides = {}) {
  return {
    signal_id: 's-1',
    tenant_id: 'acme',
    actor_id: 'dev-42',
    kind: 'pr.opened',
    occurred_at: NOW,
    repo: { id: 'acme/api', branch: 'feat/x' },
    payload: {},
    ...overrides,
  }
}

export const THREE = `apiVersion: mmm/v1
kind: Playbook
metadata: {id: large-pr, version: 1, tenant: "*", status: published, category: code-review}
spec:
  triggers: [pr.opened]
  when: signal.payload.lines > 400
  actions:
    - {type: mirror, surfaces: [ide, pr_comment], title: Large, text: "{{ signal.payload.lines }} lines"}
    - {type: mentor, surfaces: [ide], title: Split, prompt: "split {{ signal.payload.lines }}", fallback: Smaller changes are reviewed faster.}
    - {type: multiplier, surfaces: [ide], title: Stack, text: Creates one draft pull request per directory., operation: split_pr, reversible: true}
---
apiVersion: mmm/v1
kind: Playbook
metadata: {id: repeated-ci, version: 1, tenant: "*", status: published}
spec:
  triggers: [ci.failed]
  when: recent_count("ci.failed", "1h") >= 2
  actions:
    - {type: mirror, surfaces: [ide], title: Again, text: CI failed again.}
`

/** A port object whose every method throws: the dependency is down. */
export function down(name = 'service') {
  return new Proxy(
    {},
    {
      get(_target, method) {
        if (method === 'then') return undefined
        return () => {
          throw new Error(`${name}.${String(method)}: connection refused`)
        }
      },
    },
  )
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
