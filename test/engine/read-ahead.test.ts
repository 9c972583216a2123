/**
 * Engine conformance for `readAhead`: the next chunk is read while the previous one commits
 * (PostgreSQL; SQLite ignores the option). Whatever was read ahead, the checkpoint holds the
 * position of the committed chunk: failures, skips, stops and restarts stay exactly-once.
 */
import { describe, expect, it } from 'vitest';
import type { ItemStreamReader } from '../../src/core/items.ts';
import { defineJob } from '../../src/core/job.ts';
import { p } from '../../src/core/params.ts';
import { backends, waitFor } from '../support/backends.ts';
import {
  BadRecordError, FatalError, countRows, counters, range, rowsOf, sleep, step, tableWriter, within,
} from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';

/**
 * The numbers 1..n, read asynchronously (as a file reader waits for its stream). Positions in
 * `bad` throw a skippable BadRecordError, `fatal` a FatalError; both consume the position.
 */
function slowNumbers(n: number, seen: { position: number }, bad: Set<number>, fatal: number): ItemStreamReader<number> {
  let pos = 0;
  return {
    open: (ctx) => void (pos = Number(ctx['test.pos'] ?? 0)),
    async read() {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (pos >= n) return undefined;
      pos++;
      seen.position = pos;
      if (bad.has(pos)) throw new BadRecordError(`bad record at position ${pos}`);
      if (pos === fatal) throw new FatalError(`unreadable at position ${pos}`);
      return pos;
    },
    update: (ctx) => void (ctx['test.pos'] = pos),
  };
}

/** Reads ahead; the writer waits `writeMs` per chunk and records how far the reader had got. */
function readAheadJob(observed: { chunkEnd: number; readerAt: number }[]) {
  const seen = { position: 0 };
  return defineJob({
    name: 'ahead',
    params: {
      items: p.int({ default: 50 }),
      failAt: p.int({ default: 0, identifying: false }),
      fatalAt: p.int({ default: 0, identifying: false }),
      bad: p.string({ default: '', identifying: false }),
      writeMs: p.int({ default: 0, identifying: false }),
    },
    steps: (s) => [
      s.chunk<number, number>({
        name: 'load',
        chunkSize: 10,
        readAhead: true,
        reader: ({ params, executionNumber }) =>
          slowNumbers(params.items, seen, new Set(params.bad.split(',').filter(Boolean).map(Number)), executionNumber === 1 ? params.fatalAt : 0),
        processor: (item, { params, executionNumber }) => {
          if (item === params.failAt && executionNumber === 1) throw new Error(`boom at item ${item}`);
          return item;
        },
        writer: (ctx) => {
          const rows = tableWriter('ahead_items', ctx);
          return {
            ...rows,
            async write(items, chunk) {
              await rows.write(items, chunk);
              if (ctx.params.writeMs > 0) await sleep(ctx.params.writeMs);
              observed.push({ chunkEnd: items[items.length - 1], readerAt: seen.position });
            },
          };
        },
        skip: { limit: 3, on: [BadRecordError] },
      }),
    ],
  });
}

