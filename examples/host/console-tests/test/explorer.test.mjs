// The decision explorer and the playbooks area: explore a decision and find the
// suppression reason on the page; validate a broken draft and see the diagnostic at its
// line; publish a draft and see the live version change. A screenshot and an axe check
// of each page.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { axeCheck, screenshot } from '../lib/browser.mjs';
import { assertErrorPage, signIn, useConsole } from '../lib/console.mjs';

const ctx = useConsole();

const largePr = (actor, lines, files = 12) => JSON.stringify({
  tenant_id: 'acme', actor_id: actor, kind: 'pr.opened', source: 'scm',
  occurred_at: '2026-11-24T10:00:00Z', surface: 'pr_comment',
  repo: { id: 'acme/api', branch: 'feat/x' },
  payload: { lines_changed: lines, files_changed: files },
}, null, 2);

/** A draft of large-pr for tenant acme with a 100-line threshold; `when` is line 12. */
const draft = (version, when = 'signal.payload?.lines_changed > 100') => [
  'apiVersion: mmm/v1', 'kind: Playbook', 'metadata:', '  id: large-pr', `  version: ${version}`,
  '  tenant: acme', '  status: draft', '  category: code-review', '  description: A 100-line trial.',
  'spec:', '  triggers: [pr.opened]', `  when: ${when}`, '  actions:', '    - type: mirror',
  '      surfaces: [pr_comment, ide]', '      title: Trial change',
  '      text: "Changes {{ signal.payload.lines_changed }} lines."', '',
].join('\n');

async function noSeriousViolations(page, name) {
  await screenshot(page, name);
  assert.deepEqual(await axeCheck(page), [], `${name}: axe`);
}

test('explore a decision and find the suppression reason on the page', async () => {
  // The developer opts out of code-review in the preference centre.
  const dev = await ctx.page();
  await signIn(dev.page, ctx.host.url, await ctx.host.token({ roles: ['developer'], actor: 'dev-42' }));
  await dev.page.goto(ctx.at('/ui/preferences'));
  await dev.page.click('tr[data-category="code-review"] button[name=action][value=opt_out]');
  await dev.page.locator('#flash').waitFor();

  const { page } = await ctx.page();
  await signIn(page, ctx.host.url, await ctx.host.token({ roles: ['author'], actor: 'alice' }));
  await page.click('#nav-explorer');
  await page.waitForURL((u) => u.pathname === '/ui/explorer');
  await noSeriousViolations(page, 'explorer');
  await page.fill('#signal', largePr('dev-42', 420));
  await page.selectOption('#set', 'live');
  await page.click('#explore button[name=intent][value=decide]');
  await page.locator('table#trace').waitFor();
  const row = page.locator('table#suppressed tr[data-reason="opted_out"]').first();
  assert.match(await row.innerText(), /large-pr v2[\s\S]*opted_out/);
  assert.match(await page.locator('table#trace').innerText(), /suppressed:opted_out/);
  await noSeriousViolations(page, 'explorer-decision');

  // Another actor acts: the actions with their previews; markup in the signal stays text.
  await page.fill('#signal', largePr('dev-43', 420, '<img src=x onerror=alert(1)>'));
  await page.click('#explore button[name=intent][value=decide]');
  await page.locator('#actions section.action').first().waitFor();
  assert.equal(await page.locator('#actions img').count(), 0, 'no markup from the signal');
  assert.match(await page.locator('#actions .rendering[data-surface=pr_comment]').first().innerText(), /<img src=x/);
  await noSeriousViolations(page, 'explorer-actions');

  // A developer gets the 403 page.
  const res = await dev.page.goto(ctx.at('/ui/explorer'));
  await assertErrorPage(dev.page, res, 403, 'Forbidden');
});

test('validate a broken draft and see the diagnostic at its line', async () => {
  const { page } = await ctx.page();
  await signIn(page, ctx.host.url, await ctx.host.token({ roles: ['author'], actor: 'alice' }));
  await page.click('#nav-playbooks');
  await page.waitForURL((u) => u.pathname === '/ui/playbooks');
  assert.ok(await page.locator('table#playbooks tr[data-playbook="large-pr"]').count() > 0);
  await noSeriousViolations(page, 'playbooks');
  await page.goto(ctx.at('/ui/playbooks/new'));
  await page.fill('textarea#yaml', draft(1, 'signal.payload?.lines_changed >'));
  await page.click('#draft button[name=intent][value=validate]');
  const line = page.locator('ol#source li#L12.has-diagnostic');
  await line.waitFor();
  assert.match(await line.locator('.diag').first().innerText(), /column/);
  assert.ok(await page.locator('ol#diagnostics li[data-line="12"]').count() > 0);
  await noSeriousViolations(page, 'playbook-draft-diagnostics');
});

test('publish a draft and see the live version change', async () => {
  const author = await ctx.page();
  await signIn(author.page, ctx.host.url, await ctx.host.token({ roles: ['author'], actor: 'alice' }));
  await author.page.goto(ctx.at('/ui/playbooks/new'));
  await author.page.fill('textarea#yaml', draft(7));
  await author.page.click('#draft button[name=intent][value=save]');
  await author.page.waitForURL((u) => u.pathname === '/ui/playbooks/acme/large-pr/7');
  assert.match(await author.page.locator('#flash').innerText(), /Saved large-pr v7 as a draft/);
  assert.equal(await author.page.locator('#publish').count(), 0, 'an author has no publish button');

  const { page } = await ctx.page();
  const token = await ctx.host.token({ roles: ['admin'], actor: 'ada' });
  await signIn(page, ctx.host.url, token);
  await page.goto(ctx.at('/ui/playbooks/acme/large-pr/7'));
  await noSeriousViolations(page, 'playbook-version');
  await page.click('#publish');
  await page.locator('form#confirm').waitFor();
  assert.match(await page.locator('form#confirm').innerText(), /large-pr v7 becomes live for tenant acme/);
  await noSeriousViolations(page, 'playbook-confirm');
  const before = await ctx.host.api('/v1/mmm/playbooks/large-pr', { token });
  assert.equal(before.body.serving.tenant, '*', 'the confirmation page changed nothing');
  await page.click('form#confirm button[type=submit]');
  await page.waitForURL((u) => u.pathname === '/ui/playbooks/acme/large-pr/7');
  assert.match(await page.locator('#flash').innerText(), /Published large-pr v7; the live version is v7/);
  const after = await ctx.host.api('/v1/mmm/playbooks/large-pr', { token });
  assert.deepEqual(after.body.serving, { tenant: 'acme', version: 7 });
  await page.goto(ctx.at('/ui/playbooks'));
  assert.match(await page.locator('tr[data-playbook="large-pr"][data-tenant="acme"] .live').innerText(), /v7/);
});
