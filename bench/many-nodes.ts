/**
 * Many nodes (issue 17): N `nightshift node` processes with low concurrency on one PostgreSQL, in
 * a connection budget (`--no-listen --no-scheduler`, a pool of 1 that closes when idle), for
 * N = 10 and 50. Each size: the cluster idles, then takes a steady stream of no-op launches
 * (`submitMany` of 10 items every 10/rate s, one call at a time on one connection, so that the
 * benchmark itself needs no new connection while the nodes use up the server's); then, at the
 * largest size, the node running a long job is
 * SIGKILLed. Reported per size: claim latency (each execution's recorded start minus its
 * creation, both by the database's clock), the heartbeat writes a second (row updates of
 * ns_node), rows read from ns_node a second (what grows with N when each node reads every node),
 * statements a second (pg_stat_statements when installed: the whole database), peak connections
 * of the cluster (by application_name), and the spread of the stream over the nodes.
 */
import pg from 'pg';
import { silentLogger } from '../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../src/operator.ts';
import { count, noop } from '../examples/nightshift.config.ts';
import { startNode, type Proc } from './lib/proc.ts';
import { PG, dropSchemas, int, note, quantile, schemaName, schemaUrl, secs, sleep, table, until } from './lib/util.ts';

export interface ManyNodesOptions {
  /** Cluster sizes, run one after the other. */
  sizes: number[];
  /** Launches a second in the stream. */
  rate: number;
  /** Length of the stream. */
  seconds: number;
  /** Each node's concurrency. */
  concurrency: number;
  /** The nodes' arguments besides name, database, config and concurrency. */
  nodeArgs: string[];
}

/** 50 nodes × (1 heartbeat + 1 pooled) fit in 100 connections only because pools close within 100 ms of idling. */
export const DEFAULT_NODE_ARGS = ['--no-listen', '--no-scheduler', '--pool-size', '1', '--pool-idle-ms', '100'];

interface Counters {
  at: number;
  nodeUpdates: number;
  nodeReads: number;
  statements: number | undefined;
}

interface SizeResult {
  nodes: number;
  startMs: number;
  idle: Rates;
  stream: Rates;
  idleConnections: number;
  peakConnections: number;
  launched: number;
  /** How long submitting the stream took (longer than planned when submits fell behind). */
  streamSeconds: number;
  p50: number;
  p99: number;
  max: number;
  perNode: { min: number; max: number };
  failoverMs?: number;
  topStatements: { calls: number; query: string }[];
}

interface Rates {
  heartbeatWrites: number;
  nodeReads: number;
  statements: number | undefined;
}

async function admin(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: PG });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function counters(c: pg.Client, schema: string, statements: boolean): Promise<Counters> {
  // Other backends report their table statistics about once a second.
  const t = await c.query<{ upd: string; reads: string }>(
    `SELECT n_tup_upd AS upd, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS reads FROM pg_stat_user_tables
     WHERE schemaname = $1 AND relname = 'ns_node'`, [schema]);
  const s = statements ? await c.query<{ n: string }>(`SELECT sum(calls) AS n FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`) : undefined;
  return { at: performance.now(), nodeUpdates: Number(t.rows[0]?.upd ?? 0), nodeReads: Number(t.rows[0]?.reads ?? 0), statements: s ? Number(s.rows[0].n) : undefined };
}

function rates(a: Counters, b: Counters): Rates {
  const s = (b.at - a.at) / 1000;
  return {
    heartbeatWrites: (b.nodeUpdates - a.nodeUpdates) / s,
    nodeReads: (b.nodeReads - a.nodeReads) / s,
    statements: a.statements === undefined || b.statements === undefined ? undefined : (b.statements - a.statements) / s,
  };
}

