/* The data shapes of the mmm-engine contract (SPEC §1–§9) as plain objects with
 * snake_case keys, and the port interfaces (SPEC §5) with camelCase method names.
 * Prepended by `napi build` to the generated declarations below. */

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue }

/** Where an action is shown. */
export type Surface = 'ide' | 'pr_comment' | 'ci_summary' | 'alert' | 'chat'
/** The three kinds of nudge. */
export type ActionType = 'mirror' | 'mentor' | 'multiplier'
/** Who the actor is. */
export type ActorType = 'human' | 'agent' | 'service'
/** An RFC 3339 timestamp with an offset (`2026-11-22T10:00:00Z`); a `Date` is sent as its ISO string. */
export type Timestamp = string | Date
/** A duration: `30s`, `15m`, `24h`, `7d`. */
export type DurationText = string

/** Where in a repository the signal happened. */
export interface Repo {
  id?: string | null
  branch?: string | null
  path?: string | null
}

/** Something that happened (SPEC §1). Invalid input throws `SIGNAL_INVALID` naming the field. */
export interface Signal {
  /** The engine assigns a UUIDv7 when absent. */
  signal_id?: string | null
  /** `[A-Za-z0-9._-]{1,64}` */
  tenant_id: string
  /** 1..128 characters, opaque. */
  actor_id: string
  /** Default `human`. */
  actor_type?: ActorType | null
  /** Lower-case dotted: `pr.opened`, `ci.failed`. */
  kind: string
  /** Free text: `ide`, `ci`, `scm`, `incident`, … */
  source?: string | null
  occurred_at: Timestamp
  /** Where the actor is now (an `ide` signal gets the shorter deadline). */
  surface?: Surface | null
  repo?: Repo | null
  /** At most 64 KiB serialised; keys on the deny list are removed before evaluation. */
  payload?: JsonObject | null
}

/** A signal as the recent-signals list holds it: at least its kind and time. */
export type RecentSignal = Partial<Signal> & { kind: string; occurred_at: Timestamp }

/** A daily quiet window, judged in its own time zone; may span midnight. */
export interface QuietHours {
  /** `HH:MM` */
  start: string
  /** `HH:MM` */
  end: string
  /** IANA time zone; UTC when absent. */
  timezone?: string | null
}

/** The tenant's policy for nudges (SPEC §2). */
export interface TenantPolicy {
  enabled_action_types?: ActionType[] | null
  enabled_surfaces?: Surface[] | null
  quiet_hours?: QuietHours | null
  /** Default 3. */
  max_actions_per_decision?: number | null
  budget?: { max: number; window: DurationText } | null
}

/** What the actor chose. */
export interface Preferences {
  opt_out_categories?: string[]
  snooze_until?: Timestamp | null
  preferred_surfaces?: Surface[]
  quiet_hours?: QuietHours | null
}

/** A policy snapshot, in the context or from the Policy port. */
export interface PolicySnapshot {
  snapshot_id?: string | null
  denied_action_types?: ActionType[]
  denied_operations?: string[]
  denied_playbooks?: string[]
}

/** Passed beside the signal (SPEC §2); every field optional. The caller's values win over the ports'. */
export interface Context {
  actor?: { roles?: string[]; timezone?: string | null; [key: string]: JsonValue | undefined } | null
  /** Newest first, at most 50 are considered. */
  recent_signals?: RecentSignal[] | null
  tenant?: { safety_critical?: boolean; config?: JsonObject; [key: string]: JsonValue | undefined } | null
  tenant_policy?: TenantPolicy | null
  preferences?: Preferences | null
  /** Used as is; otherwise the Policy port is asked. */
  policy?: PolicySnapshot | null
}

/** Options of one decision. */
export interface DecideOptions {
  /** The decision's `now` (default: the engine's clock). */
  now?: Timestamp | null
  /** Include the explain trace. */
  explain?: boolean | null
}

/** A playbook and the version that decided. */
export interface PlaybookRef {
  id: string
  version: number
}

/** Why a nudge was held back (stable strings, SPEC §4). */
export type Reason =
  | 'condition_error'
  | 'template_error'
  | 'action_type_disabled'
  | 'surface_disabled'
  | 'policy_denied'
  | 'opted_out'
  | 'snoozed'
  | 'quiet_hours'
  | 'fatigue_cooldown'
  | 'fatigue_max'
  | 'actor_budget'
  | 'max_actions'
  | 'llm_unavailable'
  | 'llm_unsafe'
  | 'experiment_holdout'
  | 'policy_unavailable'
  | 'receipts_backpressure'

