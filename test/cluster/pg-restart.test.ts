/**
 * PostgreSQL restarted (and down for longer than a lease) while 2 real `nightshift node`
 * processes run `count` jobs: the nodes reconnect with backoff, keep (or rejoin) their
 * membership, claim new work, and every run completes exactly once.
 *
 * Restarting the server breaks every other test that uses it, so this file runs only with
 * NIGHTSHIFT_PG_RESTART=1, alone:
 *
 *   NIGHTSHIFT_PG_RESTART=1 npx vitest run test/cluster/pg-restart.test.ts
 *
 * Needs root (pg_ctlcluster switches to the cluster owner) and a local Debian-style cluster
 * (`/etc/postgresql/VERSION/main`). Whatever happens, afterAll starts the server again and
 * waits for pg_isready.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killAll, openCluster, pgBackend, startNode, waitAlive, waitFor, type Cluster, type NodeProc } from './helpers.ts';
import { checkRun, countExecutions, describeExecutions, describeProcs, pgSessions, RUNNING } from './observe.ts';
import { skipAllUnless } from '../support/skip.ts';

const ENABLED = process.env.NIGHTSHIFT_PG_RESTART === '1';
const run = promisify(execFile);

const pgVersion = () => readdirSync('/etc/postgresql').filter((v) => /^\d+/.test(v)).sort().at(-1)!;
async function pgCtl(action: 'restart' | 'stop' | 'start'): Promise<{ ms: number; out: string }> {
  const t = Date.now();
  const r = await run('pg_ctlcluster', ['--skip-systemctl-redirect', pgVersion(), 'main', action], { timeout: 120_000 });
  return { ms: Date.now() - t, out: `${r.stdout}${r.stderr}`.trim() };
}
const pgReady = () => spawnSync('pg_isready', ['-h', '127.0.0.1', '-p', '5432', '-t', '2']).status === 0;

let cluster: Cluster | undefined;
const backend = pgBackend();

/** Brings PostgreSQL back whatever a test left it in. */
async function ensurePgUp(): Promise<void> {
  if (pgReady()) return;
  await pgCtl('start').catch((err) => console.log(`[pg-restart] pg_ctlcluster start: ${String(err).slice(0, 300)}`));
  await waitFor(pgReady, 60_000, 'pg_isready after starting PostgreSQL again');
}

const ITEMS = 3000;
const JOB = { items: ITEMS, chunk: 20, delayMs: 5 };

/**
 * Two nodes (concurrency 4), 10 count jobs of ~15 s (8 run at once, 2 queued); once every running one has committed
 * rows, `outage()` takes PostgreSQL away; then 2 more jobs are submitted, and everything must
 * complete exactly once on nodes that are still (or again) alive.
 */