describe.each(backends())('read-ahead ($name)', (backend) => {
  const pool = suiteInstances(backend);

  it('reads the next chunk during the commit on PostgreSQL only, and writes every item once', async () => {
    const observed: { chunkEnd: number; readerAt: number }[] = [];
    const ns = await pool.create(backend.freshUrl('ahead'), [readAheadJob(observed)]);
    const e = await ns.run('ahead', { items: 50, writeMs: 20 });
    expect(e.status).toBe('COMPLETED');
    // Five chunks, and the commit of the sixth that finds the end of input (as Spring Batch counts).
    expect(counters(step(e, 'load'))).toMatchObject({ readCount: 50, writeCount: 50, commitCount: 6, rollbackCount: 0 });
    expect((await rowsOf(ns.db, 'ahead_items')).map((r) => r.item)).toEqual(range(1, 50));
    const aheadOfWrites = observed.filter((o) => o.readerAt > o.chunkEnd).length;
    if (backend.name === 'postgres') expect(aheadOfWrites).toBeGreaterThan(0);
    else expect(aheadOfWrites).toBe(0);
  });

  it('a failed chunk with a chunk read ahead: the restart resumes after the last commit, exactly once', async () => {
    const ns = await pool.create(backend.freshUrl('ahead-fail'), [readAheadJob([])]);
    const first = await ns.run('ahead', { items: 50, failAt: 27, writeMs: 5 });
    expect(first.status).toBe('FAILED');
    expect(first.exitStatus.description).toContain('boom at item 27');
    const s1 = step(first, 'load');
    // The failed chunk counts its reads; the chunk read ahead of it does not.
    expect(counters(s1)).toMatchObject({ readCount: 30, writeCount: 20, commitCount: 2, rollbackCount: 1 });
    expect((await rowsOf(ns.db, 'ahead_items')).map((r) => r.item)).toEqual(range(1, 20));

    const second = await ns.restart(first.id);
    expect(second.status).toBe('COMPLETED');
    expect(counters(step(second, 'load'))).toMatchObject({ readCount: 30, writeCount: 30, commitCount: 4 });
    expect(await countRows(ns.db, 'ahead_items')).toEqual({ n: 50, distinct: 50 });
  });

  it('a fatal read error while reading ahead fails the step after the chunk before it committed', async () => {
    const ns = await pool.create(backend.freshUrl('ahead-fatal'), [readAheadJob([])]);
    const first = await ns.run('ahead', { items: 50, fatalAt: 35, writeMs: 5 });
    expect(first.status).toBe('FAILED');
    expect(first.exitStatus.description).toContain('unreadable at position 35');
    // The chunk whose read failed counts the items it read (31..34).
    expect(counters(step(first, 'load'))).toMatchObject({ readCount: 34, writeCount: 30, commitCount: 3, rollbackCount: 1 });
    expect((await rowsOf(ns.db, 'ahead_items')).map((r) => r.item)).toEqual(range(1, 30));
    // Position 35 is unreadable in the first execution only: the restart reads on from 31.
    const second = await ns.restart(first.id);
    expect(second.status).toBe('COMPLETED');
    expect(await countRows(ns.db, 'ahead_items')).toEqual({ n: 50, distinct: 50 });
  });

  it('counts read skips in the chunk they belong to, and enforces the limit across chunks in flight', async () => {
    const ns = await pool.create(backend.freshUrl('ahead-skip'), [readAheadJob([])]);
    const ok = await ns.run('ahead', { items: 50, bad: '4,15,16', writeMs: 5 });
    expect(ok.status).toBe('COMPLETED');
    const s = step(ok, 'load');
    expect(counters(s)).toMatchObject({ readCount: 47, readSkipCount: 3, writeCount: 47 });
    expect((await rowsOf(ns.db, 'ahead_items')).map((r) => r.item)).toEqual(range(1, 50).filter((i) => ![4, 15, 16].includes(i)));

    const ns2 = await pool.create(backend.freshUrl('ahead-skip-limit'), [readAheadJob([])]);
    const over = await ns2.run('ahead', { items: 50, bad: '9,12,13,14', writeMs: 5 });
    expect(over.status).toBe('FAILED');
    expect(over.exitStatus.description).toMatch(/skip limit/i);
    // The first chunk (positions 1..11, skipping 9) committed; the one over the limit (12..14) did
    // not, but its two skips before the limit count.
    expect(counters(step(over, 'load'))).toMatchObject({ readCount: 10, readSkipCount: 3, writeCount: 10, commitCount: 1 });
    expect((await rowsOf(ns2.db, 'ahead_items')).map((r) => r.item)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 10, 11]);
  });

  it('stops with a chunk read ahead, and the restart writes the rest exactly once', async () => {
    const ns = await pool.create(backend.freshUrl('ahead-stop'), [readAheadJob([])]);
    const { execution, done } = await ns.start('ahead', { items: 200, writeMs: 20 });
    await waitFor(async () => (await ns.getExecution(execution.id))?.steps[0]?.commitCount, 10_000, 'a committed chunk');
    await ns.stop(execution.id);
    const stopped = await within(done, 10_000, 'the stopped execution to end');
    expect(stopped.status).toBe('STOPPED');
    const s1 = step(stopped, 'load');
    expect(s1.readCount).toBeLessThan(200);
    expect((await rowsOf(ns.db, 'ahead_items')).map((r) => r.item)).toEqual(range(1, s1.writeCount));
    const second = await ns.restart(stopped.id);
    expect(second.status).toBe('COMPLETED');
    expect(s1.readCount + step(second, 'load').readCount).toBe(200);
    expect(await countRows(ns.db, 'ahead_items')).toEqual({ n: 200, distinct: 200 });
  });
});
