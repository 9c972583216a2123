/**
 * Engine conformance: recorded times are in order. A step's end is written with the run's next
 * fenced write (the next step's start, the job's end, or many jobs' ends at once on a node), and
 * takes that write's time: no step ends after its job, nor after the next step started. Runs
 * unchanged on SQLite and PostgreSQL.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startNode } from '../../src/cluster/node.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { defineJob } from '../../src/core/job.ts';
import { p } from '../../src/core/params.ts';
import type { JobExecution, StepExecution } from '../../src/core/model.ts';
import { createNightshift } from '../../src/operator.ts';
import { backends, waitFor } from '../support/backends.ts';

// Busy for about a millisecond, so that each write's clock reading differs from the last.
const busy = () => {
  const until = Date.now() + 1;
  while (Date.now() <= until);
};
const job = defineJob({
  name: 'timed',
  params: { n: p.int({ required: true }) },
  steps: (s) => [
    s.tasklet({ name: 'a', tasklet: busy }),
    s.tasklet({ name: 'b', tasklet: busy }),
    s.tasklet({ name: 'c', tasklet: busy }),
  ],
});

/** What is out of order in an execution's times, as readable lines (none when all is well). */
function disorder(e: JobExecution & { steps: StepExecution[] }): string[] {
  const out: string[] = [];
  const t = (d: Date | null | undefined) => d?.getTime() ?? Number.NaN;
  const steps = [...e.steps].sort((x, y) => x.id - y.id);
  if (steps.length !== 3) out.push(`execution ${e.id}: ${steps.length} steps`);
  if (!(t(e.startTime) <= t(steps[0]?.startTime))) out.push(`execution ${e.id}: the job started after its first step`);
  steps.forEach((s, i) => {
    if (!(t(s.startTime) <= t(s.endTime))) out.push(`execution ${e.id}: step ${s.stepName} ends before it starts`);
    if (!(t(s.endTime) <= t(e.endTime))) out.push(`execution ${e.id}: step ${s.stepName} ends ${t(s.endTime) - t(e.endTime)} ms after the job`);
    const next = steps[i + 1];
    if (next && !(t(s.endTime) <= t(next.startTime))) {
      out.push(`execution ${e.id}: step ${next.stepName} starts ${t(s.endTime) - t(next.startTime)} ms before ${s.stepName} ends`);
    }
  });
  return out;
}

describe.each(backends())('engine step times ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('each step ends before the next starts and before its job ends, run in this process', async () => {
    const ns = await createNightshift({ db: backend.freshUrl('steptimes'), jobs: [job], logger: silentLogger });
    try {
      const problems: string[] = [];
      for (let n = 1; n <= 10; n++) {
        const e = await ns.run('timed', { n });
        expect(e.status).toBe('COMPLETED');
        problems.push(...disorder(e));
      }
      expect(problems).toEqual([]);
    } finally {
      await ns.close();
    }
  });

  it('so too when a node ends many executions at once', async () => {
    const url = backend.freshUrl('steptimesnode');
    const ns = await createNightshift({ db: url, jobs: [job], logger: silentLogger });
    const node = await startNode({ db: url, jobs: [job], name: 'timer', concurrency: 8, pollMs: 100, scheduler: false, logger: silentLogger });
    try {
      const results = await ns.submitMany(Array.from({ length: 40 }, (_, k) => ({ job: 'timed', params: { n: k + 1 } })));
      const ids = results.map((r) => ('executionId' in r ? r.executionId : Number.NaN));
      const done = await waitFor(async () => {
        const list = await Promise.all(ids.map((id) => ns.getExecution(id)));
        return list.every((e) => e?.status === 'COMPLETED') ? list : undefined;
      }, 60_000, 'all 40 executions completed');
      expect(done.flatMap((e) => disorder(e!))).toEqual([]);
    } finally {
      await node.shutdown();
      await ns.close();
    }
  });
});
