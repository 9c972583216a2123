/**
 * The README's "Writing to another database or an external service" example, run through the
 * CLI in real processes that kill themselves (SIGKILL) at the worst moments: after the chunk's
 * upserts reached the second database but before its checkpoint committed, and after an
 * outbox event reached the service but before it was marked sent. After the restarts, every
 * order is in the second database once and every event in the service once, though both were
 * written more than once; the outbox, written in the chunk's transaction, holds each event once.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Sqlite from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/repository/open.ts';
import { backends } from '../support/backends.ts';
import { CLI, ROOT } from '../support/node-procs.ts';

const CONFIG = join(ROOT, 'examples/external-writes/nightshift.config.ts');
const run = promisify(execFile);

interface Ended {
  code: number | null;
  signal: string | null;
  stdout: string;
}

async function nightshift(args: string[], db: string, cwd: string): Promise<Ended> {
  try {
    const { stdout } = await run(process.execPath, [CLI, ...args, '--config', CONFIG, '--db', db], { cwd, env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'silent' } });
    return { code: 0, signal: null, stdout };
  } catch (err) {
    const e = err as { code: number | null; signal: string | null; stdout: string };
    return { code: e.code, signal: e.signal, stdout: e.stdout };
  }
}

describe.each(backends())('writing to another database and to a service ($name repository)', (backend) => {
  afterAll(() => backend.cleanup());

  it('a crash after the external writes and before the checkpoint leaves no duplicate anywhere', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-external-'));
    const db = backend.freshUrl('external');
    const warehouse = join(dir, 'warehouse.db');
    const params = ['items=100', `warehouse=${warehouse}`, 'crashAt=45', 'relayCrashAt=70'];

    // The first run dies in the load step, with orders 41-50 in the warehouse but not checkpointed.
    expect(await nightshift(['run', 'sync-orders', ...params], db, dir)).toMatchObject({ signal: 'SIGKILL' });
    const w = new Sqlite(warehouse, { readonly: true });
    try {
      expect(w.prepare('SELECT count(*) AS n, sum(writes) AS writes FROM orders').get()).toEqual({ n: 50, writes: 50 });
      // Its restart writes orders 41-50 again, then dies in the relay after delivering event 70.
      expect(await nightshift(['restart', '1'], db, dir)).toMatchObject({ signal: 'SIGKILL' });
      expect(w.prepare('SELECT count(*) AS n, sum(writes) AS writes FROM orders').get()).toEqual({ n: 100, writes: 110 });
      // The next restart sends events 61-70 again and completes.
      const done = await nightshift(['restart', '2', '--json'], db, dir);
      expect(done.code).toBe(0);
      expect(JSON.parse(done.stdout)).toMatchObject({ id: 3, status: 'COMPLETED', steps: [{ name: 'relay', status: 'COMPLETED' }] });

      // Each order once (10 of them written twice), each event received once (10 of them delivered twice).
      expect(w.prepare('SELECT count(*) AS n, count(DISTINCT order_no) AS distinct_n, sum(writes) AS writes FROM orders').get()).toEqual({ n: 100, distinct_n: 100, writes: 110 });
      expect(w.prepare('SELECT count(*) AS n, sum(deliveries) AS deliveries FROM inbox').get()).toEqual({ n: 100, deliveries: 110 });
      expect(w.prepare("SELECT group_concat(substr(event_key, 18), ',') AS keys FROM (SELECT event_key FROM inbox WHERE deliveries > 1 ORDER BY event_key)").get()).toEqual({
        keys: Array.from({ length: 10 }, (_, i) => String(61 + i).padStart(6, '0')).join(','),
      });
      const amounts = w.prepare('SELECT amount FROM orders ORDER BY order_no').all() as { amount: number }[];
      expect(amounts.map((a) => a.amount)).toEqual(Array.from({ length: 100 }, (_, i) => (i + 1) * 1.5));
    } finally {
      w.close();
    }

    // The outbox, written in the chunk's transaction: every event once, all sent.
    const repo = await openDatabase(db);
    try {
      const [outbox] = await repo.query<{ n: number; sent: number; distinct_n: number }>(
        'SELECT count(*) AS n, count(sent_at) AS sent, count(DISTINCT seq) AS distinct_n FROM sync_outbox',
      );
      expect({ n: Number(outbox.n), sent: Number(outbox.sent), distinct_n: Number(outbox.distinct_n) }).toEqual({ n: 100, sent: 100, distinct_n: 100 });
    } finally {
      await repo.close();
    }
  });
});
