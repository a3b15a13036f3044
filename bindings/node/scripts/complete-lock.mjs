#!/usr/bin/env node
// Completes package-lock.json with the platform packages of other systems.
//
// napi-rs tools (the CLI's lzma, tar and wasm-tools helpers) ship one optional package per
// platform. A registry mirror that serves only this machine's platform answers 404 for the
// others, so `npm install` leaves them out of the lock file, and `npm ci` then refuses the
// lock file as out of sync. This adds each missing one with the `os`/`cpu`/`libc` its name
// encodes (napi-rs's naming), which is what npm itself records: `npm ci` skips them on
// other platforms without fetching anything, and installs them by version where they fit.
//
// Run after `npm install` changes the lock file: node scripts/complete-lock.mjs [path/to/package-lock.json]
// (default: the binding's own lock file).
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const lockPath = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'package-lock.json')
const lock = JSON.parse(readFileSync(lockPath, 'utf8'))

const PLATFORMS = {
  'android-arm-eabi': { os: ['android'], cpu: ['arm'] },
  'android-arm64': { os: ['android'], cpu: ['arm64'] },
  'darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  'darwin-x64': { os: ['darwin'], cpu: ['x64'] },
  'darwin-universal': { os: ['darwin'] },
  'freebsd-x64': { os: ['freebsd'], cpu: ['x64'] },
  'linux-arm-gnueabihf': { os: ['linux'], cpu: ['arm'], libc: ['glibc'] },
  'linux-arm64-gnu': { os: ['linux'], cpu: ['arm64'], libc: ['glibc'] },
  'linux-arm64-musl': { os: ['linux'], cpu: ['arm64'], libc: ['musl'] },
  'linux-ppc64-gnu': { os: ['linux'], cpu: ['ppc64'], libc: ['glibc'] },
  'linux-riscv64-gnu': { os: ['linux'], cpu: ['riscv64'], libc: ['glibc'] },
  'linux-s390x-gnu': { os: ['linux'], cpu: ['s390x'], libc: ['glibc'] },
  'linux-x64-gnu': { os: ['linux'], cpu: ['x64'], libc: ['glibc'] },
  'linux-x64-musl': { os: ['linux'], cpu: ['x64'], libc: ['musl'] },
  'wasm32-wasi': { cpu: ['wasm32'] },
  'win32-arm64-msvc': { os: ['win32'], cpu: ['arm64'] },
  'win32-ia32-msvc': { os: ['win32'], cpu: ['ia32'] },
  'win32-x64-msvc': { os: ['win32'], cpu: ['x64'] },
}

let added = 0
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const hoisted = `node_modules/${name}`
    const nested = `${path}/node_modules/${name}`
    if (lock.packages[hoisted] || lock.packages[nested]) continue
    const suffix = Object.keys(PLATFORMS).find((p) => name.endsWith(`-${p}`))
    if (!suffix) throw new Error(`${name}: not a platform package this script knows; add it by hand`)
    lock.packages[hoisted] = { version, dev: entry.dev, optional: true, ...PLATFORMS[suffix] }
    added += 1
  }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))))
writeFileSync(lockPath, JSON.stringify(lock, null, 2) + '\n')
console.log(`complete-lock: added ${added} platform package(s)`)
