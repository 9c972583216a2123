/**
 * Drain throughput (issue 17): N no-op jobs queued at once with each system's bulk enqueue, THEN
 * 2 worker processes started; the drain rate is N ÷ the time from the workers' start until one
 * count query finds every job done. Nightshift (2 `nightshift node` processes, jobs queued with
 * `ns.submitMany` on PostgreSQL) side by side with graphile-worker 0.18 at its default settings
 * and with its local queue batching, and pg-boss 12, on the same PostgreSQL; each system in its
 * own schema and run alone, one after the other. The peers run under bench/peers' Node 22.
 *
 * The start is the same for every system: while the workers start, a transaction of this process
 * holds the system's job table in EXCLUSIVE mode, so plain reads go on but no worker can claim
 * (their claiming statements wait on the lock). Once every worker process says it is ready
 * (Nightshift: both nodes alive in ns_node) and at least as many claims as worker processes wait
 * on the lock, with no job done yet, the transaction commits and the clock starts. So the drain
 * time counts no process start-up and loses no work done before the clock.
 */
import pg from 'pg';
import { noop } from '../examples/nightshift.config.ts';
import { silentLogger } from '../src/core/logger.ts';
import { createNightshift } from '../src/operator.ts';
import { SQL } from '../src/repository/sql.ts';
import { startPeerClient, startPeerWorker } from './lib/peers.ts';
import { ensurePeers, peerVersion, startNode, type Proc } from './lib/proc.ts';
import { dropSchemas, int, note, PG, postgresCpuMs, procCpuMs, schemaClient, schemaName, schemaUrl, secs, table, until } from './lib/util.ts';

export interface DrainOptions {
  jobs: number;
  /** Jobs per bulk enqueue call, for every system. */
  batch: number;
  /** Nightshift node concurrency: a run each. */
  nsConcurrency: readonly number[];
  /** graphile-worker concurrency (both of its settings). */
  concurrency: number;
  /** graphile-worker's local queue size in its batching setting. */
  localQueue: number;
  pgBossBatch: number;
  /** Whether to run the peers too (false: Nightshift alone, to compare changes of its own). */
  peers: boolean;
}

/** Worker processes per system. */
const WORKERS = 2;

/** One system under test: its schema set up, nothing queued, no worker running. */
interface System {
  name: string;
  settings: string;
  /** The schema-qualified table whose lock keeps the workers from claiming. */
  jobTable: string;
  /** Queues the N jobs with the bulk enqueue; resolves with the ms it took. */
  enqueue(): Promise<number>;
  /** Jobs queued and ready to run (after enqueue). */
  queued(): Promise<number>;
  /** Starts the worker processes and resolves once all of them are ready. */
  startWorkers(): Promise<Proc[]>;
  /** Jobs not done yet (one query). */
  remaining(): Promise<number>;
  /** Jobs done, counted as the system records them, to check after the drain. */
  done(): Promise<number>;
  /** How the jobs were spread over the workers, when the system records it. */
  spread?(): Promise<string>;
  close(): Promise<void>;
}

const countOf = async (client: pg.Client, sql: string) => Number((await client.query<{ n: string }>(sql)).rows[0].n);

