/**
 * submitMany: many launches queued at once, each item answered on its own. Duplicates (of an
 * existing instance and within the batch), bad parameters and unknown jobs fail only their item;
 * the good items commit; the queued executions are then claimed and run by a node. Runs unchanged
 * on SQLite and PostgreSQL.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startNode } from '../../src/cluster/node.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { defineJob, type JobDefinition } from '../../src/core/job.ts';
import { p } from '../../src/core/params.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import { insertNewQueued, SUBMIT_BATCH } from '../../src/engine/bulk-launch.ts';
import { prepareLaunch } from '../../src/engine/launch.ts';
import { SQL } from '../../src/repository/sql.ts';
import { backends, waitFor } from '../support/backends.ts';
import { itWhen } from '../support/skip.ts';

function greetJob(ran: string[]) {
  return defineJob({
    name: 'greet',
    params: { who: p.string({ required: true }), times: p.int({ default: 1 }), note: p.string({ default: '', identifying: false }) },
    validate: [({ times }) => (times < 1 ? { params: ['times'], message: 'must be at least 1' } : undefined)],
    steps: (s) => [s.tasklet({ name: 'hello', tasklet: ({ params }) => void ran.push(params.who) })],
  });
}

describe.each(backends())('submitMany on $name', (backend) => {
  afterAll(() => backend.cleanup());

  it('answers each item: duplicates, bad parameters and unknown jobs fail only their item; the rest commit and run', async () => {
    const url = backend.freshUrl('submitmany');
    const ran: string[] = [];
    const job = greetJob(ran);
    const ns = await createNightshift({ db: url, jobs: [job], logger: silentLogger });
    try {
      // Already in the repository: a completed instance (refused) and a failed one (restarted, as submit does).
      await ns.run('greet', { who: 'done' });
      const queued = await ns.submit('greet', { who: 'queued' });

      // Bad items on purpose: through the untyped view, as a batch built at run time would be.
      const untyped: Nightshift = ns;
      const results = await untyped.submitMany([
        { job: 'greet', params: { who: 'a' } },
        { job: 'greet', params: { who: 'done' } },
        { job: 'greet', params: { who: 'b', times: 'x' } },
        { job: 'greet', params: { who: 'a', note: 'same instance' } },
        { job: 'nosuch', params: {} },
        { job: 'greet', params: { who: 'c', times: 0 } },
        { job: 'greet', params: { who: 'queued' } },
        { job: 'greet', params: { who: 'd', times: 2 } },
      ]);
      expect(results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      const ok = results.filter((r) => 'executionId' in r).map((r) => r.index);
      expect(ok).toEqual([0, 7]);
      const error = (i: number) => {
        const r = results[i];
        return 'error' in r ? r.error : '';
      };
      expect(error(1)).toMatch(/already completed/);
      expect(error(2)).toMatch(/times/);
      expect(error(3)).toMatch(/item 0/);
      expect(error(4)).toMatch(/unknown job nosuch/);
      expect(error(5)).toMatch(/times.*at least 1/);
      expect(error(6)).toMatch(new RegExp(`queued.*execution ${queued.id}`));

      // Exactly the good items committed: one queued execution each, nothing for the refused ones.
      const listed = await ns.listExecutions({ status: 'STARTING' });
      expect(listed.map((e) => e.params.who).sort()).toEqual(['a', 'd', 'queued']);
      const a = results[0] as { executionId: number };
      const e = (await ns.getExecution(a.executionId))!;
      expect(e).toMatchObject({ jobName: 'greet', status: 'STARTING', params: { who: 'a', times: 1, note: '' } });
      const instances = await ns.db.query<{ n: number | string }>('SELECT count(*) AS n FROM ns_job_instance');
      expect(Number(instances[0].n)).toBe(4); // done, queued, a, d

      // A node claims and runs them.
      const node = await startNode({ db: url, jobs: [job], name: 'n1', pollMs: 50, scheduler: false, logger: silentLogger });
      try {
        await waitFor(async () => (await ns.listExecutions({ status: 'COMPLETED' })).length === 4, 20_000, 'the submitted executions to complete');
      } finally {
        await node.shutdown();
      }
      expect(ran.sort()).toEqual(['a', 'd', 'done', 'queued']);
      expect((await ns.getExecution(a.executionId))!.node).toBe('n1');
    } finally {
      await ns.close();
    }
  });

  it('a failed instance in a batch is restarted as submit would (a new execution of the same instance)', async () => {
    const url = backend.freshUrl('submitmanyfail');
    let fail = true;
    const job = defineJob({
      name: 'flaky',
      params: { k: p.string({ required: true }) },
      steps: (s) => [s.tasklet({ name: 'go', tasklet: () => {
        if (fail) throw new Error('first time fails');
      } })],
    });
    const ns = await createNightshift({ db: url, jobs: [job], logger: silentLogger });
    try {
      const failed = await ns.run('flaky', { k: 'x' });
      expect(failed.status).toBe('FAILED');
      fail = false;
      const results = await ns.submitMany([{ job: 'flaky', params: { k: 'x' } }, { job: 'flaky', params: { k: 'y' } }]);
      expect(results.every((r) => 'executionId' in r)).toBe(true);
      const restarted = (await ns.getExecution((results[0] as { executionId: number }).executionId))!;
      expect(restarted.instanceId).toBe(failed.instanceId);
      expect(restarted.status).toBe('STARTING');
    } finally {
      await ns.close();
    }
  });

  it('a batch larger than one statement submits every item once, in order', async () => {
    const url = backend.freshUrl('submitmanybig');
    const ns = await createNightshift({ db: url, jobs: [greetJob([])], logger: silentLogger });
    try {
      const n = SUBMIT_BATCH + 7;
      const items = Array.from({ length: n }, (_, i) => ({ job: 'greet' as const, params: { who: `w${i}` } }));
      items[SUBMIT_BATCH + 3] = { job: 'greet', params: { who: 'w1' } };
      const results = await ns.submitMany(items);
      expect(results).toHaveLength(n);
      expect(results.filter((r) => 'error' in r).map((r) => r.index)).toEqual([SUBMIT_BATCH + 3]);
      const ids = results.filter((r): r is { index: number; executionId: number } => 'executionId' in r).map((r) => r.executionId);
      expect(new Set(ids).size).toBe(n - 1);
      const count = await ns.db.query<{ n: number | string }>(`SELECT count(*) AS n FROM ns_job_execution WHERE status = 'STARTING'`);
      expect(Number(count[0].n)).toBe(n - 1);
      const rows = await ns.db.query<{ params: string; id: number | string }>('SELECT id, params FROM ns_job_execution WHERE id = $1', [ids[42]]);
      expect(JSON.parse(rows[0].params)).toMatchObject({ who: 'w42' });
    } finally {
      await ns.close();
    }
  });

  it('numbers instances and executions in the items\' order across statements (the claim order, the newest instance)', async () => {
    const url = backend.freshUrl('submitmanyorder');
    const ns = await createNightshift({ db: url, jobs: [greetJob([])], logger: silentLogger });
    try {
      // Three statements' worth, which PostgreSQL inserts two at a time; an existing instance in the middle.
      await ns.submit('greet', { who: 'w7000' });
      const n = 2 * SUBMIT_BATCH + 11;
      const results = await ns.submitMany(Array.from({ length: n }, (_, i) => ({ job: 'greet' as const, params: { who: `w${i}` } })));
      const ids = results.map((r) => ('executionId' in r ? r.executionId : undefined));
      expect(ids.filter((id) => id === undefined)).toHaveLength(1);
      const submitted = ids.filter((id): id is number => id !== undefined);
      expect(submitted).toEqual([...submitted].sort((a, b) => a - b));
      const rows = await ns.db.query<{ id: number | string; instance_id: number | string; params: string }>(
        `SELECT id, instance_id, params FROM ns_job_execution WHERE status = 'STARTING' ORDER BY id`);
      const instances = rows.map((r) => Number(r.instance_id));
      expect(instances.slice(1)).toEqual([...instances.slice(1)].sort((a, b) => a - b));
      expect(rows.slice(1).map((r) => JSON.parse(r.params).who)).toEqual(
        Array.from({ length: n }, (_, i) => `w${i}`).filter((w) => w !== 'w7000'));
      // The newest instance is the last item's (what `run --next` starts from).
      const newest = await ns.db.query<{ identifying_params: string }>(SQL.lastInstance, ['greet']);
      expect(JSON.parse(newest[0].identifying_params)).toEqual({ who: `w${n - 1}`, times: 1 });
    } finally {
      await ns.close();
    }
  }, 60_000);

  it('two batches sharing instances, submitted at once in opposite orders: each instance is queued once', async () => {
    const url = backend.freshUrl('submitmanyrace');
    const ns = await createNightshift({ db: url, jobs: [greetJob([])], logger: silentLogger });
    try {
      const items = Array.from({ length: 600 }, (_, i) => ({ job: 'greet' as const, params: { who: `r${i}` } }));
      const [forward, backward] = await Promise.all([ns.submitMany(items), ns.submitMany([...items].reverse())]);
      for (let i = 0; i < items.length; i++) {
        const pair = [forward[i], backward[items.length - 1 - i]];
        expect(pair.filter((r) => 'executionId' in r), `item ${i}`).toHaveLength(1);
        const refused = pair.find((r) => 'error' in r) as { error: string };
        expect(refused.error).toMatch(/already queued/);
      }
      const count = await ns.db.query<{ n: number | string }>(`SELECT count(*) AS n FROM ns_job_execution`);
      expect(Number(count[0].n)).toBe(items.length);
    } finally {
      await ns.close();
    }
  }, 60_000);

  itWhen(backend.name === 'postgres', 'PostgreSQL only: SQLite has one writer at a time')(
    'a batch locks its instances in key order: a concurrent launch of the same instances waits, never deadlocks', async () => {
      const url = backend.freshUrl('submitmanylocks');
      const job = greetJob([]);
      const ns = await createNightshift({ db: url, jobs: [job], logger: silentLogger });
      try {
        const launch = (who: string) => ({ job: 'greet', launch: prepareLaunch(job as unknown as JobDefinition, { who }, { kind: 'queued', targetNode: null, affinityKey: null }) });
        const [low, high] = ['k1', 'k2', 'k3'].map(launch).sort((a, b) => (a.launch.key < b.launch.key ? -1 : 1));
        // Another transaction holds the lower key; the batch lists the higher one first. Taken in
        // the items' order, the batch would hold the higher key while it waits for the lower, and
        // the other transaction's launch of the higher key would close the cycle.
        let batch: Promise<Map<number, { id: number }>> | undefined;
        await ns.db.transaction(async (tx) => {
          await insertNewQueued(tx, [low]);
          batch = insertNewQueued(ns.db, [high, low]);
          batch.catch(() => undefined); // awaited below
          await waitFor(async () => (await ns.db.query(`SELECT 1 FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO ns_job_instance%'`)).length > 0, 10_000, 'the batch to wait for the lower key');
          expect((await insertNewQueued(tx, [high])).size).toBe(1);
        });
        expect((await batch!).size).toBe(0); // both exist now: the caller takes the locked path
        const count = await ns.db.query<{ n: number | string }>(`SELECT count(*) AS n FROM ns_job_execution`);
        expect(Number(count[0].n)).toBe(2);
      } finally {
        await ns.close();
      }
    }, 30_000);
});
