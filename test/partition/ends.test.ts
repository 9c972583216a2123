/**
 * Partitions that no node claimed end with their execution, on SQLite and PostgreSQL: a job that
 * fails, a manager that fails with every partition queued (its job going on or ending), a stop,
 * a failover of the owner, and leftovers of an older version; and each restart runs every
 * partition that did not complete, once.
 */
import { describe, expect, it } from 'vitest';
import { reapDeadNodes } from '../../src/cluster/failover.ts';
import type { StepExecution } from '../../src/core/model.ts';
import { within } from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';
import { backends, waitFor } from '../support/backends.ts';
import { pcBadWorkers, pcBadWorkersChecked, pcOne, pcOneCluster } from './fixtures/jobs.ts';
import { managerOf, onceSummary, partitionsOf, stopOncePartitionCommitted, why } from './helpers.ts';

const JOBS = [pcOne, pcOneCluster, pcBadWorkers, pcBadWorkersChecked];
const PARTITIONS = ['count:partition0', 'count:partition1', 'count:partition2', 'count:partition3'];

/** The steps of an execution still queued or running ("name STATUS"). */
const open = (e: { steps: StepExecution[] }) => e.steps.filter((s) => s.status === 'STARTING' || s.status === 'STARTED').map((s) => `${s.stepName} ${s.status}`);
const byName = (e: { steps: StepExecution[] }) => Object.fromEntries(partitionsOf(e).map((p) => [p.stepName, p]));

