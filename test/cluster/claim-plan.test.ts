/**
 * The drain's two hot statements read what they take and no more, even right after a bulk
 * submit that the planner's statistics have not seen (they still say the queue is empty): a
 * claim of 16 reads 16 queued rows, not the whole queue sorted, and a grouped end finds its
 * executions by id, not by combining the status and running indexes. A node reads its own jobs'
 * queues, not the work of other jobs queued ahead (with one job or several). Measured as the
 * buffers each statement touches, with the unforced or id-order statement beside it to show the
 * trap is real; and again once the statistics have seen the deep queue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import { SQL } from '../../src/repository/sql.ts';
import { defineJob } from '../../src/core/job.ts';
import { noop } from '../../examples/nightshift.config.ts';
import { pgBackend } from './helpers.ts';

const backend = pgBackend();
const QUEUED = 5000;
const AHEAD = 40_000;
const other = defineJob({ name: 'other', steps: (st) => [st.tasklet({ name: 'other', tasklet: () => undefined })] });
let ns: Nightshift;
let nodeId: number;

/**
 * Shared buffers the statement touches, run inside a transaction that is rolled back; the second
 * of two runs, so that reading the catalog to plan it does not count.
 */
async function buffers(sql: string, params: unknown[], setup = ''): Promise<number> {
  await once(sql, params, setup);
  return once(sql, params, setup);
}

/** What ns_queued_ids takes for a node with `jobs`, in id order, in a transaction rolled back. */
async function queuedIds(jobs: string[], n: number): Promise<number[]> {
  return ns.db.transaction(async (tx) => {
    const rows = await tx.query<{ id: string }>(`SELECT ns_queued_ids($1, $2, $3::text[], $4) AS id`, [nodeId, 'plan-node', jobs, n]);
    await tx.exec('ROLLBACK; BEGIN');
    return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
  });
}

/**
 * Buffers of `sql` run as a prepared statement under its generic plan (parameters of `types`);
 * the second of two runs, as in {@link buffers}.
 */
async function genericBuffers(sql: string, types: string[], params: unknown[]): Promise<number> {
  let hits = 0;
  for (let run = 0; run < 2; run++) {
    // Prepared and dropped on the transaction's own connection (statements are the session's).
    const name = `plan_${++prepared}`;
    // EXECUTE takes literals (a utility statement has no bound parameters); PREPARE gave their types.
    const literal = (v: unknown) => `'${(Array.isArray(v) ? `{${v.join(',')}}` : String(v)).replace(/'/g, "''")}'`;
    hits = await once(`EXECUTE ${name}(${params.map(literal).join(', ')})`, [], `SET LOCAL plan_cache_mode = force_generic_plan; PREPARE ${name}(${types.join(', ')}) AS ${sql}`,
      `DEALLOCATE ${name}`);
  }
  return hits;
}
let prepared = 0;