/** A dependency that was down or slow during the decision (SPEC §6). */
export type DegradedCode =
  | 'llm_unavailable'
  | 'policy_cached'
  | 'policy_unavailable'
  | 'ubi_unavailable'
  | 'data_governance_unavailable'
  | 'receipts_queued'
  | 'receipts_backpressure'
  | 'deadline_exceeded'

/** One nudge to show (SPEC §4). */
export interface Action {
  action_id: string
  /** Hex SHA-256 over tenant, actor, playbook id, action index, repo id. */
  fingerprint: string
  playbook: PlaybookRef
  type: ActionType
  category: string
  priority: number
  surfaces: Surface[]
  title: string
  text: string
  /** The text rendered (and escaped) for each surface. */
  rendered: Partial<Record<Surface, string>>
  rationale: { why: string; trigger: string; evidence: JsonValue[] }
  /** Always true for a multiplier. */
  requires_consent: boolean
  dual_channel: boolean
  operation: string | null
  params: JsonValue | null
  /** `{id, variant}` when an experiment shaped the action. */
  experiment: { id: string; variant: string } | null
}

/** An action held back, and why. */
export interface Suppressed {
  playbook: PlaybookRef
  action_index: number
  type: ActionType
  reason: Reason
  detail: string
}

/**
 * A DSSE envelope of a signed receipt (SPEC §7). The engine writes standard base64 and
 * sets `keyid`; `verifyReceipt`/`verifyChain` read it as DSSE's `envelope.md` says:
 * standard or URL-safe base64, with or without padding, `keyid` optional, other fields
 * ignored, any one valid signature.
 */
export interface Envelope {
  payloadType: 'application/vnd.mmm.receipt+json'
  /** base64 of the payload's JCS bytes. */
  payload: string
  signatures: Array<{ keyid?: string; sig: string }>
}

/** The receipt of a decision, as the decision names it. */
export interface ReceiptRef {
  receipt_id: string | null
  /** `dropped` only when signing failed, which the engine does not expect. */
  status: 'emitted' | 'queued' | 'disabled' | 'dropped'
  /** With a signing key and no receipts port, the signed envelope itself. */
  envelope?: Envelope
}

/** One candidate playbook in the explain trace. */
export interface ExplainEntry {
  playbook: PlaybookRef
  trigger: string
  /** The condition's result, or the error it raised. */
  condition: boolean | { error: string }
  /** `outcome` is `acted` or `suppressed:<reason>`. */
  actions: Array<{ index: number; type: ActionType; outcome: string }>
  experiment?: { id: string; variant: string }
}

/** The engine's answer to one signal (SPEC §4). */
export interface Decision {
  decision_id: string
  signal_id: string
  tenant_id: string
  actor_id: string
  decided_at: string
  /** By priority (desc), then playbook id, then action index; capped. */
  actions: Action[]
  suppressed: Suppressed[]
  degraded: DegradedCode[]
  /** JSON paths of payload keys removed before evaluation. */
  redacted: string[]
  policy_snapshot_id: string | null
  receipt: ReceiptRef
  latency_us: number
  latency_warning: boolean
  /** Only when asked for. */
  explain: ExplainEntry[] | null
}

/** The signed payload of a receipt (SPEC §7). */
export interface ReceiptPayload {
  receipt_id: string
  decision_id: string
  tenant_id: string
  actor_id: string
  decided_at: string
  signal: { signal_id: string; kind: string }
  inputs_sha256: string
  policy_snapshot_id: string | null
  playbooks: PlaybookRef[]
  actions: Array<{
    action_id: string
    playbook_id: string
    playbook_version: number
    type: ActionType
    surfaces: Surface[]
    fingerprint: string
  }>
  suppressed: Array<{ playbook_id: string; reason: Reason }>
  degraded: DegradedCode[]
  engine_version: string
  chain: { id: string; seq: number; prev_sha256: string | null }
}

/** What the actor did with an action (SPEC §9). */
export type OutcomeResult = 'accepted' | 'dismissed' | 'snoozed' | 'ignored' | 'executed' | 'failed'

/** An outcome to record. */
export interface Outcome {
  action_id: string
  tenant_id: string
  actor_id: string
  playbook_id: string
  result: OutcomeResult
  at: Timestamp
}

/** One per-tenant aggregate (never per actor). */
export interface OutcomeCount {
  playbook_id: string
  /** `unknown` when the engine no longer remembers the action. */
  type: ActionType | 'unknown'
  result: OutcomeResult
  count: number
}

