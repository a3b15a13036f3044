// What the test files share: one host and one browser per file, sign-in steps, and the
// raw-HTTP view of the console (forms, cookies) for what a browser will not show.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { launchBrowser, newPage } from './browser.mjs';
import { startHost } from './host.mjs';

/**
 * Registers `before`/`after` hooks that start a host and a browser for the file.
 * `hostArgs` may be a function, called in `before` (after `setup`, if any), for flags
 * known only then (a provider's URL). Answers the context, filled in by `before`
 * (`ctx.ready` resolves then).
 */
export function useConsole({ hostArgs = [], setup } = {}) {
  const ctx = { host: null, browser: null };
  let started;
  // A file's other `before` hooks may run alongside this one: they await `ctx.ready`.
  ctx.ready = new Promise((resolve, reject) => { started = { resolve, reject }; });
  ctx.ready.catch(() => {});
  before(async () => {
    try {
      if (setup) await setup(ctx);
      const args = typeof hostArgs === 'function' ? hostArgs(ctx) : hostArgs;
      ctx.host = await startHost({ args });
      ctx.browser = await launchBrowser();
      started.resolve();
    } catch (e) {
      started.reject(e);
      throw e;
    }
  });
  after(async () => {
    await ctx.browser?.close();
    await ctx.host?.stop();
  });
  /** A new browser context (no cookies) and page. */
  ctx.page = async () => { await ctx.ready; return newPage(ctx.browser); };
  /** An absolute URL on the host. */
  ctx.at = (path) => new URL(path, ctx.host.url).href;
  return ctx;
}

/** Submits the sign-in form with `token`; answers the POST's response (the page has loaded it). */
export async function submitToken(page, baseUrl, token) {
  await page.goto(new URL('/ui/signin', baseUrl).href);
  await page.fill('#token', token);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/ui/signin'),
    page.click('#signin-token button[type=submit]'),
  ]);
  await page.waitForLoadState();
  return response;
}

/** Signs in with `token` and waits for the home page. */
export async function signIn(page, baseUrl, token) {
  const res = await submitToken(page, baseUrl, token);
  if (res.status() !== 303) {
    const problem = await page.locator('#problem').innerText({ timeout: 1000 }).catch(() => '');
    assert.fail(`POST /ui/signin from the browser answered ${res.status()} (303 expected): ${problem}`);
  }
  await page.waitForURL((u) => u.pathname === '/ui/');
  await page.locator('#whoami').waitFor();
}

/** The context's `mmm_session` cookie, or undefined. */
export async function sessionCookie(context) {
  return (await context.cookies()).find((c) => c.name === 'mmm_session');
}

/** The `Cookie` header carrying the context's session cookie. */
export async function cookieHeader(context) {
  const c = await sessionCookie(context);
  assert.ok(c, 'the browser holds no mmm_session cookie');
  return `${c.name}=${c.value}`;
}

/** The value of the first hidden `csrf` field in `html`. */
export function csrfIn(html) {
  const input = html.match(/<input[^>]*\bname=["']?csrf\b[^>]*>/i)?.[0];
  return input?.match(/\bvalue=["']?([^"'\s>]*)/i)?.[1];
}

/** `Set-Cookie` lines as `{name, value, attrs}` (attribute names lower-cased). */
export function setCookies(headers) {
  return headers.getSetCookie().map((line) => {
    const [pair, ...rest] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const attrs = {};
    for (const a of rest) {
      const i = a.indexOf('=');
      if (i < 0) attrs[a.toLowerCase()] = true;
      else attrs[a.slice(0, i).toLowerCase()] = a.slice(i + 1);
    }
    return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attrs, line };
  });
}

/** A form POST without a browser (`redirect: 'manual'`). */
export function postForm(url, fields, headers = {}) {
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields),
  });
}

/**
 * Signs in without a browser: GET the sign-in page (its csrf and `mmm_signin` cookie),
 * then POST the form with the host's `Origin` (`origin: null` in `headers` sends none).
 * `headers` go on both requests. Answers the POST's response.
 */
export async function rawSignIn(baseUrl, token, headers = {}) {
  const others = Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'origin'));
  const page = await fetch(new URL('/ui/signin', baseUrl), { headers: others });
  assert.equal(page.status, 200, 'GET /ui/signin');
  const csrf = csrfIn(await page.text());
  assert.ok(csrf, 'the sign-in form has a csrf field');
  const signin = setCookies(page.headers).find((c) => c.name === 'mmm_signin');
  const post = {
    origin: new URL(baseUrl).origin,
    ...(signin ? { cookie: `mmm_signin=${signin.value}` } : {}),
    ...headers,
  };
  if (post.origin === null) delete post.origin;
  return postForm(new URL('/ui/signin', baseUrl), { token, csrf }, post);
}

/**
 * Asserts the page answers `status` with a `#problem` (and, unless `heading` is null, the
 * error page's `<h1>`). Answers the problem's text.
 */
export async function assertErrorPage(page, response, status, heading) {
  assert.equal(response.status(), status, `${response.url()} answered ${response.status()}`);
  if (heading !== null) assert.equal((await page.locator('h1').first().innerText()).trim(), heading);
  const problem = (await page.locator('#problem').innerText()).trim();
  assert.ok(problem.length > 0, '#problem is empty');
  return problem;
}
