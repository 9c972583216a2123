/**
 * Every connection a `nightshift node` opens (its pool, its heartbeat, its LISTEN connection, a
 * cursor reader's own connection) is terminated by the server (`pg_terminate_backend`) while
 * the node runs jobs: the process lives on, only the step whose connection broke fails, and the
 * node keeps heartbeating and claiming work.
 *
 * Backends are found by the application_name this test gives its URL, so no other test's
 * sessions on the shared server are touched.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import { waitFor } from '../support/backends.ts';
import { FAULTS_CONFIG, faultsBackend, namedUrl, terminate, sessions } from './support.ts';
import { killAll, startNode } from '../support/node-procs.ts';
import { rowsOf } from '../cluster/helpers.ts';
import { openDatabase } from '../../src/repository/open.ts';
import type { Database } from '../../src/repository/database.ts';
import { count, cursorCount, noop } from './fixtures/nightshift.config.ts';


const backend = faultsBackend;
let ns: Nightshift | undefined;
let db: Database | undefined;

afterEach(async () => {
  await killAll();
  await ns?.close().catch(() => undefined);
  await db?.close().catch(() => undefined);
  ns = db = undefined;
});
afterAll(() => backend.cleanup());

describe('connection loss on postgres', () => {
  it('each kind of connection the server terminates: the node lives, only the affected step fails', async () => {
    const { url, app } = namedUrl('connloss');
    ns = await createNightshift({ db: url, jobs: [noop, count, cursorCount], logger: silentLogger });
    db = await openDatabase(url);
    const node = startNode(url, 'a', { config: FAULTS_CONFIG, args: ['--concurrency', '4', '--lease-ms', '15000'] });
    await waitFor(async () => (await ns!.nodes()).some((n) => n.name === 'a' && n.status === 'alive'), 30_000, 'node a alive');

    // One LISTEN connection per process, shared by the launch listener and the scheduler.
    await waitFor(async () => (await sessions(`${app}-listen`)) > 0, 30_000, 'the LISTEN connection');
    expect(await sessions(`${app}-listen`)).toBe(1);

    const cursorRun = await ns.submit('cursor-count', { items: 100_000, tag: 'cur', delayMs: 2 });
    const countRun = await ns.submit('count', { items: 400, chunk: 10, tag: 'cnt', delayMs: 10 });
    await waitFor(async () => (await rowsOf(db!, { tag: 'cur' })) > 0 && (await rowsOf(db!, { tag: 'cnt' })) > 0, 30_000, 'both jobs writing');

    // The cursor reader's own connection.
    expect(await terminate(`${app}-cursor`)).toBeGreaterThan(0);
    const failed = await waitFor(async () => {
      const e = await ns!.getExecution(cursorRun.id);
      return e && e.status === 'FAILED' ? e : undefined;
    }, 30_000, 'the cursor job to fail');
    expect(failed.exitStatus.description).toMatch(/terminat/i);

    // The heartbeat's, the LISTEN connection, and the pool's idle sessions.
    expect(await terminate(`${app}-heartbeat`)).toBeGreaterThan(0);
    expect(await terminate(`${app}-listen`)).toBeGreaterThan(0);
    expect(await terminate(app, `AND state = 'idle'`)).toBeGreaterThan(0);

    const completed = await waitFor(async () => {
      const e = await ns!.getExecution(countRun.id);
      return e && ['COMPLETED', 'FAILED', 'STOPPED'].includes(e.status) ? e : undefined;
    }, 60_000, 'the count job to end');
    expect(completed.status).toBe('COMPLETED');
    expect(await rowsOf(db, { tag: 'cnt' })).toBe(400);

    // The node lived through it all: still alive, and it reconnected its heartbeat and LISTEN.
    expect(node.exit).toBeUndefined();
    await waitFor(async () => (await db!.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1`, [`${app}-listen`])).length > 0, 30_000, 'the LISTEN connection back');
    const later = await ns.submit('count', { items: 50, chunk: 10, tag: 'later' });
    const done = await waitFor(async () => {
      const e = await ns!.getExecution(later.id);
      return e && e.status === 'COMPLETED' ? e : undefined;
    }, 30_000, 'a job submitted afterwards to complete');
    expect(done.node).toBe('a');
    expect((await ns.nodes()).find((n) => n.name === 'a')?.status).toBe('alive');
    expect(node.exit).toBeUndefined();
  });
});
