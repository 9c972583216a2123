/**
 * Engine conformance: a transaction whose COMMIT itself is refused (not a lost connection): a
 * deferred foreign key that the chunk violates, checked only at COMMIT, on SQLite and on
 * PostgreSQL alike. The step's ExecutionContext in memory must stay at the last commit that
 * went through, so the failed step saves it, and a restart writes every item exactly once: for
 * a chunk, for a chunk written item by item, for a tasklet, and for a partition.
 */
import { describe, expect, it } from 'vitest';
import type { ChunkContext, ItemStreamWriter } from '../../src/core/items.ts';
import { defineJob, type StepContext } from '../../src/core/job.ts';
import { backends } from '../support/backends.ts';
import { BadRecordError, counters, numbers, range, step, ZERO } from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';
import type { SqlClient } from '../../src/repository/tx.ts';

// Each child row names a parent; the foreign key is checked only when the transaction commits.
const DDL = `
  CREATE TABLE IF NOT EXISTS parents (id INTEGER PRIMARY KEY);
  CREATE TABLE IF NOT EXISTS children (
    item INTEGER NOT NULL,
    parent INTEGER NOT NULL REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED,
    execution_id BIGINT NOT NULL
  );`;

const isForeignKeyError = (e: unknown) => /foreign key/i.test(String((e as Error)?.message));

async function setUp(db: SqlClient, parents: number[]): Promise<void> {
  await db.exec(DDL);
  for (const id of parents) await db.execute('INSERT INTO parents (id) VALUES ($1)', [id]);
}

/** Inserts each item as a child of `parentOf(item)`; `poison` items fail in write() itself. */
function childWriter(
  ctx: StepContext<unknown>,
  parentOf: (item: number) => number,
  poison: (item: number) => Error | undefined = () => undefined,
): ItemStreamWriter<number> {
  return {
    async write(items: number[], chunk: ChunkContext) {
      for (const item of items) {
        const error = poison(item);
        if (error) throw error;
        await chunk.tx.execute('INSERT INTO children (item, parent, execution_id) VALUES ($1, $2, $3)', [item, parentOf(item), ctx.jobExecution.id]);
      }
    },
  };
}

async function children(db: SqlClient): Promise<{ items: number[]; byExecution: Map<number, number[]> }> {
  const rows = await db.query<Record<string, unknown>>('SELECT item, execution_id FROM children ORDER BY item, execution_id');
  const byExecution = new Map<number, number[]>();
  for (const r of rows) {
    const e = Number(r.execution_id);
    byExecution.set(e, [...(byExecution.get(e) ?? []), Number(r.item)]);
  }
  return { items: rows.map((r) => Number(r.item)), byExecution };
}

