/**
 * Engine conformance: the policy hooks of chunk steps. A skip policy function that sees each
 * error with its phase, item and the step's skip count so far (like Spring Batch's SkipPolicy),
 * alone or with a limit; retry listeners told before each retry and when the retries are
 * exhausted (like Spring Batch's RetryListener), for process and write retries. Runs unchanged
 * on SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.ts';
import { defineJob, type RetryEvent, type RetryListener, type RetryPolicy, type SkipPolicy, type SkipQuery } from '../../src/core/job.ts';
import { backends } from '../support/backends.ts';
import {
  BadRecordError, PoisonError, TransientError, counters, numbers, range, rowsOf, step, tableWriter, thrown, ZERO,
} from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';

/**
 * 30 positions, chunks of 10: positions 4 and 17 are unreadable, items 9 and 27 cannot be
 * processed, item 25 cannot be written (its chunk is then written item by item).
 */
function skippy(skip: SkipPolicy) {
  return defineJob({
    name: 'skippy',
    steps: (s) => [
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
      }),
    ],
  });
}

const ALL_BAD = range(1, 30).filter((i) => ![4, 17, 9, 27, 25].includes(i));

/** A query as the test records it: the error by class and message. */
const seen = (q: SkipQuery) => ({ phase: q.phase, item: q.item, skipCount: q.skipCount, error: `${(q.error as Error).name}: ${(q.error as Error).message}` });

/** Items 1..20 in chunks of 10; item 5's processing fails `failures` times with a TransientError. */
function retrying(retry: RetryPolicy, failures: number, attempts: number[] = [], skip?: SkipPolicy) {
  return defineJob({
    name: 'retrying',
    steps: (s) => [
      s.chunk<number, number>({
        name: 'load',
        chunkSize: 10,
        reader: () => numbers(20),
        processor: (item) => {
          if (item === 5) {
            attempts.push(Date.now());
            if (attempts.length <= failures) throw new TransientError(`failure ${attempts.length} of item 5`);
          }
          return item;
        },
        writer: (ctx) => tableWriter('items', ctx),
        retry,
        skip,
      }),
    ],
  });
}

/** An event as the test records it. */
const told = (what: string, e: RetryEvent) => `${what} ${e.phase} attempt ${e.attempt} ${e.item ?? `[${e.items?.join(',')}]`}: ${(e.error as Error).message}`;

/** A retry listener recording what it is told into `events`. */
const recorder = (events: string[]): RetryListener => ({
  onRetry: (e) => void events.push(told('retry', e)),
  onRetryExhausted: (e) => void events.push(told('exhausted', e)),
});

