/**
 * Repository conformance: a listed or shown execution names the newest later execution of its
 * instance (`restartedAs`), so that a failure a restart has since completed can be told from one
 * that still needs an operator. Runs unchanged on SQLite and PostgreSQL.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { defineJob } from '../../src/core/job.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { p } from '../../src/core/params.ts';
import { executionJson } from '../../src/json.ts';
import { createNightshift } from '../../src/operator.ts';
import { backends } from '../support/backends.ts';

/** Fails in its first `failures` executions of an instance, then completes. */
const flaky = defineJob({
  name: 'flaky',
  params: { tag: p.string(), failures: p.int({ default: 1, identifying: false }) },
  steps: (s) => [
    s.tasklet({
      name: 'work',
      tasklet: (ctx) => {
        if (ctx.executionNumber <= ctx.params.failures) throw new Error(`failing on purpose (execution ${ctx.executionNumber})`);
      },
    }),
  ],
});

describe.each(backends())('restartedAs: the newest later execution of an instance ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('lists, pages and shows each execution with the newest later one of its instance, or null', async () => {
    const ns = await createNightshift({ db: backend.freshUrl('restarted'), jobs: [flaky], logger: silentLogger });
    try {
      // Instance A: #a1 FAILED, #a2 FAILED, #a3 COMPLETED. Instance B: #b1 FAILED, never restarted.
      // Instance C: #c1 FAILED, #c2 FAILED (a restart that failed again). Instance D: COMPLETED at once.
      const a1 = await ns.run('flaky', { tag: 'a', failures: 2 });
      const b1 = await ns.run('flaky', { tag: 'b' });
      const a2 = await ns.restart(a1.id);
      const c1 = await ns.run('flaky', { tag: 'c', failures: 5 });
      const a3 = await ns.restart(a2.id);
      const c2 = await ns.restart(c1.id);
      const d1 = await ns.run('flaky', { tag: 'd', failures: 0 });
      expect([a1, b1, a2, c1, a3, c2, d1].map((e) => e.status)).toEqual(['FAILED', 'FAILED', 'FAILED', 'FAILED', 'COMPLETED', 'FAILED', 'COMPLETED']);
      // What run and restart return names none: each was its instance's newest when it ended.
      expect([a1, a3, d1].map((e) => e.restartedAs)).toEqual([null, null, null]);

      const expected = new Map([
        [a1.id, { id: a3.id, status: 'COMPLETED' }], // the newest later one, not the next
        [a2.id, { id: a3.id, status: 'COMPLETED' }],
        [a3.id, null],
        [b1.id, null],
        [c1.id, { id: c2.id, status: 'FAILED' }],
        [c2.id, null],
        [d1.id, null],
      ]);
      const restarts = (list: { id: number; restartedAs: unknown }[]) => list.map((e) => [e.id, e.restartedAs]);

      const all = await ns.listExecutions({ limit: 50 });
      expect(all.map((e) => e.id)).toEqual([d1.id, c2.id, a3.id, c1.id, a2.id, b1.id, a1.id]);
      expect(restarts(all)).toEqual(all.map((e) => [e.id, expected.get(e.id)]));
      // The status filter, several statuses merged, steps, and the next page carry it alike.
      const failed = await ns.listExecutions({ status: 'FAILED' });
      expect(restarts(failed)).toEqual([c2, c1, a2, b1, a1].map((e) => [e.id, expected.get(e.id)]));
      const merged = await ns.listExecutions({ statuses: ['FAILED', 'COMPLETED'], limit: 3 });
      expect(restarts(merged)).toEqual([d1, c2, a3].map((e) => [e.id, expected.get(e.id)]));
      const withSteps = await ns.listExecutions({ job: 'flaky', steps: true, limit: 2 });
      expect(restarts(withSteps)).toEqual([d1, c2].map((e) => [e.id, expected.get(e.id)]));
      expect(withSteps[0].steps.map((s) => s.stepName)).toEqual(['work']);
      const page = await ns.explorer.pageExecutions({ before: a3.id, limit: 2 });
      expect(restarts(page.executions)).toEqual([c1, a2].map((e) => [e.id, expected.get(e.id)]));

      // One execution, as the operator shows it.
      for (const [id, restartedAs] of expected) expect((await ns.getExecution(id))!.restartedAs).toEqual(restartedAs);
      // The JSON of the CLI and the API: always there for what was read with it, absent for a bare execution.
      expect(executionJson((await ns.getExecution(a1.id))!).restartedAs).toEqual({ id: a3.id, status: 'COMPLETED' });
      expect(executionJson(all.find((e) => e.id === b1.id)!).restartedAs).toBeNull();
      expect('restartedAs' in executionJson((await ns.explorer.getExecution(a1.id))!)).toBe(false);
    } finally {
      await ns.close();
    }
  }, 60_000);

  it('names a queued restart with its status as read', async () => {
    const ns = await createNightshift({ db: backend.freshUrl('running'), jobs: [flaky], logger: silentLogger });
    try {
      const first = await ns.run('flaky', { tag: 'r' });
      // A restart submitted to the cluster waits queued (no node runs here): STARTING.
      const queued = await ns.submit('flaky', { tag: 'r' });
      expect(queued.instanceId).toBe(first.instanceId);
      expect((await ns.getExecution(first.id))!.restartedAs).toEqual({ id: queued.id, status: 'STARTING' });
      expect((await ns.listExecutions({ status: 'FAILED' }))[0].restartedAs).toEqual({ id: queued.id, status: 'STARTING' });
    } finally {
      await ns.close();
    }
  }, 60_000);
});
