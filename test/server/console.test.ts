/**
 * The web console in a real browser (Debian's Chromium driven by playwright-core), against a real
 * `nightshift serve` process and two real `nightshift node` processes on PostgreSQL: logging in
 * with a token, a viewer who sees everything and can act on nothing, an operator who launches a
 * job from its form, watches its progress, stops it, restarts it and finds it all in the audit
 * log, a partitioned job's timeline across both nodes, markup in user-controlled fields shown as
 * text, and screenshots of every page at desktop and phone widths (test-output/console/).
 */
import { hostname, userInfo } from 'node:os';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { backends, waitFor } from '../support/backends.ts';
import { CHROMIUM, OPERATOR, VIEWER, call, hasChromium, logIn, shoot, startServe, type Server } from '../support/console.ts';
import { skipAllUnless } from '../support/skip.ts';
import { kill, killAll, startNode } from '../support/node-procs.ts';
import { runCli } from '../cli/run-cli.ts';

const pg = backends().find((b) => b.name === 'postgres')!;

/** Markup that would run or show if any field were rendered as HTML. */
const XSS = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold</b>`;

interface Execution {
  id: number;
  status: string;
  steps: { name: string; node: string | null; partitions?: { node: string | null }[] }[];
}

let url: string;
let server: Server;
let browser: Browser;
const contexts: BrowserContext[] = [];

const api = <T = unknown>(method: string, path: string, body?: unknown, secret = OPERATOR.secret) => call<T>(server.base, secret, method, path, body);

async function submit(job: string, params: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<number> {
  const r = await api<{ id: number }>('POST', `/api/jobs/${job}/executions`, { params, ...extra });
  expect(r.status, JSON.stringify(r.json)).toBe(202);
  return r.json.id;
}

async function execution(id: number): Promise<Execution> {
  return (await api<Execution>('GET', `/api/executions/${id}`)).json;
}

const ended = (id: number, statuses: string[], timeoutMs = 20_000) =>
  waitFor(async () => {
    const e = await execution(id);
    return statuses.includes(e.status) ? e : null;
  }, timeoutMs, `execution ${id} to be ${statuses.join(' or ')}`);

/** Stops the executions that are still running and waits for them to end. */
async function stopAll(ids: number[]): Promise<void> {
  for (const id of ids) await api('POST', `/api/executions/${id}/stop`, {});
  for (const id of ids) await ended(id, ['STOPPED', 'COMPLETED', 'FAILED'], 30_000);
}

/** A new browser session (its own cookies) whose page errors fail the test. */
async function newPage(): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  contexts.push(context);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(e.message));
  // 401 before logging in and 403 when the test probes the API are expected answers.
  page.on('console', (m) => m.type() === 'error' && !/status of 40[13]/.test(m.text()) && problems.push(m.text()));
  return { page, problems };
}

const open = async (page: Page, hash: string) => {
  await page.evaluate((h) => (location.hash = h), hash);
  await page.locator('main h1').first().waitFor();
};

/** The number in a progress element's data-done, or -1 when there is none yet. */
const doneOf = async (page: Page) => Number((await page.locator('#steps .progress').first().getAttribute('data-done', { timeout: 500 }).catch(() => null)) ?? -1);

describe('web console (chromium, postgres, real serve and node processes)', () => {
  skipAllUnless(hasChromium, `no browser at ${CHROMIUM} (apt-get install chromium)`);
  beforeAll(async () => {
    if (!hasChromium) return; // every test is skipped, with the reason above
    url = pg.freshUrl('console');
    // All at once: the schema is brought up under an advisory lock, by whichever comes first.
    for (const name of ['node-a', 'node-b']) startNode(url, name, { args: ['--concurrency', '3'] });
    [server, browser] = await Promise.all([startServe(url), chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })]);
    await waitFor(async () => (await api<{ status: string }[]>('GET', '/api/nodes')).json.filter((n) => n.status === 'alive').length === 2, 45_000, 'both nodes alive');
  }, 100_000);

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await server?.stop();
    await killAll();
    await pg.cleanup();
  }, 30_000);

  it('logs in with a token (a wrong one is refused); a viewer sees everything but has no action, and the API answers it 403', async () => {
    const failed = await submit('count', { items: 30, chunk: 5, tag: 'viewer-failed', failAt: 12 });
    await ended(failed, ['FAILED']);
    await ended(await submit('count', { items: 5, tag: 'viewer-newer' }), ['COMPLETED']);
    expect((await api('PUT', '/api/schedules/nightly', { job: 'count', cron: '0 0 2 * * ?', params: { tag: 'nightly' } })).status).toBe(201);

    const { page, problems } = await newPage();
    await page.goto(`${server.base}/`);
    await page.locator('#token').fill('not-a-token');
    await page.locator('#login-form button[type=submit]').click();
    await expect.poll(() => page.locator('#login-form [role=alert]').textContent()).toContain('not valid');
    await logIn(page, server.base, VIEWER.secret);
    expect(await page.locator('#who').textContent()).toContain('viewer');

    // Everything is visible...
    await open(page, `#/executions/${failed}`);
    await page.locator('.title-row .status', { hasText: 'FAILED' }).waitFor();
    expect(await page.locator('pre.exit-description').textContent()).toMatch(/12/);
    // The failure names the step that failed and where; the stack trace is not stored, and it says so.
    expect(await page.locator('#failure .failed-step[data-step=count]').textContent()).toMatch(/Failed in step count on node-[ab] at \d{4}-/);
    expect(await page.locator('#failure').textContent()).toContain('stack trace is in the log of node node-');
    await open(page, '#/schedules');
    await page.locator('#schedules tr[data-name=nightly]').waitFor();
    await open(page, '#/nodes');
    await page.locator('#nodes tr[data-name=node-a]').waitFor();
    await page.locator('#nodes tr[data-name=node-b]').waitFor();
    await open(page, '#/jobs/count');
    await page.locator('#history a', { hasText: `#${failed}` }).waitFor();
    await open(page, '#/audit');
    await page.locator('#audit td', { hasText: 'job.submit' }).first().waitFor();
    // ... and nothing can be done: no action anywhere,
    await open(page, `#/executions/${failed}`);
    await page.locator('#steps').waitFor();
    expect(await page.locator('#actions').count()).toBe(0);
    expect(await page.getByRole('button', { name: /restart|abandon|stop/i }).count()).toBe(0);
    await open(page, '#/jobs/count');
    await page.locator('#history').waitFor();
    expect(await page.locator('#launch-form').count()).toBe(0);
    await open(page, '#/schedules');
    await page.locator('#schedules tr[data-name=nightly]').waitFor();
    expect(await page.getByRole('button', { name: /pause|trigger|remove/i }).count()).toBe(0);
    await open(page, '#/nodes');
    await page.locator('#nodes tr[data-name=node-a]').waitFor();
    expect(await page.getByRole('button', { name: /drain/i }).count()).toBe(0);
    // and the API refuses the viewer's session (the cookie) and token alike.
    const fromPage = await page.evaluate(async (id) => {
      const post = (path: string) => fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then((r) => r.status);
      return [await post(`api/executions/${id}/restart`), await post(`api/executions/${id}/abandon`), await post('api/jobs/noop/executions'), await post('api/schedules/nightly/pause')];
    }, failed);
    expect(fromPage).toEqual([403, 403, 403, 403]);
    expect((await api('POST', `/api/executions/${failed}/restart`, {}, VIEWER.secret)).status).toBe(403);
    expect((await execution(failed)).status).toBe('FAILED');

    // The list pages by cursor: older, older, and back.
    await open(page, '#/executions?limit=1');
    const ids = () => page.locator('#executions tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    await page.locator('#executions tbody tr[data-id]').first().waitFor();
    const first = await ids();
    await page.getByRole('button', { name: 'Older →' }).click();
    // Wait for the next page's rows, not for the moment the old ones are gone.
    await expect.poll(async () => { const x = await ids(); return x.length > 0 && x[0] !== first[0]; }).toBe(true);
    const second = await ids();
    expect(Number(second[0])).toBeLessThan(Number(first[0]));
    await page.getByRole('button', { name: '← Newer' }).click();
    await expect.poll(ids).toEqual(first);
    expect(await page.getByRole('button', { name: '← Newer' }).count()).toBe(0);
    // The filters narrow it: a status, then text in the parameters.
    await open(page, '#/executions');
    await page.getByLabel('Status').selectOption('FAILED');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(ids).toEqual([String(failed)]);
    await page.getByLabel('Parameters contain').fill('no-such-text');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.locator('#executions td.empty').waitFor();

    // Logging out ends the session: the login page again, and the API answers 401.
    await page.locator('#logout').click();
    await page.locator('#login-form').waitFor();
    expect(await page.evaluate(() => fetch('api/executions').then((r) => r.status))).toBe(401);
    expect(problems).toEqual([]);
  }, 40_000);

  it('an operator launches a job from its form, watches its progress move, stops it, restarts it, and sees it in the audit log', async () => {
    const { page, problems } = await newPage();
    await logIn(page, server.base, OPERATOR.secret);
    await open(page, '#/jobs/count');
    const form = page.locator('#launch-form');
    // Typed inputs from the schema: numbers for ints, defaults filled in.
    expect(await form.locator('#param-items').getAttribute('type')).toBe('number');
    expect(await form.locator('#param-items').inputValue()).toBe('1000');
    await form.locator('#param-items').fill('1000000');
    await form.locator('#param-chunk').fill('20');
    await form.locator('#param-delayMs').fill('2');
    await form.locator('#param-tag').fill('operator-run');
    await form.getByRole('button', { name: 'Launch count' }).click();
    await page.waitForURL(/#\/executions\/\d+$/);
    const id = Number(/(\d+)$/.exec(page.url())![1]);
    // Whatever fails below, the long run does not go on into later tests (their pages would never be quiet).
    const launched = [id];
    onTestFinished(() => stopAll(launched));

    // Progress moves, live: done of total, a rate and an ETA.
    const first = await waitFor(async () => {
      const done = await doneOf(page);
      return done > 0 ? done : null;
    }, 20_000, 'progress');
    await waitFor(async () => (await doneOf(page)) > first, 10_000, 'progress to move');
    // The rate and ETA show once the step has run half a second, or the page has a second of samples.
    const progressText = page.locator('#steps .progress-text').first();
    await progressText.locator('.eta').waitFor({ timeout: 10_000 });
    const text = await progressText.textContent();
    expect(text).toMatch(/of 1,000,000 \(\d+%\)/);
    expect(text).toMatch(/\d items\/s/);
    expect(text).toMatch(/ETA \S/);

    // Stop, with a confirmation.
    await page.locator('#actions').getByRole('button', { name: 'Stop' }).click();
    const dialog = page.locator('dialog[open]');
    await dialog.getByText('next chunk boundary').waitFor();
    await dialog.getByRole('button', { name: 'Stop' }).click();
    await page.locator('.title-row .status', { hasText: 'STOPPED' }).waitFor({ timeout: 15_000 });
    const stoppedAt = await doneOf(page);

    // Restart: a new execution of the instance, which goes on from where the first stopped.
    await page.locator('#actions').getByRole('button', { name: 'Restart' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Restart' }).click();
    await page.waitForURL((u) => /#\/executions\/\d+$/.test(u.hash) && !u.hash.endsWith(`/${id}`));
    const restarted = Number(/(\d+)$/.exec(page.url())![1]);
    launched.push(restarted);
    // The page links the executions of the instance: the stopped one, then this one.
    await page.locator(`#instance-runs a[href="#/executions/${id}"]`).waitFor();
    expect(await page.locator('#instance-runs [aria-current=page]').textContent()).toBe(`#${restarted}`);
    await waitFor(async () => (await doneOf(page)) > stoppedAt, 20_000, 'the restarted execution to go on');
    await page.locator('#actions').getByRole('button', { name: 'Stop' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Stop' }).click();
    await page.locator('.title-row .status', { hasText: 'STOPPED' }).waitFor({ timeout: 15_000 });

    // The first execution is no longer its instance's newest: it offers no restart or abandon,
    // and points at the one that acts for the instance.
    await open(page, `#/executions/${id}`);
    await page.locator(`#actions a[href="#/executions/${restarted}"]`).waitFor();
    expect(await page.locator('#actions button').count()).toBe(0);

    // The audit log names who did each of it.
    await open(page, '#/audit');
    const rows = page.locator('#audit tbody tr');
    await rows.filter({ hasText: `execution ${restarted}` }).filter({ hasText: 'execution.stop' }).waitFor();
    const audit = (await rows.allTextContents()).filter((t) => t.includes('olga'));
    expect(audit.some((t) => t.includes('job.submit') && t.includes('job count') && t.includes('operator-run'))).toBe(true);
    expect(audit.some((t) => t.includes('execution.stop') && t.includes(`execution ${id}`))).toBe(true);
    expect(audit.some((t) => t.includes('execution.restart') && t.includes(`execution ${id}`))).toBe(true);
    expect(audit.some((t) => t.includes('execution.stop') && t.includes(`execution ${restarted}`))).toBe(true);
    expect(audit.some((t) => t.includes('login'))).toBe(true);
    expect(problems).toEqual([]);
  }, 60_000);

  it("launches a job's next instance from its form: a launch refused as already completed points at the checkbox, which sends next: true (screenshots)", async () => {
    const params = { items: 2, chunk: 2, tag: 'next-form' };
    const first = await submit('count', params);
    await ended(first, ['COMPLETED']);
    const { page, problems } = await newPage();
    await logIn(page, server.base, OPERATOR.secret);
    await open(page, '#/jobs/count');
    const form = page.locator('#launch-form');
    const checkbox = form.getByLabel('Run as a new instance (next run.id)');
    expect(await checkbox.isChecked()).toBe(false);
    for (const [name, value] of Object.entries(params)) await form.locator(`#param-${name}`).fill(String(value));
    await form.getByRole('button', { name: 'Launch count' }).click();
    // The same instance again: refused, the error by the form, and a hint naming the checkbox.
    const alert = form.locator('[role=alert]');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(new RegExp(`^job count already completed for parameters chunk=2 items=2 tag=next-form \\(execution ${first}\\); .*\`next: true\` in the HTTP API\\), to run a new instance$`));
    expect(await form.locator('#next-hint').textContent()).toBe('To run it again, tick “Run as a new instance (next run.id)” above and launch.');
    await shoot(page, 'job-launch-refused');
    // Ticked, the refusal and the hint go (they are answered), and the launch is the job's next instance.
    await checkbox.check();
    await alert.waitFor({ state: 'detached' });
    expect(await form.locator('#next-hint').count()).toBe(0);
    await shoot(page, 'job-launch-next');
    await form.getByRole('button', { name: 'Launch count' }).click();
    await page.waitForURL(/#\/executions\/\d+$/);
    const id = Number(/(\d+)$/.exec(page.url())![1]);
    const next = await ended(id, ['COMPLETED']);
    const { json: launched } = await api<{ instanceId: number; parameters: Record<string, unknown> }>('GET', `/api/executions/${id}`);
    const { json: original } = await api<{ instanceId: number }>('GET', `/api/executions/${first}`);
    expect(next.status).toBe('COMPLETED');
    expect(launched.instanceId).not.toBe(original.instanceId);
    expect(launched.parameters).toMatchObject({ ...params, 'run.id': expect.any(Number) });
    const { json: audit } = await api<{ detail: { execution?: number; next?: boolean } | null }[]>('GET', '/api/audit?action=job.submit');
    expect(audit.find((a) => a.detail?.execution === id)?.detail).toMatchObject({ params, next: true });
    // The refusal is an answer the test asked for; the browser logs it as an error.
    expect(problems.filter((p) => !/status of 409/.test(p))).toEqual([]);
  }, 60_000);

  it("shows a partitioned job's timeline with its partitions on both nodes", async () => {
    const id = await submit('partitioned-count', { items: 2400, grid: 8, delayMs: 2, tag: 'timeline' });
    const done = await ended(id, ['COMPLETED'], 40_000);
    const partitionNodes = new Set(done.steps.flatMap((s) => (s.partitions ?? []).map((p) => p.node)));
    expect([...partitionNodes].sort(), 'the cluster spread the partitions').toEqual(['node-a', 'node-b']);

    const { page, problems } = await newPage();
    await logIn(page, server.base, OPERATOR.secret);
    await open(page, `#/executions/${id}`);
    const bars = page.locator('.timeline .tl-bar.partition');
    await expect.poll(() => bars.count()).toBe(8);
    const shown = new Set(await bars.evaluateAll((els) => els.map((e) => e.getAttribute('data-node'))));
    expect([...shown].sort()).toEqual(['node-a', 'node-b']);
    expect(await page.locator('.timeline .tl-lane').count()).toBe(2);
    // Counted once: the manager's written count is the partitions' sum, not twice it.
    expect(await page.locator('#steps tbody tr').first().locator('td.num').nth(1).textContent()).toBe('2,400');
    expect(problems).toEqual([]);
  }, 60_000);

  it('shows markup in user-controlled fields as text, on every page', async () => {
    const id = await submit('count', { items: 10, tag: XSS }, { key: XSS });
    await ended(id, ['COMPLETED']);
    expect((await api('PUT', '/api/schedules/markup', { job: 'count', cron: '0 0 3 * * ?', params: { tag: XSS } })).status).toBe(201);
    const { page, problems } = await newPage();
    await logIn(page, server.base, OPERATOR.secret);
    for (const hash of ['#/executions', `#/executions/${id}`, '#/jobs/count', '#/schedules', '#/schedules/markup', '#/audit', `#/executions?q=${encodeURIComponent('<b>bold</b>')}`]) {
      await open(page, hash);
      await page.getByText('<b>bold</b>').first().waitFor({ timeout: 10_000 }).catch(() => {
        throw new Error(`${hash}: the markup is not shown as text`);
      });
      expect(await page.locator('main img[src=x], main b', { hasText: 'bold' }).count(), hash).toBe(0);
      expect(await page.locator('main img[src=x]').count(), hash).toBe(0);
      expect(await page.evaluate(() => (window as { __xss?: number }).__xss), hash).toBeUndefined();
    }
    expect(problems).toEqual([]);
  }, 40_000);

  it('updates from the event stream: no request while nothing changes, and a new execution shows without reloading', async () => {
    const { page, problems } = await newPage();
    const requests: number[] = [];
    page.on('request', (r) => /\/api\/(?!events)/.test(r.url()) && requests.push(Date.now()));
    await logIn(page, server.base, VIEWER.secret);
    await open(page, '#/executions');
    await page.locator('#executions tbody tr').first().waitFor();
    // Quiet: once the page has loaded, nothing is asked while nothing changes.
    await waitFor(() => requests.length > 0 && Date.now() - requests[requests.length - 1] > 1500, 15_000, 'the page to settle');
    const before = requests.length;
    await waitFor(() => Date.now() - requests[requests.length - 1] > 3000, 10_000, 'three quiet seconds');
    expect(requests.length).toBe(before);
    // A change: the page reads the list again (once, not once per event) and shows it.
    const id = await submit('noop', {});
    await page.locator(`#executions tr[data-id="${id}"]`).waitFor({ timeout: 10_000 });
    await ended(id, ['COMPLETED']);
    await page.locator(`#executions tr[data-id="${id}"] .status`, { hasText: 'COMPLETED' }).waitFor({ timeout: 10_000 });
    expect(requests.length - before).toBeLessThanOrEqual(4);
    expect(problems).toEqual([]);
  }, 40_000);

  it('is usable by keyboard, and every page looks right at 1280×800 and at phone width (screenshots)', async () => {
    // Something running, so that the overview shows live progress.
    const running = await submit('count', { items: 1_000_000, chunk: 20, delayMs: 2, tag: 'screens' });
    onTestFinished(() => stopAll([running]));
    // Triggers of every kind for the schedules page: a one-shot to come, a one-shot that has fired
    // (it never fires again: no next fire time), and a cron in a time zone bounded by startAt and
    // endAt (the longest timing text).
    const triggers: [string, Record<string, unknown>][] = [
      ['once-later', { job: 'noop', at: '2099-01-15T10:00:00Z' }],
      ['once-fired', { job: 'noop', at: new Date(Date.now() + 1000).toISOString() }],
      ['bounded', { job: 'noop', cron: '0 30 1 * * ?', tz: 'Europe/Paris', startAt: '2099-01-01T00:00:00Z', endAt: '2099-03-31T00:00:00Z' }],
    ];
    for (const [name, body] of triggers) expect((await api('PUT', `/api/schedules/${name}`, body)).status).toBe(201);
    onTestFinished(async () => {
      for (const [name] of triggers) await api('DELETE', `/api/schedules/${name}`);
    });
    // Actions from the command line, for the audit page: one done, one refused.
    for (const args of [['schedule', 'add', 'cli-hourly', '--job', 'noop', '--every', '1h'], ['stop', '999999']]) {
      await runCli([...args, '--db', url, '--config', 'examples/nightshift.config.ts']);
    }
    const { page, problems } = await newPage();
    await page.goto(`${server.base}/`);
    await page.locator('#login-form').waitFor();
    await shoot(page, 'login');
    // Keyboard: the token field has focus and Enter logs in. The skip link is the first thing Tab
    // reaches on a page (the first focusable element), and the focused element shows a ring.
    await page.keyboard.type(OPERATOR.secret);
    await page.keyboard.press('Enter');
    await page.locator('#who').waitFor();
    const firstFocusable = await page.evaluate(
      () => document.querySelector('a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])')?.textContent,
    );
    expect(firstFocusable).toBe('Skip to content');
    await page.locator('a.skip').focus();
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).toBe('solid');
    await page.evaluate(() => (document.activeElement as HTMLElement).blur());
    await waitFor(async () => (await page.locator('#running .progress[data-done]').count()) > 0, 20_000, 'the overview to show progress');
    await shoot(page, 'overview');
    const { json: list } = await api<{ id: number; jobName: string; status: string }[]>('GET', '/api/executions?limit=100');
    const partitioned = list.find((e) => e.jobName === 'partitioned-count')!;
    const failed = list.find((e) => e.status === 'FAILED')!;
    const pages: [string, string, string][] = [
      ['executions', '#/executions', '#executions'],
      ['execution-running', `#/executions/${running}`, '#steps .progress'],
      ['execution-partitioned', `#/executions/${partitioned.id}`, '.timeline'],
      ['execution-failed', `#/executions/${failed.id}`, 'pre.exit-description'],
      ['jobs', '#/jobs', '#jobs'],
      ['job', '#/jobs/count', '#history'],
      ['schedules', '#/schedules', '#schedules tr[data-name=once-fired]'],
      ['schedule-once-fired', '#/schedules/once-fired', '#schedule-settings'],
      ['schedule-bounded', '#/schedules/bounded', '#schedule-settings'],
      ['nodes', '#/nodes', '#nodes'],
      ['audit', '#/audit', '#audit'],
    ];
    // Each example job has a description, shown in the Jobs list.
    await open(page, '#/jobs');
    await page.locator('#jobs tbody tr').first().waitFor();
    for (const row of await page.locator('#jobs tbody tr').all()) expect((await row.locator('td').nth(1).textContent())!.trim(), (await row.textContent()) ?? '').not.toBe('');
    type Trigger = { lastFireTime: string | null; nextFireTime: string | null };
    const fired = await waitFor(async () => {
      const t = (await api<Trigger>('GET', '/api/schedules/once-fired')).json;
      return t.lastFireTime ? t : null;
    }, 20_000, 'the one-shot to fire');
    expect(fired.nextFireTime).toBeNull();
    for (const [name, hash, ready] of pages) {
      await open(page, hash);
      await page.locator(ready).first().waitFor();
      await shoot(page, name);
    }
    // The audit page names a CLI action's user and host, from cli, without a role or status.
    const cells = async (target: string) => page.locator('#audit tbody tr', { hasText: target }).first().locator('td').allTextContents();
    expect((await cells('schedule cli-hourly')).slice(1)).toEqual([
      `cli:${userInfo().username}@${hostname()}`, 'schedule.put', expect.stringMatching(/^schedule cli-hourly\{"result":"created"/), 'cli', 'ok',
    ]);
    expect((await cells('execution 999999')).slice(1)).toEqual([`cli:${userInfo().username}@${hostname()}`, 'execution.stop', 'execution 999999', 'cli', 'refusedno execution with id 999999']);
    // The schedules list shows each kind of trigger in its columns, and at phone width every cell
    // of theirs stays within the card (no sideways scrolling, no text cut off).
    await open(page, '#/schedules');
    const cell = (name: string, column: string) => page.locator(`#schedules tr[data-name=${name}] td[data-label="${column}"]`);
    await cell('once-fired', 'Next fire time').waitFor();
    const firedAt = fired.lastFireTime!.replace('T', ' ').slice(0, 19);
    expect(await cell('once-later', 'Timing').textContent()).toBe('once at 2099-01-15 10:00:00');
    expect(await cell('once-later', 'Next fire time').textContent()).toBe('2099-01-15 10:00:00');
    expect(await cell('once-later', 'Last fired').textContent()).toBe('—');
    expect(await cell('once-fired', 'Timing').textContent()).toMatch(/^once at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    // A one-shot that fired never fires again: it says so, where a bare dash looked like a time missing.
    expect(await cell('once-fired', 'State').textContent()).toBe('done');
    expect(await cell('once-fired', 'Next fire time').textContent()).toBe('— (done)');
    expect(await cell('once-later', 'State').textContent()).toBe('active');
    expect(await cell('once-fired', 'Last fired').textContent()).toMatch(new RegExp(`^${firedAt}( #\\d+)?$`));
    expect(await cell('bounded', 'Timing').textContent()).toBe('0 30 1 * * ? (Europe/Paris) from 2099-01-01 00:00:00 until 2099-03-31 00:00:00');
    // 01:30 in Paris on the first day of the window is 00:30 UTC.
    expect(await cell('bounded', 'Next fire time').textContent()).toBe('2099-01-01 00:30:00');
    // 360: a narrower phone than the screenshots', where a bound and its date on one line must still fit.
    for (const width of [1280, 390, 360]) {
      await page.setViewportSize({ width, height: 844 });
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      expect(await page.evaluate(() => document.documentElement.scrollWidth), `no sideways scrolling at ${width}`).toBeLessThanOrEqual(width);
      const overflowing = await page.locator('#schedules tbody tr').evaluateAll((rows) =>
        rows.flatMap((tr) => [...tr.querySelectorAll('td, th')].filter((c) => c.scrollWidth > c.clientWidth + 1).map((c) => `${tr.getAttribute('data-name')}: ${c.getAttribute('data-label')}`)),
      );
      expect(overflowing, `cells whose text overflows at ${width}`).toEqual([]);
    }
    // A bounded trigger's page, as narrow: its timing wraps between its parts, within the card.
    await open(page, '#/schedules/bounded');
    const timingDd = page.locator('#schedule-settings dt', { hasText: 'Timing' }).locator('+ dd');
    expect(await timingDd.textContent()).toBe('0 30 1 * * ? (Europe/Paris) from 2099-01-01 00:00:00 until 2099-03-31 00:00:00');
    const fit = await timingDd.evaluate((dd) => ({ overflow: dd.scrollWidth - dd.clientWidth, page: document.documentElement.scrollWidth }));
    expect(fit, 'the timing fits its card at 360').toEqual({ overflow: 0, page: 360 });
    await page.setViewportSize({ width: 1280, height: 800 });
    await open(page, '#/schedules/once-fired');
    await page.locator('#schedule-settings dd', { hasText: /^once at / }).waitFor();
    expect(await page.locator('#schedule-settings dt', { hasText: 'Next fire time' }).locator('+ dd').textContent()).toBe('— (done)');
    expect(await page.locator('.title-row .status').textContent()).toBe('done');
    // A confirmation dialog, as it looks.
    await open(page, `#/executions/${running}`);
    await page.locator('#actions').getByRole('button', { name: 'Stop' }).click();
    await page.locator('dialog[open]').waitFor();
    await shoot(page, 'confirm-stop', { fullPage: false });
    await page.keyboard.press('Escape');
    await page.locator('dialog[open]').waitFor({ state: 'detached' });
    expect((await api('POST', `/api/executions/${running}/stop`, {})).status).toBe(200);
    await ended(running, ['STOPPED']);
    expect(problems).toEqual([]);
  }, 60_000);

  it('shows tables as compact cards at phone width: the steps without sideways scrolling, the executions a few lines each, the date filters whole', async () => {
    const failed = await submit('count', { items: 30, chunk: 5, tag: 'phone-failed', failAt: 12 });
    for (const id of await Promise.all([1, 2, 3, 4, 5, 6].map((n) => submit('count', { items: n, tag: `phone-${n}` })))) await ended(id, ['COMPLETED']);
    await ended(failed, ['FAILED']);
    const { page, problems } = await newPage();
    await logIn(page, server.base, OPERATOR.secret);
    await page.setViewportSize({ width: 390, height: 844 });
    await open(page, `#/executions/${failed}`);
    await page.locator('#steps tbody tr[data-step]').first().waitFor();
    const fit = await page.evaluate(() => {
      const wrap = document.querySelector('#steps')!.closest('.table-wrap')!;
      const name = document.querySelector('#steps tbody th')!.getBoundingClientRect();
      return { page: document.documentElement.scrollWidth, wrap: wrap.scrollWidth - wrap.clientWidth, nameRight: name.right, wrapRight: wrap.getBoundingClientRect().right };
    });
    expect(fit.page, 'the page does not scroll sideways').toBeLessThanOrEqual(390);
    expect(fit.wrap, 'the steps table does not scroll sideways').toBe(0);
    expect(fit.nameRight).toBeLessThanOrEqual(fit.wrapRight);
    // Each counter is labelled with its column.
    expect(await page.locator('#steps tbody tr').first().locator('td[data-label=written]').count()).toBe(1);

    await open(page, '#/executions?limit=25');
    await page.locator('#executions tbody tr[data-id]').first().waitFor();
    const rows = await page.locator('#executions tbody tr[data-id]').evaluateAll((trs) => trs.map((tr) => tr.getBoundingClientRect().height));
    expect(rows.length).toBeGreaterThan(5);
    // One line each for what and how it ended, its parameters, and where and when: about three lines.
    expect(Math.max(...rows), 'a card per execution, a few lines high').toBeLessThan(100);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    // The date filters show their placeholders whole, with room to spare for a wider font than this browser's
    // (a phone's cut the last characters off when the two shared a line).
    for (const name of ['from', 'to']) {
      const fit = await page.locator(`.filters input[name=${name}]`).evaluate((input: HTMLInputElement) => {
        const style = getComputedStyle(input);
        const ctx = document.createElement('canvas').getContext('2d')!;
        ctx.font = style.font;
        return { text: ctx.measureText(input.placeholder).width, room: input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) };
      });
      expect(fit.text * 1.2, `${name}: ${JSON.stringify(fit)}`).toBeLessThanOrEqual(fit.room);
    }
    await shoot(page, 'executions-compact');
    expect(problems).toEqual([]);
  }, 40_000);

  it('lists queued executions apart from the running ones, as waiting for a node', async () => {
    // Seven long executions for the two nodes' six slots: at least one waits in the queue (more
    // while an earlier test's work still ends).
    const long = await Promise.all(Array.from({ length: 7 }, (_, i) => submit('count', { items: 1_000_000, chunk: 20, delayMs: 5, tag: `busy-${i}` })));
    try {
      const queuedNow = async () => {
        const list = await Promise.all(long.map(execution));
        return list.filter((e) => e.status === 'STARTING' && !(e as { node?: string | null }).node).map((e) => e.id);
      };
      const { page, problems } = await newPage();
      await logIn(page, server.base, VIEWER.secret);
      await open(page, '#/');
      // One that the repository says waits, listed under Queued (the page updates live).
      const waiting = await waitFor(async () => {
        for (const id of await queuedNow()) if (await page.locator(`#queued tr[data-id="${id}"]`).count()) return id;
        return null;
      }, 30_000, 'a queued execution listed under Queued');
      const row = page.locator(`#queued tr[data-id="${waiting}"]`);
      expect(await row.textContent()).toContain('waiting for a node');
      expect(await row.locator('.status').textContent()).toBe('STARTING');
      expect(await page.locator(`#running tr[data-id="${waiting}"]`).count(), 'a queued execution is not listed as running').toBe(0);
      // No row of the running list is all dashes: each has its node.
      for (const node of await page.locator('#running tbody tr[data-id] td:nth-child(3)').allTextContents()) expect(node).toMatch(/^node-/);

      // A deeper queue than the overview counts: it lists the next to run, the oldest queued
      // (nodes claim in id order), not the latest queued.
      const base = Date.now();
      const batch = await api<{ results: { executionId?: number }[] }>('POST', '/api/executions/batch', {
        items: Array.from({ length: 60 }, (_, i) => ({ job: 'noop', params: { 'run.id': base + i } })),
      });
      expect(batch.status).toBe(202);
      const oldestQueued = async () => {
        const starting = (await api<{ id: number; node: string | null }[]>('GET', '/api/executions?status=STARTING&limit=1000')).json;
        return Math.min(...starting.filter((e) => !e.node).map((e) => e.id));
      };
      await page.locator('#queued-h', { hasText: '(50+), waiting for a node: the next to run first' }).waitFor();
      await waitFor(async () => Number(await page.locator('#queued tbody tr').first().getAttribute('data-id')) === (await oldestQueued()), 15_000, 'the oldest queued execution first under Queued');
      const shown = (await page.locator('#queued tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-id')))));
      expect(shown).toHaveLength(10);
      expect(shown).toEqual([...shown].sort((a, b) => a - b));
      await shoot(page, 'overview-queued');
      expect(problems).toEqual([]);
    } finally {
      await stopAll(long);
    }
  }, 90_000);

  it("leaves a failure a restart has since completed out of the overview, and marks it in the executions list and the job's history with a link to the restart (screenshots)", async () => {
    // Two failures: one restarted to completion (with markup in its parameters), one left alone.
    const [fixed, open1] = await Promise.all([
      submit('count', { items: 20, chunk: 5, tag: `fixed ${XSS}`, failAt: 7 }),
      submit('count', { items: 20, chunk: 5, tag: 'still-failed', failAt: 7 }),
    ]);
    await Promise.all([ended(fixed, ['FAILED']), ended(open1, ['FAILED'])]);
    const { page, problems } = await newPage();
    await logIn(page, server.base, OPERATOR.secret);
    // Before the restart both are listed as failures.
    await open(page, '#/');
    await page.locator(`#failures li[data-id="${fixed}"]`).waitFor({ timeout: 10_000 });
    await page.locator(`#failures li[data-id="${open1}"]`).waitFor();

    const restarted = await api<{ id: number }>('POST', `/api/executions/${fixed}/restart`, {});
    expect(restarted.status).toBe(202);
    await ended(restarted.json.id, ['COMPLETED']);
    // Live, without reloading: the resolved failure goes, the other stays, and the card says why one is missing.
    await page.locator(`#failures li[data-id="${fixed}"]`).waitFor({ state: 'detached', timeout: 10_000 });
    await page.locator(`#failures li[data-id="${open1}"]`).waitFor();
    expect(await page.locator(`#failures li[data-id="${open1}"] .restarted-as`).count()).toBe(0);
    expect(await page.locator('#resolved-failures').textContent()).toMatch(/^1 failure that a restart has since completed is not listed\. All failures$/);
    expect(await page.locator('#resolved-failures a').getAttribute('href')).toBe('#/executions?status=FAILED');
    await page.locator('#overview-nodes li').first().waitFor();
    await shoot(page, 'overview-restarted');

    // The executions list keeps every failure; the restarted one names its restart, linked.
    await open(page, '#/executions?status=FAILED');
    const mark = page.locator(`#executions tr[data-id="${fixed}"] .restarted-as`);
    await mark.waitFor({ timeout: 10_000 });
    expect(await mark.getAttribute('data-restarted-as')).toBe(String(restarted.json.id));
    expect((await mark.textContent())!.replace(/\s+/g, ' ').trim()).toBe(`→ #${restarted.json.id} COMPLETED`);
    expect(await mark.locator('a').getAttribute('aria-label')).toBe(`restarted as execution ${restarted.json.id}, COMPLETED`);
    expect(await page.locator(`#executions tr[data-id="${open1}"] .restarted-as`).count()).toBe(0);
    // The markup in its parameters shows as text.
    await page.locator(`#executions tr[data-id="${fixed}"] td.params`, { hasText: '<b>bold</b>' }).waitFor();
    expect(await page.locator('main img[src=x], main b', { hasText: 'bold' }).count()).toBe(0);
    expect(await page.evaluate(() => (window as { __xss?: number }).__xss)).toBeUndefined();
    await shoot(page, 'executions-restarted');
    await mark.locator('a').click();
    await page.locator('.title-row h1', { hasText: `Execution #${restarted.json.id}` }).waitFor();
    await page.locator('.title-row .status', { hasText: 'COMPLETED' }).waitFor();
    // The job's history marks it the same way.
    await open(page, '#/jobs/count');
    const inHistory = page.locator(`#history tr[data-id="${fixed}"] .restarted-as`);
    await inHistory.waitFor({ timeout: 10_000 });
    expect((await inHistory.textContent())!.replace(/\s+/g, ' ').trim()).toBe(`→ #${restarted.json.id} COMPLETED`);
    expect(await page.locator(`#history tr[data-id="${open1}"] .restarted-as`).count()).toBe(0);
    await shoot(page, 'job-restarted');
    expect(problems).toEqual([]);
  }, 60_000);

  it("draws chart axes and the legend's time in UTC and 24-hour, whatever the browser's time zone and locale", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'America/New_York', locale: 'de-DE' });
    contexts.push(context);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await logIn(page, server.base, VIEWER.secret);
    const over = page.locator('.chart .u-over').first();
    await over.waitFor();
    await over.scrollIntoViewIfNeeded();
    const box = (await over.boundingBox())!;
    await page.mouse.move(box.x + 5, box.y + 5);
    await page.mouse.move(box.x + box.width - 3, box.y + box.height / 2, { steps: 5 });
    // The legend names the minute under the cursor (the newest) as the rest of the console does.
    const legend = page.locator('.chart .u-legend .u-series').first();
    expect(await legend.locator('th').textContent()).toContain('UTC');
    const shown = (await legend.locator('.u-value').textContent())!;
    expect(shown).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    expect(Math.abs(Date.parse(shown.replace(' ', 'T') + 'Z') - Date.now())).toBeLessThan(3 * 60_000);
    // The axis: 24-hour UTC clock times, the date under the first, never am/pm.
    const ticks = (await page.locator('.chart [data-x-ticks]').first().getAttribute('data-x-ticks'))!.split('|');
    expect(ticks.length).toBeGreaterThan(3);
    for (const t of ticks) expect(t).toMatch(/^\d{2}:\d{2}(:\d{2})?(\n\d{4}-\d{2}-\d{2})?$/);
    const last = ticks[ticks.length - 1];
    const utcNow = new Date().toISOString().slice(11, 16);
    const minutes = (hm: string) => Number(hm.slice(0, 2)) * 60 + Number(hm.slice(3, 5));
    expect((minutes(utcNow) - minutes(last) + 1440) % 1440, `the last tick ${last} is a UTC time shortly before ${utcNow}`).toBeLessThan(10);
    await shoot(page, 'overview-new-york');
    expect(problems).toEqual([]);
  }, 40_000);

  it("leaves room right of the duration trend for its time labels: the last is not cut, at desktop or phone width", async () => {
    // Two finished executions that start more than a second apart (the first lasts 1.2 s): the
    // axis has a tick on a whole second.
    await ended(await submit('count', { items: 2, chunk: 1, delayMs: 600, tag: 'trend-1' }), ['COMPLETED']);
    await ended(await submit('count', { items: 2, tag: 'trend-2' }), ['COMPLETED']);
    const { page, problems } = await newPage();
    await logIn(page, server.base, VIEWER.secret);
    await open(page, '#/jobs/count');
    const chart = page.locator('.chart').first();
    await chart.locator('[data-x-ticks]').waitFor();
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 844 });
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      // Any label can be the last, centred on a tick at the plot's right edge: half the widest fits right of the plot.
      const fit = await chart.evaluate((figure) => {
        const canvas = figure.querySelector('canvas')!.getBoundingClientRect();
        const plot = figure.querySelector('.u-over')!.getBoundingClientRect();
        const ticks = (figure.querySelector('[data-x-ticks]') as HTMLElement).dataset.xTicks!.split(/[|\n]/).filter(Boolean);
        const ctx = document.createElement('canvas').getContext('2d')!;
        ctx.font = '12px ' + getComputedStyle(figure.querySelector('.uplot')!).fontFamily; // uPlot's axis font
        return { room: canvas.right - plot.right, half: Math.max(...ticks.map((t) => ctx.measureText(t).width)) / 2, ticks };
      });
      expect(fit.ticks.length, `${width} px: ${JSON.stringify(fit)}`).toBeGreaterThan(0);
      expect(fit.room, `${width} px: ${JSON.stringify(fit)}`).toBeGreaterThanOrEqual(fit.half);
    }
    await shoot(page, 'job-trend');
    expect(problems).toEqual([]);
  }, 30_000);

  it('takes a date parameter as ISO 8601 text in UTC, whatever the browser\'s locale and time zone', async () => {
    // A serve of its own, with a job that has date parameters (no node runs it: launching queues it).
    const dates = await startServe(pg.freshUrl('console-dates'), 45_000, 'test/fixtures/console/nightshift.config.ts');
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'America/New_York', locale: 'de-DE' });
      contexts.push(context);
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      await logIn(page, dates.base, OPERATOR.secret);
      await open(page, '#/jobs/report');
      const asOf = page.locator('#param-asOf');
      // Text, not a date picker that shows the browser's locale: the default as the API has it.
      expect(await asOf.getAttribute('type')).toBe('text');
      expect(await asOf.inputValue()).toBe('2024-01-01T00:00:00Z');
      expect(await asOf.getAttribute('placeholder')).toBe('2024-01-01T00:00:00Z');
      expect(await page.locator('label[for=param-asOf]').textContent()).toContain('UTC');
      // Something else is refused by the browser before it is sent.
      await page.locator('#param-since').fill('05.03.2024 06:07');
      expect(await page.locator('#param-since').evaluate((el: HTMLInputElement) => el.validity.patternMismatch)).toBe(true);
      // Without a zone it is UTC; a date alone is its midnight.
      await page.locator('#param-since').fill('2024-03-05 06:07');
      await asOf.fill('2024-06-30');
      await shoot(page, 'job-form-dates');
      await page.locator('#launch-form').getByRole('button', { name: 'Launch report' }).click();
      await page.waitForURL(/#\/executions\/\d+$/);
      const id = Number(/(\d+)$/.exec(page.url())![1]);
      const launched = (await call<{ parameters: Record<string, unknown> }>(dates.base, OPERATOR.secret, 'GET', `/api/executions/${id}`)).json;
      expect(launched.parameters).toEqual({ asOf: '2024-06-30T00:00:00.000Z', since: '2024-03-05T06:07:00.000Z' });
      // The executions filter takes dates the same way: the server reads them, as the API and the CLI do.
      await open(page, '#/executions');
      expect(await page.getByLabel('Created from (UTC)').getAttribute('placeholder')).toBe('2024-01-01T00:00:00Z');
      const created = (await call<{ createTime: string }>(dates.base, OPERATOR.secret, 'GET', `/api/executions/${id}`)).json.createTime;
      const filterBy = async (from: string, to: string) => {
        await page.getByLabel('Created from (UTC)').fill(from);
        await page.getByLabel('to (UTC)').fill(to);
        await page.getByRole('button', { name: 'Filter' }).click();
      };
      // Without a zone it is UTC (the browser is in New York): the execution is within the minute of its creation.
      const minute = created.slice(0, 16);
      const next = new Date(Date.parse(minute + 'Z') + 60_000).toISOString().slice(0, 16);
      await filterBy(minute.replace('T', ' '), next);
      await page.locator(`#executions tr[data-id="${id}"]`).waitFor();
      await filterBy(next, '');
      await page.locator('#executions', { hasText: 'No execution matches.' }).waitFor();
      // An impossible day (which the pattern lets through) is refused by the server, saying so, not rolled over or ignored.
      await filterBy('2024-02-30', '');
      await page.getByText('from must be an ISO-8601 date or date-time', { exact: false }).waitFor();
      expect(await page.locator('#executions').count()).toBe(0);
      // The next instance: the fields left as the form filled them in are the incrementer's to give
      // (as `submit --next` without them), so asOf is the day after, not the form's default.
      await open(page, '#/jobs/report');
      await page.getByLabel('Run as a new instance (next run.id)').check();
      await page.locator('#launch-form').getByRole('button', { name: 'Launch report' }).click();
      await page.waitForURL((u) => /#\/executions\/\d+$/.test(u.hash) && !u.hash.endsWith(`/${id}`));
      const nextId = Number(/(\d+)$/.exec(page.url())![1]);
      const following = (await call<{ parameters: Record<string, unknown> }>(dates.base, OPERATOR.secret, 'GET', `/api/executions/${nextId}`)).json;
      expect(following.parameters).toEqual({ asOf: '2024-07-01T00:00:00.000Z' });
      expect(problems).toEqual([]);
    } finally {
      await dates.stop();
    }
  }, 60_000);

  it("shows a job that live nodes run but this server's config lacks read-only: listed, its history, no launch form, saying why", async () => {
    // A serve whose config defines only `report`; a node with the example jobs (count among them).
    const url = pg.freshUrl('console-part-config');
    const part = await startServe(url, 45_000, 'test/fixtures/console/nightshift.config.ts');
    const elsewhere = startNode(url, 'node-elsewhere');
    try {
      const run = await runCli(['run', 'count', 'items=3', 'tag=elsewhere', '--json', '--db', url, '--config', 'examples/nightshift.config.ts']);
      expect(run.code, run.stderr).toBe(0);
      const done = (JSON.parse(run.stdout) as { id: number }).id;
      await waitFor(async () => (await call<{ name: string }[]>(part.base, VIEWER.secret, 'GET', '/api/jobs')).json.some((j) => j.name === 'count'), 45_000, 'the node to register count');
      const { page, problems } = await newPage();
      await logIn(page, part.base, OPERATOR.secret);
      await open(page, '#/jobs');
      expect(await page.locator('#not-in-config').textContent()).toContain("run on live nodes but cannot be launched from here");
      expect(await page.locator('#no-config').count()).toBe(0);
      const row = page.locator('#jobs tr').filter({ has: page.getByRole('link', { name: 'count', exact: true }) });
      expect(await row.textContent()).toContain("Not in this server's config. Runs on node-elsewhere.");
      // Its own job is listed as before.
      expect(await page.locator('#jobs tr', { hasText: 'A report as of a date.' }).count()).toBe(1);
      await shoot(page, 'jobs-not-in-config');
      await row.getByRole('link', { name: 'count', exact: true }).click();
      await page.locator('#history a', { hasText: `#${done}` }).waitFor();
      expect(await page.locator('main h1').textContent()).toBe('Job count');
      expect(await page.locator('#not-in-config').textContent()).toBe(
        "This job is not in this server's config, so it cannot be launched from here (add it to the config serve loads); its history is below. Runs on node-elsewhere.",
      );
      expect(await page.locator('#launch-form').count()).toBe(0);
      await shoot(page, 'job-not-in-config');
      // Its own job still has its launch form.
      await open(page, '#/jobs/report');
      await page.locator('#launch-form').waitFor();
      expect(problems).toEqual([]);
    } finally {
      await kill(elsewhere);
      await part.stop();
    }
  }, 90_000);

  it('shows the login form without a request the API refuses, and a session without logging in again; /api/session still needs one', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(context);
    const page = await context.newPage();
    const errors: string[] = [];
    const apiRequests: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => new URL(r.url()).pathname.startsWith('/api/') && apiRequests.push(r.url()));
    await page.goto(`${server.base}/`);
    await page.locator('#login-form').waitFor();
    expect(apiRequests, 'no session check before logging in').toEqual([]);
    // Where the token comes from: either place a server reads tokens from, not the environment as if the only one.
    expect(await page.locator('#token-hint').textContent()).toBe('a token configured for this server (NIGHTSHIFT_API_TOKENS or --tokens-file)');
    expect(await page.getByLabel('API token').getAttribute('aria-describedby')).toBe('token-hint');
    expect(errors, 'nothing in the browser console').toEqual([]);
    // Logged in, a reload shows the console at once (its one session check answers 200).
    await page.locator('#token').fill(VIEWER.secret);
    await page.locator('#login-form button[type=submit]').click();
    await page.locator('#who').waitFor();
    await page.reload();
    await page.locator('#who').waitFor();
    expect(errors).toEqual([]);
    // The page's hint follows the cookie: valid, ended, none. The API's answer does not change.
    const pageSays = async (cookie?: string) => {
      const html = await (await fetch(`${server.base}/`, { headers: cookie ? { cookie } : {} })).text();
      return /<meta name="nightshift-session" content="(\w+)">/.exec(html)?.[1];
    };
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    expect(await pageSays(cookie)).toBe('yes');
    expect(await pageSays()).toBe('no');
    expect(await pageSays('nightshift_session=forged')).toBe('no');
    expect((await fetch(`${server.base}/api/session`)).status).toBe(401);
    expect((await fetch(`${server.base}/api/session`, { headers: { cookie: 'nightshift_session=forged' } })).status).toBe(401);
    expect((await fetch(`${server.base}/api/session`, { headers: { cookie } })).status).toBe(200);
  }, 40_000);

  it('shows a one-shot as "once at" and a bounded trigger as "from ... until ..." in the list and on its page', async () => {
    expect((await api('PUT', '/api/schedules/launch', { job: 'noop', at: '2099-01-15T11:00:00+01:00' })).status).toBe(201);
    expect((await api('PUT', '/api/schedules/window', { job: 'noop', everyMs: 3600_000, startAt: '2099-01-01T00:00:00Z', endAt: '2099-01-02T00:00:00Z' })).status).toBe(201);
    onTestFinished(async () => {
      for (const name of ['launch', 'window']) await api('DELETE', `/api/schedules/${name}`);
    });
    const { page, problems } = await newPage();
    await logIn(page, server.base, OPERATOR.secret);
    await open(page, '#/schedules');
    await page.locator('#schedules tr[data-name=launch] code', { hasText: 'once at 2099-01-15 10:00:00' }).waitFor();
    expect(await page.locator('#schedules tr[data-name=window] code').textContent()).toBe('every 1h from 2099-01-01 00:00:00 until 2099-01-02 00:00:00');
    await open(page, '#/schedules/launch');
    await page.locator('#schedule-settings dd', { hasText: 'once at 2099-01-15 10:00:00' }).waitFor();
    expect(problems).toEqual([]);
  });

  it("shows a slow trigger's firings on its own page while a fast trigger pushes them out of the recent firings (screenshots)", async () => {
    expect((await api('PUT', '/api/schedules/slow-nightly', { job: 'noop', cron: '0 0 2 * * ?' })).status).toBe(201);
    const fired = await api<{ id: number }>('POST', '/api/schedules/slow-nightly/trigger', {});
    expect(fired.status).toBe(202);
    expect((await api('PUT', '/api/schedules/fast', { job: 'noop', everyMs: 500 })).status).toBe(201);
    onTestFinished(async () => {
      for (const name of ['fast', 'slow-nightly']) await api('DELETE', `/api/schedules/${name}`);
    });
    type Firing = { trigger: string; fireTime: string };
    const recent = async () => (await api<Firing[]>('GET', '/api/firings?limit=20')).json;
    await waitFor(async () => (await recent()).every((f) => f.trigger === 'fast'), 30_000, 'the fast trigger to fill the recent firings');
    const { page, problems } = await newPage();
    await logIn(page, server.base, OPERATOR.secret);
    await open(page, '#/schedules');
    await page.locator('#firings td', { hasText: 'fast' }).first().waitFor();
    expect(await page.locator('#firings td', { hasText: 'slow-nightly' }).count(), 'gone from the recent firings').toBe(0);
    // By keyboard: the schedule's name is a link to its page.
    await page.locator('#schedules tr[data-name=slow-nightly] th a').focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/schedules\/slow-nightly$/);
    await page.locator('main h1', { hasText: 'Schedule slow-nightly' }).waitFor();
    expect(await page.locator('#schedule-settings dd').allTextContents()).toEqual(expect.arrayContaining(['noop', '0 0 2 * * ?']));
    expect(await page.locator('#firings thead th').allTextContents()).toEqual(['Fire time', 'Fired at', 'Fired by node', 'Outcome', 'Execution']);
    const own = page.locator('#firings tbody tr');
    await own.first().locator('td', { hasText: 'manual' }).waitFor();
    // The fast trigger fires on: the slow trigger's firing stays on its page, alone.
    for (let i = 0; i < 2; i++) {
      const before = (await recent())[0]!.fireTime;
      await waitFor(async () => (await recent())[0]!.fireTime !== before, 10_000, 'the fast trigger to fire again');
    }
    expect(await own.count()).toBe(1);
    expect(await own.locator('a').getAttribute('href')).toBe(`#/executions/${fired.json.id}`);
    await shoot(page, 'schedule');
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth), 'no sideways scrolling at phone width').toBeLessThanOrEqual(390);
    expect(await own.locator('td[data-label=Outcome]').textContent()).toMatch(/^manual/);
    await page.setViewportSize({ width: 1280, height: 800 });
    // A schedule's firings page back by fire time: "Older" shows those before the page's oldest, "Newest" returns.
    await page.evaluate(() => (location.hash = '#/schedules/fast?limit=5'));
    const fastRows = page.locator('#firings tbody tr[data-fire-time]');
    await waitFor(async () => ((await fastRows.count()) === 5 ? true : undefined), 10_000, 'the first page of the fast trigger');
    const firstPage = await fastRows.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-fire-time')!));
    await page.getByRole('button', { name: 'Older' }).click();
    // Not "before HH:MM:SS": shown to the second, the cursor read as if the page's first row were after it.
    await page.locator('#firings-h', { hasText: 'Older firings' }).waitFor();
    await page.waitForURL(/#\/schedules\/fast\?limit=5&before=/);
    await waitFor(async () => ((await fastRows.count()) === 5 ? true : undefined), 10_000, 'the older page');
    const olderPage = await fastRows.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-fire-time')!));
    expect(olderPage.every((t) => t < firstPage.at(-1)!), `${olderPage} before ${firstPage}`).toBe(true);
    expect([...olderPage].sort().reverse()).toEqual(olderPage);
    await shoot(page, 'schedule-older');
    await page.getByRole('button', { name: 'Newest' }).click();
    await page.locator('#firings-h', { hasText: /^Firings$/ }).waitFor();
    // An unknown schedule says so.
    await page.evaluate(() => (location.hash = '#/schedules/nope'));
    await page.locator('main .notice.error', { hasText: 'no schedule named nope' }).waitFor();
    expect(problems.filter((p) => !/status of 404/.test(p))).toEqual([]);
  }, 60_000);

  it("acts on schedules (pause, resume, trigger now, remove) and nodes (drain, resume) from their pages", async () => {
    expect((await api('PUT', '/api/schedules/hourly', { job: 'noop', cron: '0 0 * * * ?' })).status).toBe(201);
    expect((await api('PUT', '/api/schedules/fivemin', { job: 'noop', everyMs: 300_000 })).status).toBe(201);
    const { page, problems } = await newPage();
    await logIn(page, server.base, OPERATOR.secret);
    await open(page, '#/schedules');
    // An interval shows as the CLI prints it and its --every takes it.
    await page.locator('#schedules tr[data-name=fivemin] code', { hasText: /^every 5m$/ }).waitFor();
    expect((await api('DELETE', '/api/schedules/fivemin')).status).toBe(204);
    // The list shows the removal before the next click: a click aimed at a row that moves up
    // while the list re-renders lands beside its button (a CI run lost the Pause click so).
    await page.locator('#schedules tr[data-name=fivemin]').waitFor({ state: 'detached' });
    const row = page.locator('#schedules tr[data-name=hourly]');
    await row.getByRole('button', { name: 'Pause' }).click();
    await row.getByText('— (paused)').waitFor();
    expect((await api<{ paused: boolean; nextFireTime: string | null }>('GET', '/api/schedules/hourly')).json).toMatchObject({ paused: true });
    await row.getByRole('button', { name: 'Resume' }).click();
    await row.getByText('active').waitFor();
    await row.getByRole('button', { name: 'Trigger now' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Trigger now' }).click();
    await page.waitForURL(/#\/executions\/\d+$/);
    await page.locator('.title-row', { hasText: 'noop' }).waitFor();
    await open(page, '#/schedules');
    await page.locator('#firings td', { hasText: 'manual' }).waitFor();
    // The firings' node is the one that fired the trigger, not one that ran the execution: it says so.
    expect(await page.locator('#firings thead th').allTextContents()).toEqual(['Schedule', 'Fire time', 'Fired at', 'Fired by node', 'Outcome', 'Execution']);
    await row.getByRole('button', { name: 'Remove' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Remove' }).click();
    await row.waitFor({ state: 'detached' });
    expect((await api('GET', '/api/schedules/hourly')).status).toBe(404);

    await open(page, '#/nodes');
    const node = page.locator('#nodes tr[data-name=node-b]');
    await node.getByRole('button', { name: 'Drain' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Drain' }).click();
    await node.getByText(/draining/).waitFor({ timeout: 15_000 });
    // A draining node offers Resume instead of Drain, to an operator only.
    await node.getByRole('button', { name: 'Resume' }).waitFor();
    expect(await node.getByRole('button', { name: 'Drain' }).count()).toBe(0);
    await shoot(page, 'nodes-draining');
    const viewer = await newPage();
    await logIn(viewer.page, server.base, VIEWER.secret);
    await open(viewer.page, '#/nodes');
    await viewer.page.locator('#nodes tr[data-name=node-b]').getByText(/draining/).waitFor();
    expect(await viewer.page.getByRole('button', { name: /drain|resume/i }).count()).toBe(0);
    expect(viewer.problems).toEqual([]);
    // Work sent to the drained node waits for it.
    const queued = await submit('noop', { 'run.id': Date.now() }, { node: 'node-b' });
    await node.getByRole('button', { name: 'Resume' }).click();
    await shoot(page, 'confirm-resume', { fullPage: false });
    await page.locator('dialog[open]').getByRole('button', { name: 'Resume' }).click();
    await node.getByRole('button', { name: 'Drain' }).waitFor({ timeout: 15_000 });
    expect(await node.getByText(/draining/).count()).toBe(0);
    // The node itself takes work again: what waited for it runs there.
    expect(await ended(queued, ['COMPLETED'])).toMatchObject({ node: 'node-b' });
    expect(problems).toEqual([]);
  }, 60_000);
});