async function runThroughOutage(label: string, outage: () => Promise<string>) {
  cluster = await openCluster(backend, label);
  const { ns, db, url } = cluster;
  const procs: NodeProc[] = [startNode(url, 'a'), startNode(url, 'b')];
  await waitAlive(ns, ['a', 'b']);
  const tags = Array.from({ length: 12 }, (_, i) => `${label}${i}`);
  for (const tag of tags.slice(0, 10)) await ns.submit('count', { ...JOB, tag });
  const ready = await waitFor(async () => {
    const list = await countExecutions(db);
    const running = list.filter((e) => e.status === 'STARTED');
    return running.length >= 8 && running.every((e) => e.rows >= 60);
  }, 30_000, '>= 8 executions STARTED with >= 60 committed rows each').then(() => true, () => false);
  const before = await countExecutions(db);
  if (!ready) {
    expect.fail(`the 8 slots never all ran with committed rows before the outage\nexecutions:\n${describeExecutions(before)}\n` +
      `node processes:\n${describeProcs(procs)}`);
  }
  const rowsBefore = before.reduce((a, e) => a + e.rows, 0);

  const t0 = Date.now();
  const what = await outage();
  const downMs = Date.now() - t0;
  await waitFor(pgReady, 60_000, 'pg_isready after the outage');

  // The first commit after the outage (any execution's rows grow).
  const resumed = await waitFor(async () => {
    const rows = (await countExecutions(db)).reduce((a, e) => a + e.rows, 0);
    return rows > rowsBefore ? Date.now() - t0 : undefined;
  }, 30_000, 'a chunk committed after the outage').catch(() => undefined);

  // New work after the outage: the nodes must still claim (LISTEN reconnected, or polling).
  let submitError: string | undefined;
  for (const tag of tags.slice(10)) {
    await waitFor(() => ns.submit('count', { ...JOB, tag }).then(() => true), 15_000, `submitting ${tag} after the outage`)
      .catch((err) => (submitError = String(err)));
  }
  const ended = await waitFor(async () => {
    const list = await countExecutions(db);
    return tags.every((t) => list.some((e) => e.tag === t)) && !list.some((e) => RUNNING.has(e.status));
  }, 60_000, 'every execution ended').then(() => true, () => false);
  const doneMs = Date.now() - t0;

  const { violations, executions } = await checkRun(db, tags, ITEMS);
  if (submitError) violations.push(`submitting after the outage failed: ${submitError}`);
  if (!ended) violations.push('executions still STARTING/STARTED/STOPPING 60 s after the outage');
  const nodes = await ns.nodes();
  for (const n of ['a', 'b']) {
    const inc = nodes.filter((x) => x.name === n);
    const newest = inc[inc.length - 1];
    if (newest?.status !== 'alive') violations.push(`node ${n}: newest incarnation is ${newest?.status}`);
  }
  for (const p of procs) if (p.exit) violations.push(`node process ${p.name} (pid ${p.pid}) exited: code ${p.exit.code}, signal ${p.exit.signal}`);
  const sessions = violations.length ? await pgSessions(db).catch((err) => `  ${String(err)}`) : '';
  const rejoined = nodes.filter((n) => n.status === 'dead').map((n) => n.name);
  const failed = executions.filter((e) => e.status === 'FAILED');

  console.log(
    `[pg-restart ${label}] ${what}; PostgreSQL back ${downMs} ms after the outage began; first commit after it at ` +
      `${resumed ?? 'never'} ms; all ended at ${doneMs} ms; ${failed.length} FAILED executions; ` +
      `incarnations declared dead: [${rejoined.join(', ')}]; ${violations.length} violations\n` +
      `[pg-restart ${label}] nodes: ${nodes.map((n) => `${n.name}(pid ${n.pid}) ${n.status}`).join(', ')}\n` +
      `[pg-restart ${label}] executions:\n${describeExecutions(executions)}\n[pg-restart ${label}] node processes:\n${describeProcs(procs)}` +
      `${sessions ? `\n[pg-restart ${label}] non-idle nightshift sessions:\n${sessions}` : ''}`,
  );
  return { violations };
}

describe('PostgreSQL outages under a running cluster (NIGHTSHIFT_PG_RESTART=1; restarts the server)', () => {
  skipAllUnless(ENABLED, 'restarts the PostgreSQL server: npm run test:chaos runs it (NIGHTSHIFT_PG_RESTART=1)');
  afterEach(async () => {
    await ensurePgUp();
    await killAll();
    await cluster?.close();
    cluster = undefined;
  });
  afterAll(async () => {
    await ensurePgUp();
    await killAll();
    await backend.cleanup();
  }, 120_000);

  it('pg_ctlcluster restart mid-run: nodes reconnect, runs complete exactly once, nodes alive or rejoined', async () => {
    const { violations } = await runThroughOutage('pgrestart', async () => {
      const r = await pgCtl('restart');
      return `pg_ctlcluster restart took ${r.ms} ms${r.out ? ` (${r.out})` : ''}`;
    });
    expect(violations).toEqual([]);
  }, 180_000);

  it('PostgreSQL down for longer than the lease (6 s), then started: same guarantees', async () => {
    const { violations } = await runThroughOutage('pgdown', async () => {
      const stop = await pgCtl('stop');
      // The outage itself: a fixed length on purpose, longer than the 3.5 s default lease.
      await new Promise((r) => setTimeout(r, 6000));
      const start = await pgCtl('start');
      return `pg_ctlcluster stop took ${stop.ms} ms, down 6000 ms, start took ${start.ms} ms`;
    });
    expect(violations).toEqual([]);
  }, 180_000);
});
