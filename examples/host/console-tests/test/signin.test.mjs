// Sign-in with a pasted token, sign-out, and the session cookie's attributes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { axeCheck, screenshot } from '../lib/browser.mjs';
import {
  assertErrorPage, rawSignIn, sessionCookie, setCookies, signIn, submitToken, useConsole,
} from '../lib/console.mjs';
import { startHost } from '../lib/host.mjs';

const ctx = useConsole();

test('the sign-in page renders: a token form, accessible', async () => {
  const { page } = await ctx.page();
  const res = await page.goto(ctx.at('/ui/signin'));
  assert.equal(res.status(), 200);
  await screenshot(page, 'signin');
  assert.equal(await page.locator('form#signin-token[method=post][action="/ui/signin"]').count(), 1);
  assert.equal(await page.getByLabel('Token').count(), 1, 'the textarea is labelled "Token"');
  assert.equal(await page.locator('textarea#token[name=token]').count(), 1);
  assert.equal(await page.locator('#signin-token input[type=hidden][name=csrf]').count(), 1);
  assert.equal((await page.locator('#signin-token button[type=submit]').innerText()).trim(), 'Sign in');
  assert.equal(await page.locator('#signin-oidc').count(), 0, 'no OIDC link when OIDC is not configured');
  assert.deepEqual(await axeCheck(page), []);
});

test('a page without a session goes to the sign-in page', async () => {
  const { page } = await ctx.page();
  for (const path of ['/ui/', '/ui/preferences']) {
    await page.goto(ctx.at(path));
    assert.equal(new URL(page.url()).pathname, '/ui/signin', path);
  }
});

test('signing in with a developer token opens the home page', async () => {
  const { page } = await ctx.page();
  const token = await ctx.host.token({ tenant: 'acme', roles: ['developer'], actor: 'dev@acme' });
  await signIn(page, ctx.host.url, token);
  assert.equal((await page.locator('header #whoami').innerText()).trim(), 'dev@acme · acme');
  assert.equal(await page.locator('nav[aria-label="Console"]').count(), 1);
  assert.equal(await page.locator('#nav-preferences').count(), 1);
  for (const id of ['nav-explorer', 'nav-playbooks', 'nav-overview']) {
    assert.equal(await page.locator(`#${id}`).count(), 0, `a developer sees no #${id}`);
  }
  assert.equal(await page.locator('form#signout[method=post][action="/ui/signout"] input[name=csrf]').count(), 1);
  assert.equal(await page.locator('main#main').count(), 1);
  await screenshot(page, 'home-developer');
  assert.deepEqual(await axeCheck(page), []);
});

test('an admin sees every nav link', async () => {
  const { page } = await ctx.page();
  await signIn(page, ctx.host.url, await ctx.host.token({ roles: ['admin'], actor: 'ada@acme' }));
  for (const id of ['nav-preferences', 'nav-explorer', 'nav-playbooks', 'nav-overview']) {
    assert.equal(await page.locator(`#${id}`).count(), 1, `#${id}`);
  }
});

test('a bad token and an expired token end on the 401 page, without a session', async () => {
  for (const [name, token, says] of [
    ['garbage', 'not-a-token', null],
    ['expired', await ctx.host.expiredToken(), /expired/i],
  ]) {
    const { context, page } = await ctx.page();
    const res = await submitToken(page, ctx.host.url, token);
    // The contract asks for "a 401 page naming the problem": the error page or the
    // sign-in page again, with `#problem` either way.
    const problem = await assertErrorPage(page, res, 401, null);
    if (says) assert.match(problem, says, `${name}: #problem says why`);
    assert.equal(await sessionCookie(context), undefined, `${name}: no session cookie`);
    await screenshot(page, `signin-401-${name}`);
  }
});

test('signing out returns to the sign-in page and drops the cookie', async () => {
  const { context, page } = await ctx.page();
  await signIn(page, ctx.host.url, await ctx.host.token());
  assert.ok(await sessionCookie(context));
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/ui/signout'),
    page.click('form#signout [type=submit]'),
  ]);
  const problem = res.status() === 303 ? '' : await page.locator('#problem').innerText().catch(() => '');
  assert.equal(res.status(), 303, `POST /ui/signout from the browser: ${problem}`);
  await page.waitForURL((u) => u.pathname === '/ui/signin');
  assert.equal(await sessionCookie(context), undefined, 'the browser no longer holds mmm_session');
  await page.goto(ctx.at('/ui/'));
  assert.equal(new URL(page.url()).pathname, '/ui/signin', 'the home page asks to sign in again');
});

/** The `mmm_session` cookie set by a raw sign-in. */
async function rawSessionCookie(baseUrl, token, headers) {
  const res = await rawSignIn(baseUrl, token, headers);
  assert.equal(res.status, 303, `POST /ui/signin answered ${res.status}`);
  assert.equal(new URL(res.headers.get('location'), baseUrl).pathname, '/ui/');
  const cookie = setCookies(res.headers).find((c) => c.name === 'mmm_session');
  assert.ok(cookie, `no mmm_session in ${JSON.stringify(res.headers.getSetCookie())}`);
  return cookie;
}

test('the session cookie: HttpOnly, SameSite=Strict, Path=/ui, not Secure on plain http', async () => {
  const { attrs, line } = await rawSessionCookie(ctx.host.url, await ctx.host.token());
  assert.equal(attrs.httponly, true, line);
  assert.equal(String(attrs.samesite).toLowerCase(), 'strict', line);
  assert.equal(attrs.path, '/ui', line);
  assert.equal(attrs.secure, undefined, line);
});

test('the session cookie is Secure behind X-Forwarded-Proto: https', async () => {
  const { attrs, line } = await rawSessionCookie(ctx.host.url, await ctx.host.token(),
    { 'x-forwarded-proto': 'https', origin: null });
  assert.equal(attrs.secure, true, line);
});

test('the session cookie is Secure with --public-url https://…', async () => {
  const host = await startHost({ args: ['--public-url', 'https://console.example'] });
  try {
    const { attrs, line } = await rawSessionCookie(host.url, await host.token(),
      { origin: 'https://console.example' });
    assert.equal(attrs.secure, true, line);
    assert.equal(attrs.httponly, true, line);
  } finally {
    await host.stop();
  }
});