describe.each(backends())('queued partitions end with their execution ($name)', (backend) => {
  const pool = suiteInstances(backend);

  it('a partition failing while the others wait: FAILED with nothing left open; the restart runs only it, rows once', async () => {
    const ns = await pool.create(backend.freshUrl('failone'), JOBS);
    // One partition at a time; partition 0 (1..100) fails in its first chunk while 1..3 are queued.
    const first = await ns.run('pc-one', { items: 400, grid: 4, tag: 'failone', failAt: 50 });
    expect(first.status, why(first)).toBe('FAILED');
    const stored = (await ns.getExecution(first.id))!;
    expect(open(stored), why(stored)).toEqual([]);
    const p = byName(stored);
    expect(Object.keys(p).sort()).toEqual(PARTITIONS);
    expect(p['count:partition0'].status).toBe('FAILED');

    const second = await ns.restart(first.id);
    expect(second.status, why(second)).toBe('COMPLETED');
    const rerun = partitionsOf(second).map((s) => s.stepName).sort();
    expect(rerun).toEqual(PARTITIONS.filter((n) => p[n].status !== 'COMPLETED'));
    expect(open((await ns.getExecution(second.id))!)).toEqual([]);
    expect(await onceSummary(ns.db, 'failone', 400)).toMatchObject({ ok: true, total: 400 });
  });

  it('a manager failing with every partition queued ends them FAILED, naming why; the restart runs all four once', async () => {
    const ns = await pool.create(backend.freshUrl('badworkers'), JOBS);
    const first = await ns.run('pc-bad-workers', { items: 400, grid: 4, tag: 'badworkers' });
    expect(first.status, why(first)).toBe('FAILED');
    const stored = (await ns.getExecution(first.id))!;
    expect(managerOf(stored).exitStatus.description).toContain('no workers on a first execution');
    expect(open(stored), why(stored)).toEqual([]);
    const p = byName(stored);
    expect(Object.keys(p).sort()).toEqual(PARTITIONS);
    for (const n of PARTITIONS) {
      expect(p[n].status, n).toBe('FAILED');
      expect(p[n].exitStatus.code, n).toBe('FAILED');
      expect(p[n].exitStatus.description, n).toMatch(new RegExp(`^not run: step count of job execution ${first.id} failed: .*no workers on a first execution`));
      expect(p[n].readCount, n).toBe(0);
      expect(p[n].endTime, n).not.toBeNull();
    }

    const second = await ns.restart(first.id);
    expect(second.status, why(second)).toBe('COMPLETED');
    expect(partitionsOf(second).map((s) => s.stepName).sort()).toEqual(PARTITIONS);
    expect(partitionsOf(second).every((s) => s.status === 'COMPLETED' && s.readCount === 100)).toBe(true);
    expect(await onceSummary(ns.db, 'badworkers', 400)).toMatchObject({ ok: true, total: 400 });
  });

  it('the queued partitions of a failed manager end with its step, before the job goes on past it', async () => {
    const ns = await pool.create(backend.freshUrl('checked'), JOBS);
    // The failed step goes on to `check`, which fails the job if any partition is still open.
    const e = await ns.run('pc-bad-workers-checked', { items: 400, grid: 4, tag: 'checked' });
    expect(e.status, why(e)).toBe('COMPLETED');
    expect(e.steps.find((s) => s.stepName === 'check')?.status, why(e)).toBe('COMPLETED');
    expect(partitionsOf(e).map((s) => s.status)).toEqual(['FAILED', 'FAILED', 'FAILED', 'FAILED']);
  });

  it.each(['pc-one', 'pc-one-cluster'])('%s: a stop ends the queued partitions STOPPED without running them; the restart completes, rows once', async (job) => {
    const ns = await pool.create(backend.freshUrl('stopq'), JOBS);
    // One partition at a time, 300 items each at 3 ms an item: three are queued when it stops.
    const { execution, done } = await ns.start(job, { items: 1200, grid: 4, tag: 'stopq', delayMs: 3 });
    const stopped = await stopOncePartitionCommitted(ns, execution.id, done);
    expect(stopped.status, why(stopped)).toBe('STOPPED');
    const stored = (await ns.getExecution(execution.id))!;
    expect(open(stored), why(stored)).toEqual([]);
    const parts = partitionsOf(stored);
    expect(parts.map((s) => s.stepName).sort()).toEqual(PARTITIONS);
    const ran = parts.filter((s) => s.startTime !== null);
    const queued = parts.filter((s) => s.startTime === null);
    expect(ran.length, why(stored)).toBe(1);
    expect(ran[0].status).toBe('STOPPED');
    expect(queued.length, why(stored)).toBe(3);
    for (const q of queued) {
      expect(q.status, q.stepName).toBe('STOPPED');
      expect(q.exitStatus, q.stepName).toEqual({ code: 'STOPPED', description: `not run: job execution ${execution.id} was stopped` });
      expect(q.commitCount + q.readCount, q.stepName).toBe(0);
    }

    const second = await ns.restart(execution.id);
    expect(second.status, why(second)).toBe('COMPLETED');
    expect(partitionsOf(second).map((s) => s.stepName).sort()).toEqual(PARTITIONS);
    expect(managerOf(stopped).readCount + managerOf(second).readCount).toBe(1200);
    expect(await onceSummary(ns.db, 'stopq', 1200)).toMatchObject({ ok: true, total: 1200 });
  });

  it('a failover of the owner ends the queued partitions FAILED naming it; the restart completes, rows once', async () => {
    const url = backend.freshUrl('failover');
    const ns = await pool.create(url, JOBS);
    const { execution, done } = await ns.start('pc-one', { items: 1200, grid: 4, tag: 'failover', delayMs: 3 });
    const running = await waitFor(async () => {
      const e = await ns.getExecution(execution.id);
      return e && partitionsOf(e).some((p) => p.status === 'STARTED' && p.commitCount > 0) ? e : undefined;
    }, 20_000, 'a partition with a committed chunk');
    // The owner leaves the cluster (as one whose process went away): the sweep fails its work.
    const [{ owner }] = await ns.db.query<{ owner: number }>('SELECT owner_node_id AS owner FROM ns_job_execution WHERE id = $1', [running.id]);
    await ns.db.execute(`UPDATE ns_node SET status = 'left', ended_at = ns_now() WHERE id = $1`, [owner]);
    // (A read's own sweep may get there first: either fails it once.)
    await reapDeadNodes(ns.db, -1);
    await within(done.catch(() => undefined), 20_000, 'the failed-over run to give up');
    const stored = (await waitFor(async () => {
      const e = await ns.getExecution(execution.id);
      return e && open(e).length === 0 ? e : undefined;
    }, 20_000, 'nothing open'))!;
    expect(stored.status).toBe('FAILED');
    const queued = partitionsOf(stored).filter((s) => s.startTime === null);
    expect(queued.length, why(stored)).toBe(3);
    for (const q of queued) {
      expect(q.status, q.stepName).toBe('FAILED');
      expect(q.exitStatus.description, q.stepName).toMatch(new RegExp(`^not run: job execution ${execution.id} failed: node \\S+ lost while running it$`));
    }

    // The restart from another process (this one's node has left).
    const other = await pool.create(url, JOBS);
    const second = await other.restart(execution.id);
    expect(second.status, why(second)).toBe('COMPLETED');
    expect(partitionsOf(second).map((s) => s.stepName).sort()).toEqual(PARTITIONS);
    expect(await onceSummary(ns.db, 'failover', 1200)).toMatchObject({ ok: true, total: 1200 });
  });

  it('the sweep ends partitions an older version left queued under an ended execution', async () => {
    const ns = await pool.create(backend.freshUrl('stale'), JOBS);
    const e = await ns.run('pc-bad-workers', { items: 400, grid: 4, tag: 'stale' });
    expect(e.status).toBe('FAILED');
    // What an older version left: the partitions still queued under the FAILED execution.
    await ns.db.execute(`UPDATE ns_step_execution SET status = 'STARTING', exit_code = 'UNKNOWN', exit_description = '', end_time = NULL
      WHERE job_execution_id = $1 AND manager_id IS NOT NULL`, [e.id]);
    expect(open((await ns.getExecution(e.id))!)).toHaveLength(4);
    await reapDeadNodes(ns.db, -1);
    const stored = (await ns.getExecution(e.id))!;
    expect(open(stored)).toEqual([]);
    for (const q of partitionsOf(stored)) {
      expect(q.exitStatus, q.stepName).toEqual({ code: 'FAILED', description: `not run: job execution ${e.id} ended FAILED` });
    }
    const second = await ns.restart(e.id);
    expect(second.status, why(second)).toBe('COMPLETED');
    expect(await onceSummary(ns.db, 'stale', 400)).toMatchObject({ ok: true, total: 400 });
  });
});
