/**
 * Engine conformance: where Nightshift's listeners deliberately differ from Spring Batch's (see
 * the README's "Differences from Spring Batch"). Every listener method, after-methods included,
 * is called in declaration order, and an afterStep listener's ExitStatus replaces the step's; a
 * throwing afterJob listener fails the job, and the restart runs it again after skipping the
 * completed steps. Runs unchanged on SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { defineJob } from '../../src/core/job.ts';
import { backends } from '../support/backends.ts';
import { numbers, step } from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';

describe.each(backends())('listener order ($name)', (backend) => {
  const pool = suiteInstances(backend);

  it('after-methods run in declaration order, and the last ExitStatus an afterStep listener returns is the step\'s', async () => {
    const called: string[] = [];
    const job = defineJob({
      name: 'order',
      steps: (s) => [
        s.chunk<number, number>({
          name: 'load',
          chunkSize: 5,
          reader: () => numbers(3),
          writer: () => () => undefined,
          listeners: [
            { beforeStep: () => void called.push('beforeStep A'), afterStep: () => (called.push('afterStep A'), { code: 'BY_A', description: '' }) },
            { beforeStep: () => void called.push('beforeStep B'), afterStep: () => (called.push('afterStep B'), { code: 'BY_B', description: 'chosen' }) },
            { afterStep: () => void called.push('afterStep C') },
          ],
          chunkListeners: [
            { afterChunk: () => void called.push('afterChunk A'), afterWrite: () => void called.push('afterWrite A') },
            { afterChunk: () => void called.push('afterChunk B'), afterWrite: () => void called.push('afterWrite B') },
          ],
          on: { 'BY_B': 'end', '*': 'fail' },
        }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('order'), [job]);
    const e = await ns.run('order');
    expect(e.status, e.exitStatus.description).toBe('COMPLETED');
    expect(step(e, 'load').exitStatus).toEqual({ code: 'BY_B', description: 'chosen' });
    expect(called).toEqual([
      'beforeStep A', 'beforeStep B',
      'afterWrite A', 'afterWrite B', 'afterChunk A', 'afterChunk B',
      'afterStep A', 'afterStep B', 'afterStep C',
    ]);
  });

  it('a throwing afterJob listener fails the job; the restart skips the completed steps and calls it again', async () => {
    const calls: string[] = [];
    const job = defineJob({
      name: 'publish',
      listeners: [
        {
          afterJob: (execution) => {
            calls.push(`afterJob ${execution.id}`);
            if (calls.filter((c) => c.startsWith('afterJob')).length === 1) throw new Error('report server unreachable');
          },
        },
      ],
      steps: (s) => [s.tasklet({ name: 'work', tasklet: () => void calls.push('work') })],
    });
    const ns = await pool.create(backend.freshUrl('publish'), [job]);
    const e1 = await ns.run('publish');
    expect(e1.status).toBe('FAILED');
    expect(e1.exitStatus.description).toBe('afterJob listener failed: report server unreachable');
    expect(step(e1, 'work').status).toBe('COMPLETED');
    const e2 = await ns.restart(e1.id);
    expect(e2.status, e2.exitStatus.description).toBe('COMPLETED');
    expect(e2.steps).toEqual([]);
    expect(calls).toEqual(['work', `afterJob ${e1.id}`, `afterJob ${e2.id}`]);
  });
});