async function connectionsOf(c: pg.Client, app: string): Promise<number> {
  return Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE $1`, [`${app}%`])).rows[0].n);
}

const aliveCount = async (ns: Nightshift) => (await ns.nodes()).filter((n) => n.status === 'alive').length;

async function runSize(n: number, o: ManyNodesOptions, statements: boolean, withFailover: boolean): Promise<SizeResult> {
  const schema = schemaName(`many${n}`);
  const app = `nsmany${n}_${process.pid}`;
  const url = `${schemaUrl(schema)}&application_name=${app}`;
  // The bench's own connections are named apart from the cluster's.
  const ns = await createNightshift({ db: `${schemaUrl(schema)}&application_name=bench${process.pid}`, jobs: [noop, count], logger: silentLogger });
  const c = await admin();
  const nodes = new Map<string, Proc>();
  let peak = 0;
  let sampling = true;
  // Samples taken while the cluster idles (see idleConnections).
  let idleSamples: number[] | undefined;
  const sampler = (async () => {
    while (sampling) {
      const now = await connectionsOf(c, app).catch(() => 0);
      peak = Math.max(peak, now);
      idleSamples?.push(now);
      await sleep(200);
    }
  })();
  try {
    const t0 = performance.now();
    // In waves of 5, so that 50 start-ups (each loads TypeScript) do not all compete at once.
    for (let i = 0; i < n; i += 5) {
      for (let k = i; k < Math.min(n, i + 5); k++) {
        const name = `mn-${k}`;
        nodes.set(name, startNode(url, name, ['--concurrency', String(o.concurrency), ...o.nodeArgs]));
      }
      await until(`${Math.min(n, i + 5)} nodes alive`, async () => (await aliveCount(ns)) >= Math.min(n, i + 5), 300_000, 200);
    }
    const startMs = performance.now() - t0;
    note(`many-nodes ${n}: all alive after ${secs(startMs)}`);
    await sleep(5000);
    idleSamples = [];
    const i0 = await counters(c, schema, statements);
    await sleep(10_000);
    const i1 = await counters(c, schema, statements);
    const idleConnections = quantile(idleSamples, 0.5);
    idleSamples = undefined;
    if (statements) await c.query('SELECT pg_stat_statements_reset()');
    // The stream: 10 launches every 10/rate s, on a fixed schedule (no drift).
    const total = o.rate * o.seconds;
    const period = 10_000 / o.rate;
    const s0 = await counters(c, schema, statements);
    const streamStart = performance.now();
    let refused = 0;
    for (let k = 0; k < total; k += 10) {
      const due = streamStart + (k / 10) * period;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const items = Array.from({ length: Math.min(10, total - k) }, (_, j) => ({ job: 'noop' as const, params: { 'run.id': k + j + 1 } }));
      refused += (await ns.submitMany(items)).filter((r) => 'error' in r).length;
    }
    if (refused) throw new Error(`${refused} launches refused`);
    const streamSeconds = (performance.now() - streamStart) / 1000;
    const s1 = await counters(c, schema, statements);
    await until('every launch completed', async () => {
      const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.ns_job_execution WHERE job_name = 'noop' AND status = 'COMPLETED'`);
      return Number(r.rows[0].n) >= total;
    }, 300_000, 500);
    const lat = await c.query<{ ms: string; node_name: string }>(
      `SELECT start_time - create_time AS ms, node_name FROM ${schema}.ns_job_execution WHERE job_name = 'noop'`);
    const ms = lat.rows.map((r) => Number(r.ms));
    const perNode = new Map<string, number>();
    for (const r of lat.rows) perNode.set(r.node_name, (perNode.get(r.node_name) ?? 0) + 1);
    for (const name of nodes.keys()) if (!perNode.has(name)) perNode.set(name, 0);
    const topStatements = statements
      ? (await c.query<{ calls: string; query: string }>(
          `SELECT calls, regexp_replace(query, '\\s+', ' ', 'g') AS query FROM pg_stat_statements
           WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY calls DESC LIMIT 8`)).rows
          .map((r) => ({ calls: Number(r.calls), query: r.query.slice(0, 90) }))
      : [];
    let failoverMs: number | undefined;
    if (withFailover) failoverMs = await failover(ns, nodes);
    const result: SizeResult = {
      nodes: n, startMs, idle: rates(i0, i1), stream: rates(s0, s1), idleConnections, peakConnections: peak, launched: total, streamSeconds,
      p50: quantile(ms, 0.5), p99: quantile(ms, 0.99), max: Math.max(...ms),
      perNode: { min: Math.min(...perNode.values()), max: Math.max(...perNode.values()) }, failoverMs, topStatements,
    };
    note(`many-nodes ${n}: ${JSON.stringify(result)}`);
    return result;
  } finally {
    sampling = false;
    await sampler;
    await Promise.all([...nodes.values()].map((p) => p.stop(15_000)));
    await ns.close();
    await c.end();
    await dropSchemas(schema);
  }
}

