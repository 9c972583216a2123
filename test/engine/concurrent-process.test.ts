/**
 * Engine conformance: `processConcurrency`, the items of a chunk processed with bounded
 * concurrency (Spring Batch's AsyncItemProcessor). The bound holds; the writer gets the outputs
 * in the items' order; filters, skips (and the skip limit and policy, counting skips in
 * flight), retries with backoff, process listeners and processorTransactional behave per item
 * as without it; an item failing for good fails the chunk once the items in flight settle,
 * with nothing of the chunk written; stop and restart write every item once; a lost execution
 * starts no more items. Runs unchanged on SQLite and PostgreSQL.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.ts';
import { defineJob, type ChunkStepDefinition, type SkipQuery } from '../../src/core/job.ts';
import type { Nightshift } from '../../src/operator.ts';
import { threadedProcessor } from '../../src/engine/threaded-processor.ts';
import { backends, waitFor } from '../support/backends.ts';
import {
  FatalError, PoisonError, TransientError, counters, countRows, deferred, numbers, range, rowsOf, sleep, step, tableWriter, thrown,
  within, ZERO,
} from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';

/** Counts the processor calls in flight, and the most there were at once. */
function gauge() {
  const g = {
    now: 0,
    max: 0,
    async run<T>(work: () => Promise<T>): Promise<T> {
      g.now++;
      g.max = Math.max(g.max, g.now);
      try {
        return await work();
      } finally {
        g.now--;
      }
    },
  };
  return g;
}

