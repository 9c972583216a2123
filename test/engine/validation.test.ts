/**
 * Engine conformance: bad input to the API is refused with an error naming the problem, at
 * launch (parameters, job names) and at definition time (flows). Launch checks run on SQLite
 * and PostgreSQL; nothing is recorded for a refused launch.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ParameterError, UsageError } from '../../src/core/errors.ts';
import { defineJob } from '../../src/core/job.ts';
import { p } from '../../src/core/params.ts';
import { createNightshift } from '../../src/operator.ts';
import { backends } from '../support/backends.ts';
import { numbers, rejection, thrown } from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';

const job = defineJob({
  name: 'typed',
  params: {
    items: p.int({ default: 10 }),
    ratio: p.number({ default: 0.5 }),
    day: p.date({ required: true }),
    dry: p.boolean({ default: false }),
    tag: p.string({ default: 'x', validate: (v) => (v.length > 5 ? 'must be at most 5 characters' : undefined) }),
  },
  steps: (s) => [s.tasklet({ name: 'noop', tasklet: () => undefined })],
});

describe.each(backends())('engine launch validation ($name)', (backend) => {
  const pool = suiteInstances(backend);

  it.each([
    { params: { day: '2024-01-15', nope: 1 }, message: ['unknown parameter nope', 'known: items, ratio, day, dry, tag'] },
    { params: { day: '2024-01-15', items: 'abc' }, message: ['parameter items must be an integer', '"abc"'] },
    { params: { day: '2024-01-15', items: 1.5 }, message: ['parameter items must be an integer'] },
    { params: { day: '2024-01-15', ratio: 'half' }, message: ['parameter ratio must be a number'] },
    { params: { day: '15/01/2024' }, message: ['parameter day must be an ISO-8601 date'] },
    { params: { day: '2024-01-15', dry: 'yes' }, message: ['parameter dry must be true or false'] },
    { params: {}, message: ['missing required parameter day'] },
    { params: { day: '2024-01-15', tag: 'toolong' }, message: ['parameter tag: must be at most 5 characters'] },
  ])('refuses $params: $message', async ({ params, message }) => {
    const ns = await pool.create(backend.freshUrl('params'), [job]);
    for (const launch of [() => ns.run('typed', params), () => ns.start('typed', params), () => ns.runNextInstance('typed', params)]) {
      const err = await rejection(launch());
      expect(err).toBeInstanceOf(ParameterError);
      for (const m of message) expect(err.message).toContain(m);
      expect(err.message).toContain('job typed');
    }
    const rows = await ns.db.query<Record<string, unknown>>('SELECT count(*) AS n FROM ns_job_execution');
    expect(Number(rows[0].n)).toBe(0);
  });

  it('accepts parameters as strings (CLI form) and typed values alike', async () => {
    const ns = await pool.create(backend.freshUrl('ok'), [job]);
    const e = await ns.run('typed', { day: '2024-01-15', items: '20', ratio: '0.25', dry: 'true' });
    expect(e.status).toBe('COMPLETED');
    expect(e.params).toEqual({ day: '2024-01-15T00:00:00.000Z', items: 20, ratio: 0.25, dry: true, tag: 'x' });
    // The same instance given with typed values is the same (completed) instance.
    const again = await rejection(ns.run('typed', { day: new Date('2024-01-15T00:00:00Z'), items: 20, ratio: 0.25, dry: true }));
    expect(again.message).toContain('already completed');
  });

  it('refuses an unknown job, naming the known ones', async () => {
    const ns = await pool.create(backend.freshUrl('unknown'), [job]);
    for (const launch of [() => ns.run('nope'), () => ns.start('nope'), () => ns.runNextInstance('nope')]) {
      const err = await rejection(launch());
      expect(err).toBeInstanceOf(UsageError);
      expect(err.message).toContain('unknown job nope');
      expect(err.message).toContain('typed');
    }
  });

  it('a chunkSize function returning 0 fails the step with a clear message', async () => {
    const bad = defineJob({
      name: 'zero',
      steps: (s) => [s.chunk<number, number>({ name: 'load', chunkSize: () => 0, reader: () => numbers(3), writer: () => () => undefined })],
    });
    const ns = await pool.create(backend.freshUrl('zero'), [bad]);
    const e = await ns.run('zero');
    expect(e.status).toBe('FAILED');
    expect(e.exitStatus.description).toContain('chunkSize must be a positive integer, got 0');
  });
});

describe('engine definition validation', () => {
  const tasklet = () => undefined;

  it.each(['FAIL ED', '', 'FAILED!', 'A|B'])('refuses the exit-status pattern %j at defineJob time', (pattern) => {
    const err = thrown(() =>
      defineJob({
        name: 'bad-pattern',
        steps: (s) => [s.tasklet({ name: 'a', tasklet, on: { [pattern]: 'b' } }), s.tasklet({ name: 'b', tasklet })],
      }),
    );
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain('invalid exit-status pattern');
    expect(err.message).toContain(JSON.stringify(pattern));
    expect(err.message).toContain('step a');
  });

  it('refuses a transition to an unknown step', () => {
    const err = thrown(() =>
      defineJob({ name: 'bad-target', steps: (s) => [s.tasklet({ name: 'a', tasklet, on: { FAILED: 'cleanup', '*': 'end' } })] }),
    );
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain('unknown step cleanup');
    expect(err.message).toContain('step a');
  });

  it('refuses a stop-and-restart at an unknown step', () => {
    const err = thrown(() =>
      defineJob({ name: 'bad-stop', steps: (s) => [s.tasklet({ name: 'a', tasklet, on: { '*': { stop: 'nowhere' } } })] }),
    );
    expect(err.message).toContain('unknown step nowhere');
  });

  it('refuses duplicate step names, also across split flows', () => {
    const flat = thrown(() => defineJob({ name: 'dup', steps: (s) => [s.tasklet({ name: 'a', tasklet }), s.tasklet({ name: 'a', tasklet })] }));
    expect(flat).toBeInstanceOf(UsageError);
    expect(flat.message).toContain('duplicate step name a');
    const nested = thrown(() =>
      defineJob({
        name: 'dup2',
        steps: (s) => [s.tasklet({ name: 'a', tasklet }), s.split({ name: 'sp', flows: [[s.tasklet({ name: 'a', tasklet })], [s.tasklet({ name: 'c', tasklet })]] })],
      }),
    );
    expect(nested.message).toContain('duplicate step name a');
  });

  it.each([0, -1, 2.5])('refuses chunkSize %s', (chunkSize) => {
    const err = thrown(() =>
      defineJob({
        name: 'bad-chunk',
        steps: (s) => [s.chunk<number, number>({ name: 'load', chunkSize, reader: () => numbers(1), writer: () => () => undefined })],
      }),
    );
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain(`chunkSize must be a positive integer, got ${chunkSize}`);
    expect(err.message).toContain('step load');
  });

  // What TypeScript requires but plain JavaScript may leave out: each is refused when the job is
  // defined (so a config fails to load, exit 2), not at every run as "def.writer is not a function".
  it('refuses a step without the functions it runs (JavaScript configs), naming the step and the option', () => {
    const chunk = { chunkSize: 1, reader: () => numbers(1), writer: () => () => undefined };
    const loose = (def: Record<string, unknown>) => def as never;
    const cases: [() => unknown, string][] = [
      [() => defineJob(loose({ name: 'j' })), 'job j: steps must be a function of the step builder'],
      [() => defineJob(loose({ name: 'j', steps: [] })), 'steps must be a function of the step builder, e.g. steps: (s) => [s.tasklet({ name, tasklet })], got an array'],
      [() => defineJob({ name: 'j', steps: (s) => [s.chunk(loose({ name: 'c', chunkSize: 1, reader: chunk.reader }))] }), 'job j: step c: writer (a function that makes'],
      [() => defineJob({ name: 'j', steps: (s) => [s.chunk(loose({ name: 'c', chunkSize: 1, writer: chunk.writer }))] }), 'job j: step c: reader (a function that makes'],
      [() => defineJob({ name: 'j', steps: (s) => [s.chunk(loose({ name: 'c', chunkSize: 1, reader: [1, 2], writer: chunk.writer }))] }), 'step c: reader (a function that makes the step\'s reader, e.g. reader: () => rangeReader(1, 10)) must be a function, got an array'],
      [() => defineJob({ name: 'j', steps: (s) => [s.chunk(loose({ name: 'c', reader: chunk.reader, writer: chunk.writer }))] }), 'step c: chunkSize must be a positive integer or a function of the step\'s context, got undefined'],
      [() => defineJob({ name: 'j', steps: (s) => [s.chunk(loose({ name: 'c', ...chunk, processor: 'upper' }))] }), 'step c: processor must be a function, got a string'],
      [() => defineJob({ name: 'j', steps: (s) => [s.tasklet(loose({ name: 't' }))] }), 'job j: step t: tasklet must be a function, got undefined'],
      [() => defineJob({ name: 'j', steps: (s) => [s.decision(loose({ name: 'd', on: { '*': 'end' } }))] }), 'step d: decide must be a function'],
      [() => defineJob({ name: 'j', steps: (s) => [s.split(loose({ name: 'sp' }))] }), 'step sp: flows must be a non-empty array'],
      [
        () => defineJob({ name: 'j', steps: (s) => [s.partitioned(loose({ name: 'p', partitioner: () => [{}], worker: s.chunk(loose({ name: 'w', chunkSize: 1, reader: chunk.reader })) }))] }),
        'job j: partitioned step p: worker step w: writer',
      ],
      [() => defineJob({ name: 'j', steps: (s) => [s.partitioned(loose({ name: 'p', worker: s.tasklet({ name: 'w', tasklet }) }))] }), 'step p: partitioner must be a function'],
    ];
    for (const [define, message] of cases) {
      const err = thrown(define);
      expect(err, message).toBeInstanceOf(UsageError);
      expect(err.message).toContain(message);
    }
  });

  it('createNightshift refuses missing options and jobs that are not an array of defineJob jobs (JavaScript callers), opening nothing', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'nightshift-validation-')), 'never.db');
    const db = `sqlite:${file}`;
    const ok = defineJob({ name: 'ok', steps: (s) => [s.tasklet({ name: 't', tasklet })] });
    const cases: [() => Promise<unknown>, string][] = [
      [() => createNightshift(undefined as never), "createNightshift needs its options, e.g. createNightshift({ db: 'sqlite:nightshift.db', jobs: [myJob] })"],
      [() => createNightshift({ db } as never), 'createNightshift: jobs must be an array of jobs made by defineJob (jobs: [] for none), got undefined'],
      [() => createNightshift({ db, jobs: { ok } as never }), 'jobs must be an array of jobs made by defineJob (jobs: [] for none), got object'],
      [() => createNightshift({ db, jobs: [ok, { name: 'hand-made', steps: [] } as never] }), 'createNightshift: jobs must be made by defineJob, got "hand-made" that was not'],
    ];
    for (const [create, message] of cases) {
      const err = await create().then(() => undefined, (e: unknown) => e as Error);
      expect(err, message).toBeInstanceOf(UsageError);
      expect(err!.message).toContain(message);
    }
    expect(existsSync(file)).toBe(false);
  });

  it('refuses bad skip and retry limits, reserved and invalid names, decisions without transitions, empty flows', () => {
    const chunk = { chunkSize: 1, reader: () => numbers(1), writer: () => () => undefined };
    const cases: [() => unknown, string][] = [
      [() => defineJob({ name: 'j', steps: (s) => [s.chunk<number, number>({ name: 'c', ...chunk, skip: { limit: -1 } })] }), 'skip limit must be a non-negative integer'],
      [() => defineJob({ name: 'j', steps: (s) => [s.chunk<number, number>({ name: 'c', ...chunk, retry: { on: [], limit: 0 } })] }), 'retry limit must be a positive integer'],
      [() => defineJob({ name: 'j', steps: (s) => [s.tasklet({ name: 'end', tasklet })] }), 'invalid step name "end"'],
      [() => defineJob({ name: 'j', steps: (s) => [s.tasklet({ name: 'a b', tasklet })] }), 'invalid step name "a b"'],
      [() => defineJob({ name: 'j', steps: (s) => [s.decision({ name: 'd', decide: () => 'X' } as never)] }), 'decision d needs transitions'],
      [() => defineJob({ name: 'j', steps: () => [] }), 'has no steps'],
      [() => defineJob({ name: 'j', steps: (s) => [s.split({ name: 'sp', flows: [[]] })] }), 'split sp flow 1 has no steps'],
      [() => defineJob({ name: 'bad name', steps: (s) => [s.tasklet({ name: 'a', tasklet })] }), 'invalid job name "bad name"'],
      [() => defineJob({ name: 'j', params: { 'run.id': p.int() }, steps: (s) => [s.tasklet({ name: 'a', tasklet })] }), 'parameter name run.id is reserved'],
    ];
    for (const [define, message] of cases) {
      const err = thrown(define);
      expect(err, message).toBeInstanceOf(UsageError);
      expect(err.message).toContain(message);
    }
  });
});
