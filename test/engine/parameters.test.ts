/**
 * Engine conformance: job parameters seen together. Validators check cross-field rules before
 * anything is written (run, submit, the HTTP API's launch), with one error naming the
 * parameters; custom incrementers compute the next instance's parameters from the newest
 * instance's. Runs unchanged on SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { ParameterError, UnknownJobError, UsageError } from '../../src/core/errors.ts';
import { defineJob } from '../../src/core/job.ts';
import { p } from '../../src/core/params.ts';
import type { Nightshift } from '../../src/operator.ts';
import { createHttpApi } from '../../src/server/http-api.ts';
import { backends } from '../support/backends.ts';
import { rejection, thrown } from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';

const DAY_MS = 86_400_000;

/** A report over a date range, with cross-field rules. */
function reportJob(ran: string[] = []) {
  return defineJob({
    name: 'report',
    params: {
      from: p.date({ required: true }),
      to: p.date({ required: true }),
      format: p.string({ default: 'csv' }),
      compress: p.boolean({ default: false }),
    },
    validate: [
      ({ from, to }) => (from > to ? { params: ['from', 'to'], message: 'from must not be after to' } : undefined),
      ({ format, compress }) => {
        const problems = [];
        if (!['csv', 'json'].includes(format)) problems.push({ params: ['format'] as const, message: 'must be csv or json' });
        if (compress && format === 'json') problems.push({ params: ['format', 'compress'] as const, message: 'json output cannot be compressed' });
        return problems;
      },
    ],
    steps: (s) => [s.tasklet({ name: 'write', tasklet: ({ params }) => void ran.push(`${params.from.toISOString().slice(0, 10)}..${params.to.toISOString().slice(0, 10)}`) })],
  });
}

