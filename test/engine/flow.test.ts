/**
 * Engine conformance: flows (transitions on exit-code patterns, end/fail/stop targets,
 * deciders, parallel splits) and the order in which listeners are called. Runs unchanged on
 * SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { defineJob, type TransitionTarget } from '../../src/core/job.ts';
import { p } from '../../src/core/params.ts';
import { compareExitPatterns, exitStatus } from '../../src/core/status.ts';
import pino from 'pino';
import { backends, waitFor } from '../support/backends.ts';
import { deferred, numbers, step, within } from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';

describe.each(backends())('engine flows and listeners ($name)', (backend) => {
  const pool = suiteInstances(backend);

  describe('transitions', () => {
    it.each([
      { mode: 'noop', visited: ['check', 'skipStep'] },
      { mode: 'normal', visited: ['check', 'next'] },
    ])('an afterStep exit status routes the flow ($mode)', async ({ mode, visited: expected }) => {
      const visited: string[] = [];
      const job = defineJob({
        name: 'route',
        params: { mode: p.string({ default: 'normal' }) },
        steps: (s) => [
          s.tasklet({
            name: 'check',
            tasklet: () => void visited.push('check'),
            listeners: [{ afterStep: (ctx) => (ctx.params.mode === 'noop' ? { code: 'NOOP', description: 'nothing to do' } : undefined) }],
            on: { NOOP: 'skipStep', '*': 'next' },
          }),
          s.tasklet({ name: 'next', tasklet: () => void visited.push('next'), on: { '*': 'end' } }),
          s.tasklet({ name: 'skipStep', tasklet: () => void visited.push('skipStep') }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('route'), [job]);
      const e = await ns.run('route', { mode });
      expect(e.status).toBe('COMPLETED');
      expect(visited).toEqual(expected);
      expect(e.steps.map((s) => s.stepName)).toEqual(expected);
      const check = step(e, 'check');
      expect(check.status).toBe('COMPLETED');
      expect(check.exitStatus).toEqual(mode === 'noop' ? { code: 'NOOP', description: 'nothing to do' } : { code: 'COMPLETED', description: '' });
    });

    it("an afterStep code without a description keeps a failed step's reason; the step and the job stay FAILED", async () => {
      const job = defineJob({
        name: 'relabel',
        steps: (s) => [
          s.tasklet({
            name: 'work',
            tasklet: () => { throw new Error('disk on fire'); },
            listeners: [{ afterStep: () => ({ code: 'COMPLETED_WITH_SKIPS', description: '' }) }],
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('relabel'), [job]);
      const e = await ns.run('relabel');
      expect(step(e, 'work')).toMatchObject({ status: 'FAILED', exitStatus: { code: 'COMPLETED_WITH_SKIPS', description: expect.stringContaining('disk on fire') } });
      expect(e.status).toBe('FAILED');
      expect(e.exitStatus.description).toContain('disk on fire');
    });

    it('a FAILED step routed to a cleanup step makes the job COMPLETED', async () => {
      const job = defineJob({
        name: 'cleanup',
        steps: (s) => [
          s.tasklet({ name: 'work', tasklet: () => { throw new Error('work broke'); }, on: { FAILED: 'cleanup', '*': 'end' } }),
          s.tasklet({ name: 'cleanup', tasklet: () => undefined }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('cleanup'), [job]);
      const e = await ns.run('cleanup');
      expect(e.status).toBe('COMPLETED');
      expect(e.exitStatus.code).toBe('COMPLETED');
      expect(e.steps.map((s) => [s.stepName, s.status])).toEqual([['work', 'FAILED'], ['cleanup', 'COMPLETED']]);
      expect(step(e, 'work').exitStatus.description).toContain('work broke');
    });

    it("a job failed by a transition from a failed step says the step's failure, not only the step's name", async () => {
      const job = defineJob({
        name: 'fail-on',
        steps: (s) => [
          s.tasklet({ name: 'load', tasklet: () => { throw new Error('row 30000 broke the load'); }, on: { FAILED: { fail: 'LOAD_FAILED' }, '*': 'next' } }),
          s.tasklet({ name: 'next', tasklet: () => undefined, on: { '*': 'fail' } }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('failon'), [job]);
      const e = await ns.run('fail-on');
      expect([e.status, e.exitStatus.code]).toEqual(['FAILED', 'LOAD_FAILED']);
      expect(e.exitStatus.description).toMatch(/^failed by transition from load on FAILED: .*row 30000 broke the load/);
    });

    it.each<{ target: TransitionTarget; status: string; code: string; description?: string }>([
      { target: 'end', status: 'COMPLETED', code: 'COMPLETED' },
      { target: { end: 'PARTIAL' }, status: 'COMPLETED', code: 'PARTIAL' },
      { target: 'fail', status: 'FAILED', code: 'FAILED', description: 'failed by transition from first' },
      { target: { fail: 'BAD_DATA' }, status: 'FAILED', code: 'BAD_DATA', description: 'failed by transition from first on COMPLETED' },
      { target: 'stop', status: 'STOPPED', code: 'STOPPED', description: 'stopped by transition from first' },
    ])('transition to $target ends the job $status with exit code $code', async ({ target, status, code, description }) => {
      const job = defineJob({
        name: 'targets',
        steps: (s) => [
          s.tasklet({ name: 'first', tasklet: () => undefined, on: { '*': target } }),
          s.tasklet({ name: 'second', tasklet: () => undefined }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('targets'), [job]);
      const e = await ns.run('targets');
      expect(e.status).toBe(status);
      expect(e.exitStatus.code).toBe(code);
      if (description) expect(e.exitStatus.description).toContain(description);
      expect(e.steps.map((s) => s.stepName)).toEqual(['first']);
    });

    it("a plain 'end' completes the job with the exit code that led there; { end: 'COMPLETED' } says COMPLETED", async () => {
      const job = defineJob({
        name: 'end-codes',
        params: { explicit: p.boolean({ default: false }) },
        steps: (s) => [
          s.tasklet({ name: 'first', tasklet: () => exitStatus('NOOP', 'nothing new'), on: { NOOP: 'check' } }),
          s.decision({ name: 'check', decide: ({ params }) => (params.explicit ? 'EXPLICIT' : 'PLAIN'), on: { PLAIN: 'end', EXPLICIT: { end: 'COMPLETED' } } }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('endcodes'), [job]);
      expect((await ns.run('end-codes')).exitStatus.code).toBe('PLAIN');
      const explicit = await ns.run('end-codes', { explicit: true });
      expect([explicit.status, explicit.exitStatus.code]).toEqual(['COMPLETED', 'COMPLETED']);
    });

    it('a decision reads the job context and the database, and logs as itself', async () => {
      const lines: string[] = [];
      const job = defineJob({
        name: 'decide-on-data',
        steps: (s) => [
          s.tasklet({ name: 'load', tasklet: (ctx) => void (ctx.jobContext.loaded = 7) }),
          s.decision({
            name: 'enough',
            decide: async ({ jobContext, db, jobExecution, log }) => {
              const [{ n }] = await db.query<{ n: number | string }>('SELECT count(*) AS n FROM ns_step_execution WHERE job_execution_id = $1', [jobExecution.id]);
              log.info(`loaded ${String(jobContext.loaded)} in ${n} step`);
              return Number(n) === 1 && jobContext.loaded === 7 ? 'ENOUGH' : 'MORE';
            },
            on: { ENOUGH: { end: 'ENOUGH' }, MORE: 'fail' },
          }),
        ],
      });
      const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
      const ns = await pool.create(backend.freshUrl('decidedata'), [job], { logger });
      expect((await ns.run('decide-on-data')).exitStatus.code).toBe('ENOUGH');
      expect(lines.map((l) => JSON.parse(l) as { decision?: string; msg: string }).find((l) => l.decision === 'enough')?.msg).toBe('loaded 7 in 1 step');
    });

    it('stop: a restart continues with the next element', async () => {
      const visited: string[] = [];
      const job = defineJob({
        name: 'stop-next',
        steps: (s) => [
          s.tasklet({ name: 'a', tasklet: () => void visited.push('a'), on: { '*': 'stop' } }),
          s.tasklet({ name: 'b', tasklet: () => void visited.push('b') }),
          s.tasklet({ name: 'c', tasklet: () => void visited.push('c') }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('stopnext'), [job]);
      const e1 = await ns.run('stop-next');
      expect(e1.status).toBe('STOPPED');
      const e2 = await ns.restart(e1.id);
      expect(e2.status).toBe('COMPLETED');
      expect(e2.steps.map((s) => s.stepName)).toEqual(['b', 'c']);
      expect(visited).toEqual(['a', 'b', 'c']);
    });

    it('stop, then a failure after the restart: the next restart still resumes past the stop', async () => {
      const visited: string[] = [];
      const job = defineJob({
        name: 'stop-fail',
        steps: (s) => [
          s.tasklet({ name: 'a', tasklet: () => void visited.push('a'), on: { '*': 'stop' } }),
          s.tasklet({
            name: 'b',
            tasklet: (ctx) => {
              visited.push(`b${ctx.executionNumber}`);
              if (ctx.executionNumber === 2) throw new Error('b fails once');
            },
          }),
          s.tasklet({ name: 'c', tasklet: () => void visited.push('c') }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('stopfail'), [job]);
      const e1 = await ns.run('stop-fail');
      const e2 = await ns.restart(e1.id);
      const e3 = await ns.restart(e2.id);
      expect([e1.status, e2.status, e3.status]).toEqual(['STOPPED', 'FAILED', 'COMPLETED']);
      expect(visited).toEqual(['a', 'b2', 'b3', 'c']);
    });

    it('{ stop: step }: a restart begins at the named step', async () => {
      const visited: string[] = [];
      const job = defineJob({
        name: 'stop-at',
        steps: (s) => [
          s.tasklet({ name: 'a', tasklet: () => void visited.push('a'), on: { '*': { stop: 'c' } } }),
          s.tasklet({ name: 'b', tasklet: () => void visited.push('b') }),
          s.tasklet({ name: 'c', tasklet: () => void visited.push('c') }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('stopat'), [job]);
      const e1 = await ns.run('stop-at');
      expect(e1.status).toBe('STOPPED');
      const e2 = await ns.restart(e1.id);
      expect(e2.status).toBe('COMPLETED');
      expect(visited).toEqual(['a', 'c']);
    });

    it.each([
      { code: 'COMPLETED', to: 'exact' },
      { code: 'COMPLETE', to: 'prefix' },
      { code: 'C1', to: 'question' },
      { code: 'C12', to: 'star' },
      { code: 'X', to: 'any' },
    ])('pattern matching: exit code $code goes to $to (most specific pattern wins)', async ({ code, to }) => {
      const visited: string[] = [];
      const job = defineJob({
        name: 'patterns',
        params: { code: p.string({ required: true }) },
        steps: (s) => [
          s.tasklet({
            name: 'emit',
            tasklet: () => undefined,
            listeners: [{ afterStep: (ctx) => ({ code: ctx.params.code, description: '' }) }],
            on: { '*': 'any', 'C*': 'star', 'C?': 'question', 'COMP*': 'prefix', COMPLETED: 'exact' },
          }),
          ...['exact', 'prefix', 'question', 'star', 'any'].map((name) =>
            s.tasklet({ name, tasklet: () => void visited.push(name), on: { '*': 'end' } }),
          ),
        ],
      });
      const ns = await pool.create(backend.freshUrl('patterns'), [job]);
      const e = await ns.run('patterns', { code });
      expect(e.status).toBe('COMPLETED');
      expect(visited).toEqual([to]);
    });

    // Spring Batch's DefaultStateTransitionComparator: no `*` beats `*`; more `*` beats fewer;
    // fewer `?` beats more; then the longer pattern; then the alphabetically smaller one. In each
    // row both patterns match the code; the loser is listed first, so insertion order cannot decide.
    const PRIORITY = [
      { code: 'COMPLETED', winner: 'COMPLETED', loser: '*' },
      { code: 'COMPLETED', winner: 'COMPLETED', loser: 'COMPLETE?' },
      { code: 'COMPLETED', winner: 'COMPLETE?', loser: 'COMP*' },
      { code: 'COMPLETED', winner: 'C?MPLETED', loser: 'COMP?????' },
      { code: 'COMPLETED', winner: '?????????', loser: 'COMPLETE*' },
      { code: 'COMPLETED', winner: 'COMP*', loser: 'C*' },
      { code: 'COMPLETED', winner: 'COMP*', loser: 'C*D' },
      { code: 'COMPLETED', winner: 'C*', loser: '*' },
      { code: 'COMPLETED', winner: 'CO*', loser: 'C?*' },
      { code: 'COMPLETED', winner: '*ED*', loser: 'C*' },
      { code: 'COMPLETED', winner: '**', loser: '*' },
      { code: 'COMPLETED', winner: '**', loser: '*?' },
      { code: 'COMPLETED', winner: '*P*E*', loser: '*ED*' },
      { code: 'CD', winner: '*D', loser: 'C*' },
      { code: 'ED', winner: '*D*', loser: '*E*' },
      { code: 'CAT', winner: '?A?', loser: 'C??' },
    ];

    it('pattern priority follows Spring Batch for every pair in the table', async () => {
      const jobs = PRIORITY.map(({ code, winner, loser }, i) => {
        const visited: string[] = [];
        const job = defineJob({
          name: `priority-${i}`,
          steps: (s) => [
            s.tasklet({
              name: 'emit',
              tasklet: () => undefined,
              listeners: [{ afterStep: () => ({ code, description: '' }) }],
              on: { [loser]: 'lose', [winner]: 'win' },
            }),
            s.tasklet({ name: 'lose', tasklet: () => void visited.push('lose'), on: { '*': 'end' } }),
            s.tasklet({ name: 'win', tasklet: () => void visited.push('win'), on: { '*': 'end' } }),
          ],
        });
        return { job, visited, row: `${code}: ${winner} over ${loser}` };
      });
      const ns = await pool.create(backend.freshUrl('priority'), jobs.map((j) => j.job));
      const outcomes: string[] = [];
      for (const { job, visited, row } of jobs) {
        const e = await ns.run(job.name);
        outcomes.push(`${row} -> ${e.status} ${visited.join(',')}`);
      }
      expect(outcomes).toEqual(jobs.map(({ row }) => `${row} -> COMPLETED win`));
    });

    it('an unmatched COMPLETED goes on to the next element', async () => {
      const visited: string[] = [];
      const job = defineJob({
        name: 'unmatched',
        steps: (s) => [
          s.tasklet({ name: 'a', tasklet: () => void visited.push('a'), on: { FAILED: 'c', 'X?': 'c' } }),
          s.tasklet({ name: 'b', tasklet: () => void visited.push('b') }),
          s.tasklet({ name: 'c', tasklet: () => void visited.push('c') }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('unmatched'), [job]);
      const e = await ns.run('unmatched');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect(visited).toEqual(['a', 'b', 'c']);
    });

    it('an unmatched COMPLETED of the last element ends the job COMPLETED', async () => {
      const visited: string[] = [];
      const job = defineJob({
        name: 'unmatched-last',
        steps: (s) => [
          s.tasklet({ name: 'first', tasklet: () => void visited.push('first'), on: { '*': 'last' } }),
          s.tasklet({ name: 'recover', tasklet: () => void visited.push('recover'), on: { '*': 'end' } }),
          s.tasklet({ name: 'last', tasklet: () => void visited.push('last'), on: { FAILED: 'recover' } }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('unmatchedlast'), [job]);
      const e = await ns.run('unmatched-last');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect(e.exitStatus.code).toBe('COMPLETED');
      expect(visited).toEqual(['first', 'last']);
    });

    it.each([
      { code: 'NOOP', status: 'COMPLETED', description: '' },
      { code: 'FAILED', status: 'FAILED', description: 'a broke' },
    ])('any other unmatched exit code ($code) fails the job, naming the step and the code', async ({ code, status, description }) => {
      const visited: string[] = [];
      const job = defineJob({
        name: 'nomatch',
        steps: (s) => [
          s.tasklet({
            name: 'a',
            tasklet: () => {
              if (code === 'FAILED') throw new Error('a broke');
            },
            listeners: [{ afterStep: () => (code === 'NOOP' ? { code, description: '' } : undefined) }],
            on: { COMPLETED: 'b', 'X?': 'b' },
          }),
          s.tasklet({ name: 'b', tasklet: () => void visited.push('b') }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('nomatch'), [job]);
      const e = await ns.run('nomatch');
      expect(e.status).toBe('FAILED');
      expect(e.exitStatus.code).toBe('FAILED');
      expect(e.exitStatus.description).toContain(`no transition from a matches exit code ${code}`);
      expect(e.exitStatus.description).toContain(description);
      expect(step(e, 'a').status).toBe(status);
      expect(visited).toEqual([]);
      expect(e.steps.map((s) => s.stepName)).toEqual(['a']);
    });

    it('without transitions a FAILED step fails the job and later steps do not run', async () => {
      const job = defineJob({
        name: 'plain',
        steps: (s) => [
          s.tasklet({ name: 'a', tasklet: () => { throw new Error('a broke'); } }),
          s.tasklet({ name: 'b', tasklet: () => undefined }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('plain'), [job]);
      const e = await ns.run('plain');
      expect(e.status).toBe('FAILED');
      expect(e.exitStatus.code).toBe('FAILED');
      expect(e.exitStatus.description).toContain('a broke');
      expect(e.steps.map((s) => s.stepName)).toEqual(['a']);
    });
  });

  describe('decisions', () => {
    it.each(['full', 'delta'])('a decision routes on the code it returns (%s)', async (kind) => {
      const seen: { last?: string; kind?: string } = {};
      const visited: string[] = [];
      const job = defineJob({
        name: 'decide',
        params: { kind: p.string({ default: 'full' }) },
        steps: (s) => [
          s.tasklet({ name: 'prepare', tasklet: () => undefined, listeners: [{ afterStep: () => ({ code: 'PREPARED', description: '' }) }] }),
          s.decision({
            name: 'which',
            decide: ({ params, lastExitStatus }) => {
              seen.last = lastExitStatus?.code;
              seen.kind = params.kind;
              return params.kind.toUpperCase();
            },
            on: { FULL: 'fullLoad', DELTA: 'deltaLoad' },
          }),
          s.tasklet({ name: 'fullLoad', tasklet: () => void visited.push('fullLoad'), on: { '*': 'end' } }),
          s.tasklet({ name: 'deltaLoad', tasklet: () => void visited.push('deltaLoad') }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('decide'), [job]);
      const e = await ns.run('decide', { kind });
      expect(e.status).toBe('COMPLETED');
      expect(visited).toEqual([`${kind}Load`]);
      expect(seen).toEqual({ last: 'PREPARED', kind });
    });
  });

  describe('splits', () => {
    it('runs its flows in parallel, then continues', async () => {
      const events: string[] = [];
      const bothStarted = deferred();
      let started = 0;
      const first = (name: string) =>
        async () => {
          events.push(`start ${name}`);
          if (++started === 2) bothStarted.resolve();
          // Returns only once the other flow's first step started too: proves they overlap.
          await within(bothStarted.promise, 10_000, `${name} waiting for the other flow to start`);
          events.push(`end ${name}`);
        };
      const job = defineJob({
        name: 'split',
        steps: (s) => [
          s.split({
            name: 'both',
            flows: [
              [s.tasklet({ name: 'a1', transactional: false, tasklet: first('a1') }), s.tasklet({ name: 'a2', tasklet: () => void events.push('a2') })],
              [
                s.tasklet({ name: 'b1', transactional: false, tasklet: first('b1') }),
                s.chunk<number, number>({ name: 'b2', chunkSize: 2, reader: () => numbers(5), writer: () => () => undefined }),
              ],
            ],
          }),
          s.tasklet({ name: 'join', tasklet: () => void events.push('join') }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('split'), [job]);
      const e = await ns.run('split');
      expect(e.status).toBe('COMPLETED');
      expect(events.slice(0, 2).sort()).toEqual(['start a1', 'start b1']);
      expect(events.at(-1)).toBe('join');
      expect(e.steps.map((s) => s.stepName).sort()).toEqual(['a1', 'a2', 'b1', 'b2', 'join']);
      expect(e.steps.every((s) => s.status === 'COMPLETED')).toBe(true);
      expect(step(e, 'b2').readCount).toBe(5);
    });

    it('a failing flow fails the split and the job', async () => {
      const ran: string[] = [];
      const job = defineJob({
        name: 'split-fail',
        steps: (s) => [
          s.split({
            name: 'both',
            flows: [
              [s.tasklet({ name: 'good', tasklet: () => void ran.push('good') })],
              [s.tasklet({ name: 'bad', tasklet: () => { throw new Error('bad flow'); } })],
            ],
          }),
          s.tasklet({ name: 'after', tasklet: () => void ran.push('after') }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('splitfail'), [job]);
      const e = await ns.run('split-fail');
      expect(e.status).toBe('FAILED');
      expect(e.exitStatus.description).toContain('bad flow');
      expect(ran).toEqual(['good']);
      expect(step(e, 'bad').status).toBe('FAILED');
      expect(step(e, 'good').status).toBe('COMPLETED');
      expect(e.steps.some((s) => s.stepName === 'after')).toBe(false);
    });
    it('a flow that throws (a step at its start limit) fails the split only once the other flows ended', async () => {
      let sawJobRunning: boolean | undefined;
      const job = defineJob({
        name: 'split-throw',
        steps: (s) => [
          s.split({
            name: 'both',
            flows: [
              [s.tasklet({ name: 'gated', startLimit: 0, tasklet: () => undefined })],
              [
                s.tasklet({
                  name: 'slow',
                  transactional: false,
                  tasklet: async ({ jobExecution, db }) => {
                    // Waits (up to a deadline) for the job to end: it must not end while this step runs.
                    const status = async () => (await db.query<{ status: string }>('SELECT status FROM ns_job_execution WHERE id = $1', [jobExecution.id]))[0].status;
                    const ended = await waitFor(async () => (await status()) !== 'STARTED', 1500).catch(() => false);
                    sawJobRunning = !ended;
                  },
                }),
              ],
            ],
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('splitthrow'), [job]);
      const e = await ns.run('split-throw');
      expect(e.status).toBe('FAILED');
      expect(e.exitStatus.description).toContain('start limit of 0');
      expect(sawJobRunning).toBe(true);
      expect(e.steps.map((s) => [s.stepName, s.status])).toEqual([['slow', 'COMPLETED']]);
    });
  });

  describe('listeners', () => {
    it('are called in order: job, step, chunk, read, process, write', async () => {
      const log: string[] = [];
      const job = defineJob({
        name: 'listen',
        listeners: [
          {
            beforeJob: (e) => void log.push(`beforeJob ${e.status}`),
            afterJob: (e) => void log.push(`afterJob ${e.status} ${e.exitStatus.code}`),
          },
        ],
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 2,
            reader: () => numbers(3),
            processor: (i) => {
              log.push(`process ${i}`);
              return i * 10;
            },
            writer: () => (items) => void log.push(`write ${items.join(',')}`),
            listeners: [
              {
                beforeStep: (ctx) => void log.push(`beforeStep ${ctx.stepExecution.stepName}`),
                afterStep: (ctx) => void log.push(`afterStep ${ctx.stepExecution.stepName} ${ctx.stepExecution.status} read=${ctx.stepExecution.readCount}`),
              },
            ],
            chunkListeners: [
              {
                beforeChunk: () => void log.push('beforeChunk'),
                afterChunk: (ctx) => void log.push(`afterChunk commits=${ctx.stepExecution.commitCount}`),
                beforeRead: () => void log.push('beforeRead'),
                afterRead: (i) => void log.push(`afterRead ${i}`),
                beforeProcess: (i) => void log.push(`beforeProcess ${i}`),
                afterProcess: (i, r) => void log.push(`afterProcess ${i}->${r}`),
                beforeWrite: (items) => void log.push(`beforeWrite ${items.join(',')}`),
                afterWrite: (items) => void log.push(`afterWrite ${items.join(',')}`),
              },
            ],
          }),
          s.tasklet({
            name: 'tail',
            tasklet: () => void log.push('tasklet'),
            listeners: [{ beforeStep: () => void log.push('beforeStep tail'), afterStep: () => void log.push('afterStep tail') }],
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('listen'), [job]);
      const e = await ns.run('listen');
      expect(e.status).toBe('COMPLETED');
      expect(log).toEqual([
        'beforeJob STARTED',
        'beforeStep load',
        'beforeChunk',
        'beforeRead', 'afterRead 1', 'beforeRead', 'afterRead 2',
        'beforeProcess 1', 'process 1', 'afterProcess 1->10', 'beforeProcess 2', 'process 2', 'afterProcess 2->20',
        'beforeWrite 10,20', 'write 10,20', 'afterWrite 10,20',
        'afterChunk commits=1',
        'beforeChunk',
        'beforeRead', 'afterRead 3', 'beforeRead',
        'beforeProcess 3', 'process 3', 'afterProcess 3->30',
        'beforeWrite 30', 'write 30', 'afterWrite 30',
        'afterChunk commits=2',
        'afterStep load COMPLETED read=3',
        'beforeStep tail', 'tasklet', 'afterStep tail',
        'afterJob COMPLETED COMPLETED',
      ]);
    });

    it.each([
      { body: 'works', status: 'COMPLETED' },
      { body: 'fails', status: 'FAILED' },
    ])('a failing afterStep listener is logged; the step that $body keeps its status and exit status', async ({ body, status }) => {
      const errors: string[] = [];
      const called: string[] = [];
      const job = defineJob({
        name: 'bad-after-step',
        steps: (s) => [
          s.tasklet({
            name: 'a',
            tasklet: () => {
              if (body === 'fails') throw new Error('a broke');
            },
            listeners: [
              { afterStep: () => (called.push('first'), { code: 'CHANGED', description: 'by the first listener' }) },
              { afterStep: () => { called.push('second'); throw new Error('afterStep exploded'); } },
              { afterStep: () => void called.push('third') },
            ],
            on: { COMPLETED: 'b', FAILED: 'recover', '*': 'fail' },
          }),
          s.tasklet({ name: 'b', tasklet: () => undefined, on: { '*': 'end' } }),
          s.tasklet({ name: 'recover', tasklet: () => undefined }),
        ],
      });
      const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(String(JSON.parse(line).msg)) });
      const ns = await pool.create(backend.freshUrl('badafterstep'), [job], { logger });
      const e = await ns.run('bad-after-step');
      const a = step(e, 'a');
      expect(a.status).toBe(status);
      expect(a.exitStatus.code).toBe(status);
      expect(called).toEqual(['first', 'second']);
      expect(errors).toContain(`an afterStep listener of step a failed: afterStep exploded; the step stays ${status}`);
      // The flow routes on the exit status the step kept.
      expect(e.status).toBe('COMPLETED');
      expect(e.steps.map((s) => s.stepName)).toEqual(['a', body === 'works' ? 'b' : 'recover']);
    });

    it('a failing afterJob listener fails the job', async () => {
      const job = defineJob({
        name: 'bad-after-job',
        listeners: [{ afterJob: () => { throw new Error('afterJob exploded'); } }],
        steps: (s) => [s.tasklet({ name: 'a', tasklet: () => undefined })],
      });
      const ns = await pool.create(backend.freshUrl('badafterjob'), [job]);
      const e = await ns.run('bad-after-job');
      expect(step(e, 'a').status).toBe('COMPLETED');
      expect(e.status).toBe('FAILED');
      expect(e.exitStatus.description).toContain('afterJob exploded');
    });
  });
});

describe('exit-status pattern order', () => {
  it("sorts Spring Batch's documented example from most to least specific", () => {
    const documented = ['bar', 'foo', 'fo?', 'bar??', 'foo??', '?0?', '???', '*foo*', '*f*', 'foo*', '*'];
    const shuffled = [...documented].reverse().sort((a, b) => (a.length % 3) - (b.length % 3));
    expect(shuffled.sort((a, b) => compareExitPatterns(b, a))).toEqual(documented);
  });
});
