// Compiled (not run) by types.test.mjs with `tsc --strict --noEmit`: the declarations are
// precise enough that misuse fails to type-check.
import {
  Engine,
  generateKey,
  rejected,
  validate,
  verifyReceipt,
  type Action,
  type Decision,
  type EngineOptions,
  type MmmError,
  type Signal,
} from '../index.js'

const signal: Signal = {
  tenant_id: 'acme',
  actor_id: 'dev-42',
  kind: 'pr.opened',
  occurred_at: new Date(),
  payload: { lines: 420, nested: { ok: true } },
}

const options: EngineOptions = {
  signingKey: generateKey()[0],
  llm: {
    async generate(request) {
      const prompt: string = request.prompt
      return { text: prompt, safety: { status: 'pass' } }
    },
  },
  policy: { snapshot: (tenantId: string) => ({ snapshot_id: `pol-${tenantId}` }) },
  iam: {
    validateActor(tenantId, actorId) {
      if (actorId === 'ghost') throw rejected('unknown actor')
      return { active: true, roles: [tenantId] }
    },
  },
  receipts: { emit: (envelope) => void envelope.signatures[0]?.sig },
  delivery: { deliver: (action: Action, surface, rendered) => void [action.title, surface, rendered] },
  fatigue: { checkAndRecord: (request) => ({ verdict: 'allowed', actions: request.actions }) },
  config: { ideDeadlineMs: 150 },
}

const engine: Engine = Engine.fromYaml('', options)
const decision: Decision = engine.decide(signal, { tenant_policy: { max_actions_per_decision: 2 } }, { now: new Date() })
const reasons: string[] = decision.suppressed.map((s) => s.reason)
const surfaces = decision.actions.flatMap((a) => a.surfaces)
const firstSurface: 'ide' | 'pr_comment' | 'ci_summary' | 'alert' | 'chat' | undefined = surfaces[0]
void [reasons, firstSurface, validate('playbooks').map((d) => d.rule)]

async function later(): Promise<number> {
  const d = await engine.decideAsync(signal, null, { explain: true })
  return d.latency_us
}
void later

try {
  engine.decide(signal)
} catch (e) {
  const err = e as MmmError
  const code: 'SIGNAL_INVALID' | string = err.code
  const line: number | null = err.line
  void [code, line]
}
void verifyReceipt('{}', Buffer.alloc(32))

// Misuse the compiler must refuse.
// @ts-expect-error tenant_id is required
engine.decide({ actor_id: 'a', kind: 'k', occurred_at: '2026-11-22T10:00:00Z' })
// @ts-expect-error surfaces are a closed set
engine.decide({ ...signal, surface: 'fax' })
// @ts-expect-error a decision's actions are Actions, not strings
const wrong: string[] = decision.actions
// @ts-expect-error options are camelCase
Engine.fromYaml('', { data_governance: {} })
// @ts-expect-error a port needs its method
Engine.fromYaml('', { llm: { complete: () => null } })
// @ts-expect-error the status is a closed set
engine.setExperimentStatus('copy', 'asleep', 'admin')
// @ts-expect-error reasons are a closed set
const reason: typeof decision.suppressed[number]['reason'] = 'tired'
void [wrong, reason]
