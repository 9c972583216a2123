/**
 * Hand-over on a draining node (real `nightshift node` processes on PostgreSQL): the drained node
 * stops its partition and its execution at a chunk boundary, and each is queued again for another
 * node in the same transaction as its STOPPED end. Were the requeue a transaction of its own, a
 * manager looking in between would see one partition STOPPED and every other ended, and end the
 * whole job STOPPED although nobody stopped it (and `wait` would return a STOPPED execution).
 *
 * The window is made observable deterministically. On PostgreSQL, deferred constraint triggers
 * look at every commit that ends a partition or an execution STOPPED and record it if, as that
 * commit leaves the repository, nothing was queued after it. On SQLite (nodes in this process),
 * the drained node's database is watched: after each of its commits, before the node goes on,
 * the repository is read for the same. With the requeue in a transaction of its own every
 * hand-over is recorded; with it in the end's transaction none is.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startNode as startNodeHere, type ClusterNode } from '../../src/cluster/node.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift, type ExecutionDetails, type Nightshift } from '../../src/operator.ts';
import type { Database } from '../../src/repository/database.ts';
import { recentNodes, requestDrain } from '../../src/repository/nodes.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { killAll, pgBackend, startNode, waitAlive, waitFor, type NodeProc } from '../cluster/helpers.ts';
import { backends } from '../support/backends.ts';
import { count, partitionedCount } from '../../examples/nightshift.config.ts';
import { counters, managerOf, onceSummary, partitionsOf, sumCounters, why } from './helpers.ts';

const backend = pgBackend();
let env: { ns: Nightshift; db: Database; procs: NodeProc[]; nodes?: ClusterNode[] } | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && env) {
    for (const p of env.procs) console.log(`--- node ${p.name} ---\n${p.output().split('\n').slice(-40).join('\n')}`);
  }
  await killAll();
  for (const n of env?.nodes ?? []) await n.shutdown().catch(() => undefined);
  await env?.ns.close().catch(() => undefined);
  await env?.db.close().catch(() => undefined);
  env = undefined;
});
const sqlite = backends().find((b) => b.name === 'sqlite')!;
afterAll(async () => {
  await killAll();
  await backend.cleanup();
  await sqlite.cleanup();
});

/**
 * Records, at the commit of each transaction that ends a partition or an execution STOPPED,
 * those left with nothing queued after them (no later partition execution of the same name
 * under the same manager; no later execution of the same instance).
 */
const WATCH_STOPPED_ENDS = `
  CREATE TABLE lone_stops (kind text NOT NULL, id bigint NOT NULL, name text NOT NULL, node text);
  CREATE FUNCTION lone_partition_stop() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF NOT EXISTS (SELECT 1 FROM ns_step_execution n WHERE n.manager_id = NEW.manager_id AND n.step_name = NEW.step_name AND n.id > NEW.id) THEN
      INSERT INTO lone_stops VALUES ('partition', NEW.id, NEW.step_name, NEW.node_name);
    END IF;
    RETURN NULL;
  END $$;
  CREATE CONSTRAINT TRIGGER lone_partition_stop AFTER UPDATE ON ns_step_execution DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.status = 'STOPPED' AND OLD.status <> 'STOPPED' AND NEW.manager_id IS NOT NULL)
    EXECUTE FUNCTION lone_partition_stop();
  CREATE FUNCTION lone_execution_stop() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF NOT EXISTS (SELECT 1 FROM ns_job_execution n WHERE n.instance_id = NEW.instance_id AND n.id > NEW.id) THEN
      INSERT INTO lone_stops VALUES ('execution', NEW.id, NEW.job_name, NEW.node_name);
    END IF;
    RETURN NULL;
  END $$;
  CREATE CONSTRAINT TRIGGER lone_execution_stop AFTER UPDATE ON ns_job_execution DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.status = 'STOPPED' AND OLD.status <> 'STOPPED')
    EXECUTE FUNCTION lone_execution_stop();`;