/** Where a dual-channel approval stands (SPEC §8). */
export type ApprovalState = 'pending' | 'partially_approved' | 'approved' | 'rejected' | 'expired'

/** A dual-channel approval of a multiplier action. */
export interface Approval {
  approval_id: string
  action_id: string
  tenant_id: string
  actor_id: string
  operation: string | null
  state: ApprovalState
  created_at: string
  expires_at: string
  grants: Array<{ channel: string; approver: string; at: string }>
  /** `[by, reason]` once rejected. */
  rejection: [by: string, reason: string] | null
}

/** An experiment's status. */
export type ExperimentStatus = 'active' | 'paused' | 'completed'

/** A port, as breakers name it. */
export type PortName = 'iam' | 'signals' | 'data_governance' | 'policy' | 'llm' | 'receipts' | 'delivery'

/** One finding of `validate` (and of a failed load, in `err.diagnostics`). */
export interface Diagnostic {
  severity: 'error' | 'warning'
  /** A stable rule name: `unknown-field`, `condition`, `prescriptive-wording`, … */
  rule: string
  message: string
  file: string
  line: number | null
  column: number | null
  playbook: string | null
}

/** The stable codes of errors thrown by the engine (the core's `codes`), and Node's own two for arguments. */
export type ErrorCode =
  | 'PLAYBOOK_INVALID'
  | 'IO'
  | 'SIGNAL_INVALID'
  | 'CONTEXT_INVALID'
  | 'UNAVAILABLE'
  | 'FORBIDDEN'
  | 'RECEIPT_INVALID'
  | 'OUTCOME_INVALID'
  | 'APPROVAL_REFUSED'
  | 'AUDIT_FAILED'
  | 'CONFIG_INVALID'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'REJECTED'
  | 'DURATION_INVALID'
  | 'JSON_INVALID'
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_INVALID_ARG_VALUE'

/**
 * Every error the engine throws (or a promise rejects with): an `Error` whose `code` is
 * stable and whose other fields say where (`null` when they do not apply).
 */
export interface MmmError extends Error {
  name:
    | 'PlaybookError'
    | 'SignalError'
    | 'ContextError'
    | 'UnavailableError'
    | 'ForbiddenError'
    | 'ReceiptError'
    | 'OutcomeError'
    | 'ApprovalError'
    | 'AuditFailedError'
    | 'IoError'
    | 'ConfigError'
    | 'NotFoundError'
    | 'ConflictError'
    | 'Rejected'
    | 'DurationError'
    | 'JsonError'
    | 'MmmError'
    | 'TypeError'
    | 'RangeError'
  code: ErrorCode
  message: string
  /** Signal, context and outcome errors: the field, as a dotted path. */
  field: string | null
  /** Playbook errors: the rule broken. */
  rule: string | null
  file: string | null
  line: number | null
  column: number | null
  playbook: string | null
  /** Playbook errors: every error found. */
  diagnostics?: Diagnostic[]
  /** `verifyChain`: the 0-based index of the first envelope that does not verify. */
  index?: number
}

/** A value a port may answer with directly or, under `decideAsync`, as a Promise. */
export type PortAnswer<T> = T | Promise<T>

/** IAM: is this actor active? `active: false` (or throwing `rejected(…)`) fails the decision with `FORBIDDEN`; throwing anything else fails it with `UNAVAILABLE`. */
export interface IamPort {
  validateActor(tenantId: string, actorId: string): PortAnswer<{ active: boolean; roles?: string[]; timezone?: string | null }>
}

/** UBI: the actor's recent signals, newest first. */
export interface SignalsPort {
  recent(tenantId: string, actorId: string, limit: number): PortAnswer<RecentSignal[]>
}

/** Data governance: the tenant's configuration; other keys are visible as `ctx.tenant.config.*`. */
export interface DataGovernancePort {
  tenantConfig(tenantId: string): PortAnswer<{
    safety_critical?: boolean | null
    deny_payload_keys?: string[] | null
    [key: string]: JsonValue | undefined
  }>
}

/** Policy: the tenant's current snapshot. */
export interface PolicyPort {
  snapshot(tenantId: string): PortAnswer<PolicySnapshot>
}

/** What the LLM is asked for a mentor action. */
export interface LlmRequest {
  tenant_id: string
  actor_id: string
  playbook_id: string
  prompt: string
  max_tokens: number
}

/** The LLM's answer with its safety check; `fail` means the fallback is used. */
export interface LlmResponse {
  text: string
  safety: { status: 'pass' | 'warn' | 'fail'; risk_flags?: string[]; redaction_summary?: JsonValue }
}

