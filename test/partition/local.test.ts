/**
 * Partitioned steps in one process, on SQLite and PostgreSQL: aggregation of partition counters,
 * local and default (cluster) mode, a partition failing on purpose and its restart, an empty
 * partitioner, the manager's timeout, and stop/restart.
 */
import { describe, expect, it } from 'vitest';
import { within } from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';
import { backends } from '../support/backends.ts';
import { partitionedCount } from '../../examples/nightshift.config.ts';
import { pcDefault, pcEmpty, pcLocal, pcTimeout, pcTwoSteps, ranges } from './fixtures/jobs.ts';
import { counters, itemRows, managerOf, onceSummary, partitionsOf, stopOncePartitionCommitted, sumCounters, why } from './helpers.ts';

const JOBS = [partitionedCount, pcDefault, pcLocal, pcEmpty, pcTimeout, pcTwoSteps];

describe.each(backends())('partitioned steps in one process ($name)', (backend) => {
  const pool = suiteInstances(backend);

  it('partitioned-count items=1000 grid=4: COMPLETED, manager counters = sums of partitions, rows exactly once', async () => {
    const ns = await pool.create(backend.freshUrl('pcount'), JOBS);
    const e = await ns.run('partitioned-count', { items: 1000, grid: 4, tag: 'pc' });
    expect(e.status, why(e)).toBe('COMPLETED');
    const manager = managerOf(e);
    const parts = partitionsOf(e);
    expect(manager.status).toBe('COMPLETED');
    expect(parts.map((p) => p.stepName).sort()).toEqual(['count:partition0', 'count:partition1', 'count:partition2', 'count:partition3']);
    expect(parts.every((p) => p.status === 'COMPLETED')).toBe(true);
    expect(parts.map((p) => p.readCount)).toEqual([250, 250, 250, 250]);
    // Each partition's context carries its range.
    const byName = Object.fromEntries(parts.map((p) => [p.stepName, p]));
    ranges(1000, 4).forEach((r, i) => expect(byName[`count:partition${i}`].context).toMatchObject(r));
    expect(counters(manager)).toEqual(sumCounters(parts));
    expect(counters(manager)).toMatchObject({ readCount: 1000, writeCount: 1000, rollbackCount: 0 });
    expect(await onceSummary(ns.db, 'pc', 1000)).toMatchObject({ ok: true, total: 1000 });
    expect((await itemRows(ns.db, 'pc')).every((r) => r.execution_id === e.id)).toBe(true);
    // The stored view agrees with what run returned.
    const stored = (await ns.getExecution(e.id))!;
    expect(counters(managerOf(stored))).toEqual(counters(manager));
  });

  it("mode 'local' and the default mode give the same rows and counters", async () => {
    const ns = await pool.create(backend.freshUrl('modes'), JOBS);
    const local = await ns.run('pc-local', { items: 1000, grid: 4, tag: 'local' });
    const dflt = await ns.run('pc-default', { items: 1000, grid: 4, tag: 'default' });
    for (const e of [local, dflt]) expect(e.status, why(e)).toBe('COMPLETED');
    expect(counters(managerOf(local))).toEqual(counters(managerOf(dflt)));
    const shape = (e: typeof local) => partitionsOf(e).map((p) => [p.stepName, p.status, counters(p), p.context]).sort();
    expect(shape(local)).toEqual(shape(dflt));
    expect(await onceSummary(ns.db, 'local', 1000)).toMatchObject({ ok: true });
    expect(await onceSummary(ns.db, 'default', 1000)).toMatchObject({ ok: true });
    expect((await itemRows(ns.db, 'local')).map((r) => r.item)).toEqual((await itemRows(ns.db, 'default')).map((r) => r.item));
  });

  it('a partition failing on purpose fails the step naming it; the restart re-runs only that partition, from its checkpoint', async () => {
    const ns = await pool.create(backend.freshUrl('failpart'), JOBS);
    // Partition 2 is 501..750; chunks of 100: 501..600 commits, then item 620 throws.
    const first = await ns.run('pc-default', { items: 1000, grid: 4, tag: 'fail', failAt: 620 });
    expect(first.status).toBe('FAILED');
    const m1 = managerOf(first);
    expect(m1.status).toBe('FAILED');
    expect(m1.exitStatus.description).toContain('count:partition2');
    expect(m1.exitStatus.description).toContain('failing on purpose at item 620');
    expect(m1.exitStatus.description).not.toMatch(/partition[013]\b/);
    const p1 = Object.fromEntries(partitionsOf(first).map((p) => [p.stepName, p]));
    expect(Object.keys(p1).sort()).toEqual(['count:partition0', 'count:partition1', 'count:partition2', 'count:partition3']);
    for (const n of ['count:partition0', 'count:partition1', 'count:partition3']) expect(p1[n].status, n).toBe('COMPLETED');
    expect(p1['count:partition2'].status).toBe('FAILED');
    // Its failed chunk (601..700) counts its reads, not its writes.
    expect(counters(p1['count:partition2'])).toMatchObject({ readCount: 200, writeCount: 100, commitCount: 1, rollbackCount: 1 });
    expect(counters(m1)).toEqual(sumCounters(partitionsOf(first)));
    expect(await itemRows(ns.db, 'fail')).toHaveLength(850);

    const second = await ns.restart(first.id);
    expect(second.status, why(second)).toBe('COMPLETED');
    expect(second.instanceId).toBe(first.instanceId);
    const parts2 = partitionsOf(second);
    // Only the failed partition has a new step execution.
    expect(parts2.map((p) => p.stepName)).toEqual(['count:partition2']);
    expect(parts2[0].status).toBe('COMPLETED');
    // It read only the remainder: 601..750.
    expect(counters(parts2[0])).toMatchObject({ readCount: 150, writeCount: 150, rollbackCount: 0 });
    expect(counters(managerOf(second))).toEqual(sumCounters(parts2));
    expect(await onceSummary(ns.db, 'fail', 1000)).toMatchObject({ ok: true, total: 1000 });
    const rows = await itemRows(ns.db, 'fail');
    for (const r of rows) {
      const expected = r.item > 600 && r.item <= 750 ? second.id : first.id;
      if (r.execution_id !== expected) expect(r, `row of item ${r.item}`).toMatchObject({ execution_id: expected });
    }
    // No other execution of the instance, and the earlier partitions were not touched.
    const again = (await ns.getExecution(first.id))!;
    expect(partitionsOf(again).map((p) => [p.stepName, p.status, p.readCount]).sort())
      .toEqual(partitionsOf(first).map((p) => [p.stepName, p.status, p.readCount]).sort());
  });

  it('several partitions failing: the summary counts and names every one of them', async () => {
    const ns = await pool.create(backend.freshUrl('failmany'), JOBS);
    for (const job of ['pc-default', 'pc-local']) {
      // 6 partitions of 100 items; items 50, 150, 399 and 600 fail partitions 0, 1, 3 and 5, in
      // their first or their last chunk (pc-local runs 2 at a time, pc-default 4).
      const e = await ns.run(job, { items: 600, grid: 6, tag: job, failItems: '50,150,399,600' });
      expect(e.status).toBe('FAILED');
      const parts = Object.fromEntries(partitionsOf(e).map((p) => [p.stepName, p.status]));
      expect(parts, job).toEqual({
        'count:partition0': 'FAILED', 'count:partition1': 'FAILED', 'count:partition2': 'COMPLETED',
        'count:partition3': 'FAILED', 'count:partition4': 'COMPLETED', 'count:partition5': 'FAILED',
      });
      const description = managerOf(e).exitStatus.description;
      expect(description, job).toMatch(/^4 of 6 partitions failed: /);
      for (const i of [0, 1, 3, 5]) expect(description, job).toContain(`count:partition${i} FAILED`);
      for (const i of [2, 4]) expect(description, job).not.toContain(`count:partition${i}`);
      // The job's exit description and the stored manager say the same.
      expect(e.exitStatus.description, job).toContain('4 of 6 partitions failed');
      expect(managerOf((await ns.getExecution(e.id))!).exitStatus.description, job).toBe(description);
    }
  });

  it('two partitioned steps whose names differ only where LIKE has a wildcard (a.b, a_b) each run their own partitions', async () => {
    const ns = await pool.create(backend.freshUrl('twosteps'), JOBS);
    const e = await ns.run('pc-two-steps', { items: 200 });
    expect(e.status, why(e)).toBe('COMPLETED');
    expect(partitionsOf(e).map((p) => p.stepName).sort()).toEqual(['a.b:partition0', 'a.b:partition1', 'a_b:partition0', 'a_b:partition1']);
    for (const name of ['a.b', 'a_b']) {
      expect(managerOf(e, name).writeCount, `${name} writeCount`).toBe(200);
      expect(await onceSummary(ns.db, name, 200), `rows of ${name}`).toMatchObject({ ok: true });
    }
  });

  it('a partitioner returning no partitions fails the step with a clear message', async () => {
    const ns = await pool.create(backend.freshUrl('empty'), JOBS);
    const e = await ns.run('pc-empty', { tag: 'empty' });
    expect(e.status).toBe('FAILED');
    const m = managerOf(e);
    expect(m.status).toBe('FAILED');
    expect(m.exitStatus.description).toMatch(/partitioner of step count returned no partitions/);
    expect(partitionsOf(e)).toEqual([]);
  });

  it('timeoutMs exceeded fails the step naming the unfinished partitions', async () => {
    const ns = await pool.create(backend.freshUrl('timeout'), JOBS);
    // 4 partitions of 100 items at 20 ms each (2 s per partition, 2 at a time); timeout 400 ms.
    const t0 = Date.now();
    const e = await within(ns.run('pc-timeout', { items: 400, grid: 4, tag: 'timeout', delayMs: 20 }), 30_000, 'pc-timeout');
    const elapsed = Date.now() - t0;
    expect(e.status).toBe('FAILED');
    const m = managerOf(e);
    expect(m.status).toBe('FAILED');
    expect(m.exitStatus.description).toMatch(/did not all end within 400 ms/);
    // At 400 ms no partition had ended: all four are named.
    for (const i of [0, 1, 2, 3]) expect(m.exitStatus.description).toContain(`count:partition${i}`);

    // What the timeout is for: the step ends at its timeout, not when the slow partitions end
    // (>= 2 s here); it leaves no partition queued or running under an ended execution; and the
    // manager still reports the work its partitions committed.
    const stored = (await ns.getExecution(e.id))!;
    const open = partitionsOf(stored).filter((p) => ['STARTING', 'STARTED', 'STOPPING'].includes(p.status));
    // Without the timeout the partitions need about 4 s (2 at a time, 2 s each): well under that.
    expect.soft(elapsed, `run took ${elapsed} ms with timeoutMs 400`).toBeLessThan(3000);
    expect.soft(open.map((p) => `${p.stepName} ${p.status}`), 'partitions left open in a FAILED execution').toEqual([]);
    expect.soft(counters(managerOf(stored)), 'manager counters vs its partitions').toEqual(sumCounters(partitionsOf(stored)));
  });

  it('stop while partitions run: STOPPED; the restart completes, rows exactly once', async () => {
    const ns = await pool.create(backend.freshUrl('stop'), JOBS);
    // pc-local runs 2 of 4 partitions at once: the stop finds 2 running and 2 queued.
    const { execution, done } = await ns.start('pc-local', { items: 2000, grid: 4, tag: 'stop', delayMs: 3 });
    const stopped = await stopOncePartitionCommitted(ns, execution.id, done);
    expect(stopped.status).toBe('STOPPED');
    const m1 = managerOf(stopped);
    expect(m1.status).toBe('STOPPED');
    const p1 = partitionsOf(stopped);
    expect(p1.every((p) => p.status === 'STOPPED' || p.status === 'COMPLETED'), p1.map((p) => `${p.stepName} ${p.status}`).join(', ')).toBe(true);
    expect(p1.some((p) => p.status === 'STOPPED')).toBe(true);
    expect(counters(m1)).toEqual(sumCounters(p1));
    const before = await itemRows(ns.db, 'stop');
    expect(before.length).toBe(m1.writeCount);
    expect(before.length).toBeLessThan(2000);

    const second = await ns.restart(stopped.id);
    expect(second.status, why(second)).toBe('COMPLETED');
    const completedBefore = new Set(p1.filter((p) => p.status === 'COMPLETED').map((p) => p.stepName));
    const p2 = partitionsOf(second);
    expect(p2.filter((p) => completedBefore.has(p.stepName))).toEqual([]);
    expect(p2.every((p) => p.status === 'COMPLETED')).toBe(true);
    expect(m1.readCount + managerOf(second).readCount).toBe(2000);
    expect(await onceSummary(ns.db, 'stop', 2000)).toMatchObject({ ok: true, total: 2000 });
  });
});