async function once(sql: string, params: unknown[], setup: string, cleanup = ''): Promise<number> {
  return ns.db.transaction(async (tx) => {
    if (setup) await tx.exec(setup);
    const [row] = await tx.query<{ 'QUERY PLAN': [{ Plan: { 'Shared Hit Blocks': number; 'Shared Read Blocks': number } }] }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`, params);
    const plan = row['QUERY PLAN'][0].Plan;
    await tx.exec(`ROLLBACK; ${cleanup ? `${cleanup}; ` : ''}BEGIN`);
    return plan['Shared Hit Blocks'] + plan['Shared Read Blocks'];
  });
}

beforeAll(async () => {
  ns = await createNightshift({ db: backend.freshUrl('claimplan'), jobs: [noop, other], logger: silentLogger });
  await ns.db.exec('ANALYZE');
  // Work of a job the node does not have waits ahead of its own.
  const others = Array.from({ length: AHEAD }, (_, k) => ({ job: 'other', params: { 'run.id': k + 1 } }));
  expect((await ns.submitMany(others)).filter((r) => 'error' in r)).toEqual([]);
  const items = Array.from({ length: QUEUED }, (_, k) => ({ job: 'noop', params: { 'run.id': k + 1 } }));
  expect((await ns.submitMany(items)).filter((r) => 'error' in r)).toEqual([]);
  const [node] = await ns.db.query<{ id: string }>(SQL.insertNode, ['plan-node', 'default', 'localhost', process.pid, 'node', ['noop'], 16, 1000, 60_000, 60_000]);
  nodeId = Number(node.id);
}, 120_000);
afterAll(async () => {
  await ns?.close();
  await backend.cleanup();
});

describe('the drain statements right after a bulk submit (postgres)', () => {
  it('a claim of 16 reads 16 queued rows in id order, not the whole queue', async () => {
    const claim = await buffers(`SELECT ns_queued_ids($1, $2, $3::text[], 16)`, [nodeId, 'plan-node', ['noop', 'other']]);
    const unforced = await buffers(`SELECT id FROM ns_job_execution WHERE status = 'STARTING' AND owner_node_id IS NULL
      AND (target_node IS NULL OR target_node = $1) AND job_name = ANY($2::text[]) ORDER BY id LIMIT 16 FOR UPDATE SKIP LOCKED`,
    ['plan-node', ['noop', 'other']]);
    expect(unforced, 'the planner reads the whole queue here, or this test shows nothing').toBeGreaterThan(QUEUED / 100);
    expect(claim).toBeLessThan(unforced / 4);
    const [first] = await ns.db.query<{ id: string }>(`SELECT min(id) AS id FROM ns_job_execution WHERE job_name = 'noop'`);
    const claimed = await ns.db.transaction(async (tx) => {
      const rows = await tx.query<{ id: string }>(SQL.claim('postgres'), [nodeId, 'plan-node', ['noop'], 16]);
      await tx.exec('ROLLBACK; BEGIN');
      return rows.map((r) => Number(r.id));
    });
    expect(claimed).toEqual(Array.from({ length: 16 }, (_, k) => Number(first.id) + k));
  });

  it('a node with one job or several reads its own jobs\' queues, not the work of other jobs waiting ahead', async () => {
    const one = await buffers(`SELECT ns_queued_ids($1, $2, $3::text[], 16)`, [nodeId, 'plan-node', ['noop']]);
    const several = await buffers(`SELECT ns_queued_ids($1, $2, $3::text[], 16)`, [nodeId, 'plan-node', ['noop', 'third']]);
    // How version 9 read it: the queue's partial index in id order, past the other job's work.
    const inIdOrder = await buffers(`SELECT id FROM ns_job_execution WHERE status = 'STARTING' AND owner_node_id IS NULL
      AND (target_node IS NULL OR target_node = $1) AND job_name = ANY($2::text[]) ORDER BY id LIMIT 16 FOR UPDATE SKIP LOCKED`,
    ['plan-node', ['noop', 'third']], 'SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off');
    expect(inIdOrder, 'the other job\'s work is read past here, or this test shows nothing').toBeGreaterThan(AHEAD / 100);
    expect(one).toBeLessThan(inIdOrder / 8);
    expect(several).toBeLessThan(inIdOrder / 8);
    const [first] = await ns.db.query<{ id: string }>(`SELECT min(id) AS id FROM ns_job_execution WHERE job_name = 'noop' AND status = 'STARTING'`);
    for (const jobs of [['noop'], ['noop', 'third'], ['third', 'noop', 'other']]) {
      const ids = await queuedIds(jobs, 16);
      const expected = jobs.includes('other') ? Array.from({ length: 16 }, (_, k) => k) : Array.from({ length: 16 }, (_, k) => Number(first.id) + k);
      if (jobs.includes('other')) {
        const [o] = await ns.db.query<{ id: string }>(`SELECT min(id) AS id FROM ns_job_execution WHERE job_name = 'other' AND status = 'STARTING'`);
        expect(ids, jobs.join(',')).toEqual(expected.map((k) => Number(o.id) + k));
      } else {
        expect(ids, jobs.join(',')).toEqual(expected);
      }
    }
  });

  /** The id of the first queued noop, and `check` run while a peer's claim in flight holds the rows `held` gives from it. */
  async function whilePeerHolds(held: (first: number) => number[], check: (first: number, held: number[]) => Promise<void>): Promise<void> {
    const [row] = await ns.db.query<{ id: string }>(`SELECT min(id) AS id FROM ns_job_execution WHERE job_name = 'noop' AND status = 'STARTING'`);
    const first = Number(row.id);
    const ids = held(first);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const peer = ns.db.transaction(async (tx) => {
      await tx.query(`SELECT id FROM ns_job_execution WHERE id = ANY($1::bigint[]) FOR UPDATE`, [ids]);
      locked();
      await released;
    });
    await isLocked;
    try {
      await check(first, ids);
    } finally {
      release();
      await peer;
    }
  }

  it('a node with several jobs takes the next queued executions when a peer holds the first ones', async () => {
    // Every other one of the first 40 is locked.
    await whilePeerHolds((first) => Array.from({ length: 20 }, (_, k) => first + 2 * k), async (first, held) => {
      const free = Array.from({ length: 60 }, (_, k) => first + k).filter((id) => !held.includes(id));
      expect(await queuedIds(['noop', 'third'], 16)).toEqual(free.slice(0, 16));
    });
  });

  it('a claim of one, while a peer\'s claim holds the head of the queue, takes the first id past it', async () => {
    // A claim of 40 (version 11 looked at four ids here and took none).
    await whilePeerHolds((first) => Array.from({ length: 40 }, (_, k) => first + k), async (first) => {
      expect(await queuedIds(['noop', 'third'], 1)).toEqual([first + 40]);
      expect(await queuedIds(['noop', 'third'], 3)).toEqual([first + 40, first + 41, first + 42]);
    });
  });

  it('the queue\'s functions keep a generic plan (migration 14; a function redefined without it would plan each call)', async () => {
    const rows = await ns.db.query<{ proname: string; proconfig: string[] }>(
      `SELECT p.proname, p.proconfig FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
        AND p.proname IN ('ns_queued_ids', 'ns_queued_since', 'ns_has_queued', 'ns_queued_count') ORDER BY p.proname`);
    expect(rows.map((r) => r.proname)).toEqual(['ns_has_queued', 'ns_queued_count', 'ns_queued_ids', 'ns_queued_since']);
    for (const r of rows) expect(r.proconfig, r.proname).toContain('plan_cache_mode=force_generic_plan');
  });

  it('a grouped end finds its executions by id', async () => {
    const claimed = await ns.db.query<{ id: string; owner_epoch: string; first_step: { id: number } }>(SQL.claimStartingStep, [nodeId, 'plan-node', ['noop'], 16, ['noop'], ['noop']]);
    expect(claimed).toHaveLength(16);
    const col = <T>(f: (r: (typeof claimed)[number]) => T): T[] => claimed.map(f);
    const params = [
      col((r) => r.id), col(() => nodeId), col((r) => r.owner_epoch), col(() => 'COMPLETED'), col(() => 'COMPLETED'), col(() => ''), col(() => '{}'),
      col((r) => r.first_step.id), ...Array.from({ length: 8 }, () => col(() => 0)), col(() => '{}'), col(() => 'COMPLETED'), col(() => 'COMPLETED'), col(() => ''),
    ];
    const [row] = await ns.db.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${SQL.finishExecutionsEndingSteps}`, params);
    const plan = JSON.stringify(row['QUERY PLAN']);
    expect(plan).not.toContain('BitmapAnd');
    expect(plan).not.toContain('ns_job_execution_status');
    const ended = await ns.db.query<{ id: string }>(SQL.finishExecutionsEndingSteps, params);
    expect(ended.map((r) => r.id)).toEqual(col((r) => r.id));
  });

  it('the even spread reads a bounded part of the queue, whatever its depth', async () => {
    // Counts stop at 1,000 queued (COUNT_LIMIT); the work addressed to the node and the queue's
    // age are looked up, not scanned for.
    const spread = await buffers(SQL.spreadState('postgres'), [nodeId, ['noop'], 1000, 'plan-node', 30_000]);
    expect(spread).toBeLessThan(80);
  });

  it('once the statistics have seen the deep queue, a claim still reads only its own jobs\' queues', async () => {
    // Last: the tests above measure the plans right after a bulk submit, as statistics that have
    // not seen it. Now the planner knows 40,000 of 'other' are queued. And job 'fourth' has a long
    // history of STOPPED executions (an operator stopped its backlog) and 3 queued: its statuses
    // sort after STARTING, so a read of its queue must end at the end of the queue, not of the job.
    const [{ min }] = await ns.db.query<{ min: string }>(`SELECT min(id) AS min FROM ns_job_execution WHERE job_name = 'other'`);
    await ns.db.execute(`UPDATE ns_job_execution SET job_name = 'fourth', status = CASE WHEN id < $1 + 3 THEN 'STARTING' ELSE 'STOPPED' END
      WHERE job_name = 'other' AND id < $1 + 20000`, [Number(min)]);
    await ns.db.exec('ANALYZE ns_job_execution');
    const fourth = await ns.db.query<{ id: string }>(`SELECT id FROM ns_job_execution WHERE job_name = 'fourth' AND status = 'STARTING' ORDER BY id`);
    expect(fourth).toHaveLength(3);
    expect(await buffers(`SELECT ns_queued_ids($1, $2, $3::text[], 64)`, [nodeId, 'plan-node', ['fourth']])).toBeLessThan(20);
    expect(await buffers(`SELECT ns_queued_ids($1, $2, $3::text[], 64)`, [nodeId, 'plan-node', ['fourth', 'third']])).toBeLessThan(30);
    expect(await buffers(`SELECT ns_has_queued($1::text[], $2)`, [['fifth', 'fourth'], 'plan-node'])).toBeLessThan(20);
    expect(await queuedIds(['fourth', 'third'], 64)).toEqual(fourth.map((r) => Number(r.id)));
    const nothingQueued = await buffers(`SELECT ns_queued_ids($1, $2, $3::text[], 64)`, [nodeId, 'plan-node', ['third']]);
    const severalEmpty = await buffers(`SELECT ns_queued_ids($1, $2, $3::text[], 64)`, [nodeId, 'plan-node', ['noop', 'third', 'fifth', 'sixth']]);
    const since = await buffers(`SELECT ns_queued_since($1::text[])`, [['third', 'fourth', 'noop']]);
    // Version 10's read of each job's queue, fixed by equalities: the order it asks for is then
    // id order alone, which the queue's partial index gives too, read past all of 'other'.
    const byEqualities = await buffers(`SELECT c.id FROM unnest($1::text[]) AS j(name) CROSS JOIN LATERAL (
        SELECT e.id FROM ns_job_execution e WHERE e.job_name = j.name AND e.status = 'STARTING' AND e.owner_node_id IS NULL
        ORDER BY e.job_name, e.status, e.id LIMIT 64) c`, [['third', 'fourth']], 'SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off');
    expect(byEqualities, 'the whole queue is read here, or this test shows nothing').toBeGreaterThan(AHEAD / 100);
    expect(nothingQueued).toBeLessThan(20);
    // 64 rows locked, 2 to 3 buffers each, and a few per job for the index descents.
    expect(severalEmpty).toBeLessThan(64 * 3 + 40);
    expect(since).toBeLessThan(30);
    // The probe and the spread run as prepared statements, whose generic plan, used after five
    // runs, does not know the job names: measured under that plan.
    const probe = await genericBuffers(SQL.nodeProbe('postgres'), ['bigint', 'text[]', 'text', 'bigint'], [nodeId, ['third', 'fourth'], 'plan-node', 1000]);
    const spread = await genericBuffers(SQL.spreadState('postgres'), ['bigint', 'text[]', 'integer', 'text', 'bigint'], [nodeId, ['third', 'fourth'], 1000, 'plan-node', 30_000]);
    expect(probe).toBeLessThan(40);
    expect(spread).toBeLessThan(80);
    const [first] = await ns.db.query<{ id: string }>(`SELECT min(id) AS id FROM ns_job_execution WHERE job_name = 'noop' AND status = 'STARTING'`);
    expect(await queuedIds(['noop', 'third', 'fifth', 'sixth'], 64)).toEqual(Array.from({ length: 64 }, (_, k) => Number(first.id) + k));
    expect(await queuedIds(['third'], 64)).toEqual([]);
  });
});
