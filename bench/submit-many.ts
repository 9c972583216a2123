/**
 * Bulk submit (issue 17): N no-op launches queued at once through `ns.submitMany` on PostgreSQL
 * and on SQLite, side by side with graphile-worker's `addJobs` and pg-boss's `insert` (their bulk
 * enqueues; graphile-worker 0.18 and pg-boss 12, in a client process under bench/peers' Node 22)
 * on the same PostgreSQL, each in its own schema; and Nightshift's single `submit` (8 concurrent
 * callers) as the per-call baseline. Only enqueueing is timed: no worker runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noop } from '../examples/nightshift.config.ts';
import { silentLogger } from '../src/core/logger.ts';
import { createNightshift } from '../src/operator.ts';
import { startPeerClient, type PeerSystem } from './lib/peers.ts';
import { ensurePeers, peerVersion } from './lib/proc.ts';
import pg from 'pg';
import { dropSchemas, int, note, PG, procCpuMs, schemaClient, schemaName, schemaUrl, secs, table } from './lib/util.ts';

export interface SubmitManyOptions {
  jobs: number;
  /** Items per submitMany call (each call inserts in statements of SUBMIT_BATCH). */
  batch: number;
  /** Launches through single `submit` calls, for the per-call baseline. */
  singles: number;
}

interface Row {
  system: string;
  how: string;
  jobs: number;
  ms: number;
  /** CPU time per launch, in microseconds: this process's, and its PostgreSQL backends' (Linux). */
  cpu?: { client: number; server?: number };
}

/** CPU milliseconds so far of each PostgreSQL backend whose application_name is `app`, by pid. */
async function backendsCpuMs(app: string): Promise<Map<number, number>> {
  const client = new pg.Client({ connectionString: PG });
  await client.connect();
  try {
    const rows = (await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [app])).rows;
    return new Map(rows.map((r) => [r.pid, procCpuMs(r.pid)]));
  } finally {
    await client.end();
  }
}

const PRODUCERS = 8;

async function nightshiftBulk(url: string, label: string, o: SubmitManyOptions): Promise<Row> {
  // Its connections are named, so the CPU time of their backends can be read.
  const app = `nsbench_bulk_${process.pid}`;
  const pgUrl = url.startsWith('postgres');
  const ns = await createNightshift({ db: pgUrl ? `${url}&application_name=${app}` : url, jobs: [noop], logger: silentLogger });
  try {
    await ns.submitMany([{ job: 'noop', params: { 'run.id': -1 } }]); // warm up (connection, statements)
    const server0 = pgUrl ? await backendsCpuMs(app) : undefined;
    const client0 = process.cpuUsage();
    const t0 = performance.now();
    for (let from = 0; from < o.jobs; from += o.batch) {
      const items = Array.from({ length: Math.min(o.batch, o.jobs - from) }, (_, k) => ({ job: 'noop' as const, params: { 'run.id': from + k + 1 } }));
      const results = await ns.submitMany(items);
      const refused = results.find((r) => 'error' in r);
      if (refused) throw new Error(`submitMany refused an item: ${JSON.stringify(refused)}`);
    }
    const ms = performance.now() - t0;
    const client = process.cpuUsage(client0);
    let server: number | undefined;
    if (server0) {
      server = 0;
      for (const [pid, cpu] of await backendsCpuMs(app)) server += cpu - (server0.get(pid) ?? 0);
      server = (server * 1000) / o.jobs;
    }
    const queued = Number((await ns.db.query<{ n: string }>(`SELECT count(*) AS n FROM ns_job_execution WHERE status = 'STARTING'`))[0].n);
    if (queued !== o.jobs + 1) throw new Error(`expected ${o.jobs + 1} queued executions, found ${queued}`);
    note(`submit-many: Nightshift ${label} ${int(o.jobs)} in ${secs(ms)}`);
    return {
      system: `Nightshift (${label})`, how: `\`ns.submitMany\`, ${int(o.batch)} items per call`, jobs: o.jobs, ms,
      cpu: { client: (client.user + client.system) / o.jobs, server },
    };
  } finally {
    await ns.close();
  }
}

