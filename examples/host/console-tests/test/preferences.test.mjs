// The preference centre in a browser: opting out of a category makes the actor's next
// decision suppress it with `opted_out`; snoozing and un-snoozing change what the next
// decision does; quiet hours and surfaces are one form each; "what I was shown" lists the
// actor's nudges with a one-click way to turn them off.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { axeCheck, screenshot } from '../lib/browser.mjs';
import { signIn, useConsole } from '../lib/console.mjs';

const ctx = useConsole();
const TENANT = 'acme';

/** A 420-line pull request by `actor`: the bundled `large-pr` playbook (category code-review) acts on it. */
const largePr = (actor) => ({
  tenant_id: TENANT, actor_id: actor, kind: 'pr.opened', source: 'scm',
  occurred_at: '2026-11-24T10:00:00Z', surface: 'pr_comment',
  repo: { id: `${TENANT}/api`, branch: 'feat/x' },
  payload: { lines_changed: 420, files_changed: 12 },
});

/** Decides the signal through the API; answers large-pr's acted count and suppression reasons. */
async function largePrOutcome(actor) {
  const token = await ctx.host.token({ tenant: TENANT, roles: ['service'], actor: 'bot' });
  const { status, body } = await ctx.host.api('/v1/mmm/decide', { token, method: 'POST', body: { signal: largePr(actor) } });
  assert.equal(status, 200, JSON.stringify(body));
  return {
    acted: body.actions.filter((a) => a.playbook.id === 'large-pr').length,
    reasons: body.suppressed.filter((s) => s.playbook.id === 'large-pr').map((s) => s.reason),
  };
}

async function preferencesOf(actor) {
  const { context, page } = await ctx.page();
  const token = await ctx.host.token({ tenant: TENANT, roles: ['developer'], actor });
  await signIn(page, ctx.host.url, token);
  await page.click('#nav-preferences');
  await page.waitForURL((u) => u.pathname === '/ui/preferences');
  return { context, page };
}

async function noSeriousViolations(page) {
  const violations = await axeCheck(page);
  assert.deepEqual(violations, [], JSON.stringify(violations, null, 2));
}

test('opt out of a category: the next decision suppresses it with opted_out; opt back in', async () => {
  const actor = 'ada@acme';
  assert.ok((await largePrOutcome(actor)).acted > 0, 'large-pr acts before the opt-out');
  const { page } = await preferencesOf(actor);
  // What I was shown: the nudge, why, and a button to turn its category off.
  const shown = page.locator('table#shown tbody tr', { hasText: 'large-pr' }).first();
  await shown.waitFor();
  await noSeriousViolations(page);
  await screenshot(page, 'preferences');
  await shown.getByRole('button', { name: 'Turn off code-review' }).click();
  await page.waitForURL((u) => u.pathname === '/ui/preferences');
  assert.match(await page.locator('#flash').innerText(), /opted out of “code-review”/);
  const row = page.locator('tr[data-category="code-review"]');
  assert.match(await row.innerText(), /opted out/);
  const after = await largePrOutcome(actor);
  assert.equal(after.acted, 0);
  assert.ok(after.reasons.length > 0 && after.reasons.every((r) => r === 'opted_out'), after.reasons.join());
  await screenshot(page, 'preferences-opted-out');
  await row.getByRole('button', { name: 'Opt back in to code-review' }).click();
  assert.match(await page.locator('#flash').innerText(), /opted back in/);
  assert.ok(!(await largePrOutcome(actor)).reasons.includes('opted_out'));
});

test('snooze for an hour, then end the snooze', async () => {
  const actor = 'bob@acme';
  const { page } = await preferencesOf(actor);
  assert.equal((await page.locator('#snooze-status').innerText()).trim(), 'Not snoozed.');
  await page.click('#snooze button[value="1h"]');
  await page.waitForURL((u) => u.pathname === '/ui/preferences');
  assert.match(await page.locator('#snooze-status').innerText(), /^Snoozed until /);
  assert.match(await page.locator('#flash').innerText(), /Snoozed until/);
  assert.ok((await largePrOutcome(actor)).reasons.includes('snoozed'));
  await noSeriousViolations(page);
  await screenshot(page, 'preferences-snoozed');
  await page.click('#unsnooze button[type=submit]');
  await page.waitForURL((u) => u.pathname === '/ui/preferences');
  assert.equal((await page.locator('#snooze-status').innerText()).trim(), 'Not snoozed.');
  assert.ok(!(await largePrOutcome(actor)).reasons.includes('snoozed'));
});

test('quiet hours with a time zone, and preferred surfaces, each one form', async () => {
  const actor = 'cy@acme';
  const { page } = await preferencesOf(actor);
  await page.fill('#quiet-start', '19:00');
  await page.fill('#quiet-end', '08:00');
  await page.selectOption('#quiet-timezone', 'Europe/Berlin');
  await page.click('#quiet-hours button[value="save"]');
  await page.waitForURL((u) => u.pathname === '/ui/preferences');
  assert.match(await page.locator('#flash').innerText(), /19:00 to 08:00 \(Europe\/Berlin\)/);
  await page.check('#surfaces input[value="ide"]');
  await page.click('#surfaces button[type=submit]');
  await page.waitForURL((u) => u.pathname === '/ui/preferences');
  assert.match(await page.locator('#flash').innerText(), /only on: ide/);
  const token = await ctx.host.token({ tenant: TENANT, roles: ['developer'], actor });
  const { body } = await ctx.host.api(`/v1/mmm/actors/${encodeURIComponent(actor)}/preferences`, { token });
  assert.deepEqual(body.quiet_hours, { start: '19:00', end: '08:00', timezone: 'Europe/Berlin' });
  assert.deepEqual(body.preferred_surfaces, ['ide']);
  // The keyboard reaches every control: tab from the snooze button to the next one.
  await page.focus('#snooze button[value="1h"]');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('value')), 'tomorrow');
});
