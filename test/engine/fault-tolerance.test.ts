/**
 * Engine conformance: skip (read, process, write with item-by-item isolation), skip limits,
 * skip listeners recording in the chunk's transaction, retry (process and write, with backoff),
 * no-rollback errors, and filtering. Runs unchanged on SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { defineJob, type ChunkListener, type SkipPolicy, type RetryPolicy } from '../../src/core/job.ts';
import type { ItemStreamReader } from '../../src/core/items.ts';
import pino from 'pino';
import { backends } from '../support/backends.ts';
import {
  BadRecordError, FatalError, IgnorableWriteError, PoisonError, TransientError, counters, countRows, numbers, range,
  rowsOf, step, tableWriter, ZERO,
} from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';

const SKIPS_DDL = `CREATE TABLE IF NOT EXISTS skips (phase TEXT NOT NULL, item INTEGER, message TEXT NOT NULL, execution_id BIGINT NOT NULL)`;

interface SeenSkip {
  phase: string;
  item: unknown;
  error: string;
  errorClass: string;
}

/**
 * 30 positions, chunks of 10. Positions 4 and 17 are unreadable (read skips); items 9 and 27
 * cannot be processed (process skips); a chunk containing item 25 fails to write after
 * inserting the items before it (write skip after isolating it).
 */
function skippyJob(skip: SkipPolicy, seen: SeenSkip[], events: string[] = []) {
  const listener: ChunkListener<unknown, number, number> = {
    async onSkip(s, chunk) {
      const error = s.error as Error;
      seen.push({ phase: s.phase, item: s.item, error: error.message, errorClass: error.name });
      await chunk.tx.execute('INSERT INTO skips (phase, item, message, execution_id) VALUES ($1, $2, $3, $4)', [
        s.phase, s.item ?? null, error.message, chunk.jobExecutionId,
      ]);
    },
    onReadError: (e) => void events.push(`readError:${(e as Error).message}`),
    onProcessError: (item, e) => void events.push(`processError:${item}:${(e as Error).name}`),
    onWriteError: (items, e) => void events.push(`writeError:${items.join(',')}:${(e as Error).name}`),
    onChunkError: (_ctx, e) => void events.push(`chunkError:${(e as Error).name}`),
  };
  return defineJob({
    name: 'skippy',
    steps: (s) => [
      s.tasklet({ name: 'ddl', tasklet: ({ tx }) => tx.exec(SKIPS_DDL) }),
      s.chunk<number, number>({
        name: 'load',
        chunkSize: 10,
        reader: () => numbers(30, 'stream-reader', [4, 17]),
        processor: (item) => {
          if (item === 9 || item === 27) throw new PoisonError(`cannot process ${item}`);
          return item;
        },
        writer: (ctx) => tableWriter('items', ctx, { poison: (i) => (i === 25 ? new BadRecordError(`cannot write ${i}`) : undefined) }),
        skip,
        chunkListeners: [listener],
      }),
    ],
  });
}

