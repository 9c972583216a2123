/**
 * Lone launches on many listening nodes (issue 17, many nodes): N `nightshift node` processes
 * with LISTEN on and concurrency 1 take a stream of single `submit` calls. Each launch's
 * notification names its execution, and only the node whose turn it is claims (see wakeTurn);
 * before, every idle node woke and claimed. Reported per size: claims per launch (calls of
 * ns_queued_ids, which every claim runs, counted by PostgreSQL's function statistics), claim
 * latency (start minus creation, by the database's clock), and launches per node. With
 * BENCH_LONE_BEFORE=DIR, the same sizes also run with the nodes of another checkout (its dist/
 * built), for a before/after in one run.
 */
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { silentLogger } from '../src/core/logger.ts';
import { createNightshift } from '../src/operator.ts';
import { noop } from '../examples/nightshift.config.ts';
import { ROOT, startNode, type Proc } from './lib/proc.ts';
import { PG, dropSchemas, int, note, quantile, schemaName, schemaUrl, sleep, table, until } from './lib/util.ts';

export interface LoneLaunchOptions {
  sizes: number[];
  /** Launches a second, one `submit` after another. */
  rate: number;
  seconds: number;
  /** Another checkout to run the same sizes with (its dist/ built), or undefined. */
  before: string | undefined;
}

const NODE_ARGS = ['--concurrency', '1', '--no-scheduler', '--pool-size', '2'];

interface Result {
  build: string;
  nodes: number;
  launched: number;
  streamSeconds: number;
  claims: number;
  p50: number;
  p99: number;
  perNode: { min: number; max: number };
}

async function admin(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: PG });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function claimCalls(c: pg.Client, schema: string): Promise<number> {
  const r = await c.query<{ n: string | null }>(`SELECT sum(calls) AS n FROM pg_stat_user_functions WHERE schemaname = $1 AND funcname = 'ns_queued_ids'`, [schema]);
  return Number(r.rows[0].n ?? 0);
}

async function runSize(n: number, root: string, build: string, o: LoneLaunchOptions): Promise<Result> {
  const schema = schemaName(`lone${n}`);
  const ns = await createNightshift({ db: schemaUrl(schema), jobs: [noop], logger: silentLogger });
  const c = await admin();
  const nodes: Proc[] = [];
  try {
    for (let i = 0; i < n; i += 5) {
      for (let k = i; k < Math.min(n, i + 5); k++) nodes.push(startNode(schemaUrl(schema), `ll-${k}`, NODE_ARGS, root));
      await until(`${Math.min(n, i + 5)} nodes alive`, async () => (await ns.nodes()).filter((x) => x.status === 'alive').length >= Math.min(n, i + 5), 300_000, 200);
    }
    // Every node has seen every other (a membership change is looked at within a heartbeat).
    await sleep(3000);
    const c0 = await claimCalls(c, schema);
    const total = o.rate * o.seconds;
    const period = 1000 / o.rate;
    const t0 = performance.now();
    for (let k = 0; k < total; k++) {
      const wait = t0 + k * period - performance.now();
      if (wait > 0) await sleep(wait);
      await ns.submit('noop', { 'run.id': k + 1 });
    }
    const streamSeconds = (performance.now() - t0) / 1000;
    await until('every launch completed', async () => {
      const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.ns_job_execution WHERE status = 'COMPLETED'`);
      return Number(r.rows[0].n) >= total;
    }, 300_000, 200);
    // A session reports its function statistics when it ends: the nodes leave, then they are in.
    await Promise.all(nodes.map((p) => p.stop()));
    await sleep(1000);
    const claims = await claimCalls(c, schema);
    const rows = (await c.query<{ ms: string; node_name: string }>(`SELECT start_time - create_time AS ms, node_name FROM ${schema}.ns_job_execution`)).rows;
    const ms = rows.map((r) => Number(r.ms));
    const per = nodes.map((_, k) => rows.filter((r) => r.node_name === `ll-${k}`).length);
    return { build, nodes: n, launched: total, streamSeconds, claims: claims - c0, p50: quantile(ms, 0.5), p99: quantile(ms, 0.99), perNode: { min: Math.min(...per), max: Math.max(...per) } };
  } finally {
    await Promise.all(nodes.map((p) => p.stop()));
    await c.end();
    await ns.close();
    await dropSchemas(schema);
  }
}

/** The commit checked out in `dir`, to name a build by. */
function commitOf(dir: string): string {
  try {
    return execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return dir;
  }
}

export async function benchLoneLaunches(o: LoneLaunchOptions): Promise<string[]> {
  const c = await admin();
  const db = (await c.query<{ d: string }>('SELECT current_database() AS d')).rows[0].d;
  // Function statistics for the sessions that start from now on (the nodes'), reset after.
  await c.query(`ALTER DATABASE ${db} SET track_functions = 'pl'`);
  const results: Result[] = [];
  try {
    const builds: [string, string][] = [['this build', ROOT], ...(o.before ? [[`before (${commitOf(o.before)})`, o.before] as [string, string]] : [])];
    for (const n of o.sizes) {
      for (const [build, root] of builds) {
        const r = await runSize(n, root, build, o);
        note(`lone launches, ${build}, ${n} nodes: ${(r.claims / r.launched).toFixed(2)} claims per launch, p50 ${Math.round(r.p50)} ms`);
        results.push(r);
      }
    }
  } finally {
    await c.query(`ALTER DATABASE ${db} RESET track_functions`);
    await c.end();
  }
  return [
    `## Lone launches: ${int(o.rate)} single \`submit\` calls a second for ${o.seconds} s, on nodes that LISTEN`,
    '',
    `Nodes run \`nightshift node ${NODE_ARGS.join(' ')}\`.`,
    '',
    ...table(['build', 'nodes', 'launches/s achieved', 'claims per launch', 'claim latency p50 / p99', 'launches per node min–max'],
      results.map((r) => [r.build, r.nodes, int(r.launched / r.streamSeconds), `**${(r.claims / r.launched).toFixed(2)}**`, `${Math.round(r.p50)} ms / ${Math.round(r.p99)} ms`, `${r.perNode.min}–${r.perNode.max}`])),
    '',
    'Claims are the calls of ns_queued_ids (every claim runs it once) in the nodes\' sessions, from PostgreSQL\'s function statistics (track_functions = pl for the run), from 3 s after the last node joined until the nodes left once the last launch completed; they include the idle look each node takes every 10 s, and a look after an end when work may be waiting. Claim latency is each execution\'s recorded start minus its creation (the database\'s clock).',
    ...(o.before ? [`"before" runs the nodes of another checkout (commit ${commitOf(o.before)}, its own dist/), with the same benchmark and database.`] : []),
    'A node whose pool closes its connections when idle (`--pool-idle-ms 100`, the many-nodes setting) opens one for each launch whose turn it has, where a launch that woke every node found them open: use turns with a pool that stays open, or `--no-listen` (polls, no notifications) in a tight connection budget.',
  ];
}
