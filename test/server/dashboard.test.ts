/**
 * The web dashboard in a real browser (Debian's chromium, driven by playwright-core): after
 * logging in with an API token it shows executions with live progress, failures with their
 * reasons, nodes and schedules, from a real repository that a node and an in-process run are
 * changing, under the server's Content-Security-Policy (no inline script).
 */
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { count, noop, partitionedCount } from '../../examples/nightshift.config.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift } from '../../src/operator.ts';
import { startNode } from '../../src/cluster/node.ts';
import { createHttpApi } from '../../src/server/http-api.ts';
import { scheduleAdmin } from '../../src/scheduler/triggers.ts';
import { backends, waitFor } from '../support/backends.ts';
import { skipAllUnless } from '../support/skip.ts';

const CHROMIUM = '/usr/bin/chromium';
const [sqlite] = backends().filter((b) => b.name === 'sqlite');
const jobs = [noop, count, partitionedCount];

describe('web dashboard (chromium)', () => {
  skipAllUnless(existsSync(CHROMIUM), `no browser at ${CHROMIUM} (apt-get install chromium)`);
  afterAll(() => sqlite.cleanup());

  it('shows executions with live progress, failures with their reasons, nodes and schedules', async () => {
    const url = sqlite.freshUrl('dashboard');
    // Each part is closed in reverse order once the test ends, whatever failed.
    const cleanup: (() => Promise<unknown>)[] = [];
    onTestFinished(async () => {
      const failures: unknown[] = [];
      for (const step of cleanup.reverse()) await step().catch((err: unknown) => failures.push(err));
      if (failures.length) throw failures[0];
    });
    const ns = await createNightshift({ db: url, jobs, logger: silentLogger });
    cleanup.push(() => ns.close());
    const node = await startNode({ db: url, jobs, name: 'dash-node', logger: silentLogger });
    cleanup.push(() => node.shutdown());
    const app = createHttpApi(ns, { tokens: [{ name: 'victor', role: 'viewer', secret: 'victor-viewer-secret' }] });
    cleanup.push(() => app.close());
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    cleanup.push(() => browser.close());
    const done = await ns.run('count', { items: 20, tag: 'done' });
    const failed = await ns.run('count', { items: 20, chunk: 5, tag: 'bad', failAt: 7 });
    const partitioned = await ns.run('partitioned-count', { items: 40, grid: 4, tag: 'parts' });
    await scheduleAdmin({ db: ns.db, jobs }).add({ name: 'nightly', job: 'count', cron: '0 0 2 * * ?' });
    // Long enough to be still running when the test ends, however slow the machine.
    const running = await ns.start('count', { items: 1_000_000, chunk: 10, delayMs: 2, tag: 'live' });
    cleanup.push(async () => {
      await ns.stop(running.execution.id);
      expect((await running.done).status).toBe('STOPPED');
    });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });

    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && !/401/.test(m.text()) && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${base}/`);
    // Not logged in: the login form; a wrong token is refused, the right one opens the dashboard.
    await page.locator('#login-form').waitFor({ state: 'visible', timeout: 15_000 });
    await page.fill('#token', 'wrong');
    await page.click('#login-form button');
    await waitFor(async () => (await page.locator('#login-error').innerText()) === 'the API token is not valid', 15_000, 'the login error');
    await page.fill('#token', 'victor-viewer-secret');
    await page.click('#login-form button');
    await waitFor(async () => (await page.locator('#who').innerText()) === 'signed in as victor (viewer)', 15_000, 'the login');
    const [session] = (await page.context().cookies()).filter((c) => c.name === 'nightshift_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    const row = (table: string, key: string | number) => page.locator(`#${table} tbody tr[data-key="${key}"]`);
    const text = async (table: string, key: string | number) => ((await row(table, key).count()) ? await row(table, key).innerText() : '');

    await waitFor(async () => (await text('executions', done.id)).includes('COMPLETED'), 15_000, 'the completed execution');
    expect(await text('executions', done.id)).toContain('read 20, written 20 (count COMPLETED): count 100% (20 of 20 items)');
    expect(await text('executions', failed.id)).toContain(': count 25% (5 of 20 items)');
    // A partitioned job's items are counted once (its manager's sums), not again for each partition.
    expect(await text('executions', partitioned.id)).toContain('read 40, written 40 (count COMPLETED): count 100% (40 of 40 items)');
    expect(await text('failures', failed.id)).toContain('failing on purpose at item 7 (failAt=7)');
    expect(await text('nodes', 'dash-node')).toMatch(/dash-node\s+alive/);
    expect(await text('schedules', 'nightly')).toMatch(/nightly\s+count\s+cron 0 0 2 \* \* \?\s+active/);

    // The running execution's count of written items grows from one refresh to the next.
    const written = async () => Number(/written (\d+)/.exec(await text('executions', running.execution.id))?.[1] ?? -1);
    const first = await waitFor(async () => ((await written()) > 0 ? written() : undefined), 15_000, 'progress of the running execution');
    await waitFor(async () => (await written()) > first, 15_000, 'the progress to move on');
    expect(await text('executions', running.execution.id)).toContain('STARTED');
    expect(problems).toEqual([]);
    // Logging out ends the session: the login form again.
    await page.click('#logout');
    await page.locator('#login-form').waitFor({ state: 'visible', timeout: 15_000 });
    expect((await page.context().cookies()).filter((c) => c.name === 'nightshift_session')).toEqual([]);
  }, 60_000);
});