/** The LLM gateway. */
export interface LlmPort {
  generate(request: LlmRequest): PortAnswer<LlmResponse>
}

/** The receipts sink (ERIS); must be idempotent on `receipt_id`. Throwing queues the receipt. */
export interface ReceiptsPort {
  emit(envelope: Envelope): PortAnswer<void>
}

/** Delivery of actions to their surfaces (called after the receipt, without the decision waiting). */
export interface DeliveryPort {
  deliver(action: Action, surface: Surface, rendered: string): PortAnswer<void>
}

/** What a fatigue store is asked: check the limits and, when allowed, record atomically. */
export interface FatigueRequest {
  tenant_id: string
  actor_id: string
  playbook_id: string
  now: string
  /** Actions the playbook wants to return. */
  actions: number
  cooldown_seconds: number | null
  max: { count: number; window_seconds: number } | null
  budget: { count: number; window_seconds: number } | null
  /** A critical playbook bypasses the actor budget. */
  critical: boolean
}

/** A fatigue store (default: in memory). */
export interface FatigueStore {
  checkAndRecord(request: FatigueRequest): PortAnswer<{ verdict: 'allowed'; actions?: number } | { verdict: 'cooldown' | 'max' | 'budget' }>
  record?(tenantId: string, actorId: string, playbookId: string, at: string, actions: number): PortAnswer<void>
}

/** One audited change (an approval's transition, an experiment's status, a reload). */
export interface AuditEvent {
  kind: string
  subject: string
  by: string | null
  at: string
  before: JsonValue
  after: JsonValue
}

/**
 * The audit sink (default: in memory): `record(event)` for every audited change. A throw
 * means the event was not recorded, and the change does not happen (`AUDIT_FAILED`, or
 * `UNAVAILABLE` for approvals). Called synchronously: it must not return a Promise.
 */
export interface AuditPort {
  record(event: AuditEvent): void
}

/**
 * Engine settings: the core's `EngineConfig` keys, in camelCase (`ideDeadlineMs` for
 * `ide_deadline_ms`); durations in milliseconds, counts as whole numbers. The defaults and
 * what each does are in docs/node.md. An unknown key or a bad value throws `CONFIG_INVALID`
 * naming the key.
 */
export interface EngineConfig {
  ideDeadlineMs?: number | bigint
  defaultDeadlineMs?: number | bigint
  policyTtlMs?: number | bigint
  policyMaxAgeMs?: number | bigint
  tenantConfigTtlMs?: number | bigint
  llmMinBudgetMs?: number | bigint
  approvalTtlMs?: number | bigint
  iamTimeoutMs?: number | bigint
  signalsTimeoutMs?: number | bigint
  dataGovernanceTimeoutMs?: number | bigint
  policyTimeoutMs?: number | bigint
  llmTimeoutMs?: number | bigint
  receiptsTimeoutMs?: number | bigint
  deliveryTimeoutMs?: number | bigint
  maxPayloadBytes?: number | bigint
  maxContextBytes?: number | bigint
  maxDenyKeys?: number | bigint
  maxDenyKeyBytes?: number | bigint
  outboxCapacity?: number | bigint
  llmMaxTokens?: number | bigint
  maxPortThreads?: number | bigint
  rememberedActions?: number | bigint
  fatigueMaxActors?: number | bigint
  experimentSeed?: number | bigint
  breakerFailureThreshold?: number | bigint
  breakerOpenMs?: number | bigint
  breakerHalfOpenProbes?: number | bigint
  breakerSuccessThreshold?: number | bigint
  conditionMaxOperations?: number | bigint
  conditionMaxCallDepth?: number | bigint
  conditionMaxExprDepth?: number | bigint
  conditionMaxStringBytes?: number | bigint
  conditionMaxArraySize?: number | bigint
  conditionMaxMapSize?: number | bigint
  conditionTimeLimitMs?: number | bigint
  conditionMaxGlobPatternBytes?: number | bigint
  conditionMaxGlobTextBytes?: number | bigint
}

/** How an engine is built: the signing key, the ports (every one optional) and settings. */
export interface EngineOptions {
  /** The Ed25519 seed: a 32-byte Buffer or 64 hex digits. Without it receipts are `disabled`. */
  signingKey?: Buffer | string | null
  llm?: LlmPort | null
  receipts?: ReceiptsPort | null
  policy?: PolicyPort | null
  iam?: IamPort | null
  signals?: SignalsPort | null
  dataGovernance?: DataGovernancePort | null
  delivery?: DeliveryPort | null
  fatigue?: FatigueStore | null
  audit?: AuditPort | null
  config?: EngineConfig | null
}