describe.each(backends())('engine policy hooks ($name)', (backend) => {
  const pool = suiteInstances(backend);

  describe('skip policy function', () => {
    it('sees every error with its phase, item and the skip count so far; with no limit, it alone decides', async () => {
      const queries: ReturnType<typeof seen>[] = [];
      const ns = await pool.create(backend.freshUrl('policy'), [skippy({ on: [BadRecordError, PoisonError], policy: (q) => (queries.push(seen(q)), true) })]);
      const e = await ns.run('skippy');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect(queries).toEqual([
        { phase: 'read', item: undefined, skipCount: 0, error: 'BadRecordError: bad record at position 4' },
        { phase: 'process', item: 9, skipCount: 1, error: 'PoisonError: cannot process 9' },
        { phase: 'read', item: undefined, skipCount: 2, error: 'BadRecordError: bad record at position 17' },
        { phase: 'process', item: 27, skipCount: 3, error: 'PoisonError: cannot process 27' },
        { phase: 'write', item: 25, skipCount: 4, error: 'BadRecordError: cannot write 25' },
      ]);
      expect(counters(step(e, 'load'))).toEqual({
        ...ZERO, readCount: 28, readSkipCount: 2, processSkipCount: 2, writeSkipCount: 1, writeCount: 25, commitCount: 8, rollbackCount: 2,
      });
      expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(ALL_BAD);
    });

    it('is asked only about errors `on` and `never` allow', async () => {
      const queries: ReturnType<typeof seen>[] = [];
      const ns = await pool.create(backend.freshUrl('policyon'), [skippy({ on: [PoisonError], policy: (q) => (queries.push(seen(q)), true) })]);
      const e = await ns.run('skippy');
      // The unreadable position 4 is not skippable: the policy never hears of it.
      expect(e.status).toBe('FAILED');
      expect(step(e, 'load').exitStatus.description).toContain('bad record at position 4');
      expect(queries).toEqual([]);
    });

    it('refusing by the skip count: the error it refuses fails the step as itself, not as a skip limit', async () => {
      const ns = await pool.create(backend.freshUrl('policycount'), [skippy({ on: [BadRecordError, PoisonError], policy: ({ skipCount }) => skipCount < 2 })]);
      const e = await ns.run('skippy');
      expect(e.status).toBe('FAILED');
      const s = step(e, 'load');
      expect(s.exitStatus.description).toBe('bad record at position 17');
      // Chunk 1 (10 items read past position 4, item 9 skipped) committed; chunk 2 failed when
      // it came to position 17, after reading 12..16.
      expect(counters(s)).toEqual({ ...ZERO, readCount: 10 + 5, readSkipCount: 1, processSkipCount: 1, writeCount: 9, commitCount: 1, rollbackCount: 1 });
    });

    it('refusing a phase: a write error it refuses fails the step after the items before it were written one by one', async () => {
      const ns = await pool.create(backend.freshUrl('policyphase'), [skippy({ on: [BadRecordError, PoisonError], policy: ({ phase }) => phase !== 'write' })]);
      const e = await ns.run('skippy');
      expect(e.status).toBe('FAILED');
      expect(step(e, 'load').exitStatus.description).toBe('cannot write 25');
      expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(ALL_BAD.filter((i) => i < 25));
    });

    it('with a limit too: a skip the policy accepts still counts against the limit', async () => {
      const ns = await pool.create(backend.freshUrl('policylimit'), [skippy({ on: [BadRecordError, PoisonError], limit: 1, policy: () => true })]);
      const e = await ns.run('skippy');
      expect(e.status).toBe('FAILED');
      expect(step(e, 'load').exitStatus.description).toBe('skip limit 1 exceeded in process: process of item 9: cannot process 9');
    });

    it.each([
      { answer: 'a promise', policy: () => Promise.resolve(true) as unknown as boolean },
      { answer: '"yes"', policy: () => 'yes' as unknown as boolean },
    ])('a policy answering $answer fails the step naming what it got', async ({ answer, policy }) => {
      const ns = await pool.create(backend.freshUrl('policybad'), [skippy({ on: [BadRecordError, PoisonError], policy })]);
      const e = await ns.run('skippy');
      expect(e.status).toBe('FAILED');
      expect(step(e, 'load').exitStatus.description).toBe(`the skip policy function must return true or false, got ${answer}`);
    });

    it('a policy that throws fails the step with its error', async () => {
      const ns = await pool.create(backend.freshUrl('policythrows'), [
        skippy({ on: [BadRecordError, PoisonError], policy: () => { throw new Error('policy service down'); } }),
      ]);
      const e = await ns.run('skippy');
      expect(e.status).toBe('FAILED');
      expect(step(e, 'load').exitStatus.description).toBe('policy service down');
      expect(counters(step(e, 'load'))).toMatchObject({ writeCount: 0, rollbackCount: 1 });
    });
  });

  describe('retry listeners', () => {
    it('a process retry that succeeds: onRetry before each retry, no onRetryExhausted', async () => {
      const events: string[] = [];
      const ns = await pool.create(backend.freshUrl('retryok'), [retrying({ on: [TransientError], limit: 3, listeners: [recorder(events)] }, 2)]);
      const e = await ns.run('retrying');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect(events).toEqual(['retry process attempt 1 5: failure 1 of item 5', 'retry process attempt 2 5: failure 2 of item 5']);
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 20, writeCount: 20, commitCount: 3 });
    });

    it('process retries exhausted: onRetryExhausted with the last attempt, then the item is skipped', async () => {
      const events: string[] = [];
      const retry: RetryPolicy = {
        on: [TransientError],
        limit: 3,
        // Two listeners, each told what it listens to.
        listeners: [{ onRetry: recorder(events).onRetry }, { onRetryExhausted: recorder(events).onRetryExhausted }],
      };
      const ns = await pool.create(backend.freshUrl('retryexhausted'), [retrying(retry, 99, [], { on: [TransientError], limit: 1 })]);
      const e = await ns.run('retrying');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect(events).toEqual([
        'retry process attempt 1 5: failure 1 of item 5',
        'retry process attempt 2 5: failure 2 of item 5',
        'exhausted process attempt 3 5: failure 3 of item 5',
      ]);
      expect(counters(step(e, 'load'))).toMatchObject({ processSkipCount: 1, writeCount: 19 });
    });

    it('onRetry is told before the backoff wait, and awaited', async () => {
      const attempts: number[] = [];
      const toldAt: number[] = [];
      const retry: RetryPolicy = {
        on: [TransientError],
        limit: 2,
        backoff: { initialMs: 60 },
        listeners: [{ onRetry: async () => { toldAt.push(Date.now()); await new Promise((r) => setTimeout(r, 30)); toldAt.push(Date.now()); } }],
      };
      const ns = await pool.create(backend.freshUrl('retrybackoff'), [retrying(retry, 1, attempts)]);
      expect((await ns.run('retrying')).status).toBe('COMPLETED');
      const [first, second] = attempts;
      const [heard, done] = toldAt;
      expect(heard).toBeGreaterThanOrEqual(first);
      // The retry waited for the listener, then for the backoff.
      expect(second - done).toBeGreaterThanOrEqual(55);
      expect(second - heard).toBeGreaterThanOrEqual(85);
    });

    it('a retry listener that throws fails the step with its error', async () => {
      const retry: RetryPolicy = { on: [TransientError], limit: 3, listeners: [{ onRetry: () => { throw new Error('alerting is down'); } }] };
      const attempts: number[] = [];
      const ns = await pool.create(backend.freshUrl('retrythrows'), [retrying(retry, 2, attempts, { on: [TransientError], limit: 5 })]);
      const e = await ns.run('retrying');
      expect(e.status).toBe('FAILED');
      expect(step(e, 'load').exitStatus.description).toBe('alerting is down');
      expect(attempts).toHaveLength(1);
    });

    it('an error the policy does not retry tells no retry listener', async () => {
      const events: string[] = [];
      const retry: RetryPolicy = { on: [BadRecordError], limit: 3, listeners: [recorder(events)] };
      const ns = await pool.create(backend.freshUrl('retrynot'), [retrying(retry, 1, [], { on: [TransientError], limit: 1 })]);
      const e = await ns.run('retrying');
      expect(e.status).toBe('COMPLETED');
      expect(events).toEqual([]);
      expect(counters(step(e, 'load'))).toMatchObject({ processSkipCount: 1 });
    });

    it('write retries: onRetry with the chunk\'s items, onRetryExhausted before the chunk is written item by item', async () => {
      const events: string[] = [];
      let failures = 0;
      const job = defineJob({
        name: 'write-retry',
        steps: (s) => [
          s.chunk<number, number>({
            name: 'load',
            chunkSize: 5,
            reader: () => numbers(15),
            processor: (item) => item * 10,
            // Chunk 10..50 fails once; item 120 always fails (retried, then skipped item by item).
            writer: (ctx) => tableWriter('items', ctx, {
              poison: (i) => (i === 30 && failures++ === 0 ? new TransientError('deadlock') : i === 120 ? new TransientError('bad row 120') : undefined),
            }),
            retry: { on: [TransientError], limit: 2, listeners: [recorder(events)] },
            skip: { on: [TransientError], limit: 1 },
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('writeretry'), [job]);
      const e = await ns.run('write-retry');
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect(events).toEqual([
        'retry write attempt 1 [10,20,30,40,50]: deadlock',
        'retry write attempt 1 [110,120,130,140,150]: bad row 120',
        'exhausted write attempt 2 [110,120,130,140,150]: bad row 120',
      ]);
      expect((await rowsOf(ns.db, 'items')).map((r) => r.item)).toEqual(range(1, 15).filter((i) => i !== 12).map((i) => i * 10));
      expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 15, writeCount: 14, writeSkipCount: 1, commitCount: 2 + 4 + 1, rollbackCount: 4 });
    });
  });
});

describe('policy hooks definition validation', () => {
  const chunk = { chunkSize: 1, reader: () => numbers(1), writer: () => () => undefined };

  it.each([
    [{ skip: { on: [PoisonError] } as unknown as SkipPolicy }, 'step c: skip needs a limit or a policy function'],
    [{ skip: { limit: 1, policy: 'always' } as unknown as SkipPolicy }, 'step c: skip policy must be a function'],
    [{ retry: { on: [TransientError], limit: 2, listeners: {} } as unknown as RetryPolicy }, 'step c: retry listeners must be an array'],
  ])('refuses %j', (options, message) => {
    const err = thrown(() => defineJob({ name: 'j', steps: (s) => [s.chunk<number, number>({ name: 'c', ...chunk, ...options })] }));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain(message);
  });
});
