/**
 * History: the queries the CLI, API, console, metrics and claim path run, timed on an empty
 * repository and again after seeding past executions (set-based SQL, not the engine), on SQLite
 * and PostgreSQL. Goal (issue 17): each stays within 1.2x of the empty repository, or under 5 ms.
 * Also the repository's size per execution, and how fast prune deletes.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNightshift } from '../src/operator.ts';
import type { Database } from '../src/repository/database.ts';
import { createJobExplorer } from '../src/repository/job-repository.ts';
import { recentNodes } from '../src/repository/nodes.ts';
import { openDatabase } from '../src/repository/open.ts';
import { executionCounts, foldExecutionCountsIfBacklog, pruneHistory } from '../src/repository/retention.ts';
import { SQL } from '../src/repository/sql.ts';
import { createMetrics } from '../src/server/metrics.ts';
import { seedHistory } from '../test/support/history.ts';
import { dropSchemas, int, note, schemaName, schemaUrl, table } from './lib/util.ts';

type Op = { name: string; run: () => Promise<unknown> };

function operations(db: Database, scrape: () => Promise<unknown>, nodeId: number, newestId: () => number): Op[] {
  const explorer = createJobExplorer(db);
  const jobs = db.dialect === 'postgres' ? ['job1', 'job2'] : JSON.stringify(['job1', 'job2']);
  const page = (q: Parameters<typeof explorer.pageExecutions>[0]) => () => explorer.pageExecutions(q);
  const hourAgo = () => new Date(Date.now() - 3_600_000);
  return [
    { name: 'list newest 20 (`executions`, console)', run: page({}) },
    { name: 'list by job', run: page({ job: 'job3' }) },
    { name: 'list by status FAILED', run: page({ status: 'FAILED' }) },
    { name: 'list by statuses FAILED,STOPPED', run: page({ statuses: ['FAILED', 'STOPPED'] }) },
    { name: 'list by job and status', run: page({ job: 'job3', status: 'FAILED' }) },
    { name: 'list by node', run: page({ node: 'node2' }) },
    { name: 'list in the last hour', run: page({ from: hourAgo() }) },
    { name: 'parameter text search (one window)', run: page({ text: 'in-99' }) },
    { name: 'one execution with its steps', run: async () => Promise.all([explorer.getExecution(newestId() - 7), explorer.stepsOf(newestId() - 7)]) },
    { name: 'live events poll (changed in the last second)', run: () => db.query(SQL.changedExecutions, [Date.now() - 1000, 500]) },
    { name: 'running executions (console)', run: () => db.query(SQL.activeExecutions) },
    { name: 'nodes (API, console)', run: () => recentNodes(db, 3_600_000) },
    { name: 'Prometheus scrape: its repository reads (counters, nodes)', run: scrape },
    { name: 'claim, queue empty', run: () => db.query(SQL.claim(db.dialect), [nodeId, 'bench-node', jobs, 8]) },
  ];
}

/**
 * Median time of each operation on both repositories, their runs interleaved (empty, full, empty,
 * ...), so that the machine's changing load weighs on both sides alike.
 */
async function timePairs(empty: Op[], full: Op[], reps: number): Promise<Map<string, { empty: number; full: number }>> {
  const out = new Map<string, { empty: number; full: number }>();
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (let i = 0; i < empty.length; i++) {
    for (let w = 0; w < 3; w++) await Promise.all([empty[i].run(), full[i].run()]);
    const te: number[] = [];
    const tf: number[] = [];
    for (let r = 0; r < reps; r++) {
      for (const [op, times] of (r % 2 ? [[full[i], tf], [empty[i], te]] : [[empty[i], te], [full[i], tf]]) as [Op, number[]][]) {
        const t = performance.now();
        await op.run();
        times.push(performance.now() - t);
      }
    }
    out.set(empty[i].name, { empty: median(te), full: median(tf) });
  }
  return out;
}

async function sizeBytes(db: Database, file: string | undefined): Promise<number> {
  if (file) return statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
  const rows = await db.query<{ n: string }>(`SELECT sum(pg_total_relation_size(c.oid)) AS n FROM pg_class c
    WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
      AND c.relname IN ('ns_job_instance', 'ns_job_execution', 'ns_step_execution')`);
  return Number(rows[0].n);
}

interface BackendResult {
  backend: string;
  rows: { name: string; empty: number; full: number }[];
  bytesPerExecution: number;
  seedSeconds: number;
  prune: { executions: number; ms: number };
}

interface Repo {
  db: Database;
  ops: Op[];
  close(): Promise<void>;
}

