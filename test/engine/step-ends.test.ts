/**
 * Engine conformance: a step's end commits with the job run's next fenced write (the next step's
 * start or the job's end). User code after a step (deciders, afterJob listeners) still sees it
 * ended, and an owner that lost the execution in between commits neither. Runs unchanged on
 * SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { defineJob } from '../../src/core/job.ts';
import type { Nightshift } from '../../src/operator.ts';
import { backends } from '../support/backends.ts';
import { step, takeOver } from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';

describe.each(backends())('engine step ends ($name)', (backend) => {
  const pool = suiteInstances(backend);

  it('records every step of a sequential flow ended, with its counters, before the job ends', async () => {
    const job = defineJob({
      name: 'three',
      steps: (s) => [
        s.tasklet({ name: 'a', tasklet: () => undefined }),
        s.tasklet({ name: 'b', tasklet: () => undefined }),
        s.tasklet({ name: 'c', tasklet: () => undefined }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('three'), [job]);
    const e = await ns.run('three');
    expect(e.status).toBe('COMPLETED');
    for (const name of ['a', 'b', 'c']) {
      const s = step(e, name);
      expect(s.status).toBe('COMPLETED');
      expect(s.commitCount).toBe(1);
      expect(s.endTime).not.toBeNull();
    }
  });

  it('deciders and afterJob listeners see the steps before them ended', async () => {
    const seen: string[] = [];
    const ref: { ns?: Nightshift } = {};
    const statusesOf = async (executionId: number) => (await ref.ns!.explorer.stepsOf(executionId)).map((s) => `${s.stepName}:${s.status}`).join(' ');
    const job = defineJob({
      name: 'observed',
      listeners: [{ afterJob: async (execution) => void seen.push(`afterJob ${await statusesOf(execution.id)}`) }],
      steps: (s) => [
        s.tasklet({ name: 'first', tasklet: () => undefined }),
        s.decision({
          name: 'decide',
          decide: async ({ jobExecution }) => {
            seen.push(`decide ${await statusesOf(jobExecution.id)}`);
            return 'GO';
          },
          on: { GO: 'second' },
        }),
        s.tasklet({ name: 'second', tasklet: () => undefined }),
      ],
    });
    ref.ns = await pool.create(backend.freshUrl('observed'), [job]);
    const e = await ref.ns.run('observed');
    expect(e.status).toBe('COMPLETED');
    expect(seen).toEqual(['decide first:COMPLETED', 'afterJob first:COMPLETED second:COMPLETED']);
  });

  it('an owner that lost the execution after a step ended starts no next step and records no end', async () => {
    const ref: { ns?: Nightshift } = {};
    const job = defineJob({
      name: 'lostbetween',
      steps: (s) => [
        s.tasklet({ name: 'first', tasklet: () => undefined, listeners: [{ afterStep: async (ctx) => void (await takeOver(ref.ns, ctx.jobExecution.id)) }] }),
        s.tasklet({ name: 'second', tasklet: () => undefined }),
      ],
    });
    ref.ns = await pool.create(backend.freshUrl('lostbetween'), [job]);
    const e = await ref.ns.run('lostbetween');
    expect(e.status).toBe('STARTED');
    expect(e.steps.map((s) => `${s.stepName}:${s.status}`)).toEqual(['first:STARTED']);
  });

  it('an owner that lost the execution during its last step records neither the step end nor the job end', async () => {
    const ref: { ns?: Nightshift } = {};
    const job = defineJob({
      name: 'lostlast',
      steps: (s) => [
        s.tasklet({
          name: 'only',
          // It uses its transaction, so its call commits with the step's checkpoint at once.
          tasklet: async ({ tx }) => void (await tx.query('SELECT 1')),
          listeners: [{ afterStep: async (ctx) => void (await takeOver(ref.ns, ctx.jobExecution.id)) }],
        }),
      ],
    });
    ref.ns = await pool.create(backend.freshUrl('lostlast'), [job]);
    const e = await ref.ns.run('lostlast');
    expect(e.status).toBe('STARTED');
    expect(e.endTime).toBeNull();
    expect(step(e, 'only').status).toBe('STARTED');
    expect(step(e, 'only').commitCount).toBe(1);
  });

  it('a last tasklet call that used no transaction leaves its checkpoint to the step end, which a lost owner does not write', async () => {
    const ref: { ns?: Nightshift } = {};
    const job = defineJob({
      name: 'lostunused',
      steps: (s) => [s.tasklet({ name: 'only', tasklet: () => undefined, listeners: [{ afterStep: async (ctx) => void (await takeOver(ref.ns, ctx.jobExecution.id)) }] })],
    });
    ref.ns = await pool.create(backend.freshUrl('lostunused'), [job]);
    const e = await ref.ns.run('lostunused');
    expect(e.status).toBe('STARTED');
    expect(step(e, 'only').status).toBe('STARTED');
    expect(step(e, 'only').commitCount).toBe(0);
  });
});