/**
 * The same check as a read, for SQLite: partitions and executions STOPPED with nothing queued
 * after them (in these tests nothing is stopped but by the drain, so each is a hand-over).
 */
const LONE_STOPS = `SELECT 'partition' AS kind, s.id, s.step_name AS name, s.node_name AS node FROM ns_step_execution s
    WHERE s.status = 'STOPPED' AND s.manager_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM ns_step_execution n WHERE n.manager_id = s.manager_id AND n.step_name = s.step_name AND n.id > s.id)
  UNION ALL
  SELECT 'execution' AS kind, e.id, e.job_name AS name, e.node_name AS node FROM ns_job_execution e
    WHERE e.status = 'STOPPED' AND NOT EXISTS (SELECT 1 FROM ns_job_execution n WHERE n.instance_id = e.instance_id AND n.id > e.id)`;

/**
 * `db`, read for lone stops (LONE_STOPS) after each of its commits, before its caller goes on:
 * what any reader could see between that commit and the next. What is seen is kept in `seen`.
 */
function watched(db: Database, seen: Map<string, unknown>): Database {
  const look = async <T>(result: T): Promise<T> => {
    for (const r of await db.query<{ kind: string; id: number }>(LONE_STOPS)) seen.set(`${r.kind} ${r.id}`, r);
    return result;
  };
  const wrapped = new Set(['transaction', 'transactionEndingWith', 'query', 'execute', 'exec']);
  return new Proxy(db, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver) as unknown;
      if (typeof v !== 'function') return v;
      if (typeof key === 'string' && wrapped.has(key)) return async (...args: unknown[]) => look(await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args));
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

/**
 * The scenario on both dialects: nodes a and b up; the manager of a partitioned job on a, its
 * partitions on both; a plain execution on b. Node b is drained once it has committed chunks of
 * both; then a takes everything over and both jobs complete. `loneStops` says what was seen.
 */
async function drainAndHandOver(ns: Nightshift, db: Database, drainB: () => Promise<void>, loneStops: () => Promise<unknown[]>) {
  // The manager on a; partitions of about 5 s (10 chunks) on both nodes; a plain execution on b.
  const job = await ns.submit('partitioned-count', { items: 6000, grid: 6, delayMs: 5, tag: 'hp' }, { node: 'a' });
  const single = await ns.submit('count', { items: 1500, chunk: 20, delayMs: 5, tag: 'he' }, { node: 'b' });
  await waitFor(async () => {
    const [e, s] = [(await ns.getExecution(job.id))!, (await ns.getExecution(single.id))!];
    return partitionsOf(e).some((p) => p.status === 'STARTED' && p.node === 'b' && p.commitCount >= 1) && s.status === 'STARTED' && s.steps[0]?.commitCount >= 1;
  }, 30_000, 'node b running a partition and an execution, each with a committed chunk');

  await drainB();
  // b stops what it runs at a chunk boundary; nothing of it stays STARTED under b's name.
  const onB = await waitFor(async () => {
    const e = (await ns.getExecution(job.id))!;
    const s = (await ns.getExecution(single.id))!;
    const mine = partitionsOf(e).filter((p) => p.node === 'b');
    return s.status === 'STOPPED' && mine.length > 0 && mine.every((p) => p.status !== 'STARTED') ? mine : undefined;
  }, 20_000, 'node b to stop its partitions and its execution');
  const handedOver = onB.filter((p) => p.status === 'STOPPED');
  expect(handedOver.length, 'partitions b handed over').toBeGreaterThan(0);

  const done = await ns.waitForEnd(job.id, { timeoutMs: 60_000 });
  expect(done.status, why(done)).toBe('COMPLETED');
  // The manager was not touched: the same execution, on the same node, summing every partition execution.
  expect(done.id).toBe(job.id);
  expect(done.node).toBe('a');
  expect(managerOf(done).status).toBe('COMPLETED');
  expect(counters(managerOf(done))).toEqual(sumCounters(partitionsOf(done)));
  expect(managerOf(done).writeCount).toBe(6000);
  for (const stopped of handedOver) {
    const all = partitionsOf(done).filter((p) => p.stepName === stopped.stepName).sort((x, y) => x.id - y.id);
    const last = all[all.length - 1];
    expect(last.id, fmt(done)).toBeGreaterThan(stopped.id);
    expect(last.status).toBe('COMPLETED');
    expect(last.node).toBe('a');
    // Resumed from the checkpoint: b's committed chunks are not read again.
    expect(stopped.readCount).toBeGreaterThan(0);
    expect(all.reduce((n, p) => n + p.readCount, 0), fmt(done)).toBe(Number(stopped.context.to) - Number(stopped.context.from) + 1);
  }
  expect(await onceSummary(db, 'hp', 6000)).toMatchObject({ ok: true, total: 6000 });

  const resumed = await ns.waitForEnd(single.id, { timeoutMs: 60_000 });
  expect(resumed.status, why(resumed)).toBe('COMPLETED');
  expect(resumed.id).toBeGreaterThan(single.id);
  expect(resumed.node).toBe('a');
  expect((await ns.getExecution(single.id))!.status).toBe('STOPPED');
  expect(await onceSummary(db, 'he', 1500)).toMatchObject({ ok: true, total: 1500 });

  // No commit ever left a handed-over partition or execution STOPPED with nothing queued after it.
  expect(await loneStops()).toEqual([]);
  // b is still a member, draining, and runs nothing.
  expect((await recentNodes(db, 60_000)).find((n) => n.name === 'b')).toMatchObject({ status: 'alive', draining: true, running: [], runningPartitions: [] });
}