/** A repository with an alive node, and the operations over it. */
async function openRepo(url: string): Promise<Repo & { newest: { id: number } }> {
  const db = await openDatabase(url);
  const ns = await createNightshift({ db, jobs: [] });
  const metrics = createMetrics(ns);
  await metrics.scrape(); // the whole scrape works on this repository; its reads are timed below
  const [{ id: nodeId }] = await db.query<{ id: number }>(`INSERT INTO ns_node (name, cluster, host, pid, kind, status, jobs, concurrency,
      heartbeat_ms, lease_ms, started_at, last_heartbeat, lease_until) VALUES ('bench-node', 'c', 'h', 1, 'node', 'alive', '["job1","job2"]', 8,
      1000, 10000, ns_now(), ns_now(), ns_now() + 86400000) RETURNING id`);
  const newest = { id: 8 };
  const scrapeReads = async () => {
    await foldExecutionCountsIfBacklog(db);
    return Promise.all([executionCounts(db), ns.nodes()]);
  };
  const ops = operations(db, scrapeReads, Number(nodeId), () => newest.id);
  return {
    db, ops, newest,
    async close() {
      await ns.close();
      await db.close().catch(() => undefined);
    },
  };
}

async function one(backend: 'sqlite' | 'postgres', count: number, reps: number): Promise<BackendResult> {
  const dir = mkdtempSync(join(tmpdir(), 'nightshift-bench-history-'));
  const schemas = [schemaName('history_empty'), schemaName('history_full')];
  const files = [join(dir, 'empty.db'), join(dir, 'full.db')];
  const urls = backend === 'sqlite' ? files.map((f) => `sqlite:${f}`) : schemas.map(schemaUrl);
  const repos: Repo[] = [];
  try {
    const empty = await openRepo(urls[0]);
    repos.push(empty);
    const full = await openRepo(urls[1]);
    repos.push(full);
    // "Empty": a handful of executions, so that "one execution" finds one.
    await seedHistory(empty.db, { count: 10, newestAgeMs: 0 });
    const before = await sizeBytes(full.db, backend === 'sqlite' ? files[1] : undefined);
    note(`history ${backend}: seeding ${int(count)} executions`);
    const t = performance.now();
    const { lastId } = await seedHistory(full.db, { count, newestAgeMs: 0, spacingMs: 100 });
    const seedSeconds = (performance.now() - t) / 1000;
    full.newest.id = lastId;
    // As autovacuum leaves a repository that has run for a while (visibility map, statistics).
    for (const r of [empty, full]) await r.db.exec(backend === 'postgres' ? 'VACUUM ANALYZE' : 'ANALYZE');
    const bytesPerExecution = ((await sizeBytes(full.db, backend === 'sqlite' ? files[1] : undefined)) - before) / count;
    const times = await timePairs(empty.ops, full.ops, reps);
    // Prune: the oldest tenth of history (seeded 100 ms apart: older than count*0.9*100 ms).
    const tp = performance.now();
    const pruned = await pruneHistory(full.db, { olderThanMs: Math.floor(count * 0.9) * 100, nodes: false });
    const pruneMs = performance.now() - tp;
    return {
      backend,
      rows: empty.ops.map((o) => ({ name: o.name, ...times.get(o.name)! })),
      bytesPerExecution,
      seedSeconds,
      prune: { executions: pruned.executions, ms: pruneMs },
    };
  } finally {
    for (const r of repos) await r.close();
    rmSync(dir, { recursive: true, force: true });
    if (backend === 'postgres') await dropSchemas(...schemas);
  }
}

export async function benchHistory(o: { executions: number; reps: number; backends: ('sqlite' | 'postgres')[] }): Promise<string[]> {
  const results: BackendResult[] = [];
  for (const b of o.backends) results.push(await one(b, o.executions, o.reps));
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const lines: string[] = [`## History: hot queries with ${int(o.executions)} past executions vs an almost empty repository (median of ${o.reps}, the two interleaved)`, ''];
  for (const r of results) {
    const ok = r.rows.filter((x) => x.full <= 5 || x.full <= 1.2 * x.empty).length;
    lines.push(`### ${r.backend}: ${ok} of ${r.rows.length} within 1.2x or under 5 ms`, '');
    lines.push(...table(['query', 'empty', `${int(o.executions)} executions`, 'ratio', 'goal met'],
      r.rows.map((x) => [x.name, ms(x.empty), ms(x.full), `${(x.full / x.empty).toFixed(2)}x`, x.full <= 5 || x.full <= 1.2 * x.empty ? 'yes' : 'NO'])));
    lines.push('',
      `Size: ${int(r.bytesPerExecution)} bytes per execution (its instance, execution and one step execution, with every index), ` +
      `${r.backend === 'sqlite' ? 'database file and WAL' : 'pg_total_relation_size of the three tables'}. Seeding took ${r.seedSeconds.toFixed(1)} s. ` +
      `\`prune\` deleted ${int(r.prune.executions)} executions in ${(r.prune.ms / 1000).toFixed(1)} s ` +
      `(${int(r.prune.executions / (r.prune.ms / 1000))} executions/s, batches of 1,000).`, '');
  }
  lines.push('The repository is seeded with set-based SQL (test/support/history.ts): one instance, one execution and one step execution per past run, 10 jobs, 5 nodes, every 47th FAILED and every 97th STOPPED. "Empty" holds 10 executions. The scrape row times what `/metrics` reads from the repository (the same calls as src/server/metrics.ts); the rest of a scrape is prom-client rendering this process\'s own metrics, which does not depend on history (15 ms median here on a loaded machine, with a long tail). The claim runs with an alive node and an empty queue, the idle poll of every node.');
  return lines;
}
