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
    { name: 'list by status and node', run: page({ status: 'STOPPED', node: 'node2' }) },
    { name: 'list by status and node, none match', run: page({ status: 'FAILED', node: 'node-gone' }) },
    { name: 'list in the last hour', run: page({ from: hourAgo() }) },
    { name: 'parameter text search, many match', run: page({ text: 'in-99' }) },
    // One execution 30,000 below the newest: older than the window a page of the search reads.
    { name: 'parameter text search, one match beyond the first window', run: page({ text: `"in-${newestId() - 30_000}.csv"` }) },
    { name: 'console overview: newest 200 with their steps', run: async () => {
      const page = await explorer.pageExecutions({ limit: 200 });
      return explorer.stepsOfMany(page.executions.map((e) => e.id));
    } },
    { name: 'execution detail: its step tree', run: () => explorer.stepTree(newestId() - 7) },
    { name: 'one execution with its steps', run: async () => Promise.all([explorer.getExecutionSummary(newestId() - 7), explorer.stepsOf(newestId() - 7)]) },
    { name: 'live events poll (changed in the last second)', run: () => db.query(SQL.changedExecutions, [Date.now() - 1000, 500]) },
    { name: 'running executions (console)', run: () => db.query(SQL.activeExecutions) },
    { name: 'nodes (API, console)', run: () => recentNodes(db, 3_600_000) },
    { name: 'Prometheus scrape: its repository reads (counters, nodes)', run: scrape },
    { name: 'claim, queue empty', run: () => db.query(SQL.claim(db.dialect), [nodeId, 'bench-node', jobs, 8]) },
    // `--next`: the seeded instances have no run.id, so the second finds none (the most it reads).
    { name: '`--next`: the newest instance of a job', run: () => db.query(SQL.lastInstance, ['job3']) },
    { name: '`--next`: the newest instance with a run.id', run: () => db.query(SQL.lastRunIdParams, ['job3']) },
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

interface SizeResult {
  executions: number;
  rows: { name: string; empty: number; full: number }[];
  bytesPerExecution: number;
  seedSeconds: number;
  prune: { executions: number; ms: number };
}

