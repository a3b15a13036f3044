// Starts `mmm-host` for a test file: a free loopback port, a fresh data directory
// (SQLite), the repository's playbooks; mints tokens with `mmm-host token`; stops it.

import { execFile, spawn } from 'node:child_process';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const HOST_BIN = process.env.MMM_HOST_BIN ?? join(REPO, 'target/debug/mmm-host');

const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The host's Ed25519 key from its PEM. The host writes PKCS#8 v2 (with the public key),
 * which OpenSSL 3 refuses: take the 32-byte seed and wrap it as PKCS#8 v1.
 */
function ed25519Key(pem) {
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const at = der.indexOf(Buffer.from('04220420', 'hex'));
  if (at < 0) throw new Error('the host key is not an Ed25519 PKCS#8 key');
  const seed = der.subarray(at + 4, at + 36);
  const v1 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return createPrivateKey({ key: v1, format: 'der', type: 'pkcs8' });
}

/** A free TCP port on 127.0.0.1. */
export async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/**
 * Starts the host and waits for `/v1/mmm/ready`.
 * @param {object} [o]
 * @param {string[]} [o.args] extra `serve` flags (`--oidc-issuer …`, `--public-url …`)
 * @param {Record<string,string>} [o.env] extra environment
 */
export async function startHost({ args = [], env = {} } = {}) {
  if (!existsSync(HOST_BIN)) throw new Error(`no mmm-host at ${HOST_BIN} (cargo build -p mmm-host)`);
  const dataDir = await mkdtemp(join(tmpdir(), 'mmm-console-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(HOST_BIN, [
    '--listen', `127.0.0.1:${port}`,
    '--data-dir', dataDir,
    '--seed-playbooks', join(REPO, 'playbooks'),
    ...args,
  ], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Should the test process die without stop(), the host goes with it.
  const orphanGuard = () => child.kill('SIGKILL');
  process.once('exit', orphanGuard);
  let log = '';
  const keep = (chunk) => { log = (log + chunk).slice(-20000); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  const exit = new Promise((r) => {
    child.once('exit', (code, signal) => { exited = { code, signal }; r(); });
    child.once('error', (error) => { exited ??= { error: error.message }; r(); });
  });

  const host = {
    url,
    port,
    dataDir,
    log: () => log,
    /** Mints a token with the host's local key (`mmm-host token`). */
    async token({ tenant = 'acme', roles = ['developer'], actor, ttl = '1h' } = {}) {
      const flags = ['token', '--data-dir', dataDir, '--tenant', tenant, '--ttl', ttl];
      for (const r of [roles].flat()) flags.push('--role', r);
      if (actor) flags.push('--actor', actor);
      const { stdout } = await run(HOST_BIN, flags);
      return stdout.trim();
    },
    /**
     * A token signed with the host's local key that expired an hour ago (`mmm-host
     * token` will not mint one: its shortest ttl is still inside the verifier's leeway).
     */
    async expiredToken({ tenant = 'acme', roles = ['developer'], actor = 'late@acme' } = {}) {
      await host.token({ tenant, roles }); // creates the key when missing
      const key = ed25519Key(await readFile(join(dataDir, 'jwt-ed25519.pem'), 'utf8'));
      const raw = Buffer.from(key.export({ format: 'jwk' }).x, 'base64url');
      const kid = createHash('sha256').update(raw).digest().subarray(0, 8).toString('hex');
      const now = Math.floor(Date.now() / 1000);
      const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const input = `${part({ alg: 'EdDSA', typ: 'JWT', kid })}.${part({
        tenant_id: tenant, sub: actor, roles: [roles].flat(), iat: now - 7200, exp: now - 3600,
      })}`;
      return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`;
    },
    /** Calls the JSON API with a bearer token; answers `{status, headers, body}`. */
    async api(path, { token, method = 'GET', body, headers = {} } = {}) {
      const res = await fetch(new URL(path, url), {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed = text;
      try { parsed = JSON.parse(text); } catch { /* not JSON */ }
      return { status: res.status, headers: res.headers, body: parsed };
    },
    /** SIGTERM, then SIGKILL after 10 s; removes the data directory. */
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        // Real time: the grace a real process gets to stop before it is killed.
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exit;
        clearTimeout(timer);
      }
      process.removeListener('exit', orphanGuard);
      await rm(dataDir, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) {
      await host.stop();
      throw new Error(`mmm-host exited (${JSON.stringify(exited)}) before /v1/mmm/ready:\n${log}`);
    }
    try {
      const res = await fetch(`${url}/v1/mmm/ready`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await host.stop();
      throw new Error(`mmm-host not ready after 60 s:\n${log}`);
    }
    // Real time: a real process is starting (migrations, the playbook set); poll it.
    await sleep(100);
  }
  return host;
}
