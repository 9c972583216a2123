/**
 * Engine conformance: a chunk step's progress (`ns.progress` in its ExecutionContext) is saved
 * with each commit: the reader's own progress when it reports one (a range, a file's bytes, a
 * cursor), else the items read counted by the engine, with the total the reader expects (an
 * array's length, a counted query). After a failed run and a restart, done goes on from the
 * checkpoint. Runs unchanged on SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import type { ItemReader } from '../../src/core/items.ts';
import { defineJob, type StepContext } from '../../src/core/job.ts';
import { p } from '../../src/core/params.ts';
import { PROGRESS_KEY } from '../../src/core/progress.ts';
import { csvReader } from '../../src/items/csv-reader.ts';
import { rangeReader } from '../../src/items/range-reader.ts';
import { pagingReader } from '../../src/items/sql-reader.ts';
import { insertRows } from '../../src/items/sql-writer.ts';
import type { ExecutionDetails } from '../../src/operator.ts';
import { backends } from '../support/backends.ts';
import { BadRecordError, numbers, step, tableWriter } from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';
import { tempFile } from '../items/helpers.ts';

/** A job reading numbers with `reader`, chunks of 10, failing at `failAt` on its first execution. */
function progressJob(name: string, reader: (ctx: StepContext<{ failAt: number }>) => ItemReader<number>) {
  return defineJob({
    name,
    params: { failAt: p.int({ default: 0, identifying: false }), run: p.string({ default: 'a' }) },
    steps: (s) => [
      s.chunk<number, number>({
        name: 'load',
        chunkSize: 10,
        reader,
        processor: (item, ctx) => {
          if (item === ctx.params.failAt && ctx.executionNumber === 1) throw new Error(`boom at item ${item}`);
          return item;
        },
        writer: (ctx) => tableWriter(`items_${name.replace(/-/g, '_')}`, ctx),
        skip: { on: [BadRecordError], limit: 10 },
      }),
    ],
  });
}

const csv = 'id,name\n' + Array.from({ length: 95 }, (_, i) => `${i + 1},item ${i + 1}`).join('\n') + '\n';
const csvFile = tempFile(csv, 'progress.csv');

const jobs = [
  progressJob('range', () => rangeReader(1, 95)),
  // A reader that says nothing of its progress; positions 3 and 40 are bad records (skipped).
  progressJob('plain', () => numbers(95, 'stream-reader', [3, 40])),
  progressJob('array', () => Array.from({ length: 95 }, (_, i) => i + 1)),
  progressJob('generator', () => numbers(95, 'iterable')),
  progressJob('csv', () => csvReader({ path: csvFile, map: (r) => Number(r.id) })),
  progressJob('paging', ({ db }) => pagingReader({ db, select: 'SELECT id FROM src', key: 'id', pageSize: 15, countTotal: true, map: (r) => Number(r.id) })),
];

const progress = (e: ExecutionDetails) => step(e, 'load').context[PROGRESS_KEY];

describe.each(backends())('chunk step progress ($name)', (backend) => {
  const pool = suiteInstances(backend);

  const cases: { job: string; failed: unknown; completed: unknown }[] = [
    // Item 57 fails its chunk (51..60): 50 items committed.
    { job: 'range', failed: { unit: 'items', done: 50, total: 95 }, completed: { unit: 'items', done: 95, total: 95 } },
    // Items read plus bad records (skipped reads): 5 chunks of 10 and 2 bad ones by then; 95 in all.
    { job: 'plain', failed: { unit: 'items', done: 52, total: null }, completed: { unit: 'items', done: 95, total: null } },
    { job: 'array', failed: { unit: 'items', done: 50, total: 95 }, completed: { unit: 'items', done: 95, total: 95 } },
    { job: 'generator', failed: { unit: 'items', done: 50, total: null }, completed: { unit: 'items', done: 95, total: null } },
    {
      job: 'csv',
      failed: { unit: 'bytes', done: csv.indexOf('\n51,') + 1, total: Buffer.byteLength(csv) },
      completed: { unit: 'bytes', done: Buffer.byteLength(csv), total: Buffer.byteLength(csv) },
    },
    { job: 'paging', failed: { unit: 'items', done: 50, total: 95 }, completed: { unit: 'items', done: 95, total: 95 } },
  ];

  it.each(cases)('$job: progress after a failed run, and after its restart', async ({ job, failed, completed }) => {
    const ns = await pool.create(backend.freshUrl(`progress-${job}`), jobs);
    if (job === 'paging') {
      await ns.db.exec('CREATE TABLE src (id INTEGER PRIMARY KEY)');
      await ns.db.transaction((tx) => insertRows(tx, 'src', ['id'], Array.from({ length: 95 }, (_, i) => [i + 1])));
    }
    const first = await ns.run(job, { failAt: 57 });
    expect(first.status).toBe('FAILED');
    expect(progress(first)).toEqual(failed);
    // The repository has what run returned.
    expect(progress((await ns.getExecution(first.id))!)).toEqual(failed);

    const second = await ns.restart(first.id);
    expect(second.status).toBe('COMPLETED');
    expect(progress(second)).toEqual(completed);
    // This execution read only the rest.
    expect(step(second, 'load').readCount).toBeLessThan(50);
  });

  it('a completed run: done equals the total; a reader with no items has done 0 of 0', async () => {
    const ns = await pool.create(backend.freshUrl('progress-full'), [
      ...jobs,
      progressJob('empty', () => rangeReader(1, 0)),
    ]);
    const e = await ns.run('range', {});
    expect(e.status).toBe('COMPLETED');
    expect(progress(e)).toEqual({ unit: 'items', done: 95, total: 95 });
    const empty = await ns.run('empty', {});
    expect(empty.status).toBe('COMPLETED');
    expect(progress(empty)).toEqual({ unit: 'items', done: 0, total: 0 });
  });
});
