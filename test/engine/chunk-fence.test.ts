/**
 * Engine conformance: a chunk commits only while its node still owns the execution. Ownership is
 * proven in the chunk's own transaction (on PostgreSQL by the checkpoint statement that goes
 * out with the COMMIT), so a takeover that lands while a chunk is being written rolls the whole
 * chunk back, its rows and its checkpoint alike. Runs unchanged on SQLite and PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { defineJob } from '../../src/core/job.ts';
import type { ItemStreamWriter } from '../../src/core/items.ts';
import { ensureTable } from '../../src/items/ensure-table.ts';
import { rangeReader } from '../../src/items/range-reader.ts';
import { sqlWriter } from '../../src/items/sql-writer.ts';
import type { Nightshift } from '../../src/operator.ts';
import { backends } from '../support/backends.ts';
import { step } from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';

describe.each(backends())('chunk fence ($name)', (backend) => {
  const pool = suiteInstances(backend);

  it('a chunk whose execution is taken over while it is written commits none of it', async () => {
    const ref: { ns?: Nightshift } = {};
    const rows = sqlWriter<number>({ table: 'fenced_items', columns: ['item'], values: (item) => [item] });
    const writer = (): ItemStreamWriter<number> => ({
      open: () => ensureTable(ref.ns!.db, 'CREATE TABLE IF NOT EXISTS fenced_items (item INTEGER NOT NULL)'),
      async write(items, chunk) {
        await rows.write(items, chunk);
        if (items[0] !== 21) return;
        // Another node takes the execution over: a new epoch. On SQLite that write has to go
        // through this transaction, which holds the database's only write lock.
        const other = backend.name === 'sqlite' ? chunk.tx : ref.ns!.db;
        await other.execute('UPDATE ns_job_execution SET owner_epoch = owner_epoch + 1 WHERE id = $1', [chunk.jobExecutionId]);
      },
    });
    const job = defineJob({
      name: 'fenced',
      steps: (s) => [s.chunk<number>({ name: 'only', chunkSize: 10, reader: () => rangeReader(1, 40), writer })],
    });
    ref.ns = await pool.create(backend.freshUrl('fenced'), [job]);
    const e = await ref.ns.run('fenced');

    // This node stopped at the takeover: it recorded no end, and its execution is not FAILED.
    expect(e.status).toBe('STARTED');
    expect(e.endTime).toBeNull();
    expect(step(e, 'only')).toMatchObject({ status: 'STARTED', commitCount: 2, readCount: 20, writeCount: 20, rollbackCount: 0 });
    expect(JSON.parse(JSON.stringify(step(e, 'only').context))).toMatchObject({ 'range.next': 21 });
    const written = await ref.ns.db.query<{ item: number }>('SELECT item FROM fenced_items ORDER BY item');
    expect(written.map((r) => Number(r.item))).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});
