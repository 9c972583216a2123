/**
 * Even spread (issue 17): partitions and submitted executions spread evenly over the live nodes
 * that have free capacity, with 3 real `nightshift node` processes on PostgreSQL. Before, the
 * first node to wake took all it had room for (one run: 4 of 6 partitions on one node, none on
 * another).
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import type { Database } from '../../src/repository/database.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { count, partitionedCount } from '../../examples/nightshift.config.ts';
import { killAll, pgBackend, startNode, waitAlive, waitFor, type NodeProc } from './helpers.ts';

const backend = pgBackend();
const NAMES = ['a', 'b', 'c'];
let opened: { ns: Nightshift; db: Database; procs: NodeProc[] } | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && opened) {
    for (const p of opened.procs) console.log(`--- node ${p.name} ---\n${p.output().split('\n').slice(-30).join('\n')}`);
  }
  await killAll();
  await opened?.ns.close().catch(() => undefined);
  await opened?.db.close().catch(() => undefined);
  opened = undefined;
});
afterAll(async () => {
  await killAll();
  await backend.cleanup();
});

async function threeNodes(label: string) {
  const url = backend.freshUrl(label);
  const ns = await createNightshift({ db: url, jobs: [count, partitionedCount], logger: silentLogger });
  const db = await openDatabase(url);
  const procs = NAMES.map((n) => startNode(url, n, { args: ['--concurrency', '4'] }));
  opened = { ns, db, procs };
  await waitAlive(ns, NAMES);
  return { url, ns, db };
}

/** How many rows of `sql` (a node_name per row) each node has, in NAMES order. */
async function perNode(db: Database, sql: string, params: unknown[]): Promise<number[]> {
  const rows = await db.query<{ node_name: string }>(sql, params);
  return NAMES.map((n) => rows.filter((r) => r.node_name === n).length);
}

describe('even spread over live nodes (postgres, 3 real node processes)', () => {
  it('6 partitions and their manager spread within one over 3 nodes', async () => {
    const { ns, db } = await threeNodes('spread-part');
    // Long enough partitions that none ends (and frees its slot) before all six are taken.
    const e = await ns.submit('partitioned-count', { items: 600, grid: 6, tag: 'spread', delayMs: 10 });
    const partitions = `SELECT s.node_name FROM ns_step_execution s WHERE s.job_execution_id = $1 AND s.manager_id IS NOT NULL
      AND s.status <> 'STARTING'`;
    await waitFor(async () => (await db.query(partitions, [e.id])).length === 6, 30_000, 'all 6 partitions claimed');
    const spread = await perNode(db, partitions, [e.id]);
    expect(spread.reduce((a, b) => a + b)).toBe(6);
    // The manager's execution runs on one node and takes a slot there, as each partition does:
    // the spread evens the load, so that node takes one partition fewer unless it is node a, which
    // wins ties (lowest id). Loads end within one of each other: 3/2/2 with the manager.
    const manager = (await ns.getExecution(e.id))!.node;
    const load = spread.map((n, i) => n + (NAMES[i] === manager ? 1 : 0));
    expect(Math.max(...load) - Math.min(...load), `partitions per node a/b/c ${spread}, manager on ${manager}`).toBeLessThanOrEqual(1);
    // Not checked: 2/2/2 exactly when the manager is on a. That holds on a quiet machine, but
    // partitions that waited longer than the stale time (500 ms) are anyone's to take, and a
    // loaded CI machine makes that happen (1/2/3 seen once: loads 2/2/3, still within one).
    const done = await ns.waitForEnd(e.id, { timeoutMs: 60_000 });
    expect(done.status).toBe('COMPLETED');
  });

  it('6 submitted executions land 2/2/2', async () => {
    const { ns, db } = await threeNodes('spread-exec');
    const results = await ns.submitMany(Array.from({ length: 6 }, (_, i) => ({ job: 'count', params: { items: 100, chunk: 10, tag: `s${i}`, delayMs: 10 } })));
    const ids = results.map((r) => ('executionId' in r ? r.executionId : Number.NaN));
    const claimed = `SELECT node_name FROM ns_job_execution WHERE id = ANY($1::bigint[]) AND node_name IS NOT NULL`;
    await waitFor(async () => (await db.query(claimed, [ids])).length === 6, 30_000, 'all 6 executions claimed');
    expect(await perNode(db, claimed, [ids]), 'executions per node a/b/c').toEqual([2, 2, 2]);
    for (const id of ids) expect((await ns.waitForEnd(id, { timeoutMs: 60_000 })).status).toBe('COMPLETED');
  });
});
