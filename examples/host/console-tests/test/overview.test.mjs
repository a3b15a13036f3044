// The tenant overview (/ui/overview): after decisions through the API, an admin sees the
// four charts (inline SVG, described in words) and the open approvals; the period chooser
// works and refuses a bad period; another tenant's admin is refused.

import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { axeCheck, screenshot } from '../lib/browser.mjs';
import { assertErrorPage, signIn, useConsole } from '../lib/console.mjs';

const ctx = useConsole();
let multiplier; // the dual-channel action waiting for approval

const largePr = (actor) => ({
  tenant_id: 'acme', actor_id: actor, kind: 'pr.opened', source: 'scm',
  occurred_at: '2026-11-24T10:00:00Z', surface: 'pr_comment',
  repo: { id: 'acme/api', branch: 'feat/x' },
  payload: { lines_changed: 420, files_changed: 12 },
});
const forcePush = (actor) => ({
  tenant_id: 'acme', actor_id: actor, kind: 'branch.force_pushed',
  occurred_at: '2026-11-24T10:00:00Z',
  repo: { id: 'acme/api', branch: 'main' },
  payload: { branch_protected: true, commits_removed: 3, before_sha: 'abc123', after_sha: 'def456' },
});

before(async () => {
  await ctx.ready;
  const token = await ctx.host.token({ tenant: 'acme', roles: ['service'], actor: 'bot' });
  const decide = async (signal) => {
    const r = await ctx.host.api('/v1/mmm/decide', { token, method: 'POST', body: { signal } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  };
  const first = await decide(largePr('dev-1@acme'));
  await decide(largePr('dev-2@acme'));
  const pushed = await decide(forcePush('dev-7@acme'));
  multiplier = pushed.actions.find((a) => a.type === 'multiplier')?.action_id;
  assert.ok(multiplier, JSON.stringify(pushed));
  const outcome = await ctx.host.api(`/v1/mmm/actions/${first.actions[0].action_id}/outcome`, {
    token, method: 'POST', body: { result: 'accepted' },
  });
  assert.equal(outcome.status, 201, JSON.stringify(outcome.body));
});

const admin = async (tenant = 'acme') => {
  const { page } = await ctx.page();
  const token = await ctx.host.token({ tenant, roles: ['admin'], actor: `admin@${tenant}` });
  await signIn(page, ctx.host.url, token);
  return page;
};

test('an admin sees the four charts and the open approvals, accessible', async () => {
  const page = await admin();
  const res = await page.goto(ctx.at('/ui/overview'));
  assert.equal(res.status(), 200);
  for (const id of ['chart-decisions', 'chart-actions', 'chart-suppressions', 'chart-outcomes']) {
    const svg = page.locator(`figure#${id} svg[role=img]`);
    assert.equal(await svg.count(), 1, `#${id} has one svg image`);
    assert.equal(await svg.locator('title').first().count(), 1, `#${id} has a title`);
    const label = await svg.getAttribute('aria-labelledby');
    assert.ok(label && (await page.locator(`[id="${label}"]`).count()) === 1, `#${id}: aria-labelledby`);
  }
  assert.match(await page.locator('figure#chart-decisions desc').textContent(), /^3 decisions in all\./);
  assert.match(await page.locator('figure#chart-outcomes desc').textContent(), /accepted 1/);
  assert.equal(await page.locator('select#period').inputValue(), '7d');
  const row = page.locator(`table#approvals tr[data-action="${multiplier}"]`);
  assert.equal(await row.count(), 1, 'the open approval is listed');
  assert.match(await row.innerText(), /force-push-protected v1.*restore_branch.*none yet/s);
  assert.doesNotMatch(await page.locator('main').innerText(), /dev-\d@acme/, 'no actor is named');
  await screenshot(page, 'overview');
  assert.deepEqual(await axeCheck(page), []);
});

test('the period chooser shows the last 24 hours by hour, and refuses a bad period', async () => {
  const page = await admin();
  await page.goto(ctx.at('/ui/overview'));
  await page.selectOption('select#period', '24h');
  await Promise.all([
    page.waitForURL((u) => u.searchParams.get('period') === '24h'),
    page.click('form#overview-period button[type=submit]'),
  ]);
  assert.equal(await page.locator('figure#chart-decisions g.column').count(), 24);
  assert.match(await page.locator('figure#chart-decisions figcaption').innerText(), /per hour/);
  assert.match(await page.locator('figure#chart-decisions desc').textContent(), /^3 decisions in all\./);
  await screenshot(page, 'overview-24h');
  assert.deepEqual(await axeCheck(page), []);

  const bad = await page.goto(ctx.at('/ui/overview?period=1y'));
  const problem = await assertErrorPage(page, bad, 422, 'Not accepted');
  assert.match(problem, /period/);
});

test("another tenant's admin gets the 403 page, shown nothing of the tenant", async () => {
  const page = await admin('other');
  const res = await page.goto(ctx.at('/ui/overview?tenant=acme'));
  await assertErrorPage(page, res, 403, 'Forbidden');
  assert.equal(await page.locator('figure, table#approvals').count(), 0);
  assert.doesNotMatch(await page.locator('main').innerText(), /acme/);
});
