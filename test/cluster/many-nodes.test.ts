/**
 * Many nodes (issue 17): a node's recurring work costs the same however many nodes there are, no
 * row is written by every node, and a node can run in a small connection budget. PostgreSQL.
 */
import { hostname } from 'node:os';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startNode as startNodeInProcess, type ClusterNode } from '../../src/cluster/node.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { requestDrain, resumeNode } from '../../src/repository/nodes.ts';
import { SQL } from '../../src/repository/sql.ts';
import { noop } from '../../examples/nightshift.config.ts';
import { PG_BASE } from '../support/backends.ts';
import { killAll, openCluster, pgBackend, startNode, waitAlive, waitFor } from './helpers.ts';

const backend = pgBackend();
afterAll(() => backend.cleanup());
afterEach(() => killAll());

/** The application_name of each session of this app, sorted. */
async function sessionsOf(app: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  try {
    const r = await c.query<{ application_name: string }>(`SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1 ORDER BY 1`, [`${app}%`]);
    return r.rows.map((x) => x.application_name);
  } finally {
    await c.end();
  }
}

/** The plan of a statement, as text. */
async function plan(db: Awaited<ReturnType<typeof openDatabase>>, sql: string, params: unknown[]): Promise<string> {
  return (await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).map((r) => r['QUERY PLAN']).join('\n');
}

