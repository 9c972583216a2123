/**
 * A stop that races a node's claim (PostgreSQL): the stop reads the execution queued, a node
 * claims it before the stop's update, and that update (stop it queued) then matches nothing. The
 * stop used to return there, the execution left running with no stop asked of it (a console test
 * waited 30 s for such a one). Now it looks again and asks the running execution to stop. The
 * race is made exact: a transaction of the test claims the row as a node does and holds it until
 * the stop's update waits on it.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import { DEFAULT_LEASE, registerNode } from '../../src/cluster/node-identity.ts';
import { createNightshift } from '../../src/operator.ts';
import { noop } from '../../examples/nightshift.config.ts';
import { PG_BASE } from '../support/backends.ts';
import { pgBackend, waitFor } from './helpers.ts';

const backend = pgBackend();
afterAll(() => backend.cleanup());

describe('a stop racing a claim (postgres)', () => {
  it('asks the execution the node took to stop, instead of returning with nothing asked', async () => {
    const url = backend.freshUrl('stoprace');
    const ns = await createNightshift({ db: url, jobs: [noop], logger: silentLogger });
    const claimer = new pg.Client({ connectionString: PG_BASE });
    await claimer.connect();
    try {
      const queued = await ns.submit('noop', { 'run.id': 1 });
      // A live node of this process (its pid is alive): what takes the execution.
      const node = await registerNode(ns.db, { kind: 'node', name: 'taker', jobs: ['noop'], concurrency: 1, lease: DEFAULT_LEASE });
      const schema = new URL(url).searchParams.get('schema')!;
      await claimer.query(`SET search_path TO ${schema}`);
      await claimer.query('BEGIN');
      await claimer.query(
        `UPDATE ns_job_execution SET status = 'STARTED', owner_node_id = $2, node_name = 'taker', owner_epoch = owner_epoch + 1, start_time = ns_now() WHERE id = $1`,
        [queued.id, node.id],
      );
      const stopping = ns.stop(queued.id);
      // The stop read it queued, and its update now waits for the claim's row lock. (Looked at from
      // outside the claim's transaction: within one, pg_stat_activity is read once and kept.)
      await waitFor(async () => (await ns.db.query(
        `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%stopped before it started%'`)).length, 10_000, 'the stop to wait on the claim');
      await claimer.query('COMMIT');
      const stopped = await stopping;
      expect(stopped.status).toBe('STOPPING');
      expect((await ns.explorer.getExecution(queued.id))!.status).toBe('STOPPING');
    } finally {
      await claimer.end();
      await ns.close();
    }
  });
});
