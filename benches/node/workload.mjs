// The nudge-1k workload every Node benchmark here uses: 1,000 rules over 20 signal kinds,
// each `signal.payload.lines > T && signal.payload.files > F` with one mirror action, and
// random signals from 500 actors, all drawn from one seeded PRNG so that every run (and
// every script) decides on the same rules and signals.

export const NOW = '2026-11-22T10:00:00Z'
export const KINDS = 20

/** A small seeded PRNG (mulberry32), so every run times the same workload. */
export function rng(seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return { int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), below: (n) => Math.floor(next() * n) }
}

export const pad = (n, width) => String(n).padStart(width, '0')

/** `rules` rules and `signals` signals, the rules drawn first. */
export function workload(rules = 1000, signals = 20_000, seed = 1) {
  const r = rng(seed)
  const ruleList = Array.from({ length: rules }, (_, i) => ({
    id: `nudge-${pad(i, 4)}`,
    kind: `kind.k${pad(i % KINDS, 2)}`,
    lines: r.int(0, 1000),
    files: r.int(0, 50),
  }))
  const signalList = Array.from({ length: signals }, () => ({
    tenant_id: 'acme',
    actor_id: `dev-${r.below(500)}`,
    kind: `kind.k${pad(r.below(KINDS), 2)}`,
    occurred_at: NOW,
    payload: { lines: r.int(0, 1200), files: r.int(0, 60) },
  }))
  return { ruleList, signalList }
}

/** The rules as mmm-engine playbooks (one multi-document YAML text). */
export function mmmPlaybooks(ruleList) {
  return ruleList
    .map(
      (p) =>
        'apiVersion: mmm/v1\nkind: Playbook\n' +
        `metadata: {id: ${p.id}, version: 1, tenant: '*', status: published, category: size}\n` +
        `spec:\n  triggers: [${p.kind}]\n  when: signal.payload.lines > ${p.lines} && signal.payload.files > ${p.files}\n` +
        "  actions:\n    - {type: mirror, surfaces: [ide], title: Size, text: 'This change touches {{ signal.payload.lines }} lines.'}\n",
    )
    .join('---\n')
}

/** The median over `rounds` passes over `items` of the time per item, in microseconds. */
export function medianPerItem(fn, items, rounds = 15) {
  const perItem = []
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint()
    for (const item of items) fn(item)
    perItem.push(Number(process.hrtime.bigint() - start) / 1e3 / items.length)
  }
  perItem.sort((a, b) => a - b)
  return perItem[Math.floor(perItem.length / 2)]
}
