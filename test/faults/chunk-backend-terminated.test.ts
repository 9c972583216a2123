/**
 * The chunk transaction's real PostgreSQL backend is terminated (`pg_terminate_backend`): once
 * in the middle of a chunk, and once while its COMMIT is in progress (held there by a deferred
 * constraint trigger), so the "did the commit land?" path runs. The step reconnects, asks its
 * committed checkpoint, writes the chunk again, and every item is written exactly once.
 * (A full server restart stays in the chaos script: test/cluster/pg-restart.test.ts.)
 */
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { createNightshift } from '../../src/operator.ts';
import { defineJob, p, rangeReader, sqlWriter, ensureTable } from '../../src/index.ts';
import { admin } from '../support/pg-admin.ts';
import { waitFor } from '../support/backends.ts';
import { exactlyOnce, pgBackend } from '../cluster/helpers.ts';

const backend = pgBackend();
afterAll(() => backend.cleanup());

const ITEMS = 200;
const CHUNK = 10;

/** `count`-like; on item `killAt` (first attempt only) it terminates its own transaction's backend. */
const job = defineJob({
  name: 'terminated',
  params: { killAt: p.int({ default: 0 }) },
  steps: (s) => [
    s.chunk<number>({
      name: 'write',
      chunkSize: CHUNK,
      reader: () => rangeReader(1, ITEMS),
      writer: ({ db, params }) => {
        let killed = false;
        const rows = sqlWriter<number>({ table: 'count_items', columns: ['tag', 'item', 'execution_id'], values: (item, chunk) => ['t', item, chunk.jobExecutionId] });
        return {
          open: () => ensureTable(db, 'CREATE TABLE IF NOT EXISTS count_items (tag TEXT NOT NULL, item INTEGER NOT NULL, execution_id BIGINT NOT NULL)'),
          async write(items, chunk) {
            await rows.write(items, chunk);
            if (!killed && params.killAt > 0 && items.includes(params.killAt)) {
              killed = true;
              const [{ pid }] = await chunk.tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
              await admin((c) => c.query('SELECT pg_terminate_backend($1)', [pid]));
            }
          },
        };
      },
    }),
  ],
});

function capture() {
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk)), cb()) }));
  return { logger, lines };
}

describe('the chunk transaction\'s backend terminated (postgres)', () => {
  it('in the middle of a chunk: the chunk is written again, every item once', async () => {
    const url = backend.freshUrl('chunkkill');
    const { logger, lines } = capture();
    const ns = await createNightshift({ db: url, jobs: [job], logger });
    try {
      const e = await ns.run('terminated', { killAt: 55 });
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect(await exactlyOnce(ns.db, 't', ITEMS)).toMatchObject({ ok: true });
      expect(lines.join('')).toMatch(/during a commit/);
    } finally {
      await ns.close();
    }
  });

  it('while its COMMIT runs: the outcome is unknown, the committed checkpoint decides, every item once', async () => {
    const app = `nsck_${process.pid}_${Date.now().toString(36)}`;
    const url = `${backend.freshUrl('commitkill')}&application_name=${app}`;
    const { logger, lines } = capture();
    const ns = await createNightshift({ db: url, jobs: [job], logger });
    try {
      // A deferred constraint trigger holds the COMMIT of the chunk holding item 95 (once: while armed).
      await ns.db.exec(`CREATE TABLE count_items (tag TEXT NOT NULL, item INTEGER NOT NULL, execution_id BIGINT NOT NULL);
        CREATE TABLE armed (item INTEGER);
        INSERT INTO armed VALUES (95);
        CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN IF EXISTS (SELECT 1 FROM armed WHERE item = NEW.item) THEN PERFORM pg_sleep(30); END IF; RETURN NULL; END $$;
        CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON count_items DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW EXECUTE FUNCTION hold_commit();`);
      const run = ns.run('terminated');
      const pid = await waitFor(async () => {
        const rows = await ns.db.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'PgSleep' AND query ILIKE '%COMMIT%'`, [app]);
        return rows[0]?.pid;
      }, 30_000, 'the chunk COMMIT held by the trigger');
      await ns.db.exec('DELETE FROM armed');
      expect(await admin(async (c) => (await c.query('SELECT pg_terminate_backend($1) AS ok', [pid])).rows[0].ok)).toBe(true);
      const e = await run;
      expect(e.status, e.exitStatus.description).toBe('COMPLETED');
      expect(await exactlyOnce(ns.db, 't', ITEMS)).toMatchObject({ ok: true });
      expect(e.steps[0].writeCount).toBe(ITEMS);
      expect(lines.join('')).toMatch(/during a commit/);
    } finally {
      await ns.close();
    }
  });
});
