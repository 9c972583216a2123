import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/repository/database.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { executionCounts, foldExecutionCounts, pruneHistory, pruneNodes, type PruneResult } from '../../src/repository/retention.ts';
import { backends } from '../support/backends.ts';

const DAY = 86_400_000;

let tick = 0;

/**
 * An instance with executions of these statuses, oldest first, created (and ended) about `ageDays`
 * ago: creation times rise with ids, as they do in a repository.
 */
async function instance(db: Database, job: string, key: string, statuses: string[], ageDays: number, owner: number | null = null): Promise<number[]> {
  const now = Date.now();
  const [{ id: instanceId }] = await db.query<{ id: number }>(
    `INSERT INTO ns_job_instance (job_name, job_key, identifying_params, create_time) VALUES ($1, $2, '{}', $3) RETURNING id`,
    [job, key, now - ageDays * DAY],
  );
  const ids: number[] = [];
  for (const status of statuses) {
    const running = ['STARTING', 'STARTED', 'STOPPING'].includes(status);
    const t = now - ageDays * DAY + ++tick * 1000;
    const [{ id }] = await db.query<{ id: number }>(
      `INSERT INTO ns_job_execution (instance_id, job_name, status, exit_code, params, create_time, start_time, end_time, last_updated, owner_node_id)
       VALUES ($1, $2, $3, $3, '{}', $4, $4, $5, $4, $6) RETURNING id`,
      [instanceId, job, status, t, running ? null : t + 500, running ? owner : null],
    );
    await db.execute(
      `INSERT INTO ns_step_execution (job_execution_id, step_name, status, exit_code, last_updated, context) VALUES ($1, 'step', $2, $2, $3, '{}')`,
      [id, status, t],
    );
    ids.push(Number(id));
  }
  return ids;
}

const remaining = async (db: Database) =>
  (await db.query<{ id: number }>('SELECT id FROM ns_job_execution ORDER BY id')).map((r) => Number(r.id));
const stepsLeft = async (db: Database) =>
  (await db.query<{ id: number }>('SELECT job_execution_id AS id FROM ns_step_execution ORDER BY job_execution_id')).map((r) => Number(r.id));

/** The counters agree with a count of the rows. */
async function expectCountersTrue(db: Database) {
  await foldExecutionCounts(db);
  const counted = await db.query<{ job_name: string; status: string; n: number }>(
    'SELECT job_name, status, count(*) AS n FROM ns_job_execution GROUP BY job_name, status ORDER BY job_name, status',
  );
  expect(await executionCounts(db)).toEqual(counted.map((r) => ({ job: r.job_name, status: r.status, count: Number(r.n) })));
}