async function nightshift(o: DrainOptions, concurrency: number): Promise<System> {
  const schema = schemaName('drain_ns');
  const url = schemaUrl(schema);
  const ns = await createNightshift({ db: url, jobs: [noop], logger: silentLogger });
  const count = async (where: string) => Number((await ns.db.query<{ n: string }>(`SELECT count(*) AS n FROM ns_job_execution WHERE ${where}`))[0].n);
  return {
    name: 'Nightshift',
    settings: `${WORKERS} \`nightshift node\` × concurrency ${concurrency}; \`ns.submitMany\`, ${int(o.batch)} per call`,
    jobTable: `${schema}.ns_job_execution`,
    async enqueue() {
      const t0 = performance.now();
      for (let from = 0; from < o.jobs; from += o.batch) {
        const items = Array.from({ length: Math.min(o.batch, o.jobs - from) }, (_, k) => ({ job: 'noop' as const, params: { 'run.id': from + k + 1 } }));
        const refused = (await ns.submitMany(items)).find((r) => 'error' in r);
        if (refused) throw new Error(`submitMany refused an item: ${JSON.stringify(refused)}`);
      }
      return performance.now() - t0;
    },
    queued: () => count(`status = 'STARTING'`),
    async startWorkers() {
      const nodes = Array.from({ length: WORKERS }, (_, k) => startNode(url, `drain-${k}`, ['--concurrency', String(concurrency)]));
      try {
        const exited = Promise.race(nodes.map((n) => n.exited.then(() => Promise.reject(new Error(`node ${n.pid} exited:\n${n.output()}`)))));
        await Promise.race([exited, until(`${WORKERS} nodes alive`, async () => (await ns.nodes()).filter((n) => n.status === 'alive').length === WORKERS, 60_000, 20)]);
        return nodes;
      } catch (err) {
        await Promise.all(nodes.map((n) => n.stop()));
        throw err;
      }
    },
    // The unended ones, from the status counters the metrics read: a count of the table would
    // read every row version, every 20 ms, on the database the nodes drain. The done count below
    // reads the table itself.
    async remaining() {
      const rows = await ns.db.query<{ status: string; n: string }>(SQL.executionCounts);
      return rows.filter((r) => ['STARTING', 'STARTED', 'STOPPING'].includes(r.status)).reduce((sum, r) => sum + Number(r.n), 0);
    },
    done: () => count(`status = 'COMPLETED'`),
    async spread() {
      const rows = await ns.db.query<{ node_name: string; n: string }>('SELECT node_name, count(*) AS n FROM ns_job_execution GROUP BY node_name ORDER BY node_name');
      return rows.map((r) => `${r.node_name} ${int(Number(r.n))}`).join(', ');
    },
    async close() {
      await ns.close();
      await dropSchemas(schema);
    },
  };
}

async function graphileWorker(o: DrainOptions, localQueue: boolean): Promise<System> {
  const schema = schemaName(localQueue ? 'drain_gwlq' : 'drain_gw');
  const client = await startPeerClient('graphile', schema);
  const counter = await schemaClient(schema);
  const pool = `pool ${o.concurrency + 1} connections`;
  return {
    name: `graphile-worker ${peerVersion('graphile-worker')}${localQueue ? ', local queue batching' : ''}`,
    settings: localQueue
      ? `${WORKERS} processes × concurrency ${o.concurrency}, ${pool}, local queue size ${o.localQueue}, completeJobBatchDelay 0, failJobBatchDelay 0; \`addJobs\`, ${int(o.batch)} per call`
      : `${WORKERS} processes × concurrency ${o.concurrency}, ${pool}, otherwise defaults; \`addJobs\`, ${int(o.batch)} per call`,
    jobTable: `${schema}._private_jobs`,
    enqueue: () => client.bulk(1, o.jobs, o.batch),
    queued: () => countOf(counter, 'SELECT count(*) AS n FROM _private_jobs WHERE locked_at IS NULL AND attempts = 0'),
    async startWorkers() {
      const args = [schema, String(o.concurrency), String(localQueue ? o.localQueue : 0)];
      const workers = await Promise.all(Array.from({ length: WORKERS }, () => startPeerWorker<{ ready: true; localQueue: boolean }>('graphile-worker.mjs', args)));
      const procs = workers.map((w) => w.proc);
      if (workers.some((w) => w.ready.localQueue !== localQueue)) {
        await Promise.all(procs.map((p) => p.stop()));
        throw new Error(`graphile-worker's local queue is ${localQueue ? 'off' : 'on'} in a worker, expected ${localQueue ? 'on' : 'off'}`);
      }
      return procs;
    },
    // Completed jobs are deleted; a failed one stays (and is retried), so it never reaches 0.
    remaining: () => countOf(counter, 'SELECT count(*) AS n FROM _private_jobs'),
    // Nothing records completions: every job is gone and none failed (a failure keeps its row).
    done: async () => o.jobs - (await countOf(counter, 'SELECT count(*) AS n FROM _private_jobs')),
    async close() {
      await counter.end();
      await client.close();
      await dropSchemas(schema);
    },
  };
}