describe.each(backends())('concurrent processing ($name)', (backend) => {
  const pool = suiteInstances(backend);

  it('keeps at most processConcurrency items in flight and hands the writer each chunk in the items\' order', async () => {
    const g = gauge();
    const finished: number[] = [];
    const received: number[][] = [];
    const job = defineJob({
      name: 'bounded',
      steps: (s) => [
        s.chunk<number, number>({
          name: 'load',
          chunkSize: 20,
          reader: () => numbers(50),
          // Odd items wait for a timer, even ones only for a promise: items finish out of order.
          processor: (item) =>
            g.run(async () => {
              await (item % 2 ? sleep(2) : nextTurn());
              finished.push(item);
              return item % 10 === 0 ? undefined : item * 10;
            }),
          processConcurrency: 4,
          writer: (ctx) => {
            const table = tableWriter('items', ctx);
            return { ...table, write: (items, chunk) => (received.push([...items]), table.write(items, chunk)) };
          },
        }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('bounded'), [job]);
    const e = await ns.run('bounded');
    expect(e.status, e.exitStatus.description).toBe('COMPLETED');
    expect(g.max).toBe(4);
    expect(finished).not.toEqual(range(1, 50));
    const expected = (from: number, to: number) => range(from, to).filter((i) => i % 10 !== 0).map((i) => i * 10);
    expect(received).toEqual([expected(1, 20), expected(21, 40), expected(41, 50)]);
    expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 50, filterCount: 5, writeCount: 45, commitCount: 3 });
    expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(expected(1, 50));
  });

  it('skips, retries with backoff, and tells the process and skip listeners of each item, skips in the items\' order', async () => {
    const attempts = new Map<number, number[]>();
    const events: string[] = [];
    const skipped: unknown[] = [];
    const queries: Pick<SkipQuery, 'item' | 'skipCount'>[] = [];
    const sevenDecided = deferred();
    const job = defineJob({
      name: 'tolerant',
      steps: (s) => [
        s.chunk<number, number>({
          name: 'load',
          chunkSize: 10,
          reader: () => numbers(30),
          processor: async (item) => {
            const times = attempts.get(item) ?? [];
            times.push(Date.now());
            attempts.set(item, times);
            // Item 3 is still in flight when the skips of items 4 and 7 are decided.
            await (item === 3 ? within(sevenDecided.promise, 10_000, "item 7's skip") : sleep(1));
            if (item === 3 || item === 4 || item === 7 || item === 23) throw new PoisonError(`cannot process ${item}`);
            if (item === 12 && times.length <= 2) throw new TransientError(`busy ${times.length}`);
            return item;
          },
          processConcurrency: 5,
          writer: (ctx) => tableWriter('items', ctx),
          retry: { on: [TransientError], limit: 3, backoff: { initialMs: 30, multiplier: 2 } },
          skip: {
            on: [PoisonError],
            limit: 4,
            policy: ({ item, skipCount }) => {
              queries.push({ item, skipCount });
              if (item === 7) sevenDecided.resolve();
              return true;
            },
          },
          chunkListeners: [
            {
              beforeProcess: (item) => void events.push(`before ${item}`),
              afterProcess: (item, result) => void events.push(`after ${item} ${result}`),
              onProcessError: (item, e) => void events.push(`error ${item} ${(e as Error).message}`),
              onSkip: (skip) => void skipped.push(skip.item),
            },
          ],
        }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('tolerant'), [job]);
    const e = await ns.run('tolerant');
    expect(e.status, e.exitStatus.description).toBe('COMPLETED');
    expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 30, processSkipCount: 4, writeCount: 26, commitCount: 4 });
    expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(range(1, 30).filter((i) => ![3, 4, 7, 23].includes(i)));
    // Each skip saw the skips decided before it, those of items still in flight included.
    expect(queries).toEqual([{ item: 4, skipCount: 0 }, { item: 7, skipCount: 1 }, { item: 3, skipCount: 2 }, { item: 23, skipCount: 3 }]);
    // The skip listeners hear of a chunk's skips in the items' order.
    expect(skipped).toEqual([3, 4, 7, 23]);
    // Item 12: three attempts, with the backoff between them.
    const [t1, t2, t3] = attempts.get(12)!;
    expect(attempts.get(12)).toHaveLength(3);
    expect(t2 - t1).toBeGreaterThanOrEqual(25);
    expect(t3 - t2).toBeGreaterThanOrEqual(55);
    expect(attempts.get(13)).toHaveLength(1);
    // Every item was told to the process listeners: once before each attempt, after each success.
    for (const i of range(1, 30)) {
      const mine = events.filter((x) => x.split(' ')[1] === String(i));
      if (i === 12) expect(mine).toEqual(['before 12', 'error 12 busy 1', 'before 12', 'error 12 busy 2', 'before 12', 'after 12 12']);
      else if ([3, 4, 7, 23].includes(i)) expect(mine).toEqual([`before ${i}`, `error ${i} cannot process ${i}`]);
      else expect(mine).toEqual([`before ${i}`, `after ${i} ${i}`]);
    }
  });

  it('a skip over the limit among items in flight fails the chunk once they settle; nothing of it is written', async () => {
    const started: number[] = [];
    const settled: number[] = [];
    const job = defineJob({
      name: 'over-limit',
      steps: (s) => [
        s.chunk<number, number>({
          name: 'load',
          chunkSize: 10,
          reader: () => numbers(30),
          processor: async (item) => {
            started.push(item);
            try {
              await sleep(item === 13 ? 1 : 40);
              if (item === 4 || item === 13) throw new PoisonError(`cannot process ${item}`);
              return item;
            } finally {
              settled.push(item);
            }
          },
          processConcurrency: 4,
          writer: (ctx) => tableWriter('items', ctx),
          skip: { on: [PoisonError], limit: 1 },
        }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('overlimit'), [job]);
    const e = await ns.run('over-limit');
    expect(e.status).toBe('FAILED');
    const s = step(e, 'load');
    expect(s.exitStatus.description).toBe('skip limit 1 exceeded in process: process of item 13: cannot process 13');
    // Chunk 11..20: items 11..14 were in flight when 13 failed; none started after, all settled.
    expect(started.filter((i) => i > 10)).toEqual([11, 12, 13, 14]);
    expect(settled.filter((i) => i > 10).sort((a, b) => a - b)).toEqual([11, 12, 13, 14]);
    expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(range(1, 10).filter((i) => i !== 4));
    expect(counters(s)).toEqual({ ...ZERO, readCount: 20, processSkipCount: 1, writeCount: 9, commitCount: 1, rollbackCount: 1 });
  });

  it('an item failing for good fails the step after the items in flight settle; the restart writes every item once', async () => {
    const settled: number[] = [];
    const job = defineJob({
      name: 'fatal',
      steps: (s) => [
        s.chunk<number, number>({
          name: 'load',
          chunkSize: 10,
          reader: () => numbers(30),
          processor: async (item, ctx) => {
            if (item === 13 && ctx.executionNumber === 1) throw new FatalError('fatal 13');
            await sleep(item > 10 && item <= 20 ? 30 : 1);
            settled.push(item);
            return item % 7 === 0 ? undefined : item;
          },
          processConcurrency: 5,
          writer: (ctx) => tableWriter('items', ctx),
        }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('fatal'), [job]);
    const e1 = await ns.run('fatal');
    expect(e1.status).toBe('FAILED');
    const s1 = step(e1, 'load');
    expect(s1.exitStatus.description).toBe('fatal 13');
    expect(settled.filter((i) => i > 10)).toEqual(expect.arrayContaining([11, 12, 14, 15]));
    expect(settled.filter((i) => i > 15)).toEqual([]);
    // The failed chunk's reads and the filter of item 14 (it settled) are counted; none written.
    expect(counters(s1)).toEqual({ ...ZERO, readCount: 20, filterCount: 1 + 1, writeCount: 9, commitCount: 1, rollbackCount: 1 });
    expect(await countRows(ns.db, 'items')).toEqual({ n: 9, distinct: 9 });

    const e2 = await ns.restart(e1.id);
    expect(e2.status, e2.exitStatus.description).toBe('COMPLETED');
    const rows = await rowsOf(ns.db, 'items');
    expect(rows.map((r) => r.item)).toEqual(range(1, 30).filter((i) => i % 7 !== 0));
    expect(rows.filter((r) => r.execution_id === e2.id).map((r) => r.item)).toEqual(range(11, 30).filter((i) => i % 7 !== 0));
  });

  it('a stop requested while a chunk is processed takes effect after it commits; the restart writes the rest, every item once', async () => {
    const ref: { ns?: Nightshift } = {};
    const job = defineJob({
      name: 'stoppable',
      steps: (s) => [
        s.chunk<number, number>({
          name: 'load',
          chunkSize: 10,
          reader: () => numbers(40),
          processor: async (item, ctx) => {
            if (item === 15 && ctx.executionNumber === 1) await ref.ns!.stop(ctx.jobExecution.id);
            await sleep(1);
            return item;
          },
          processConcurrency: 8,
          writer: (ctx) => tableWriter('items', ctx),
        }),
      ],
    });
    const ns = (ref.ns = await pool.create(backend.freshUrl('stoppable'), [job]));
    const e1 = await ns.run('stoppable');
    expect(e1.status).toBe('STOPPED');
    expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(range(1, 20));
    const e2 = await ns.restart(e1.id);
    expect(e2.status, e2.exitStatus.description).toBe('COMPLETED');
    expect(await countRows(ns.db, 'items')).toEqual({ n: 40, distinct: 40 });
    expect(step(e2, 'load').readCount).toBe(20);
  });

  it('processorTransactional: a chunk whose write is retried or written item by item is processed again, concurrently', async () => {
    const calls = new Map<number, number>();
    const g = gauge();
    let failures = 0;
    const job = defineJob({
      name: 'tx-concurrent',
      steps: (s) => [
        s.chunk<number, number>({
          name: 'load',
          chunkSize: 10,
          reader: () => numbers(30),
          processor: (item) =>
            g.run(async () => {
              calls.set(item, (calls.get(item) ?? 0) + 1);
              await sleep(1);
              return item;
            }),
          processConcurrency: 3,
          processorTransactional: true,
          writer: (ctx) => tableWriter('items', ctx, {
            poison: (i) => (i === 5 && failures++ === 0 ? new TransientError('deadlock') : i === 25 ? new PoisonError('bad 25') : undefined),
          }),
          retry: { on: [TransientError], limit: 2 },
          skip: { on: [PoisonError], limit: 1 },
        }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('txconcurrent'), [job]);
    const e = await ns.run('tx-concurrent');
    expect(e.status, e.exitStatus.description).toBe('COMPLETED');
    expect(g.max).toBe(3);
    expect(range(1, 30).map((i) => calls.get(i))).toEqual(range(1, 30).map((i) => (i <= 10 || i > 20 ? 2 : 1)));
    expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(range(1, 30).filter((i) => i !== 25));
    expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 30, writeCount: 29, writeSkipCount: 1, commitCount: 12, rollbackCount: 3 });
  });

  it('a partition that loses its execution (the manager timed it out) starts no more items', async () => {
    const g = gauge();
    let started = 0;
    const job = defineJob({
      name: 'timed-out',
      steps: (s) => [
        s.partitioned({
          name: 'load',
          mode: 'local',
          timeoutMs: 300,
          partitioner: () => [{ part: 1 }],
          worker: s.chunk<number, number>({
            name: 'load-part',
            chunkSize: 400,
            reader: () => numbers(400),
            processor: (item) => g.run(async () => (started++, await sleep(50), item)),
            processConcurrency: 2,
            writer: (ctx) => tableWriter('items', ctx),
          }),
        }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('timedout'), [job]);
    const e = await ns.run('timed-out');
    expect(e.status).toBe('FAILED');
    expect(step(e, 'load').exitStatus.description).toContain('did not all end within 300 ms');
    // Without the check, the chunk's 400 items (10 s) would all be processed before its commit is
    // refused; with it, about 2 items per 50 ms until the timeout.
    await waitFor(() => g.now === 0, 20_000, 'the items in flight to settle');
    expect(started).toBeLessThan(200);
    expect(await countRows(ns.db, 'items')).toEqual({ n: 0, distinct: 0 });
  });
});

describe('processConcurrency definition validation', () => {
  const chunk: Omit<ChunkStepDefinition<unknown, number, number>, 'type' | 'name'> = {
    chunkSize: 1, reader: () => numbers(1), processor: (n: number) => n, writer: () => () => undefined,
  };

  it.each([
    [{ processConcurrency: 0 }, 'step c: processConcurrency must be a positive integer, got 0'],
    [{ processConcurrency: 2.5 }, 'step c: processConcurrency must be a positive integer, got 2.5'],
    [{ processConcurrency: 4, processor: undefined }, 'step c: processConcurrency needs a processor'],
    [
      { processConcurrency: 4, processor: undefined, processInThreads: threadedProcessor('./x.ts', { threads: 2 }) },
      'step c: give processConcurrency or processInThreads, not both',
    ],
  ])('refuses %j', (options, message) => {
    const err = thrown(() => defineJob({ name: 'j', steps: (s) => [s.chunk<number, number>({ name: 'c', ...chunk, ...options })] }));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain(message);
  });
});