/** How many rows the launch tables hold: a refused launch writes none. */
async function written(ns: Nightshift): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of ['ns_job_instance', 'ns_job_execution', 'ns_step_execution', 'ns_node']) {
    out[table] = Number((await ns.db.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`))[0].n);
  }
  return out;
}
const NOTHING = { ns_job_instance: 0, ns_job_execution: 0, ns_step_execution: 0, ns_node: 0 };

describe.each(backends())('job parameters ($name)', (backend) => {
  const pool = suiteInstances(backend);

  describe("a caller's mistakes, as a route of the user's service makes them", () => {
    it('parameters that are not an object, an unknown job and an id that is not one are refused with their classes and one line, before any SQL', async () => {
      const ns = await pool.create(backend.freshUrl('caller'), [reportJob()]);
      const any: Nightshift = ns;
      for (const [given, got] of [[null, 'null'], ['from=2024-01-01', 'string "from=2024-01-01"'], [[1], 'an array']] as const) {
        const err = await rejection(any.submit('report', given as never));
        expect(err, got).toBeInstanceOf(ParameterError);
        expect(err.message).toBe(`job report: parameters must be an object of parameter names to values, got ${got}`);
      }
      const unknown = await rejection(any.submit('reprot', {}));
      expect(unknown).toBeInstanceOf(UnknownJobError);
      expect([unknown.message, (unknown as UnknownJobError).job]).toEqual(['unknown job reprot (known: report)', 'reprot']);
      for (const bad of [Number('abc'), 0, 1.5, -3]) {
        for (const call of [() => ns.getExecution(bad), () => ns.stop(bad), () => ns.restart(bad), () => ns.waitForEnd(bad), () => ns.explorer.stepsOf(bad)]) {
          const err = await rejection(call());
          expect(err, `${bad}`).toBeInstanceOf(UsageError);
          expect(err.message).toMatch(/^an execution id must be a positive whole number, got (NaN|0|1\.5|-3)$/);
        }
      }
      expect(await written(ns)).toEqual(NOTHING);
    });
  });

  describe('validators', () => {
    it('parameters that pass every validator run the job with their typed values', async () => {
      const ran: string[] = [];
      const ns = await pool.create(backend.freshUrl('valid'), [reportJob(ran)]);
      const e = await ns.run('report', { from: '2024-01-01', to: '2024-01-31' });
      expect(e.status).toBe('COMPLETED');
      expect(ran).toEqual(['2024-01-01..2024-01-31']);
    });

    it('a refused run names the parameters, says what is wrong, and writes nothing', async () => {
      const ns = await pool.create(backend.freshUrl('refused'), [reportJob()]);
      const err = await rejection(ns.run('report', { from: '2024-02-01', to: '2024-01-01' }));
      expect(err).toBeInstanceOf(ParameterError);
      expect(err.message).toBe('job report: parameters from, to: from must not be after to');
      expect(await written(ns)).toEqual(NOTHING);
    });

    it('every problem of every validator is in the one error', async () => {
      const ns = await pool.create(backend.freshUrl('problems'), [reportJob()]);
      const err = await rejection(ns.start('report', { from: '2024-02-01', to: '2024-01-01', format: 'xml' }));
      expect(err.message).toBe('job report: parameters from, to: from must not be after to; parameter format: must be csv or json');
      const err2 = await rejection(ns.runNextInstance('report', { from: '2024-01-01', to: '2024-01-02', format: 'json', compress: true }));
      expect(err2.message).toBe('job report: parameters format, compress: json output cannot be compressed');
      expect(await written(ns)).toEqual(NOTHING);
    });

    it('a refused submit writes nothing', async () => {
      const ns = await pool.create(backend.freshUrl('submit'), [reportJob()]);
      const err = await rejection(ns.submit('report', { from: '2024-02-01', to: '2024-01-01' }));
      expect(err).toBeInstanceOf(ParameterError);
      expect(err.message).toBe('job report: parameters from, to: from must not be after to');
      expect(await written(ns)).toEqual(NOTHING);
    });

    it("the HTTP API's launch answers 400 with the error and writes nothing", async () => {
      const ns = await pool.create(backend.freshUrl('api'), [reportJob()]);
      const app = createHttpApi(ns, { tokens: 'none' });
      try {
        const r = await app.inject({
          method: 'POST', url: '/api/jobs/report/executions', headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({ params: { from: '2024-02-01', to: '2024-01-01' } }),
        });
        expect(r.statusCode).toBe(400);
        expect(r.json()).toEqual({ error: 'job report: parameters from, to: from must not be after to' });
        expect(await written(ns)).toEqual(NOTHING);
      } finally {
        await app.close();
      }
    });

    it('a validator that throws refuses the launch with its message', async () => {
      const job = defineJob({
        name: 'picky',
        params: { n: p.int({ default: 1 }) },
        validate: () => {
          throw new Error('lookup table unavailable');
        },
        steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })],
      });
      const ns = await pool.create(backend.freshUrl('throws'), [job]);
      expect((await rejection(ns.run('picky'))).message).toBe('job picky: a parameter validator failed: lookup table unavailable');
      expect(await written(ns)).toEqual(NOTHING);
    });
  });

  describe('incrementers', () => {
    const daily = (seen: unknown[]) =>
      defineJob({
        name: 'daily',
        params: { day: p.date({ required: true }), region: p.string({ default: 'eu' }), note: p.string({ identifying: false }) },
        incrementer: (previous) => {
          seen.push(previous && { day: previous.day, region: previous.region, note: previous.note });
          return { day: previous ? new Date(previous.day.getTime() + DAY_MS) : new Date('2024-01-01T00:00:00Z'), region: previous?.region };
        },
        steps: (s) => [s.tasklet({ name: 't', tasklet: ({ params }) => { if (params.note === 'fail') throw new Error('failed on purpose'); } })],
      });

    it('computes the next instance from the newest one, with given parameters overriding', async () => {
      const seen: unknown[] = [];
      const ns = await pool.create(backend.freshUrl('incr'), [daily(seen)]);
      const first = await ns.runNextInstance('daily');
      expect(first.params).toEqual({ day: '2024-01-01T00:00:00.000Z', region: 'eu' });
      const second = await ns.runNextInstance('daily', { region: 'us', note: 'fail' });
      expect(second.params).toEqual({ day: '2024-01-02T00:00:00.000Z', region: 'us', note: 'fail' });
      expect(second.status).toBe('FAILED');
      // A failed newest instance is still the one the next is computed from (its last execution's parameters, typed).
      const third = await ns.runNextInstance('daily');
      expect(third.params).toEqual({ day: '2024-01-03T00:00:00.000Z', region: 'us' });
      expect(seen).toEqual([undefined, { day: new Date('2024-01-01T00:00:00Z'), region: 'eu', note: undefined }, { day: new Date('2024-01-02T00:00:00Z'), region: 'us', note: 'fail' }]);
      expect(new Set([first.instanceId, second.instanceId, third.instanceId]).size).toBe(3);
      expect(first.params['run.id']).toBeUndefined();
    });

    it("a parameter given as undefined is not given: the incrementer's value for it stands", async () => {
      const ns = await pool.create(backend.freshUrl('incrundef'), [daily([])]);
      await ns.runNextInstance('daily', { region: 'us' });
      const next = await ns.runNextInstance('daily', { region: undefined, note: undefined });
      expect(next.params).toEqual({ day: '2024-01-02T00:00:00.000Z', region: 'us' });
    });

    it('an incrementer that lands on a completed instance is refused as any launch of it is', async () => {
      const job = defineJob({
        name: 'stuck',
        params: { day: p.string({ required: true }) },
        incrementer: () => ({ day: 'always-the-same' }),
        steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })],
      });
      const ns = await pool.create(backend.freshUrl('stuck'), [job]);
      expect((await ns.runNextInstance('stuck')).status).toBe('COMPLETED');
      expect((await rejection(ns.runNextInstance('stuck'))).message).toMatch(/^job stuck already completed for parameters day=always-the-same/);
    });

    it('without an incrementer, run.id counts up as before', async () => {
      const job = defineJob({ name: 'plain', params: { tag: p.string({ default: 'x' }) }, steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })] });
      const ns = await pool.create(backend.freshUrl('runid'), [job]);
      expect((await ns.runNextInstance('plain')).params).toEqual({ 'run.id': 1, tag: 'x' });
      expect((await ns.runNextInstance('plain', { tag: 'y' })).params).toEqual({ 'run.id': 2, tag: 'y' });
      // A plain run (no run.id) in between does not start the count again at 1, an instance that
      // completed already.
      expect((await ns.run('plain', { tag: 'z' })).status).toBe('COMPLETED');
      expect((await ns.runNextInstance('plain')).params).toEqual({ 'run.id': 3, tag: 'x' });
    });

    it('a parameter whose name differs from run.id only in case is not taken for it', async () => {
      const job = defineJob({ name: 'cased', params: { 'Run.Id': p.int({ default: 0 }) }, steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })] });
      const ns = await pool.create(backend.freshUrl('cased'), [job]);
      expect((await ns.runNextInstance('cased')).params).toEqual({ 'run.id': 1, 'Run.Id': 0 });
      expect((await ns.run('cased', { 'Run.Id': 7 })).status).toBe('COMPLETED');
      expect((await ns.runNextInstance('cased')).params).toEqual({ 'run.id': 2, 'Run.Id': 0 });
    });
  });
});

describe('parameter options in a job definition', () => {
  it('refuses a validator or incrementer that is not a function', () => {
    const define = (extra: object) => () =>
      defineJob({ name: 'j', ...extra, steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })] });
    expect(thrown(define({ validate: [() => undefined, 'no'] })).message).toBe('job j: validate must be a function or a list of functions');
    expect(thrown(define({ incrementer: 5 })).message).toBe('job j: incrementer must be a function');
  });
});

describe('parameter defaults in a job definition', () => {
  const define = (params: Record<string, unknown>) => () =>
    defineJob({ name: 'k', params: params as never, steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })] });

  it('refuses a default that is not of its parameter type, naming job, parameter and value', () => {
    expect(thrown(define({ n: p.int({ default: 1.5 }) }))).toBeInstanceOf(UsageError);
    expect(thrown(define({ n: p.int({ default: 1.5 }) })).message).toBe('job k: parameter n: default must be a whole number (a safe integer), got 1.5');
    expect(thrown(define({ n: p.int({ default: 2 ** 60 }) })).message).toMatch(/^job k: parameter n: default must be a whole number/);
    expect(thrown(define({ n: p.int({ default: 'x' as never }) })).message).toBe('job k: parameter n: default must be a whole number (a safe integer), got "x"');
    expect(thrown(define({ r: p.number({ default: Number.NaN }) })).message).toBe('job k: parameter r: default must be a number, got NaN');
    expect(thrown(define({ d: p.date({ default: 'notadate' as never }) })).message).toBe("job k: parameter d: default must be a valid Date (e.g. new Date('2024-01-15')), got \"notadate\"");
    expect(thrown(define({ d: p.date({ default: new Date('nope') }) })).message).toMatch(/parameter d: default must be a valid Date .*got an invalid Date/);
    expect(thrown(define({ b: p.boolean({ default: 'true' as never }) })).message).toBe('job k: parameter b: default must be true or false, got "true"');
    expect(thrown(define({ s: p.string({ default: 5 as never }) })).message).toBe('job k: parameter s: default must be a string, got 5');
  });

  it("refuses a default its own validate refuses, and takes good defaults", () => {
    const small = p.int({ default: 50, validate: (v) => (v > 10 ? 'must be at most 10' : undefined) });
    expect(thrown(define({ n: small })).message).toBe('job k: parameter n: default 50 is refused by its validate: must be at most 10');
    const good = define({ n: p.int({ default: -3 }), r: p.number({ default: 0.5 }), d: p.date({ default: new Date('2024-01-15') }), b: p.boolean({ default: false }), s: p.string({ default: '' }) });
    expect((good().params as Record<string, { default?: unknown }>).n.default).toBe(-3);
  });
});
