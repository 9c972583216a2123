/**
 * Draining a deep queue (issue 17) with 2 real `nightshift node` processes on PostgreSQL: claims
 * take many executions per statement and their ends are grouped, yet every instance ends once,
 * each execution with its one step ended alike, nothing left running, and the status counters
 * agree with the rows. One node is SIGKILLed mid-drain: its executions fail over and the
 * instances still complete exactly once.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import { executionCounts, foldExecutionCounts } from '../../src/repository/retention.ts';
import { count, noop } from '../../examples/nightshift.config.ts';
import { kill } from '../support/node-procs.ts';
import { killAll, pgBackend, startNode, waitAlive, waitFor, type NodeProc } from './helpers.ts';

const backend = pgBackend();
let opened: { ns: Nightshift; procs: NodeProc[] } | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && opened) {
    for (const p of opened.procs) console.log(`--- node ${p.name} ---\n${p.output().split("\n").slice(-30).join("\n")}`);
  }
  await killAll();
  await opened?.ns.close().catch(() => undefined);
  opened = undefined;
});
afterAll(async () => {
  await killAll();
  await backend.cleanup();
});

const N = 600;
const DEEP = 6000;

async function queued(label: string, n = N) {
  const url = backend.freshUrl(label);
  const ns = await createNightshift({ db: url, jobs: [noop, count], logger: silentLogger });
  const results = await ns.submitMany([
    ...Array.from({ length: n }, (_, i) => ({ job: 'noop' as const, params: { 'run.id': i } })),
    // Jobs that fail in their chunk step, among the no-ops.
    ...Array.from({ length: 10 }, (_, i) => ({ job: 'count' as const, params: { items: 5, chunk: 5, tag: `f${i}`, failAt: 3 } })),
  ]);
  expect(results.filter((r) => 'error' in r)).toEqual([]);
  return { url, ns };
}

/** Every instance's executions, by status, and its step executions, in one list per instance. */
async function history(ns: Nightshift) {
  return ns.db.query<{ job_name: string; statuses: string; steps: string; commits: string }>(
    `SELECT i.job_name,
        string_agg(e.status, ',' ORDER BY e.id) AS statuses,
        (SELECT string_agg(s.status, ',' ORDER BY s.id) FROM ns_step_execution s JOIN ns_job_execution x ON x.id = s.job_execution_id
          WHERE x.instance_id = i.id AND x.status = 'COMPLETED') AS steps,
        (SELECT string_agg(s.commit_count::text, ',' ORDER BY s.id) FROM ns_step_execution s JOIN ns_job_execution x ON x.id = s.job_execution_id
          WHERE x.instance_id = i.id AND x.status = 'COMPLETED') AS commits
      FROM ns_job_instance i JOIN ns_job_execution e ON e.instance_id = i.id GROUP BY i.id ORDER BY i.id`,
  );
}

async function countersAgree(ns: Nightshift) {
  await foldExecutionCounts(ns.db);
  const counted = await ns.db.query<{ job_name: string; status: string; n: number }>(
    'SELECT job_name, status, count(*) AS n FROM ns_job_execution GROUP BY job_name, status ORDER BY job_name, status',
  );
  expect(await executionCounts(ns.db)).toEqual(counted.map((r) => ({ job: r.job_name, status: r.status, count: Number(r.n) })));
}

const unfinished = async (ns: Nightshift) =>
  Number((await ns.db.query<{ n: string }>(`SELECT count(*) AS n FROM ns_job_execution WHERE status IN ('STARTING', 'STARTED', 'STOPPING')`))[0].n);

describe('draining a deep queue (postgres, 2 real node processes)', () => {
  it('every instance ends once, with its step ended alike and the counters true; both nodes took part', async () => {
    const { url, ns } = await queued('drain');
    // No claim proceeds until both nodes are up: one that started first could drain it all alone.
    await ns.db.transaction(async (tx) => {
      await tx.exec('LOCK TABLE ns_job_execution IN EXCLUSIVE MODE');
      const procs = ['a', 'b'].map((n) => startNode(url, n, { args: ['--concurrency', '32'] }));
      opened = { ns, procs };
      await waitAlive(ns, ['a', 'b']);
      // A node claims only after its first beat: one whose heartbeat thread is slow to start (a
      // loaded host) could find the queue drained by the other once the lock goes.
      await waitFor(async () => {
        const beaten = await ns.db.query<{ name: string }>(
          `SELECT name FROM ns_node WHERE name IN ('a', 'b') AND status = 'alive' AND last_heartbeat > started_at`,
        );
        return beaten.length === 2;
      }, 30_000, 'both nodes beat once');
    });
    await waitFor(async () => (await unfinished(ns)) === 0, 120_000, 'the queue drained');
    const rows = await history(ns);
    const noops = rows.filter((r) => r.job_name === 'noop');
    expect(noops).toHaveLength(N);
    expect(new Set(noops.map((r) => `${r.statuses} ${r.steps} ${r.commits}`))).toEqual(new Set(['COMPLETED COMPLETED 1']));
    const failing = rows.filter((r) => r.job_name === 'count');
    expect(new Set(failing.map((r) => r.statuses))).toEqual(new Set(['FAILED']));
    const steps = await ns.db.query<{ status: string; n: string }>(
      `SELECT s.status, count(*) AS n FROM ns_step_execution s JOIN ns_job_execution e ON e.id = s.job_execution_id WHERE e.job_name = 'count' GROUP BY s.status`,
    );
    expect(steps.map((s) => `${s.status}:${s.n}`)).toEqual(['FAILED:10']);
    const byNode = await ns.db.query<{ node_name: string; n: string }>(`SELECT node_name, count(*) AS n FROM ns_job_execution GROUP BY node_name ORDER BY node_name`);
    expect(byNode.map((r) => r.node_name)).toEqual(['a', 'b']);
    await countersAgree(ns);
  });

  it('a node SIGKILLed mid-drain: its executions fail over and every instance still completes exactly once', async () => {
    // A queue deep enough that b alone cannot drain it before a has completed some.
    const { url, ns } = await queued('drainkill', DEEP);
    const lease = ['--heartbeat-ms', '300', '--lease-ms', '1500'];
    const procs = ['a', 'b'].map((n) => startNode(url, n, { args: ['--concurrency', '32', ...lease] }));
    opened = { ns, procs };
    await waitAlive(ns, ['a', 'b']);
    await waitFor(async () => {
      const [r] = await ns.db.query<{ n: string }>(`SELECT count(*) AS n FROM ns_job_execution WHERE node_name = 'a' AND status = 'COMPLETED'`);
      return Number(r.n) >= 50;
    }, 60_000, 'node a completed some');
    await kill(procs[0]);
    await waitFor(async () => (await unfinished(ns)) === 0, 120_000, 'the queue drained on b');
    const rows = await history(ns);
    const noops = rows.filter((r) => r.job_name === 'noop');
    expect(noops).toHaveLength(DEEP);
    // Each instance completed exactly once: what ran on the dead node ended FAILED and ran again.
    for (const r of noops) {
      expect(r.statuses.split(',').filter((s) => s === 'COMPLETED')).toHaveLength(1);
      expect(r.statuses.split(',').every((s) => s === 'COMPLETED' || s === 'FAILED')).toBe(true);
      expect(r.steps).toBe('COMPLETED');
    }
    await countersAgree(ns);
  }, 180_000);
});
