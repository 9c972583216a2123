/**
 * Issue 6: the same partitioned step with its worker processing in-process, and in worker
 * threads (CPU-bound processors), gives the same rows and counters.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { defineJob } from '../../src/core/job.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { p } from '../../src/core/params.ts';
import { createNightshift } from '../../src/operator.ts';
import { rangeReader } from '../../src/items/range-reader.ts';
import { sqlWriter } from '../../src/items/sql-writer.ts';
import { ensureTable } from '../../src/items/ensure-table.ts';
import { threadedProcessor } from '../../src/engine/threaded-processor.ts';
import { backends } from '../support/backends.ts';

type Out = { n: number; sq: number; thread: number };
const work = new URL('../fixtures/engine/thread-work.ts', import.meta.url);

function partitionedSquares(name: string, threads: boolean) {
  return defineJob({
    name,
    params: { items: p.int({ default: 400 }), grid: p.int({ default: 4 }) },
    steps: (s) => [
      s.partitioned({
        name: 'squares',
        mode: 'local',
        concurrency: 2,
        gridSize: ({ params }) => params.grid,
        partitioner: ({ params, gridSize }) =>
          Array.from({ length: gridSize }, (_, i) => ({
            from: Math.floor((params.items * i) / gridSize) + 1,
            to: Math.floor((params.items * (i + 1)) / gridSize),
          })),
        worker: s.chunk<number, Out>({
          name: 'square-range',
          chunkSize: 25,
          reader: ({ stepContext }) => rangeReader(Number(stepContext.from), Number(stepContext.to)),
          ...(threads
            ? { processInThreads: threadedProcessor(work, { exportName: 'square', threads: 2 }) }
            : { processor: (n: number) => ({ n, sq: n * n, thread: 0 }) }),
          writer: ({ db }) => ({
            open: () => ensureTable(db, 'CREATE TABLE IF NOT EXISTS squares (job TEXT, n INTEGER, sq INTEGER, thread INTEGER)'),
            ...sqlWriter<Out>({ table: 'squares', columns: ['job', 'n', 'sq', 'thread'], values: (o) => [name, o.n, o.sq, o.thread] }),
          }),
        }),
      }),
    ],
  });
}

describe.each(backends())('partitioned step in threads on $name', (backend) => {
  afterAll(() => backend.cleanup());

  it('processing in worker threads gives the same rows and counters as in-process', async () => {
    const ns = await createNightshift({
      db: backend.freshUrl('pthreads'),
      jobs: [partitionedSquares('inline', false), partitionedSquares('threads', true)],
      logger: silentLogger,
    });
    try {
      const a = await ns.run('inline');
      const b = await ns.run('threads');
      expect(a.status).toBe('COMPLETED');
      expect(b.status).toBe('COMPLETED');
      const rows = async (job: string) =>
        (await ns.db.query<{ n: number; sq: number; thread: number }>('SELECT n, sq, thread FROM squares WHERE job = $1 ORDER BY n', [job])).map(
          (r) => ({ n: Number(r.n), sq: Number(r.sq), thread: Number(r.thread) }),
        );
      const inline = await rows('inline');
      const threaded = await rows('threads');
      expect(threaded.map(({ n, sq }) => [n, sq])).toEqual(inline.map(({ n, sq }) => [n, sq]));
      expect(inline).toHaveLength(400);
      expect(threaded.every((r) => r.thread > 0)).toBe(true); // computed off the main thread
      const manager = (e: typeof a) => e.steps.find((s) => s.stepName === 'squares')!;
      expect(manager(b)).toMatchObject({ readCount: 400, writeCount: 400 });
      expect(manager(b).commitCount).toBe(manager(a).commitCount);
    } finally {
      await ns.close();
    }
  });
});
