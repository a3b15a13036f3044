// The local OpenID Connect provider on its own (no host, no browser): discovery, the code
// flow with PKCE, and an ID token that verifies with the JWKS.

import assert from 'node:assert/strict';
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { after, before, beforeEach, test } from 'node:test';
import { s256, startProvider } from '../lib/oidc.mjs';

const REDIRECT = 'http://127.0.0.1:9/ui/oidc/callback';
let provider;
let discovery;

before(async () => {
  provider = await startProvider({ user: { sub: 'ann@acme', tenant_id: 'acme', roles: ['admin'] } });
  discovery = await (await fetch(`${provider.issuer}/.well-known/openid-configuration`)).json();
});
after(() => provider.close());
beforeEach(() => provider.reset());

/** Runs the authorization request; returns the redirect's parameters. */
async function authorize(verifier, extra = {}) {
  const url = new URL(discovery.authorization_endpoint);
  const params = {
    response_type: 'code', client_id: 'console', redirect_uri: REDIRECT, scope: 'openid',
    state: 'st-1', nonce: 'n-1', code_challenge: s256(verifier), code_challenge_method: 'S256', ...extra,
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const res = await fetch(url, { redirect: 'manual' });
  if (res.status !== 302) return { status: res.status, body: await res.json() };
  const location = new URL(res.headers.get('location'));
  assert.equal(`${location.origin}${location.pathname}`, REDIRECT);
  return { status: 302, ...Object.fromEntries(location.searchParams) };
}

async function exchange(code, verifier, extra = {}) {
  const res = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: 'console',
      code_verifier: verifier, ...extra,
    }),
  });
  return { status: res.status, body: await res.json() };
}

function decode(jwt) {
  const [h, c] = jwt.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url')));
  return { header: h, claims: c };
}

async function verifies(jwt) {
  const { keys } = await (await fetch(discovery.jwks_uri)).json();
  const { header } = decode(jwt);
  const jwk = keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `no key ${header.kid} in the JWKS`);
  const [h, c, s] = jwt.split('.');
  return verify('sha256', Buffer.from(`${h}.${c}`), {
    key: createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363',
  }, Buffer.from(s, 'base64url'));
}

test('discovery names the issuer and its endpoints', () => {
  assert.equal(discovery.issuer, provider.issuer);
  for (const f of ['authorization_endpoint', 'token_endpoint', 'jwks_uri']) {
    assert.ok(discovery[f].startsWith(provider.issuer), f);
  }
});

test('code flow with PKCE gives an ES256 ID token that verifies with the JWKS', async () => {
  const verifier = randomBytes(32).toString('base64url');
  const auth = await authorize(verifier);
  assert.equal(auth.status, 302);
  assert.equal(auth.state, 'st-1');
  const { status, body } = await exchange(auth.code, verifier);
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.token_type, 'Bearer');
  assert.ok(body.access_token && body.expires_in > 0);
  const { header, claims } = decode(body.id_token);
  assert.equal(header.alg, 'ES256');
  assert.ok(header.kid);
  assert.ok(await verifies(body.id_token));
  assert.equal(claims.iss, provider.issuer);
  assert.equal(claims.aud, 'console');
  assert.equal(claims.sub, 'ann@acme');
  assert.equal(claims.tenant_id, 'acme');
  assert.deepEqual(claims.roles, ['admin']);
  assert.equal(claims.nonce, 'n-1');
  assert.ok(claims.exp > Date.now() / 1000 && claims.iat <= Date.now() / 1000 + 1);
  assert.equal(provider.tokenRequests[0].verifierMatches, true);
});

test('the code is single use', async () => {
  const verifier = randomBytes(32).toString('base64url');
  const { code } = await authorize(verifier);
  assert.equal((await exchange(code, verifier)).status, 200);
  const again = await exchange(code, verifier);
  assert.equal(again.status, 400);
  assert.equal(again.body.error, 'invalid_grant');
});

test('a wrong verifier, redirect_uri or client_id is refused', async () => {
  const verifier = randomBytes(32).toString('base64url');
  for (const [extra, error] of [
    [{ code_verifier: 'x'.repeat(43) }, 'invalid_grant'],
    [{ redirect_uri: 'http://127.0.0.1:9/elsewhere' }, 'invalid_grant'],
    [{ client_id: 'other' }, 'invalid_client'],
  ]) {
    const { code } = await authorize(verifier);
    const res = await exchange(code, verifier, extra);
    assert.equal(res.status, 400, JSON.stringify(extra));
    assert.equal(res.body.error, error, JSON.stringify(extra));
  }
  assert.equal(provider.tokenRequests[0].verifierMatches, false);
});

test('the authorization request must use S256', async () => {
  const res = await authorize('v'.repeat(43), { code_challenge_method: 'plain' });
  assert.equal(res.status, 400);
});

test('misbehaviours: wrong nonce, audience, issuer, expiry, signature; errors', async () => {
  const verifier = randomBytes(32).toString('base64url');
  const tokenFor = async (kind) => {
    provider.misbehave(kind);
    const { code } = await authorize(verifier);
    return exchange(code, verifier);
  };
  const claimsOf = async (kind) => decode((await tokenFor(kind)).body.id_token).claims;
  assert.notEqual((await claimsOf('wrong-nonce')).nonce, 'n-1');
  assert.equal((await claimsOf('wrong-audience')).aud, 'someone-else');
  assert.notEqual((await claimsOf('wrong-issuer')).iss, provider.issuer);
  assert.ok((await claimsOf('expired')).exp < Date.now() / 1000 - 60);
  assert.equal(await verifies((await tokenFor('bad-signature')).body.id_token), false);
  assert.equal((await tokenFor('token-error')).status, 400);
  provider.misbehave('access-denied');
  const denied = await authorize(verifier);
  assert.equal(denied.error, 'access_denied');
  assert.equal(denied.code, undefined);
});