describe('many nodes (postgres)', () => {
  it('a node started with --no-listen --no-scheduler and a short pool idle time holds only its heartbeat connection while idle, and still runs what is submitted', async () => {
    const c = await openCluster(backend, 'manynodes_budget');
    const app = `mnb_${process.pid}_${Date.now().toString(36)}`;
    const url = `${c.url}&application_name=${app}`;
    try {
      startNode(url, 'lean', { args: ['--concurrency', '1', '--no-listen', '--no-scheduler', '--pool-idle-ms', '100'] });
      await waitAlive(c.ns, ['lean']);
      // Once idle, the pool has closed its connections; the heartbeat's stays. Seen 5 times in a row.
      let streak = 0;
      await waitFor(async () => {
        const s = await sessionsOf(app);
        streak = s.length === 1 && s[0] === `${app}-heartbeat` ? streak + 1 : 0;
        if (streak < 5) await new Promise((r) => setTimeout(r, 100));
        return streak >= 5;
      }, 60_000, 'only the heartbeat connection open');
      expect(await sessionsOf(app)).not.toContain(`${app}-listen`);
      const e = await c.ns.submit('noop', {});
      const done = await waitFor(async () => {
        const x = await c.ns.getExecution(e.id);
        return x?.status === 'COMPLETED' ? x : undefined;
      }, 20_000, 'the submitted noop completed');
      expect(done.node).toBe('lean');
      // Launched without a notification: the heartbeat's probe saw it within about one beat (1 s).
      expect(done.startTime!.getTime() - done.createTime.getTime()).toBeLessThan(3000);
    } finally {
      await c.close();
    }
  }, 120_000);

  it('a node learns of joins, late and dead peers, and a drain request and its withdrawal through its heartbeat probe', async () => {
    const url = backend.freshUrl('manynodes_events');
    const db = await openDatabase(url);
    let node: ClusterNode | undefined;
    try {
      node = await startNodeInProcess({ db: url, jobs: [noop], name: 'watcher', scheduler: false, listen: false, logger: silentLogger });
      const events: string[] = [];
      for (const ev of ['joined', 'suspected', 'dead', 'draining', 'resumed'] as const) node.on(ev, (e) => events.push(`${ev}:${e.node}`));
      // A peer with no process behind it: its lease (2.5 s, heartbeat 500 ms) runs out as nobody renews it.
      await db.query(SQL.insertNode, ['ghost', 'default', hostname(), 999_999, 'node', JSON.stringify(['noop']), 1, 500, 2500, 2500]);
      await waitFor(() => events.includes('joined:ghost'), 10_000, 'ghost joined');
      await waitFor(() => events.includes('suspected:ghost'), 10_000, 'ghost suspected');
      await waitFor(() => events.includes('dead:ghost'), 10_000, 'ghost dead');
      const [row] = await db.query<{ status: string; end_reason: string }>(`SELECT status, end_reason FROM ns_node WHERE name = 'ghost'`);
      expect(row.status).toBe('dead');
      expect(await requestDrain(db, 'watcher')).toBe(true);
      await waitFor(() => events.includes('draining:watcher'), 10_000, 'watcher draining');
      expect(await resumeNode(db, 'watcher')).toBe(true);
      await waitFor(() => events.includes('resumed:watcher'), 10_000, 'watcher resumed');
      expect(await resumeNode(db, 'ghost')).toBe(false);
      expect(events.indexOf('joined:ghost')).toBeLessThan(events.indexOf('suspected:ghost'));
      expect(events.indexOf('suspected:ghost')).toBeLessThan(events.indexOf('dead:ghost'));
    } finally {
      await node?.shutdown();
      await db.close();
    }
  }, 60_000);

  it('the heartbeat, probe and reap statements read by index and write one row: their cost does not grow with nodes or history', async () => {
    const url = backend.freshUrl('manynodes_plans');
    const db = await openDatabase(url);
    try {
      // 3,000 ended incarnations and 50 live nodes; 20,000 finished executions, 100 running, a step each.
      await db.exec(`INSERT INTO ns_node (name, cluster, host, pid, kind, status, jobs, concurrency, heartbeat_ms, lease_ms,
          started_at, last_heartbeat, lease_until, ended_at, end_reason)
        SELECT 'old-' || g, 'default', 'h', g, 'node', CASE WHEN g % 2 = 0 THEN 'dead' ELSE 'left' END, '["noop"]', 2, 1000, 3500,
          ns_now() - 900000, ns_now() - 800000, ns_now() - 796500, ns_now() - 790000 + g, 'gone'
        FROM generate_series(1, 3000) g`);
      await db.exec(`INSERT INTO ns_node (name, cluster, host, pid, kind, status, jobs, concurrency, heartbeat_ms, lease_ms,
          started_at, last_heartbeat, lease_until)
        SELECT 'live-' || g, 'default', 'h', g, 'node', 'alive', '["noop"]', 2, 1000, 3500, ns_now(), ns_now(), ns_now() + 600000
        FROM generate_series(1, 50) g`);
      await db.exec(`INSERT INTO ns_job_instance (job_name, job_key, identifying_params, create_time)
        SELECT 'noop', 'k' || g, '{}', ns_now() FROM generate_series(1, 20100) g`);
      await db.exec(`INSERT INTO ns_job_execution (instance_id, job_name, status, exit_code, params, create_time, owner_node_id, owner_epoch)
        SELECT i.id, 'noop', CASE WHEN i.id <= 20000 THEN 'COMPLETED' ELSE 'STARTED' END, 'X', '{}', ns_now(),
          (SELECT max(id) FROM ns_node) - (i.id % 50), 1
        FROM ns_job_instance i`);
      await db.exec(`INSERT INTO ns_step_execution (job_execution_id, step_name, status, exit_code, last_updated, context)
        SELECT id, 'noop', 'COMPLETED', 'X', ns_now(), '{}' FROM ns_job_execution`);
      // A backlog of execution count deltas, as a busy cluster has between folds.
      await db.exec(`INSERT INTO ns_execution_count_delta (job_name, status, n) SELECT 'noop', 'COMPLETED', 1 FROM generate_series(1, 5000)`);
      await db.exec('ANALYZE');
      const me = Number((await db.query<{ id: number }>(`SELECT max(id) AS id FROM ns_node`))[0].id);
      const statements: [string, string, unknown[]][] = [
        ['heartbeat', SQL.heartbeat, [me]],
        ['nodeProbe', SQL.nodeProbe('postgres'), [me, ['noop'], 'live-50', 1500]],
        ['expiredNodes', SQL.expiredNodes, [me]],
        ['declareDead', SQL.declareDead, [me, 'x']],
        ['watchNodes', SQL.watchNodes, [Date.now()]],
      ];
      for (const [name, sql, params] of statements) {
        const p = await plan(db, sql, params);
        expect(p, `${name}:\n${p}`).not.toMatch(/Seq Scan/);
        expect(p, `${name}:\n${p}`).toMatch(/Index/);
      }
      // The heartbeat writes exactly this node's row.
      const analyzed = (await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${SQL.heartbeat}`, [me]))[0]['QUERY PLAN'] as unknown as [{ Plan: { Plans: { 'Actual Rows': number }[] } }];
      expect(analyzed[0].Plan.Plans[0]['Actual Rows']).toBe(1);
    } finally {
      await db.close();
    }
  }, 60_000);

  it('no global lock row: every node beats and probes while each of the others holds its own beat uncommitted', async () => {
    const url = backend.freshUrl('manynodes_locks');
    const db = await openDatabase(url);
    const clients: pg.Client[] = [];
    try {
      const ids: number[] = [];
      for (let i = 0; i < 10; i++) {
        const [r] = await db.query<{ id: number }>(SQL.insertNode, [`n${i}`, 'default', 'h', i, 'node', '["noop"]', 1, 1000, 3500, 3500]);
        ids.push(Number(r.id));
      }
      const schema = new URL(url).searchParams.get('schema')!;
      for (const id of ids) {
        const c = new pg.Client({ connectionString: PG_BASE, options: `-c search_path=${schema} -c lock_timeout=500` });
        await c.connect();
        clients.push(c);
        // Each node's beat and probe, in a transaction left open: a row every node writes would block the next one here.
        await c.query('BEGIN');
        expect((await c.query(SQL.heartbeat, [id])).rowCount).toBe(1);
        await c.query(SQL.nodeProbe('postgres'), [id, ['noop'], `n${id}`, 1500]);
      }
      for (const c of clients) await c.query('COMMIT');
    } finally {
      await Promise.all(clients.map((c) => c.end()));
      await db.close();
    }
  });
});