describe.each(backends())('engine fault tolerance ($name)', (backend) => {
  const pool = suiteInstances(backend);

  describe('skip', () => {
    it('a chunk written item by item and redone after a lost connection counts each write skip once', async () => {
      let dropped = false;
      const job = defineJob({
        name: 'scan-redo',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(10),
            writer: (ctx) => {
              const inner = tableWriter('items', ctx, { poison: (i) => (i === 3 || i === 6 ? new BadRecordError(`cannot write ${i}`) : undefined) });
              return {
                ...inner,
                async write(items, chunk) {
                  // Item 7, written on its own after 6 was skipped (its write skip goes with item 7's
                  // commit): the connection drops once.
                  if (items.length === 1 && items[0] === 7 && !dropped) {
                    dropped = true;
                    throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
                  }
                  await inner.write(items, chunk);
                },
              };
            },
            skip: { on: [BadRecordError], limit: 3 },
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('scanredo'), [job]);
      const e = await ns.run('scan-redo');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect(dropped).toBe(true);
      // One rollback for the chunk and one for each failing item; a commit for each item written,
      // and one for the chunk that finds the end of input.
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 10, writeSkipCount: 2, writeCount: 8, commitCount: 9, rollbackCount: 3 });
      expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual([1, 2, 4, 5, 7, 8, 9, 10]);
    });

    it('each item written item by item commits on its own: a restart after a failure in the middle writes on from there, none twice', async () => {
      const job = defineJob({
        name: 'scan-restart',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(20),
            // Items 6 and 10 are filtered: the restart must find where it was among the items read.
            processor: (item) => (item === 6 || item === 10 ? undefined : item),
            writer: (ctx) =>
              tableWriter('items', ctx, {
                poison: (i) =>
                  i === 13 ? new BadRecordError('cannot write 13') : i === 17 && ctx.executionNumber === 1 ? new FatalError('disk full at 17') : undefined,
              }),
            skip: { on: [BadRecordError], limit: 5 },
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('scanrestart'), [job]);
      const e1 = await ns.run('scan-restart');
      expect(e1.status).toBe('FAILED');
      expect(step(e1, 'load').exitStatus.description).toContain('disk full at 17');
      const rows1 = await rowsOf(ns.db, 'items');
      // Chunk 11..20 failed as a whole, then 11, 12, 14, 15, 16 committed one by one (13 skipped).
      expect(rows1.map((r) => r.item)).toEqual([1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 14, 15, 16]);
      const e2 = await ns.restart(e1.id);
      expect(e2.status, e2.exitStatus.description).toBe('COMPLETED');
      const rows2 = await rowsOf(ns.db, 'items');
      expect(rows2.map((r) => r.item)).toEqual([1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 14, 15, 16, 17, 18, 19, 20]);
      expect(rows2.filter((r) => r.execution_id === e2.id).map((r) => r.item)).toEqual([17, 18, 19, 20]);
      // The chunk's reads, filters and skip were counted once, by the execution that first read it.
      const [s1, s2] = [step(e1, 'load'), step(e2, 'load')];
      expect(counters(s1)).toMatchObject({ readCount: 20, filterCount: 2, writeSkipCount: 1, writeCount: 13 });
      expect(counters(s2)).toMatchObject({ readCount: 0, filterCount: 0, writeSkipCount: 0, writeCount: 4 });
      expect(s2.context['ns.scan']).toBeUndefined();
    });

    it('a stop requested while a cut-short chunk is read again takes effect after that chunk: no item twice', async () => {
      const holder: { ns?: Awaited<ReturnType<typeof pool.create>> } = {};
      const job = defineJob({
        name: 'scan-stop',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: (ctx) => {
              const inner = numbers(20) as ItemStreamReader<number>;
              return {
                open: (c) => inner.open!(c),
                update: (c) => inner.update!(c),
                async read() {
                  const item = inner.read();
                  // The restart asks to stop while it reads the chunk cut short (11..20) again.
                  if (item === 12 && ctx.executionNumber === 2) await holder.ns!.stop(ctx.jobExecution.id);
                  return item;
                },
              };
            },
            writer: (ctx) =>
              tableWriter('items', ctx, {
                poison: (i) =>
                  i === 13 ? new BadRecordError('cannot write 13') : i === 17 && ctx.executionNumber === 1 ? new FatalError('disk full at 17') : undefined,
              }),
            skip: { on: [BadRecordError], limit: 5 },
          }),
        ],
      });
      const ns = (holder.ns = await pool.create(backend.freshUrl('scanstop'), [job]));
      const e1 = await ns.run('scan-stop');
      expect(e1.status).toBe('FAILED');
      const e2 = await ns.restart(e1.id);
      expect(e2.status).toBe('STOPPED');
      expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(range(1, 20).filter((i) => i !== 13));
      const e3 = await ns.restart(e2.id);
      expect(e3.status, e3.exitStatus.description).toBe('COMPLETED');
      expect(await countRows(ns.db, 'items')).toEqual({ n: 19, distinct: 19 });
    });

    it('skips read, process and write errors, isolating the bad item of a failed chunk', async () => {
      const seen: SeenSkip[] = [];
      const events: string[] = [];
      const ns = await pool.create(backend.freshUrl('skip'), [skippyJob({ on: [BadRecordError, PoisonError], limit: 10 }, seen, events)]);
      const e = await ns.run('skippy');
      expect(e.status).toBe('COMPLETED');
      const s = step(e, 'load');
      expect(s.status).toBe('COMPLETED');
      // 28 items read (2 unreadable positions), 2 not processable, 1 not writable: 25 written.
      // The last chunk (23..30 without 27) failed once as a whole (a rollback), then each of its
      // 7 items was written in a transaction of its own: 6 commits, and a rollback for item 25.
      expect(counters(s)).toEqual({
        ...ZERO, readCount: 28, readSkipCount: 2, processSkipCount: 2, writeSkipCount: 1, writeCount: 25, commitCount: 8, rollbackCount: 2,
      });

      const expected = range(1, 30).filter((i) => ![4, 17, 9, 27, 25].includes(i));
      expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(expected);
      expect(await countRows(ns.db, 'items')).toEqual({ n: 25, distinct: 25 });

      // The skip listener saw each skipped item once, with its error and phase.
      const key = (x: SeenSkip) => `${x.phase}:${x.item ?? '-'}:${x.errorClass}:${x.error}`;
      expect(seen.map(key).sort()).toEqual([
        'process:27:PoisonError:cannot process 27',
        'process:9:PoisonError:cannot process 9',
        'read:-:BadRecordError:bad record at position 17',
        'read:-:BadRecordError:bad record at position 4',
        'write:25:BadRecordError:cannot write 25',
      ]);
      // ... and what it wrote in the chunk's transaction committed exactly once.
      const recorded = await ns.db.query<Record<string, unknown>>('SELECT phase, item, message, execution_id FROM skips');
      expect(recorded.map((r) => `${r.phase}:${r.item ?? '-'}:${r.message}`).sort()).toEqual([
        'process:27:cannot process 27',
        'process:9:cannot process 9',
        'read:-:bad record at position 17',
        'read:-:bad record at position 4',
        'write:25:cannot write 25',
      ]);
      expect(recorded.every((r) => Number(r.execution_id) === e.id)).toBe(true);

      // Error listeners: every error, including the whole-chunk write failure before isolation;
      // onChunkError for each rollback, item 25's own included (as in Spring Batch).
      expect(events).toEqual([
        'readError:bad record at position 4',
        'processError:9:PoisonError',
        'readError:bad record at position 17',
        'processError:27:PoisonError',
        'writeError:23,24,25,26,28,29,30:BadRecordError',
        'chunkError:BadRecordError',
        'writeError:25:BadRecordError',
        'chunkError:BadRecordError',
      ]);
    });

    it.each([
      { limit: 0, phase: 'read', names: ['position 4'] },
      { limit: 2, phase: 'read', names: ['position 17'] },
      { limit: 3, phase: 'process', names: ['item 27', 'cannot process 27'] },
      { limit: 4, phase: 'write', names: ['item 25', 'cannot write 25'] },
    ])('skip limit $limit exceeded in $phase: the step FAILS naming the item and error', async ({ limit, phase, names }) => {
      const seen: SeenSkip[] = [];
      const ns = await pool.create(backend.freshUrl('limit'), [skippyJob({ on: [BadRecordError, PoisonError], limit }, seen)]);
      const e = await ns.run('skippy');
      expect(e.status).toBe('FAILED');
      const s = step(e, 'load');
      expect(s.status).toBe('FAILED');
      expect(s.exitStatus.code).toBe('FAILED');
      expect(s.exitStatus.description).toContain(`skip limit ${limit} exceeded in ${phase}`);
      for (const n of names) expect(s.exitStatus.description).toContain(n);
      expect(e.exitStatus.description).toContain(`skip limit ${limit}`);
      // Only committed chunks count; no committed chunk exceeds the limit.
      expect(s.readSkipCount + s.processSkipCount + s.writeSkipCount).toBeLessThanOrEqual(limit);
      const rows = await countRows(ns.db, 'items');
      expect(rows.n).toBe(s.writeCount);
      expect(rows.distinct).toBe(s.writeCount);
      const recorded = await ns.db.query<Record<string, unknown>>('SELECT count(*) AS n FROM skips');
      expect(Number(recorded[0].n)).toBe(s.readSkipCount + s.processSkipCount + s.writeSkipCount);
    });

    it('the skip limit message names the read error exactly', async () => {
      const errors: unknown[] = [];
      const job = defineJob({
        name: 'limit-class',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 5,
            reader: () => numbers(10, 'stream-reader', [3, 4]),
            writer: () => () => undefined,
            skip: { limit: 1 },
            chunkListeners: [{ onReadError: (e) => void errors.push(e) }],
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('limitclass'), [job]);
      const e = await ns.run('limit-class');
      expect(e.status).toBe('FAILED');
      expect(step(e, 'load').exitStatus.description).toMatch(/^skip limit 1 exceeded in read: read error: bad record at position 4$/);
      expect(errors).toHaveLength(2);
    });

    it('errors listed in `never` are not skipped even when `on` would match', async () => {
      const job = defineJob({
        name: 'never',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(20),
            processor: (item) => {
              if (item === 3) throw new PoisonError('skippable');
              if (item === 14) throw new FatalError('fatal item 14');
              return item;
            },
            writer: (ctx) => tableWriter('items', ctx),
            skip: { limit: 100, never: [FatalError] },
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('never'), [job]);
      const e = await ns.run('never');
      expect(e.status).toBe('FAILED');
      const s = step(e, 'load');
      expect(s.exitStatus.description).toContain('fatal item 14');
      // The failed chunk (11..20) counts its reads and its rollback.
      expect(counters(s)).toMatchObject({ readCount: 20, processSkipCount: 1, writeCount: 9, commitCount: 1, rollbackCount: 1 });
    });

    it.each([
      { phase: 'read', failAt: 14 },
      { phase: 'process', failAt: 16 },
    ])('a chunk failing in $phase rolls back: onChunkError is told, and a listener failing there does not hide the error', async ({ phase, failAt }) => {
      const told: string[] = [];
      const job = defineJob({
        name: 'chunk-error',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(30, 'stream-reader', phase === 'read' ? [failAt] : []),
            processor: (item) => {
              if (item === failAt) throw new FatalError(`fatal ${item}`);
              return item;
            },
            writer: (ctx) => tableWriter('items', ctx),
            chunkListeners: [
              { onChunkError: (ctx, e) => void told.push(`${(e as Error).message} after ${ctx.stepExecution.commitCount} commits`) },
              { onChunkError: () => { throw new Error('listener broke'); } },
            ],
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('chunkerror'), [job]);
      const e = await ns.run('chunk-error');
      expect(e.status).toBe('FAILED');
      const s = step(e, 'load');
      const message = phase === 'read' ? `bad record at position ${failAt}` : `fatal ${failAt}`;
      expect(s.exitStatus.description).toContain(message);
      expect(told).toEqual([`${message} after 1 commits`]);
      expect(counters(s)).toMatchObject({ writeCount: 10, commitCount: 1, rollbackCount: 1 });
    });

    it('a predicate selects skippable errors', async () => {
      const job = defineJob({
        name: 'predicate',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 4,
            reader: () => numbers(10),
            processor: (item) => {
              if (item % 5 === 0) throw new Error(`multiple of five: ${item}`);
              return item;
            },
            writer: (ctx) => tableWriter('items', ctx),
            skip: { limit: 5, on: [(e) => e instanceof Error && e.message.startsWith('multiple of five')] },
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('pred'), [job]);
      const e = await ns.run('predicate');
      expect(e.status).toBe('COMPLETED');
      expect(counters(step(e, 'load'))).toMatchObject({ readCount: 10, processSkipCount: 2, writeCount: 8 });
    });
  });

  describe('retry', () => {
    function retryJob(retry: RetryPolicy, failures: number, attempts: Map<number, number[]>, skip?: SkipPolicy) {
      return defineJob({
        name: 'retry',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(20),
            processor: (item) => {
              const list = attempts.get(item) ?? [];
              list.push(Date.now());
              attempts.set(item, list);
              if (item === 5 && list.length <= failures) throw new TransientError(`transient failure ${list.length} of item 5`);
              return item;
            },
            writer: (ctx) => tableWriter('items', ctx),
            retry,
            skip,
          }),
        ],
      });
    }

    it('a processor failing twice then succeeding completes with no skips', async () => {
      const attempts = new Map<number, number[]>();
      const ns = await pool.create(backend.freshUrl('retry'), [retryJob({ on: [TransientError], limit: 3 }, 2, attempts)]);
      const e = await ns.run('retry');
      expect(e.status).toBe('COMPLETED');
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 20, writeCount: 20, commitCount: 3 });
      expect(attempts.get(5)).toHaveLength(3);
      expect(attempts.get(6)).toHaveLength(1);
      expect(await countRows(ns.db, 'items')).toEqual({ n: 20, distinct: 20 });
    });

    it('waits with backoff between attempts', async () => {
      const attempts = new Map<number, number[]>();
      const retry = { on: [TransientError], limit: 3, backoff: { initialMs: 40, multiplier: 2 } };
      const ns = await pool.create(backend.freshUrl('backoff'), [retryJob(retry, 2, attempts)]);
      expect((await ns.run('retry')).status).toBe('COMPLETED');
      const [t1, t2, t3] = attempts.get(5)!;
      expect(t2 - t1).toBeGreaterThanOrEqual(35);
      expect(t3 - t2).toBeGreaterThanOrEqual(75);
    });

    it('retry exhausted fails the step with the error', async () => {
      const attempts = new Map<number, number[]>();
      const ns = await pool.create(backend.freshUrl('exhaust'), [retryJob({ on: [TransientError], limit: 3 }, 99, attempts)]);
      const e = await ns.run('retry');
      expect(e.status).toBe('FAILED');
      const s = step(e, 'load');
      expect(s.exitStatus.description).toContain('transient failure 3 of item 5');
      expect(attempts.get(5)).toHaveLength(3);
      expect(counters(s)).toEqual({ ...ZERO, readCount: 10, rollbackCount: 1 });
    });

    it('retry exhausted on a skippable error skips the item', async () => {
      const attempts = new Map<number, number[]>();
      const ns = await pool.create(backend.freshUrl('exhaustskip'), [
        retryJob({ on: [TransientError], limit: 3 }, 99, attempts, { on: [TransientError], limit: 1 }),
      ]);
      const e = await ns.run('retry');
      expect(e.status).toBe('COMPLETED');
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 20, writeCount: 19, processSkipCount: 1, commitCount: 3 });
      expect(attempts.get(5)).toHaveLength(3);
      expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(range(1, 20).filter((i) => i !== 5));
    });

    it('a write failing once is retried as a whole chunk: rolled back once, written once', async () => {
      let failures = 0;
      const job = defineJob({
        name: 'write-retry',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(30),
            writer: (ctx) => tableWriter('items', ctx, {
              poison: (i) => (i === 15 && failures++ === 0 ? new TransientError('deadlock, try again') : undefined),
            }),
            retry: { on: [TransientError], limit: 2 },
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('wretry'), [job]);
      const e = await ns.run('write-retry');
      expect(e.status).toBe('COMPLETED');
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 30, writeCount: 30, commitCount: 4, rollbackCount: 1 });
      expect(await countRows(ns.db, 'items')).toEqual({ n: 30, distinct: 30 });
    });
  });

  describe('processorTransactional', () => {
    it.each([
      { transactional: false, retried: 1, scanned: 1 },
      { transactional: true, retried: 2, scanned: 2 },
    ])('processorTransactional $transactional: a rolled-back chunk is processed again only when set', async ({ transactional, retried, scanned }) => {
      const calls = new Map<number, number>();
      let failures = 0;
      const job = defineJob({
        name: 'tx-processor',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(30),
            processor: (item) => {
              calls.set(item, (calls.get(item) ?? 0) + 1);
              return item;
            },
            // Chunk 1..10 fails once (retried as a whole); chunk 21..30 fails on item 25 (written item by item).
            writer: (ctx) => tableWriter('items', ctx, {
              poison: (i) => (i === 5 && failures++ === 0 ? new TransientError('deadlock') : i === 25 ? new BadRecordError('bad 25') : undefined),
            }),
            retry: { on: [TransientError], limit: 2 },
            skip: { on: [BadRecordError], limit: 1 },
            processorTransactional: transactional,
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('txprocessor'), [job]);
      const e = await ns.run('tx-processor');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(range(1, 30).filter((i) => i !== 25));
      expect(range(1, 10).map((i) => calls.get(i))).toEqual(range(1, 10).map(() => retried));
      expect(range(11, 20).map((i) => calls.get(i))).toEqual(range(11, 20).map(() => 1));
      expect(range(21, 30).map((i) => calls.get(i))).toEqual(range(21, 30).map(() => scanned));
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 30, writeCount: 29, writeSkipCount: 1, commitCount: 12, rollbackCount: 3 });
    });
  });

  describe('noRollback', () => {
    it('a writer error listed in noRollback and skippable: every other item is written once, the failing one is a write skip', async () => {
      const skipped: unknown[] = [];
      const job = defineJob({
        name: 'no-rollback-skip',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(30),
            // Item 15 fails before it is inserted, after the items before it in its chunk were.
            writer: (ctx) => tableWriter('items', ctx, { poison: (i) => (i === 15 ? new IgnorableWriteError('item 15 refused') : undefined) }),
            noRollback: [IgnorableWriteError],
            skip: { on: [IgnorableWriteError], limit: 5 },
            chunkListeners: [{ onSkip: (skip) => void skipped.push(skip.item) }],
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('norollbackskip'), [job]);
      const e = await ns.run('no-rollback-skip');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(range(1, 30).filter((i) => i !== 15));
      // Chunk 11..20 rolled back once, then each of its items committed on its own: item 15's
      // error does not roll back, so its write skip commits without a rollback of its own.
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 30, writeCount: 29, writeSkipCount: 1, commitCount: 13, rollbackCount: 1 });
      expect(skipped).toEqual([15]);
    });

    it('a writer error listed in noRollback and not skippable keeps what the writer did for that item; every other item is written once', async () => {
      const writeErrors: string[] = [];
      const job = defineJob({
        name: 'no-rollback',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(30),
            writer: (ctx) => {
              const inner = tableWriter('items', ctx);
              return {
                open: () => inner.open!(ctx.stepContext),
                async write(items, chunk) {
                  await inner.write(items, chunk);
                  if (items.includes(15)) throw new IgnorableWriteError('audit log unavailable');
                },
              };
            },
            noRollback: [IgnorableWriteError],
            chunkListeners: [{ onWriteError: (items, e) => void writeErrors.push(`${items[0]}..${items.at(-1)}: ${(e as Error).message}`) }],
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('norollback'), [job]);
      const e = await ns.run('no-rollback');
      expect(e.status).toBe('COMPLETED');
      // The chunk with item 15 was rolled back and written again item by item; item 15's own
      // write is kept and counted as written.
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 30, writeCount: 30, commitCount: 13, rollbackCount: 1 });
      expect(await countRows(ns.db, 'items')).toEqual({ n: 30, distinct: 30 });
      expect(writeErrors).toEqual(['11..20: audit log unavailable', '15..15: audit log unavailable']);
    });

    it('read and process errors listed in noRollback that the skip policy refuses drop their item; the step goes on', async () => {
      const warnings: string[] = [];
      const job = defineJob({
        name: 'no-rollback-read',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            // Positions 4 and 17 are unreadable.
            reader: () => numbers(30, 'stream-reader', [4, 17]),
            processor: (item) => {
              if (item === 9 || item === 22) throw new PoisonError(`cannot process ${item}`);
              if (item === 25) throw new FatalError('fatal 25');
              return item;
            },
            writer: (ctx) => tableWriter('items', ctx),
            noRollback: [BadRecordError, PoisonError],
            // Only FatalError is skippable: the listed errors are not skips.
            skip: { on: [FatalError], limit: 1 },
          }),
        ],
      });
      const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(String(JSON.parse(line).msg)) });
      const ns = await pool.create(backend.freshUrl('norollbackread'), [job], { logger });
      const e = await ns.run('no-rollback-read');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(range(1, 30).filter((i) => ![4, 17, 9, 22, 25].includes(i)));
      // The dropped items are not skips; the skip limit of 1 went to item 25 only.
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 28, processSkipCount: 1, writeCount: 25, commitCount: 3 });
      expect(warnings.filter((w) => w.includes('dropped')).sort()).toEqual([
        'process of item 22: cannot process 22: dropped (a no-rollback error)',
        'process of item 9: cannot process 9: dropped (a no-rollback error)',
        'read error: bad record at position 17: dropped (a no-rollback error)',
        'read error: bad record at position 4: dropped (a no-rollback error)',
      ]);
    });

    it('a writer error not listed in noRollback rolls the chunk back and fails the step', async () => {
      const job = defineJob({
        name: 'rollback',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(30),
            writer: (ctx) => tableWriter('items', ctx, { poison: (i) => (i === 15 ? new FatalError('disk on fire') : undefined) }),
            noRollback: [IgnorableWriteError],
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('rollback'), [job]);
      const e = await ns.run('rollback');
      expect(e.status).toBe('FAILED');
      const s = step(e, 'load');
      expect(s.exitStatus.description).toContain('disk on fire');
      expect(counters(s)).toEqual({ ...ZERO, readCount: 20, writeCount: 10, commitCount: 1, rollbackCount: 1 });
      // Items 11..14 were inserted before the error, then rolled back.
      expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(range(1, 10));
    });
  });

  describe('counters', () => {
    it.each([
      { items: 0, commits: 1 },
      { items: 25, commits: 3 },
      { items: 30, commits: 4 },
    ])('$items items in chunks of 10: $commits commits, the one that finds the end of input included', async ({ items, commits }) => {
      const chunks: string[] = [];
      const job = defineJob({
        name: 'commits',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(items),
            writer: (ctx) => tableWriter('items', ctx),
            chunkListeners: [{ afterChunk: (ctx) => void chunks.push(`commits=${ctx.stepExecution.commitCount}`), beforeWrite: (list) => void chunks.push(`write ${list.length}`) }],
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('commits'), [job]);
      const e = await ns.run('commits');
      expect(e.status).toBe('COMPLETED');
      const s = step(e, 'load');
      expect(counters(s)).toEqual({ ...ZERO, readCount: items, writeCount: items, commitCount: commits });
      // The commit that finds the end of input saved the reader's end position.
      expect(s.context['test.pos']).toBe(items);
      // It writes nothing and tells no write listener, but ends a chunk like any other.
      const sizes = range(1, Math.ceil(items / 10)).map((c) => `write ${Math.min(10, items - (c - 1) * 10)}`);
      expect(chunks.filter((x) => x.startsWith('write'))).toEqual(sizes);
      expect(chunks.at(-1)).toBe(`commits=${commits}`);
    });
  });

  describe('filtering', () => {
    it('a processor returning undefined filters the item', async () => {
      const job = defineJob({
        name: 'filter',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(35),
            processor: (item) => (item % 3 === 0 ? undefined : item * 10),
            writer: (ctx) => tableWriter('items', ctx),
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('filter'), [job]);
      const e = await ns.run('filter');
      expect(e.status).toBe('COMPLETED');
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 35, filterCount: 11, writeCount: 24, commitCount: 4 });
      expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(range(1, 35).filter((i) => i % 3 !== 0).map((i) => i * 10));
    });

    it('a chunk of 70000 items with filtered items in it, the last one too, hands the writer its outputs in order, without gaps', async () => {
      const received: number[][] = [];
      const job = defineJob({
        name: 'filter-large',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 70_000,
            reader: () => numbers(70_003),
            // Item 70000, the first chunk's last, is filtered too.
            processor: (item) => (item % 7 === 0 ? undefined : -item),
            writer: () => (items) => void received.push(items),
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('filterlarge'), [job]);
      const e = await ns.run('filter-large');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 70_003, filterCount: 10_000, writeCount: 60_003, commitCount: 2 });
      expect(received.map((items) => [items.length, Object.keys(items).length])).toEqual([[60_000, 60_000], [3, 3]]);
      expect(received.flat()).toEqual(range(1, 70_003).filter((i) => i % 7 !== 0).map((i) => -i));
    });

    it('a reader and a processor that answer at once or later, item by item, keep every chunk whole and in order', async () => {
      const received: number[][] = [];
      let next = 1;
      const job = defineJob({
        name: 'mixed-sync',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 7,
            // Every third item comes through a promise; the rest at once.
            reader: () => ({
              read: () => {
                const item = next <= 40 ? next++ : undefined;
                return item !== undefined && item % 3 === 0 ? Promise.resolve(item) : item;
              },
            }),
            // Items divisible by 4 are filtered, by 5 processed later, the rest at once.
            processor: (item) => (item % 4 === 0 ? undefined : item % 5 === 0 ? Promise.resolve(item * 10) : item * 10),
            writer: () => (items) => void received.push([...items]),
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('mixedsync'), [job]);
      const e = await ns.run('mixed-sync');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      const expected = range(1, 40).map((i) => (i % 4 === 0 ? undefined : i * 10));
      const chunks = Array.from({ length: 6 }, (_, c) => expected.slice(c * 7, c * 7 + 7).filter((v) => v !== undefined));
      expect(received).toEqual(chunks);
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 40, filterCount: 10, writeCount: 30, commitCount: 6 });
    });

    it('a chunk whose items are all filtered still commits its counters', async () => {
      const job = defineJob({
        name: 'filter-all',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 10,
            reader: () => numbers(25),
            processor: () => undefined,
            writer: (ctx) => tableWriter('items', ctx),
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('filterall'), [job]);
      const e = await ns.run('filter-all');
      expect(e.status).toBe('COMPLETED');
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 25, filterCount: 25, commitCount: 3 });
      expect(await countRows(ns.db, 'items')).toEqual({ n: 0, distinct: 0 });
    });
  });
});