async function nightshiftSingles(url: string, o: SubmitManyOptions): Promise<Row> {
  const ns = await createNightshift({ db: url, jobs: [noop], logger: silentLogger });
  try {
    let next = 1;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: PRODUCERS }, async () => {
      while (next <= o.singles) await ns.submit('noop', { 'run.id': 10_000_000 + next++ });
    }));
    const ms = performance.now() - t0;
    note(`submit-many: Nightshift single submits ${int(o.singles)} in ${secs(ms)}`);
    return { system: 'Nightshift (PostgreSQL)', how: `\`ns.submit\`, ${PRODUCERS} concurrent callers`, jobs: o.singles, ms };
  } finally {
    await ns.close();
  }
}

/** graphile-worker's `addJobs` or pg-boss's `insert`, timed in its client process. */
async function peerBulk(system: PeerSystem, o: SubmitManyOptions): Promise<Row> {
  const schema = schemaName(system === 'graphile' ? 'bulk_gw' : 'bulk_pb');
  const client = await startPeerClient(system, schema);
  try {
    const ms = await client.bulk(0, o.jobs, o.batch);
    const counter = await schemaClient(schema);
    const table = system === 'graphile' ? '_private_jobs' : 'job';
    const queued = Number((await counter.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`).finally(() => counter.end())).rows[0].n);
    if (queued !== o.jobs) throw new Error(`${system}: expected ${o.jobs} queued jobs, found ${queued}`);
    const name = system === 'graphile' ? `graphile-worker ${peerVersion('graphile-worker')}` : `pg-boss ${peerVersion('pg-boss')}`;
    note(`submit-many: ${name} ${int(o.jobs)} in ${secs(ms)}`);
    return { system: name, how: `\`${system === 'graphile' ? 'addJobs' : 'insert'}\`, ${int(o.batch)} per call`, jobs: o.jobs, ms };
  } finally {
    await client.close();
    await dropSchemas(schema);
  }
}

/** Markdown lines. */
export async function benchSubmitMany(o: SubmitManyOptions): Promise<string[]> {
  ensurePeers(); // before any timing: the first run installs them
  const rows: Row[] = [];
  const pgSchema = schemaName('bulk_ns');
  const singlesSchema = schemaName('bulk_ns1');
  const dir = mkdtempSync(join(tmpdir(), 'nightshift-bench-bulk-'));
  try {
    rows.push(await nightshiftBulk(schemaUrl(pgSchema), 'PostgreSQL', o));
    rows.push(await nightshiftBulk(`sqlite:${join(dir, 'bulk.db')}`, 'SQLite', o));
    rows.push(await nightshiftSingles(schemaUrl(singlesSchema), o));
    rows.push(await peerBulk('graphile', o));
    rows.push(await peerBulk('pgboss', o));
  } finally {
    await dropSchemas(pgSchema, singlesSchema);
    rmSync(dir, { recursive: true, force: true });
  }
  const rate = (r: Row) => (r.jobs / r.ms) * 1000;
  const ns = rate(rows[0]);
  return [
    `## Bulk submit: ${int(o.jobs)} no-op launches queued at once (no worker running)`,
    '',
    ...table(['system', 'how', 'jobs', 'time', 'jobs/s', 'Nightshift PostgreSQL ÷ this', 'target'],
      rows.map((r, i) => [r.system, r.how, int(r.jobs), secs(r.ms), `**${int(rate(r))}/s**`, i === 0 ? '1.00x' : `${(ns / rate(r)).toFixed(2)}x`,
        i === 0 ? '>= 30,000/s' : ''])),
    '',
    'Each Nightshift launch is a job instance and a queued (STARTING) execution with its parameters, checked against the job\'s declaration, with the instance rules applied (a duplicate is refused per item). On PostgreSQL one statement (an INSERT over `unnest`) per 5,000 new instances, two such statements in flight at once on two pooled connections while this process checks the next items; on SQLite one transaction per 5,000. graphile-worker and pg-boss insert one job row each. Each system writes into a fresh schema (a fresh file for SQLite).',
    `CPU time per launch, which the machine's other load changes less than the wall time: ${rows.filter((r) => r.cpu).map((r) =>
      `${r.system} ${r.cpu!.client.toFixed(1)} µs in this process${r.cpu!.server === undefined ? '' : ` and ${r.cpu!.server.toFixed(1)} µs in its PostgreSQL backends`}`).join('; ')}. ` +
      'A launch writes two rows (instance and execution) with eleven index entries (the execution table\'s eight serve the history and claim queries, and the instance table\'s third the default next instance; an instance with a run.id adds a twelfth), and checks the execution\'s foreign key.',
  ];
}