interface BackendResult {
  backend: string;
  sizes: SizeResult[];
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

/** How many of the oldest executions each size's prune run deletes, at most (and a tenth of a smaller history; restartable ones are kept). */
const PRUNE = 100_000;
const SPACING_MS = 100;

/**
 * One backend at each size, ascending, on one repository: the newest `sizes[0]` executions are
 * seeded first (ids at the top of the range, created up to now), then each next size adds older
 * history below them, so ids and creation times rise together at every size.
 */
async function one(backend: 'sqlite' | 'postgres', sizes: number[], reps: number): Promise<BackendResult> {
  const dir = mkdtempSync(join(tmpdir(), 'nightshift-bench-history-'));
  const schemas = [schemaName('history_empty'), schemaName('history_full')];
  const files = [join(dir, 'empty.db'), join(dir, 'full.db')];
  const urls = backend === 'sqlite' ? files.map((f) => `sqlite:${f}`) : schemas.map(schemaUrl);
  const repos: Repo[] = [];
  const out: SizeResult[] = [];
  try {
    const empty = await openRepo(urls[0]);
    repos.push(empty);
    const full = await openRepo(urls[1]);
    repos.push(full);
    // "Empty": a handful of executions, so that "one execution" finds one.
    await seedHistory(empty.db, { count: 10, newestAgeMs: 0 });
    const top = sizes[sizes.length - 1];
    let seeded = 0;
    let oldestAt = Date.now() + SPACING_MS;
    let bytesBefore = await sizeBytes(full.db, backend === 'sqlite' ? files[1] : undefined);
    for (const size of sizes) {
      const count = size - seeded;
      note(`history ${backend}: seeding ${int(count)} executions (to ${int(size)})`);
      const t = performance.now();
      const r = await seedHistory(full.db, { count, firstId: top - size + 1, newestAt: oldestAt - SPACING_MS, spacingMs: SPACING_MS, bulk: true });
      const seedSeconds = (performance.now() - t) / 1000;
      if (!seeded) full.newest.id = r.lastId;
      seeded = size;
      oldestAt = r.oldestAt;
      // As autovacuum leaves a repository that has run for a while (visibility map, statistics).
      note(`history ${backend}: ${backend === 'postgres' ? 'VACUUM ANALYZE' : 'ANALYZE'}`);
      for (const repo of [empty, full]) await repo.db.exec(backend === 'postgres' ? 'VACUUM ANALYZE' : 'ANALYZE');
      const bytesAfter = await sizeBytes(full.db, backend === 'sqlite' ? files[1] : undefined);
      const bytesPerExecution = (bytesAfter - bytesBefore) / count;
      note(`history ${backend}: timing at ${int(size)}`);
      const times = await timePairs(empty.ops, full.ops, reps);
      // Prune: the oldest PRUNE executions (those that ended before the PRUNE-th oldest was created).
      const tp = performance.now();
      const oldest = Math.min(PRUNE, Math.floor(size / 10));
      const pruned = await pruneHistory(full.db, { olderThanMs: Math.max(0, Date.now() - (oldestAt + oldest * SPACING_MS)), nodes: false });
      const pruneMs = performance.now() - tp;
      bytesBefore = await sizeBytes(full.db, backend === 'sqlite' ? files[1] : undefined);
      out.push({
        executions: size,
        rows: empty.ops.map((o) => ({ name: o.name, ...times.get(o.name)! })),
        bytesPerExecution,
        seedSeconds,
        prune: { executions: pruned.executions, ms: pruneMs },
      });
    }
    return { backend, sizes: out };
  } finally {
    for (const r of repos) await r.close();
    rmSync(dir, { recursive: true, force: true });
    if (backend === 'postgres') await dropSchemas(...schemas);
  }
}

export async function benchHistory(o: { sizes: number[]; reps: number; backends: ('sqlite' | 'postgres')[] }): Promise<string[]> {
  const sizes = [...new Set(o.sizes)].sort((a, b) => a - b);
  const results: BackendResult[] = [];
  for (const b of o.backends) results.push(await one(b, sizes, o.reps));
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  const met = (x: { empty: number; full: number }) => x.full <= 5 || x.full <= 1.2 * x.empty;
  const lines: string[] = [
    `## History: hot queries with ${sizes.map(int).join(' and ')} past executions vs an almost empty repository (median of ${o.reps}, the two interleaved)`, '',
  ];
  for (const r of results) {
    const ok = r.sizes.map((s) => `${s.rows.filter(met).length} of ${s.rows.length} at ${int(s.executions)}`);
    lines.push(`### ${r.backend}: within 1.2x or under 5 ms: ${ok.join(', ')}`, '');
    // Each size is timed against the empty repository again, in the same minutes: its own ratio.
    lines.push(...table(
      ['query', ...r.sizes.flatMap((s) => ['empty', `${int(s.executions)} executions`, 'ratio', 'goal met'])],
      r.sizes[0].rows.map((x, i) => [x.name, ...r.sizes.flatMap((s) => {
        const y = s.rows[i];
        return [ms(y.empty), ms(y.full), `${(y.full / y.empty).toFixed(2)}x`, met(y) ? 'yes' : 'NO'];
      })]),
    ));
    lines.push('');
    for (const s of r.sizes) {
      lines.push(
        `At ${int(s.executions)}: ${int(s.bytesPerExecution)} bytes per execution seeded (its instance, execution and one step execution, with every index), ` +
        `${r.backend === 'sqlite' ? 'database file and WAL' : 'pg_total_relation_size of the three tables'}. Seeding took ${s.seedSeconds.toFixed(1)} s. ` +
        `\`prune\` deleted ${int(s.prune.executions)} executions in ${(s.prune.ms / 1000).toFixed(1)} s ` +
        `(${int(s.prune.executions / (s.prune.ms / 1000))} executions/s, batches of 1,000).`, '');
    }
  }
  lines.push('The repository is seeded with set-based SQL (test/support/history.ts, bulk mode: secondary indexes dropped during the load and built again, counts added in one statement): one instance, one execution and one step execution per past run, 10 jobs, 5 nodes, every 47th FAILED and every 97th STOPPED, created 100 ms apart. The newest executions are seeded first and each larger size adds older history below them; after each size, `prune` deletes its oldest 100,000 (restartable instances are kept), which leaves that gap in the next size\'s history. "Empty" holds 10 executions. The scrape row times what `/metrics` reads from the repository (the same calls as src/server/metrics.ts); the rest of a scrape is prom-client rendering this process\'s own metrics, which does not depend on history. The claim runs with an alive node and an empty queue, the idle poll of every node. "None match" lists a node that ran nothing (a worst case for a single-column index). The parameter search reads at most 5,000 executions per page (no index serves it, see the README): "many match" fills its page from the newest executions; "one match beyond the first window" looks for one execution 30,000 below the newest, and its first page comes back empty with the cursor of the next window.');
  return lines;
}