async function pgBoss(o: DrainOptions): Promise<System> {
  const schema = schemaName('drain_pb');
  const client = await startPeerClient('pgboss', schema);
  const counter = await schemaClient(schema);
  return {
    name: `pg-boss ${peerVersion('pg-boss')}`,
    settings: `${WORKERS} processes × 1 \`work()\` loop, batchSize ${o.pgBossBatch}, burstWhenBatchFull, polling 0.5 s (its minimum); \`insert\`, ${int(o.batch)} per call`,
    jobTable: `${schema}.job`,
    enqueue: () => client.bulk(1, o.jobs, o.batch),
    queued: () => countOf(counter, `SELECT count(*) AS n FROM job WHERE state = 'created'`),
    async startWorkers() {
      const workers = await Promise.all(Array.from({ length: WORKERS }, () => startPeerWorker('pg-boss-worker.mjs', [schema, String(o.pgBossBatch)])));
      return workers.map((w) => w.proc);
    },
    remaining: () => countOf(counter, `SELECT count(*) AS n FROM job WHERE state <> 'completed'`),
    done: () => countOf(counter, `SELECT count(*) AS n FROM job WHERE state = 'completed'`),
    async close() {
      await counter.end();
      await client.close();
      await dropSchemas(schema);
    },
  };
}

interface Measured {
  name: string;
  settings: string;
  enqueueMs: number;
  drainMs: number;
  /** CPU milliseconds spent during the drain: by the worker processes, and by PostgreSQL's processes. */
  cpu: { workers: number; database: number };
  spread?: string;
}

async function measure(start: () => Promise<System>, o: DrainOptions): Promise<Measured> {
  const system = await start();
  let workers: Proc[] = [];
  const gate = new pg.Client({ connectionString: PG });
  gate.on('error', () => undefined);
  try {
    const enqueueMs = await system.enqueue();
    const queued = await system.queued();
    if (queued !== o.jobs) throw new Error(`${system.name}: expected ${o.jobs} queued jobs, found ${queued}`);
    note(`drain: ${system.name} queued ${int(o.jobs)} in ${secs(enqueueMs)}`);
    await gate.connect();
    await gate.query('BEGIN');
    await gate.query(`LOCK TABLE ${system.jobTable} IN EXCLUSIVE MODE`);
    workers = await system.startWorkers();
    // Ready means claiming: at least one claim of each worker process waits on the lock.
    await until(`${system.name}: ${WORKERS} workers waiting to claim`, async () => (await countOf(gate, `SELECT count(*) AS n FROM pg_locks
      WHERE NOT granted AND relation IN (SELECT '${system.jobTable}'::regclass UNION SELECT inhrelid FROM pg_inherits WHERE inhparent = '${system.jobTable}'::regclass)`)) >= WORKERS, 60_000, 10);
    const before = await system.remaining();
    if (before !== o.jobs) throw new Error(`${system.name}: ${o.jobs - before} jobs done before the clock started`);
    const workersCpu = () => workers.reduce((sum, w) => sum + procCpuMs(w.pid), 0);
    const cpu0 = { workers: workersCpu(), database: postgresCpuMs() };
    const t0 = performance.now();
    await gate.query('COMMIT');
    await until(`${system.name}: ${o.jobs} jobs done`, async () => (await system.remaining()) === 0, 1_200_000, 20);
    const drainMs = performance.now() - t0;
    const cpu = { workers: workersCpu() - cpu0.workers, database: postgresCpuMs() - cpu0.database };
    const done = await system.done();
    if (done !== o.jobs) throw new Error(`${system.name}: expected ${o.jobs} jobs done, found ${done}`);
    note(`drain: ${system.name} drained ${int(o.jobs)} in ${secs(drainMs)}`);
    return { name: system.name, settings: system.settings, enqueueMs, drainMs, cpu, spread: await system.spread?.() };
  } finally {
    await gate.end().catch(() => undefined);
    await Promise.all(workers.map((w) => w.stop()));
    await system.close();
  }
}