describe.each(backends())('prune ($name)', (backend) => {
  afterAll(() => backend.cleanup());
  const fresh = () => openDatabase(backend.freshUrl('prune'));

  it('never deletes running work nor a restartable instance; deletes the rest that is old enough, with its steps and instance', async () => {
    const db = await fresh();
    const completed = await instance(db, 'a', 'done', ['COMPLETED'], 40);
    const failedThenCompleted = await instance(db, 'a', 'recovered', ['FAILED', 'COMPLETED'], 40);
    const failed = await instance(db, 'a', 'failed', ['FAILED'], 40);
    const stopped = await instance(db, 'a', 'stopped', ['FAILED', 'STOPPED'], 40);
    const running = await instance(db, 'a', 'running', ['FAILED', 'STARTED'], 40, 1);
    const queued = await instance(db, 'a', 'queued', ['STARTING'], 40);
    const abandoned = await instance(db, 'b', 'abandoned', ['ABANDONED'], 40);
    const recent = await instance(db, 'b', 'recent', ['COMPLETED'], 1);

    const r = await pruneHistory(db, { olderThanMs: 30 * DAY });
    expect(r).toMatchObject({ executions: 4, steps: 4, instances: 3, dryRun: false });
    const kept = [...failed, ...stopped, ...running, ...queued, ...recent].sort((x, y) => x - y);
    expect(await remaining(db)).toEqual(kept);
    expect(await stepsLeft(db)).toEqual(kept);
    const instances = (await db.query<{ job_key: string }>('SELECT job_key FROM ns_job_instance ORDER BY id')).map((x) => x.job_key);
    expect(instances).toEqual(['failed', 'stopped', 'running', 'queued', 'recent']);
    expect([...completed, ...failedThenCompleted, ...abandoned].some((id) => kept.includes(id))).toBe(false);
    await expectCountersTrue(db);

    // Asked to, it deletes restartable instances too, and still no running work.
    const again = await pruneHistory(db, { olderThanMs: 30 * DAY, includeRestartable: true });
    expect(again.executions).toBe(3);
    expect(await remaining(db)).toEqual([...running, ...queued, ...recent].sort((x, y) => x - y));
    await expectCountersTrue(db);
    await db.close();
  });

  it('keeps the newest N executions of each job, and deletes only the statuses asked for', async () => {
    const db = await fresh();
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < 5; i++) {
      a.push(...(await instance(db, 'a', `a${i}`, ['COMPLETED'], 60 - i)));
      b.push(...(await instance(db, 'b', `b${i}`, [i % 2 ? 'ABANDONED' : 'COMPLETED'], 60 - i)));
    }
    // b: COMPLETED b0, b2, b4 and ABANDONED b1, b3; only ABANDONED, and keep the newest 2 of each job.
    const r = await pruneHistory(db, { olderThanMs: 30 * DAY, statuses: ['ABANDONED'], keepLast: 2 });
    expect(r.executions).toBe(1);
    expect(await remaining(db)).toEqual([...a, ...b.filter((id) => id !== b[1])].sort((x, y) => x - y));
    const r2 = await pruneHistory(db, { olderThanMs: 30 * DAY, keepLast: 2 });
    expect(r2.executions).toBe(3 + 2);
    expect(await remaining(db)).toEqual([a[3], a[4], b[3], b[4]].sort((x, y) => x - y));
    await expectCountersTrue(db);
    await db.close();
  });

  it('deletes in batches of the size asked, each its own transaction', async () => {
    const db = await fresh();
    for (let i = 0; i < 10; i++) await instance(db, 'a', `k${i}`, ['COMPLETED'], 40);
    const sizes: number[] = [];
    const r = await pruneHistory(db, { olderThanMs: 30 * DAY, batchSize: 3, onBatch: (b) => sizes.push(b.executions) });
    expect(r.executions).toBe(10);
    expect(sizes).toEqual([3, 3, 3, 1]);
    expect(r.batches).toBe(4);
    expect(await remaining(db)).toEqual([]);
    await db.close();
  });

  it('a dry run reports exactly what the same prune then deletes, and changes nothing', async () => {
    const db = await fresh();
    // Instances of two jobs, some spanning batches, with partitions, running and restartable work,
    // a recent one, and node incarnations: an old one, one that still owns running work, a live one.
    for (let i = 0; i < 3; i++) {
      await instance(db, 'a', `done${i}`, ['COMPLETED'], 50 - i);
      await instance(db, 'a', `recovered${i}`, ['FAILED', 'STOPPED', 'COMPLETED'], 50 - i);
      await instance(db, 'b', `abandoned${i}`, ['ABANDONED', 'COMPLETED'], 50 - i);
      await instance(db, 'b', `mixed${i}`, ['COMPLETED', 'ABANDONED'], 50 - i);
      await instance(db, 'a', `failed${i}`, ['COMPLETED', 'FAILED'], 50 - i);
    }
    const nodeIds: number[] = [];
    for (const [name, status, ended] of [['n1', 'dead', 10], ['n2', 'dead', 10], ['n3', 'left', 40], ['n4', 'alive', null]] as const) {
      nodeIds.push(Number((await db.query<{ id: number }>(
        `INSERT INTO ns_node (name, cluster, host, pid, kind, status, jobs, concurrency, heartbeat_ms, lease_ms, started_at, last_heartbeat, lease_until, ended_at)
         VALUES ($1, 'c', 'h', 1, 'node', $2, '[]', 1, 1000, 5000, 0, 0, $3, $4) RETURNING id`,
        [name, status, Date.now() + 60_000, ended === null ? null : Date.now() - ended * DAY],
      ))[0].id));
    }
    await instance(db, 'a', 'running', ['COMPLETED', 'STARTED'], 45, nodeIds[1]);
    await instance(db, 'b', 'queued', ['ABANDONED', 'STARTING'], 45);
    await instance(db, 'b', 'recent', ['COMPLETED', 'COMPLETED'], 1);
    // Partitions: more step executions than executions.
    const withPartitions = await db.query<{ id: number; job_execution_id: number }>(`SELECT id, job_execution_id FROM ns_step_execution WHERE id % 3 = 0`);
    for (const s of withPartitions) {
      for (let p = 0; p < 2; p++) {
        await db.execute(
          `INSERT INTO ns_step_execution (job_execution_id, step_name, status, exit_code, last_updated, context, manager_id) VALUES ($1, $2, 'COMPLETED', 'COMPLETED', 0, '{}', $3)`,
          [s.job_execution_id, `step:partition${p}`, s.id],
        );
      }
    }
    const tables = (await db.query<{ name: string }>(db.dialect === 'postgres'
      ? `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`
      : `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1`)).map((t) => t.name);
    expect(tables).toEqual(expect.arrayContaining(['ns_job_instance', 'ns_job_execution', 'ns_step_execution', 'ns_node', 'ns_execution_count']));
    const counts = async () => {
      const c: Record<string, number> = {};
      for (const t of tables) c[t] = Number((await db.query<{ n: number }>(`SELECT count(*) AS n FROM ${t}`))[0].n);
      return c;
    };

    const runs: Parameters<typeof pruneHistory>[1][] = [
      { olderThanMs: 30 * DAY, statuses: ['COMPLETED'], keepLast: 4, batchSize: 2 },
      { olderThanMs: 30 * DAY, statuses: ['ABANDONED'], keepLast: 6, batchSize: 3 },
      { olderThanMs: 30 * DAY, batchSize: 4, nodes: false },
      { olderThanMs: 30 * DAY, includeRestartable: true, batchSize: 5 },
    ];
    for (const options of runs) {
      const before = await counts();
      const dryBatches: PruneResult[] = [];
      const dry = await pruneHistory(db, { ...options, dryRun: true, onBatch: (b) => dryBatches.push(b) });
      expect(dry.dryRun).toBe(true);
      expect(await counts(), 'a dry run changes nothing').toEqual(before);
      const realBatches: PruneResult[] = [];
      const real = await pruneHistory(db, { ...options, onBatch: (b) => realBatches.push(b) });
      expect(real).toEqual({ ...dry, dryRun: false });
      expect(realBatches).toEqual(dryBatches.map((b) => ({ ...b, dryRun: false })));
      const after = await counts();
      expect(before.ns_job_execution - after.ns_job_execution).toBe(real.executions);
      expect(before.ns_step_execution - after.ns_step_execution).toBe(real.steps);
      expect(before.ns_job_instance - after.ns_job_instance).toBe(real.instances);
      expect(before.ns_node - after.ns_node).toBe(real.nodes);
      expect(real.executions, JSON.stringify(options)).toBeGreaterThan(0);
    }
    // What is left: the running and queued instances, recent work; the node that ended 10 days
    // ago, the one that still owns running work, and the live one.
    const left = (await db.query<{ job_key: string }>('SELECT job_key FROM ns_job_instance ORDER BY id')).map((x) => x.job_key);
    expect(left).toEqual(['running', 'queued', 'recent']);
    expect((await db.query<{ id: number }>('SELECT id FROM ns_node ORDER BY id')).map((x) => Number(x.id))).toEqual([nodeIds[0], nodeIds[1], nodeIds[3]]);
    const none = await pruneHistory(db, { olderThanMs: 30 * DAY, includeRestartable: true, dryRun: true });
    expect(none).toEqual({ executions: 0, steps: 0, instances: 0, nodes: 0, batches: 0, dryRun: true });
    await expectCountersTrue(db);
    await db.close();
  });

  it('refuses running statuses and bad values with a clear message', async () => {
    const db = await fresh();
    await expect(pruneHistory(db, { olderThanMs: DAY, statuses: ['STARTED'] })).rejects.toThrow(/STARTED executions are running work and are never pruned/);
    await expect(pruneHistory(db, { olderThanMs: -1 })).rejects.toThrow(/olderThan must be a duration/);
    await expect(pruneHistory(db, { olderThanMs: DAY, keepLast: 1.5 })).rejects.toThrow(/keepLast must be a whole number/);
    await db.close();
  });

  it('deletes ended node incarnations after their retention, except one that still owns running work', async () => {
    const db = await fresh();
    const node = async (name: string, status: string, endedDaysAgo: number | null) =>
      Number((await db.query<{ id: number }>(
        `INSERT INTO ns_node (name, cluster, host, pid, kind, status, jobs, concurrency, heartbeat_ms, lease_ms, started_at, last_heartbeat, lease_until, ended_at)
         VALUES ($1, 'c', 'h', 1, 'node', $2, '[]', 1, 1000, 5000, 0, 0, $3, $4) RETURNING id`,
        [name, status, Date.now() + 60_000, endedDaysAgo === null ? null : Date.now() - endedDaysAgo * DAY],
      ))[0].id);
    const oldDead = await node('n1', 'dead', 10);
    const oldOwner = await node('n2', 'dead', 10);
    const recentLeft = await node('n1', 'left', 1);
    const alive = await node('n1', 'alive', null);
    await instance(db, 'a', 'orphan', ['STARTED'], 10, oldOwner);
    expect(await pruneNodes(db, 7 * DAY)).toBe(1);
    const ids = (await db.query<{ id: number }>('SELECT id FROM ns_node ORDER BY id')).map((x) => Number(x.id));
    expect(ids).toEqual([oldOwner, recentLeft, alive]);
    expect(ids).not.toContain(oldDead);
    await db.close();
  });
});