const TITLE = 'a drained node hands over its partitions and its execution, each requeued with its STOPPED end; both complete on the other node, rows exactly once';

describe('hand-over on a draining node (postgres, real node processes)', () => {
  it(TITLE, async () => {
    const url = backend.freshUrl('handover');
    const ns = await createNightshift({ db: url, jobs: [count, partitionedCount], logger: silentLogger });
    const db = await openDatabase(url);
    env = { ns, db, procs: [] };
    await db.exec(WATCH_STOPPED_ENDS);
    env.procs = ['a', 'b'].map((n) => startNode(url, n, { args: ['--concurrency', '4'] }));
    await waitAlive(ns, ['a', 'b']);
    await drainAndHandOver(
      ns,
      db,
      async () => void expect(await requestDrain(ns.db, 'b')).toBe(true),
      () => db.query('SELECT kind, id, name, node FROM lone_stops ORDER BY id'),
    );
  }, 120_000);
});

describe('hand-over on a draining node (sqlite, nodes in this process)', () => {
  it(TITLE, async () => {
    const url = sqlite.freshUrl('handover');
    const ns = await createNightshift({ db: url, jobs: [count, partitionedCount], logger: silentLogger });
    const db = await openDatabase(url);
    const seen = new Map<string, unknown>();
    // b's own connection, watched after each of its commits.
    const bDb = watched(await openDatabase(url), seen);
    env = { ns, db, procs: [], nodes: [] };
    const options = { jobs: [count, partitionedCount], concurrency: 4, pollMs: 100, scheduler: false, logger: silentLogger };
    const a = await startNodeHere({ ...options, db: url, name: 'a' });
    env.nodes!.push(a);
    const b = await startNodeHere({ ...options, db: bDb, name: 'b' });
    env.nodes!.push(b);
    try {
      await waitAlive(ns, ['a', 'b']);
      await drainAndHandOver(ns, db, () => b.drain(), async () => [...seen.values()]);
    } finally {
      for (const n of env.nodes!.splice(0)) await n.shutdown();
      await bDb.close();
    }
  }, 120_000);
});

function fmt(e: ExecutionDetails): string {
  return partitionsOf(e).map((p) => `${p.id} ${p.stepName} ${p.status}@${p.node} read=${p.readCount}`).join(' | ');
}
