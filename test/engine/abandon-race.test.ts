/**
 * Abandon and a restart of the same instance at once (PostgreSQL, where both run side by side;
 * SQLite's single writer orders them anyway): a restart that is adding the next execution holds
 * its instance, so an abandon of the failed execution waits for it and then refuses, since that
 * execution is no longer the instance's latest. It never reports ABANDONED an instance that runs.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import { defineJob } from '../../src/core/job.ts';
import { createNightshift } from '../../src/operator.ts';
import { SQL } from '../../src/repository/sql.ts';
import { pgBackend } from '../cluster/helpers.ts';
import { waitFor } from '../support/backends.ts';

const backend = pgBackend();
const failing = defineJob({ name: 'failing', steps: (s) => [s.tasklet({ name: 'boom', tasklet: () => { throw new Error('on purpose'); } })] });

afterAll(() => backend.cleanup());

describe('abandon racing a restart (postgres)', () => {
  it('waits for the restart that holds the instance, then refuses: the failed execution is no longer the latest', async () => {
    const ns = await createNightshift({ db: backend.freshUrl('abandonrace'), jobs: [failing], logger: silentLogger });
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    try {
      const failed = await ns.run('failing');
      expect(failed.status).toBe('FAILED');
      let inserted!: (id: number) => void;
      const insertedId = new Promise<number>((r) => (inserted = r));
      // A restart in flight: the instance locked and its next execution inserted, not yet committed.
      const restart = ns.db.transaction(async (tx) => {
        await tx.query(SQL.lockInstanceOfExecution('postgres'), [failed.id]);
        const [row] = await tx.query<{ id: string }>(SQL.requeue, [failed.id]);
        inserted(Number(row.id));
        await released;
      });
      const next = await insertedId;
      let settled = false;
      const abandon = ns.abandon(failed.id).then(
        (e) => ((settled = true), e),
        (err: unknown) => ((settled = true), err),
      );
      // The abandon waits on the instance's lock while the restart has not committed.
      await waitFor(async () => {
        const rows = await ns.db.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FROM ns_job_instance i%' AND datname = current_database()`,
        );
        return Number(rows[0].n) > 0 || settled ? true : undefined;
      }, 10_000, 'the abandon to wait on the instance');
      expect(settled, 'the abandon waited for the restart').toBe(false);
      release();
      await restart;
      const outcome = await abandon;
      expect(outcome).toBeInstanceOf(Error);
      expect((outcome as Error).message).toMatch(new RegExp(`execution ${failed.id} changed while abandoning it`));
      const runs = await ns.explorer.executionsOfInstance(failed.instanceId);
      expect(runs.map((e) => [e.id, e.status])).toEqual([[next, 'STARTING'], [failed.id, 'FAILED']]);
    } finally {
      release();
      await ns.close();
    }
  });
});
