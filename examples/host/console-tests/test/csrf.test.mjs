// Forged POSTs (no csrf, another session's, a wrong one, a foreign Origin) answer 403 and
// change nothing; a developer's session is refused the author and admin pages.

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { axeCheck, screenshot } from '../lib/browser.mjs';
import { assertErrorPage, cookieHeader, csrfIn, postForm, signIn, useConsole } from '../lib/console.mjs';

const ctx = useConsole();
const ACTOR = 'dev@acme';
let session; // { cookie, csrf, token } of a developer signed in with the browser
let other; // another session's csrf

before(async () => {
  await ctx.ready;
  const signedIn = async (actor) => {
    const { context, page } = await ctx.page();
    const token = await ctx.host.token({ tenant: 'acme', roles: ['developer'], actor });
    await signIn(page, ctx.host.url, token);
    const csrf = await page.locator('form#signout input[name=csrf]').getAttribute('value');
    assert.ok(csrf, 'the sign-out form carries a csrf value');
    return { cookie: await cookieHeader(context), csrf, token, page };
  };
  session = await signedIn(ACTOR);
  other = await signedIn('eve@acme');
  assert.notEqual(other.csrf, session.csrf, 'two sessions have different csrf values');
});

const preferences = async () =>
  (await ctx.host.api(`/v1/mmm/actors/${encodeURIComponent(ACTOR)}/preferences`, { token: session.token })).body;

for (const path of ['/ui/signout', '/ui/preferences']) {
  // A snooze preset on /ui/preferences: it would change the stored preferences if taken.
  const fields = path === '/ui/preferences' ? { preset: '1h' } : {};
  test(`POST ${path}: no csrf, another session's, a wrong one, or a foreign Origin answer 403`, async () => {
    const before = await preferences();
    const origin = new URL(ctx.host.url).origin;
    for (const [name, csrf, from] of [
      ['no csrf', undefined, origin],
      ["another session's csrf", other.csrf, origin],
      ['a wrong csrf', 'x'.repeat(session.csrf.length), origin],
      ['Origin http://evil.example', session.csrf, 'http://evil.example'],
    ]) {
      const body = csrf === undefined ? fields : { ...fields, csrf };
      const res = await postForm(ctx.at(path), body, { cookie: session.cookie, origin: from });
      assert.equal(res.status, 403, `${name}: answered ${res.status}`);
      assert.match(await res.text(), /Forbidden/, `${name}: the 403 page says Forbidden`);
      assert.equal(res.headers.getSetCookie().some((c) => /^mmm_session=/.test(c)), false,
        `${name}: the session cookie is left alone`);
    }
    assert.deepEqual(await preferences(), before, 'the preferences did not change');
  });
}

test('the same sign-out with its csrf and Origin is taken (the refusals above are about csrf)', async () => {
  const res = await postForm(ctx.at('/ui/signout'), { csrf: session.csrf },
    { cookie: session.cookie, origin: new URL(ctx.host.url).origin });
  assert.equal(res.status, 303);
  assert.equal(new URL(res.headers.get('location'), ctx.host.url).pathname, '/ui/signin');
});

test("a developer gets 403 on the overview, the explorer and the playbooks, shown nothing of them", async () => {
  const { page } = other;
  const theirs = [
    'figure#chart-decisions', '#chart-actions', 'table#approvals', // overview
    'form#explore', 'textarea#signal', 'table#trace', // explorer
    'table#playbooks', 'tr[data-playbook]', // playbooks
  ];
  for (const path of ['/ui/overview', '/ui/explorer', '/ui/playbooks']) {
    const res = await page.goto(ctx.at(path));
    await assertErrorPage(page, res, 403, 'Forbidden');
    for (const sel of theirs) assert.equal(await page.locator(sel).count(), 0, `${path} shows ${sel}`);
    for (const id of ['nav-explorer', 'nav-playbooks', 'nav-overview']) {
      assert.equal(await page.locator(`#${id}`).count(), 0, `${path}: the nav offers #${id}`);
    }
  }
  await screenshot(page, 'forbidden-developer-overview');
  assert.deepEqual(await axeCheck(page), []);
});

test('a csrf value is in every POST form of the home page', async () => {
  const res = await fetch(ctx.at('/ui/'), { headers: { cookie: other.cookie }, redirect: 'manual' });
  assert.equal(res.status, 200);
  const html = await res.text();
  const forms = html.match(/<form\b[^>]*method=["']?post[^>]*>[\s\S]*?<\/form>/gi) ?? [];
  assert.ok(forms.length > 0, 'the home page has the sign-out form');
  for (const form of forms) assert.ok(csrfIn(form), `a POST form without csrf: ${form.slice(0, 120)}`);
});
