#!/usr/bin/env node
// Interleaved A/B of builds of the addon: `node ab.mjs a.node b.node [...]`.
//
// Each file is a build of `bindings/node/mmm-engine.*.node`. All are loaded side by side in
// one process (each copy is its own library to the dynamic loader), each gets an engine on
// the nudge-1k workload of nudge1k.mjs, and chunks of 200 sync `decide` calls alternate
// between them, so every build sees the same minutes of a shared, noisy machine. Prints
// each build's median, 10th percentile and minimum time per call, in microseconds.
// ROUNDS (environment, default 200) sets the number of chunks per build.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { NOW, mmmPlaybooks, workload } from './workload.mjs'

const require = createRequire(import.meta.url)
const builds = process.argv.slice(2)
if (builds.length === 0) {
  console.error('usage: node ab.mjs a.node b.node [...]')
  process.exit(2)
}
const rounds = Number(process.env.ROUNDS ?? 200)
const { ruleList, signalList: signals } = workload(1000, 20000)
const yaml = mmmPlaybooks(ruleList)
const scratch = mkdtempSync(join(tmpdir(), 'mmm-ab-'))
try {
  const engines = builds.map((path, i) => {
    mkdirSync(join(scratch, String(i)))
    const copy = join(scratch, String(i), 'mmm.node')
    copyFileSync(path, copy)
    return require(copy).Engine.fromYaml(yaml)
  })
  const options = { now: NOW }
  let sink = 0
  for (const e of engines) for (let i = 0; i < 3000; i++) sink += e.decide(signals[i], null, options).actions.length
  const times = engines.map(() => [])
  let at = 0
  for (let r = 0; r < rounds; r++) {
    engines.forEach((e, k) => {
      const start = process.hrtime.bigint()
      for (let i = 0; i < 200; i++) sink += e.decide(signals[(at + i) % signals.length], null, options).actions.length
      times[k].push(Number(process.hrtime.bigint() - start) / 200 / 1000)
    })
    at += 200
  }
  builds.forEach((path, k) => {
    const t = times[k].sort((a, b) => a - b)
    console.log(`${basename(path).padEnd(28)} median ${t[t.length >> 1].toFixed(2)} us  p10 ${t[Math.floor(t.length / 10)].toFixed(2)}  min ${t[0].toFixed(2)}`)
  })
  if (sink < 0) console.log(sink)
} finally {
  rmSync(scratch, { recursive: true, force: true })
}