/** Warns when the Nightshift nodes' pools (concurrency + 4 connections each) may not fit in PostgreSQL's free connections. */
async function checkConnections(o: DrainOptions): Promise<void> {
  const client = new pg.Client({ connectionString: PG });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const max = Number((await client.query<{ max_connections: string }>('SHOW max_connections')).rows[0].max_connections);
    const used = await countOf(client, 'SELECT count(*) AS n FROM pg_stat_activity');
    const need = WORKERS * (Math.max(...o.nsConcurrency) + 4);
    if (need > max - used - 5) note(`drain: the ${WORKERS} Nightshift nodes may open up to ${need} connections; PostgreSQL allows ${max}, ${used} in use now`);
  } finally {
    await client.end();
  }
}

/** Runs the four settings one after another; Markdown lines. */
export async function benchDrain(o: DrainOptions): Promise<string[]> {
  if (o.peers) ensurePeers(); // before any timing: the first run installs them
  await checkConnections(o);
  const results: Measured[] = [];
  const peers = o.peers ? [() => graphileWorker(o, false), () => graphileWorker(o, true), () => pgBoss(o)] : [];
  const systems = [...o.nsConcurrency.map((c) => () => nightshift(o, c)), ...peers];
  for (const start of systems) results.push(await measure(start, o));
  const rate = (ms: number) => (o.jobs / ms) * 1000;
  const ours = results.slice(0, o.nsConcurrency.length);
  const best = Math.max(...ours.map((m) => rate(m.drainMs)));
  const perJob = (ms: number) => int((ms * 1000) / o.jobs);
  return [
    `## Drain: ${int(o.jobs)} no-op jobs queued in bulk, then ${WORKERS} worker processes per system`,
    '',
    ...table(['system', 'settings', 'enqueue jobs/s', 'drain jobs/s', 'best Nightshift ÷ this', 'CPU per job: workers / PostgreSQL'],
      results.map((m) => [m.name, m.settings, int(rate(m.enqueueMs)), `**${int(rate(m.drainMs))}/s**`, `${(best / rate(m.drainMs)).toFixed(2)}x`,
        `${perJob(m.cpu.workers)} / ${perJob(m.cpu.database)} µs`])),
    '',
    `Executions per Nightshift node: ${ours.map((m, i) => `concurrency ${o.nsConcurrency[i]}: ${m.spread}`).join('; ')}.`,
    '',
    'Enqueue: the bulk calls alone, no worker running. Drain: jobs ÷ time from the workers\' start until one count query (every 20 ms) finds all done; the workers start while this process holds the job table in EXCLUSIVE mode (no claim can proceed), and the clock starts when it lets go, once all of them are ready and at least as many claims as workers wait on that lock (no job done yet). Then the finished jobs are counted: Nightshift\'s COMPLETED executions, pg-boss\'s completed jobs, and graphile-worker\'s job table empty (it deletes a completed job and keeps a failed one).',
    'CPU per job: the CPU time the worker processes, and all of PostgreSQL\'s processes (backends, WAL writer, autovacuum), spent from the clock\'s start to its end (Linux /proc, 10 ms ticks), ÷ the jobs; this process\'s count queries are in the PostgreSQL figure. On 2 cores, 1,000,000 ÷ (workers + PostgreSQL) µs is the rate the CPU alone allows.',
    'Each Nightshift job is a job instance, an execution and a step execution, claimed and ended with fencing, its history kept; a peer\'s job is one row, which graphile-worker deletes when done and pg-boss marks completed. graphile-worker and pg-boss run under Node 22 (bench/peers), Nightshift under the project\'s Node.',
  ];
}