describe.each(backends())('a COMMIT the database refuses ($name)', (backend) => {
  const pool = suiteInstances(backend);

  it('fails the step with the reader position of the last commit that went through; the restart writes the refused chunk, every item once', async () => {
    const chunkErrors: string[] = [];
    const job = defineJob({
      name: 'refused',
      steps: (s) => [
        s.chunk<number, number>({
          name: 'load',
          chunkSize: 10,
          reader: () => numbers(30),
          // Chunk 11..20 names parent 2, missing until the test adds it.
          writer: (ctx) => childWriter(ctx, (i) => Math.ceil(i / 10)),
          chunkListeners: [{ onChunkError: (_ctx, e) => void chunkErrors.push(isForeignKeyError(e) ? 'fk' : String(e)) }],
        }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('refused'), [job]);
    await setUp(ns.db, [1, 3]);
    const e1 = await ns.run('refused');
    expect(e1.status).toBe('FAILED');
    const s1 = step(e1, 'load');
    expect(isForeignKeyError({ message: s1.exitStatus.description }), s1.exitStatus.description).toBe(true);
    // What the failed step saved is where the restart begins: after chunk 1..10, not after 11..20.
    expect(s1.context['test.pos']).toBe(10);
    expect(counters(s1)).toEqual({ ...ZERO, readCount: 20, writeCount: 10, commitCount: 1, rollbackCount: 1 });
    expect(chunkErrors).toEqual(['fk']);
    expect((await children(ns.db)).items).toEqual(range(1, 10));

    await ns.db.execute('INSERT INTO parents (id) VALUES (2)');
    const e2 = await ns.restart(e1.id);
    expect(e2.status, e2.exitStatus.description).toBe('COMPLETED');
    const rows = await children(ns.db);
    expect(rows.items).toEqual(range(1, 30));
    expect(rows.byExecution.get(e2.id)).toEqual(range(11, 30));
  });

  it('a COMMIT refused while a chunk is written item by item: the restart writes on from the refused item, none twice', async () => {
    const job = defineJob({
      name: 'refused-scan',
      steps: (s) => [
        s.chunk<number, number>({
          name: 'load',
          chunkSize: 10,
          reader: () => numbers(20),
          // Item 13 cannot be written (a skip: the chunk is written item by item); item 17 names
          // parent 2, missing in the first execution, so its own COMMIT is refused.
          writer: (ctx) => childWriter(ctx, (i) => (i === 17 ? 2 : 1), (i) => (i === 13 ? new BadRecordError('cannot write 13') : undefined)),
          skip: { on: [BadRecordError], limit: 5 },
        }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('refusedscan'), [job]);
    await setUp(ns.db, [1]);
    const e1 = await ns.run('refused-scan');
    expect(e1.status).toBe('FAILED');
    const s1 = step(e1, 'load');
    expect(isForeignKeyError({ message: s1.exitStatus.description }), s1.exitStatus.description).toBe(true);
    // Items 11, 12, 14, 15, 16 committed one by one (13 skipped); 17 was refused.
    expect(s1.context['ns.scan']).toEqual({ size: 10, done: 6 });
    expect((await children(ns.db)).items).toEqual([...range(1, 12), 14, 15, 16]);

    await ns.db.execute('INSERT INTO parents (id) VALUES (2)');
    const e2 = await ns.restart(e1.id);
    expect(e2.status, e2.exitStatus.description).toBe('COMPLETED');
    const rows = await children(ns.db);
    expect(rows.items).toEqual(range(1, 20).filter((i) => i !== 13));
    expect(rows.byExecution.get(e2.id)).toEqual([17, 18, 19, 20]);
  });

  it('a COMMIT refused is a write error like any other: a skippable one is isolated item by item and skipped', async () => {
    const skipped: unknown[] = [];
    const chunkErrors: string[] = [];
    const job = defineJob({
      name: 'refused-skip',
      steps: (s) => [
        s.chunk<number, number>({
          name: 'load',
          chunkSize: 10,
          reader: () => numbers(30),
          writer: (ctx) => childWriter(ctx, (i) => (i === 15 ? 2 : 1)),
          skip: { on: [isForeignKeyError], limit: 1 },
          chunkListeners: [
            { onSkip: (skip) => void skipped.push(skip.item), onChunkError: (_ctx, e) => void chunkErrors.push(isForeignKeyError(e) ? 'fk' : String(e)) },
          ],
        }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('refusedskip'), [job]);
    await setUp(ns.db, [1]);
    const e = await ns.run('refused-skip');
    expect(e.status, e.exitStatus.description).toBe('COMPLETED');
    expect((await children(ns.db)).items).toEqual(range(1, 30).filter((i) => i !== 15));
    expect(skipped).toEqual([15]);
    // The chunk's rollback and item 15's own, each told to onChunkError.
    expect(chunkErrors).toEqual(['fk', 'fk']);
    expect(counters(step(e, 'load'))).toEqual({ ...ZERO, readCount: 30, writeCount: 29, writeSkipCount: 1, commitCount: 12, rollbackCount: 2 });
  });

  it('a tasklet whose COMMIT is refused keeps the step context of its last commit; the restart does that call again', async () => {
    const calls: number[] = [];
    const job = defineJob({
      name: 'refused-tasklet',
      steps: (s) => [
        s.tasklet({
          name: 'pages',
          tasklet: async ({ tx, stepContext, jobExecution }) => {
            const page = Number(stepContext.page ?? 0) + 1;
            calls.push(page);
            await tx.execute('INSERT INTO children (item, parent, execution_id) VALUES ($1, $2, $3)', [page, page, jobExecution.id]);
            stepContext.page = page;
            return page < 3 ? 'CONTINUABLE' : 'FINISHED';
          },
        }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('refusedtasklet'), [job]);
    await setUp(ns.db, [1, 3]);
    const e1 = await ns.run('refused-tasklet');
    expect(e1.status).toBe('FAILED');
    const s1 = step(e1, 'pages');
    expect(s1.context.page).toBe(1);
    expect(s1).toMatchObject({ commitCount: 1, rollbackCount: 1 });

    await ns.db.execute('INSERT INTO parents (id) VALUES (2)');
    const e2 = await ns.restart(e1.id);
    expect(e2.status, e2.exitStatus.description).toBe('COMPLETED');
    expect(calls).toEqual([1, 2, 2, 3]);
    expect((await children(ns.db)).items).toEqual([1, 2, 3]);
    expect(step(e2, 'pages').context.page).toBe(3);
  });

  it('a partition whose COMMIT is refused saves its last committed position; the restart writes its items once', async () => {
    const job = defineJob({
      name: 'refused-partitions',
      steps: (s) => [
        s.partitioned({
          name: 'load',
          mode: 'local',
          partitioner: () => [{ from: 1, to: 30 }, { from: 31, to: 60 }],
          worker: s.chunk<number, number>({
            name: 'load-range',
            chunkSize: 10,
            reader: ({ stepContext }) => numbers(Number(stepContext.to) - Number(stepContext.from) + 1),
            processor: (n, { stepContext }) => n + Number(stepContext.from) - 1,
            // Items 41..50 name parent 2, missing in the first execution.
            writer: (ctx) => childWriter(ctx, (i) => (i > 40 && i <= 50 ? 2 : 1)),
          }),
        }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('refusedpart'), [job]);
    await setUp(ns.db, [1]);
    const e1 = await ns.run('refused-partitions');
    expect(e1.status).toBe('FAILED');
    const failed = e1.steps.find((p) => p.stepName === 'load:partition1')!;
    expect(failed.status).toBe('FAILED');
    expect(failed.context['test.pos']).toBe(10);
    expect((await children(ns.db)).items).toEqual(range(1, 40));

    await ns.db.execute('INSERT INTO parents (id) VALUES (2)');
    const e2 = await ns.restart(e1.id);
    expect(e2.status, e2.exitStatus.description).toBe('COMPLETED');
    const rows = await children(ns.db);
    expect(rows.items).toEqual(range(1, 60));
    expect(rows.byExecution.get(e2.id)).toEqual(range(41, 60));
  });
});
