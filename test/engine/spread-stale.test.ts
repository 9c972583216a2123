/**
 * The even spread never strands work: a peer that is alive but does not claim its share (here a
 * registered node with no process behind it) leaves that work waiting only until it is stale
 * (two polls), then a node that has room takes it. Runs on SQLite and PostgreSQL.
 */
import { hostname } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { startNode } from '../../src/cluster/node.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { defineJob } from '../../src/core/job.ts';
import { p } from '../../src/core/params.ts';
import { createNightshift } from '../../src/operator.ts';
import { SQL } from '../../src/repository/sql.ts';
import { backends, waitFor } from '../support/backends.ts';

// Execution n=1 runs until the test releases it, so the node is busy (not idle) while n=2 waits.
let release: () => void = () => undefined;
let released = Promise.resolve();
const hold = () => (released = new Promise<void>((r) => (release = r)));
// Held in a job listener, outside any transaction (a SQLite transaction would hold the whole file).
const job = defineJob({
  name: 'tick',
  params: { n: p.int({ required: true }) },
  listeners: [{ beforeJob: async (_e, params: { n: number }) => {
    if (params.n === 1) await released;
  } }],
  steps: (s) => [s.tasklet({ name: 'tick', tasklet: () => undefined })],
});

describe.each(backends())('even spread on $name', (backend) => {
  afterAll(() => backend.cleanup());

  it('work left to a peer that does not claim it is taken by another node once it waited two polls', async () => {
    const url = backend.freshUrl('spreadstale');
    const ns = await createNightshift({ db: url, jobs: [job], logger: silentLogger });
    try {
      // A peer with the same jobs and a long lease, that never claims anything.
      await ns.db.query(SQL.insertNode, ['silent-peer', 'default', hostname(), process.pid, 'node', JSON.stringify(['tick']), 4, 1000, 600_000, 600_000]);
      hold();
      const node = await startNode({ db: url, jobs: [job], name: 'worker', pollMs: 100, scheduler: false, logger: silentLogger });
      try {
        const results = await ns.submitMany([{ job: 'tick', params: { n: 1 } }, { job: 'tick', params: { n: 2 } }]);
        const ids = results.map((r) => ('executionId' in r ? r.executionId : Number.NaN));
        // Its even share is one of the two at first (the peer has the lower id); the other follows once stale,
        // while the first still runs.
        await waitFor(async () => (await ns.getExecution(ids[1]))?.status === 'COMPLETED', 20_000, 'the second execution completed');
        expect((await ns.getExecution(ids[0]))?.status).toBe('STARTED');
        release();
        const done = await waitFor(async () => {
          const list = await Promise.all(ids.map((id) => ns.getExecution(id)));
          return list.every((e) => e?.status === 'COMPLETED') ? list : undefined;
        }, 20_000, 'both executions completed');
        expect(done.map((e) => e!.node)).toEqual(['worker', 'worker']);
        const [first, second] = done.map((e) => e!.startTime!.getTime()).sort((a, b) => a - b);
        // Stale after max(2 polls, 500 ms) of waiting.
        expect(second - first).toBeGreaterThanOrEqual(400);
      } finally {
        release();
        await node.shutdown();
      }
    } finally {
      await ns.close();
    }
  });
});
