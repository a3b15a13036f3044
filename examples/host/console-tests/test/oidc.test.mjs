// Sign-in with the organisation's OpenID Connect provider (the local one in lib/oidc.mjs):
// the code flow with PKCE, and the host's refusal of every bad answer.

import assert from 'node:assert/strict';
import { after, beforeEach, test } from 'node:test';
import { axeCheck, screenshot } from '../lib/browser.mjs';
import { assertErrorPage, sessionCookie, setCookies, useConsole } from '../lib/console.mjs';
import { startProvider } from '../lib/oidc.mjs';

const USER = { sub: 'dana@acme', tenant_id: 'acme', roles: ['developer'] };
let provider;
const ctx = useConsole({
  setup: async () => { provider = await startProvider({ clientId: 'console', user: USER }); },
  hostArgs: () => ['--oidc-issuer', provider.issuer, '--oidc-client-id', 'console'],
});
after(() => provider?.close());
beforeEach(() => provider.reset());

/** Clicks "Sign in with your organisation"; answers the callback's response. */
async function signInWithOidc(page) {
  await page.goto(ctx.at('/ui/signin'));
  const [callback] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/ui/oidc/callback'),
    page.click('#signin-oidc'),
  ]);
  await page.waitForLoadState();
  return callback;
}

test('the sign-in page offers the organisation sign-in', async () => {
  const { page } = await ctx.page();
  await page.goto(ctx.at('/ui/signin'));
  const link = page.locator('a#signin-oidc');
  assert.equal(await link.getAttribute('href'), '/ui/oidc/start');
  assert.match(await link.innerText(), /Sign in with your organisation/);
  assert.equal(await page.locator('form#signin-token').count(), 1, 'the token form stays');
  await screenshot(page, 'signin-oidc');
  assert.deepEqual(await axeCheck(page), []);
});

test("signing in with the provider lands on /ui/ as the provider's user", async () => {
  const { context, page } = await ctx.page();
  const callback = await signInWithOidc(page);
  assert.equal(callback.status(), 200, 'the callback answers the "Signed in" page');
  await page.waitForURL((u) => u.pathname === '/ui/');
  assert.equal((await page.locator('#whoami').innerText()).trim(), 'dana@acme · acme');
  assert.ok(await sessionCookie(context), 'a session cookie is set');
  await screenshot(page, 'home-oidc');

  assert.equal(provider.authorizations.length, 1);
  const auth = provider.authorizations[0];
  assert.equal(auth.response_type, 'code');
  assert.equal(auth.client_id, 'console');
  assert.equal(auth.redirect_uri, ctx.at('/ui/oidc/callback'));
  assert.ok(auth.scope.split(' ').includes('openid'), `scope ${auth.scope}`);
  assert.ok(auth.state && auth.nonce, 'state and nonce are sent');
  assert.equal(auth.code_challenge_method, 'S256');
  assert.match(auth.code_challenge, /^[A-Za-z0-9_-]{43}$/, 'an S256 challenge (43 base64url characters)');

  assert.equal(provider.tokenRequests.length, 1);
  const tr = provider.tokenRequests[0];
  assert.equal(tr.grant_type, 'authorization_code');
  assert.equal(tr.client_id, 'console');
  assert.equal(tr.redirect_uri, auth.redirect_uri);
  assert.equal(tr.verifierMatches, true, 'the host sent the verifier of its S256 challenge');
  assert.equal(tr.error, null);
});

test('GET /ui/oidc/start keeps state, nonce and verifier in a short-lived mmm_oidc cookie', async () => {
  const res = await fetch(ctx.at('/ui/oidc/start'), { redirect: 'manual' });
  assert.equal(res.status, 303);
  const to = new URL(res.headers.get('location'));
  assert.equal(`${to.origin}${to.pathname}`, `${provider.issuer}/authorize`);
  const oidc = setCookies(res.headers).find((c) => c.name === 'mmm_oidc');
  assert.ok(oidc, `no mmm_oidc in ${JSON.stringify(res.headers.getSetCookie())}`);
  assert.equal(oidc.attrs.httponly, true, oidc.line);
  assert.equal(String(oidc.attrs.samesite).toLowerCase(), 'lax', oidc.line);
  assert.equal(oidc.attrs.path, '/ui/oidc', oidc.line);
  // The 10 minutes may be kept inside the (encrypted) value; a lifetime, when set, is no longer.
  if (oidc.attrs['max-age'] !== undefined) assert.ok(Number(oidc.attrs['max-age']) <= 600, oidc.line);
  if (oidc.attrs.expires !== undefined) assert.ok(Date.parse(oidc.attrs.expires) <= Date.now() + 601_000, oidc.line);
  for (const secret of [to.searchParams.get('state'), to.searchParams.get('nonce')]) {
    assert.ok(!oidc.value.includes(secret), 'the cookie does not carry state or nonce in clear');
  }
});

for (const [kind, why] of [
  ['wrong-nonce', 'an ID token whose nonce is not the one sent'],
  ['wrong-audience', 'an ID token for another client'],
  ['wrong-issuer', 'an ID token from another issuer'],
  ['expired', 'an expired ID token'],
  ['bad-signature', 'an ID token signed with a key not in the JWKS'],
  ['token-error', 'the token endpoint refusing the code'],
  ['access-denied', 'the provider answering error=access_denied'],
]) {
  test(`${why} ends on the 401 page without a session`, async () => {
    provider.misbehave(kind);
    const { context, page } = await ctx.page();
    const callback = await signInWithOidc(page);
    await assertErrorPage(page, callback, 401, 'Sign in required');
    assert.equal(await sessionCookie(context), undefined, 'no session cookie');
    if (kind !== 'access-denied') {
      assert.equal(provider.tokenRequests.length, 1);
      assert.equal(provider.tokenRequests[0].verifierMatches, true, 'refused for the ID token, not PKCE');
    }
    await screenshot(page, `oidc-401-${kind}`);
  });
}

test('a callback with a state the host did not issue ends on the 401 page', async () => {
  const { context, page } = await ctx.page();
  const res = await page.goto(ctx.at('/ui/oidc/callback?code=forged&state=forged'));
  await assertErrorPage(page, res, 401, 'Sign in required');
  assert.equal(await sessionCookie(context), undefined);
  assert.equal(provider.tokenRequests.length, 0, 'the host did not redeem a forged code');
});