/**
 * Which binding artifact the generated loader actually loaded: `'native'` for
 * a native addon, otherwise the `platformArchABI` of the WASI flavor. Every
 * flavor napi-rs can build is listed, because `NAPI_RS_NATIVE_LIBRARY_PATH`
 * can point the loader at a WASI artifact this package does not build itself.
 */
export declare const __napiBindingTarget: 'native' | 'wasm32-wasi' | 'wasm32-wasip1'

/**
 * The engine. Build it with `Engine.fromPath` or `Engine.fromYaml`; it is safe to use
 * from any number of concurrent `decideAsync` calls.
 */
export declare class Engine {
  /** Loads the playbooks under `path` (a file or a directory). */
  static fromPath(path: string, options?: EngineOptions | null): Engine
  /** Loads playbooks from YAML text (one or more documents). */
  static fromYaml(text: string, options?: EngineOptions | null): Engine
  /**
   * Decides what to show for one signal, on the calling thread. JS ports are called on
   * the JS thread while the decision waits for them; they must answer synchronously.
   */
  decide(signal: Signal, context?: Context | null, options?: DecideOptions | null): Decision
  /**
   * Decides off the JS thread; the JS thread stays free to run ports (which may answer
   * with Promises) and everything else.
   */
  decideAsync(signal: Signal, context?: Context | null, options?: DecideOptions | null): Promise<Decision>
  /**
   * Records what the actor did with an action (`accepted`, `dismissed`, `snoozed`,
   * `ignored`, `executed`, `failed`).
   */
  recordOutcome(outcome: Outcome): void
  /** Outcome counts for a tenant, by playbook, action type and result. */
  outcomeCounts(tenantId: string): OutcomeCount[]
  /**
   * Replaces the playbooks with those under `path`, atomically: a failed reload throws
   * and keeps the old set; decisions see the old set or the new one, never a mix.
   */
  reload(path: string): void
  /** As `reload`, from YAML text. */
  reloadYaml(text: string): void
  /** Opens a dual-channel approval for a multiplier action (an action of a decision). */
  requestApproval(action: Action, tenantId: string, actorId: string): Approval
  /** Approves on `channel`; the second approval must come through another channel. */
  approve(approvalId: string, channel: string, approver: string): Approval
  /** Rejects an approval that is not yet terminal. */
  reject(approvalId: string, by: string, reason: string): Approval
  /** The approval (`expired` once past its time). */
  getApproval(approvalId: string): Approval
  /**
   * Current variant weights of an experiment for a tenant (normalised to 1), or `null`
   * when no such experiment applies.
   */
  experimentWeights(tenantId: string, experimentId: string): Record<string, number> | null
  /** Sets an experiment's status; the change is audited. */
  setExperimentStatus(experimentId: string, status: ExperimentStatus, by: string): void
  /**
   * Tries now to deliver the receipts waiting in the outbox (a background worker also
   * does, every 100 ms).
   */
  flushOutbox(): void
  /** Receipts waiting for the receipts port: in the outbox, or being delivered from it. */
  get outboxLength(): number
  /** A port's circuit breaker: `closed`, `open` or `half_open`. */
  breakerState(port: PortName): 'closed' | 'open' | 'half_open'
  /** The public key receipts are signed with (hex), or `null` when signing is off. */
  get receiptPublicKey(): string | null
}

/** The engine's version, as recorded in receipts. */
export declare const ENGINE_VERSION: string

/** A new Ed25519 signing key: `[seedHex, publicKeyHex]`. */
export declare function generateKey(): [seedHex: string, publicKeyHex: string]

/**
 * An `Error` with `code: 'REJECTED'`, for a port to throw as a business answer (a deny, a
 * not-found): the dependency is up, and its circuit breaker does not count it.
 */
export declare function rejected(message: string): Error & { code: 'REJECTED' }

/** Checks playbook files: every error and lint warning (an empty list when all is well). */
export declare function validate(path: string): Diagnostic[]

/**
 * Verifies a chain of envelopes in order (signatures, `seq`, `prev_sha256`) and returns
 * their payloads. The error's `index` names the first envelope that does not verify.
 */
export declare function verifyChain(envelopes: Array<Envelope | string>, publicKey: Buffer | string): ReceiptPayload[]

/**
 * Verifies one receipt envelope (an object or its JSON line) against a public key and
 * returns its payload.
 */
export declare function verifyReceipt(envelope: Envelope | string, publicKey: Buffer | string): ReceiptPayload