/** SIGKILLs the node running a long count job; ms until its new execution starts elsewhere. */
async function failover(ns: Nightshift, nodes: Map<string, Proc>): Promise<number> {
  const submitted = await ns.submit('count', { items: 1_000_000, chunk: 10, delayMs: 5, tag: 'many-nodes-failover' });
  const running = await until('the count job running', async () => {
    const e = await ns.explorer.getExecution(submitted.id);
    return e?.status === 'STARTED' && e.node ? e : undefined;
  }, 30_000);
  await sleep(300);
  const proc = nodes.get(running.node!)!;
  const killedAt = Date.now();
  proc.child.kill('SIGKILL');
  await proc.exited;
  const next = await until('the job running again', async () => {
    const all = await ns.explorer.executionsOfInstance(running.instanceId);
    return all.find((e) => e.id > running.id && e.startTime && e.status !== 'STARTING');
  }, 60_000, 10);
  await ns.stop(next.id).catch(() => undefined);
  return next.startTime!.getTime() - killedAt;
}

/** Runs each size; Markdown lines. */
export async function benchManyNodes(o: ManyNodesOptions): Promise<string[]> {
  const c = await admin();
  const statements = (await c.query(`SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'`)).rows.length > 0;
  const maxConnections = (await c.query<{ max_connections: string }>('SHOW max_connections')).rows[0].max_connections;
  await c.end();
  const results: SizeResult[] = [];
  const largest = Math.max(...o.sizes);
  for (const n of o.sizes) results.push(await runSize(n, o, statements, n === largest));
  const perNode = (x: number, n: number) => `${int(x)} (${(x / n).toFixed(1)}/node)`;
  const stmts = (r: Rates, n: number) => (r.statements === undefined ? 'n/a' : perNode(r.statements, n));
  const lines = [
    `## Many nodes: ${o.sizes.join(' and ')} node processes, concurrency ${o.concurrency}, a stream of ${int(o.rate)} no-op launches a second for ${o.seconds} s`,
    '',
    `Nodes run \`nightshift node --concurrency ${o.concurrency} ${o.nodeArgs.join(' ')}\`, PostgreSQL max_connections ${maxConnections}.`,
    '',
    ...table(
      ['nodes', 'all alive after', 'stream (launches/s achieved)', 'claim latency p50 / p99 / max', 'heartbeat writes/s idle (stream)', 'ns_node rows read/s idle (stream)', 'statements/s idle (stream)', 'connections idle / peak', 'launches per node min–max'],
      results.map((r) => [
        r.nodes, secs(r.startMs), int(r.launched / r.streamSeconds), `**${Math.round(r.p50)} ms** / ${Math.round(r.p99)} ms / ${Math.round(r.max)} ms`,
        `${perNode(r.idle.heartbeatWrites, r.nodes)} (${int(r.stream.heartbeatWrites)})`,
        `${perNode(r.idle.nodeReads, r.nodes)} (${perNode(r.stream.nodeReads, r.nodes)})`,
        `${stmts(r.idle, r.nodes)} (${stmts(r.stream, r.nodes)})`,
        `${r.idleConnections} / ${r.peakConnections}`, `${r.perNode.min}–${r.perNode.max}`,
      ]),
    ),
    '',
  ];
  const withFailover = results.find((r) => r.failoverMs !== undefined);
  if (withFailover) lines.push(`Failover at ${withFailover.nodes} nodes: SIGKILL of the node running a long \`count\` job until it runs again elsewhere: **${secs(withFailover.failoverMs!)}** (default lease 3.5 s).`, '');
  for (const r of results) {
    if (!r.topStatements.length) continue;
    lines.push(`Most frequent statements during the ${r.nodes}-node stream (pg_stat_statements, whole database, calls):`, '');
    lines.push(...table(['calls', 'statement'], r.topStatements.map((s) => [int(s.calls), `\`${s.query.replace(/\|/g, '\\|')}\``])), '');
  }
  lines.push(
    "Claim latency is each execution's recorded start minus its creation (the database's clock). Heartbeat writes are row updates of ns_node (pg_stat_user_tables); rows read are its sequential and index tuple reads. At these sizes ns_node is a page or two, which the planner reads whole even for one row, so rows read grow with the nodes for every statement on it (the heartbeat's too): compare statements a second per node, and, in the stream, rows read per launch (the even spread reads every live node per claim). Connections are the cluster's sessions by application_name, sampled every 200 ms (idle: the median over the idle window; peak: over the whole run). Statements a second include the benchmark's own sampling (about 6 a second).",
  );
  return lines;
}
