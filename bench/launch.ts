/**
 * Launch throughput and latency (SPEC section 9, issue 4): no-op jobs through Nightshift's
 * `submit` with 2 `nightshift node` processes, side by side with graphile-worker 0.18 and
 * pg-boss 12 (2 worker processes each, under bench/peers' Node 22) on the same PostgreSQL, each
 * system in its own schema and run alone.
 *
 * - Throughput: PRODUCERS concurrent submitters enqueue N jobs one call each (Nightshift's in
 *   this process; a peer's in its client process, bench/peers/client.mjs); the clock runs from
 *   the first submit until one count query finds every job completed (polled every 20 ms).
 * - Latency: on the idle system, one job at a time, from just before the enqueue call to the
 *   start of its handler (Nightshift: the noop step's recorded start; the others: the handler
 *   reports its start over IPC). Same host, same clock.
 */
import type pg from 'pg';
import { count, noop } from '../examples/nightshift.config.ts';
import { silentLogger } from '../src/core/logger.ts';
import { createNightshift } from '../src/operator.ts';
import { startPeerClient, startPeerWorker, type PeerClient } from './lib/peers.ts';
import { ensurePeers, peerVersion, startNode, type Proc } from './lib/proc.ts';
import { dropSchemas, epochMs, int, note, quantile, schemaClient, schemaName, schemaUrl, secs, sleep, table, until } from './lib/util.ts';

/** Concurrent submitters, the same for every system. */
const PRODUCERS = 8;

export interface LaunchOptions {
  jobs: number;
  samples: number;
  /** Nightshift node concurrency and graphile-worker concurrency. */
  concurrency: number;
  pgBossBatch: number;
}

/** One system under test, started and ready. */
interface System {
  name: string;
  settings: string;
  /** Enqueues no-op jobs 1..jobs from PRODUCERS concurrent callers, one call each; resolves with the ms it took. */
  submit(jobs: number): Promise<number>;
  /** Jobs enqueued so far that have not completed (one query). */
  remaining(): Promise<number>;
  /** Enqueues job `i` and resolves with the ms from before the enqueue to its handler's start. */
  sample(i: number): Promise<number>;
  close(): Promise<void>;
}

/** Routes `{ lat, t }` messages of worker processes to the sample waiting for them. */
function latencyInbox(procs: readonly Proc[]) {
  const waiting = new Map<number, (t: number) => void>();
  for (const p of procs) p.child.on('message', (m: { lat?: number; t?: number }) => m.lat !== undefined && waiting.get(m.lat)?.(m.t!));
  return {
    /** Runs `enqueue` and resolves with the handler start time reported for `i`. */
    async startOf(i: number, enqueue: () => Promise<unknown>): Promise<number> {
      const started = new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`job ${i} did not start within 10 s`)), 10_000);
        waiting.set(i, (t) => (clearTimeout(timer), waiting.delete(i), resolve(t)));
      });
      await enqueue();
      return started;
    },
  };
}

const countOf = async (client: pg.Client, sql: string) => Number((await client.query<{ n: string }>(sql)).rows[0].n);

async function nightshift(o: LaunchOptions): Promise<System> {
  const schema = schemaName('launch_ns');
  const url = schemaUrl(schema);
  const ns = await createNightshift({ db: url, jobs: [noop, count], logger: silentLogger });
  // BENCH_SPREAD=first-come compares the nodes' claiming without the even spread.
  const spread = process.env.BENCH_SPREAD ? ['--spread', process.env.BENCH_SPREAD] : [];
  const nodes = ['bench-a', 'bench-b'].map((name) => startNode(url, name, ['--concurrency', String(o.concurrency), ...spread]));
  await until('2 nodes alive', async () => (await ns.nodes()).filter((n) => n.status === 'alive').length === 2, 60_000, 100);
  const submit = (i: number) => ns.submit('noop', { 'run.id': i });
  return {
    name: 'Nightshift',
    settings: `2 \`nightshift node\` × concurrency ${o.concurrency}, \`ns.submit\``,
    async submit(jobs) {
      let next = 1;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: PRODUCERS }, async () => {
        while (next <= jobs) await submit(next++);
      }));
      return performance.now() - t0;
    },
    remaining: async () => Number((await ns.db.query<{ n: string }>(`SELECT count(*) AS n FROM ns_job_execution WHERE status <> 'COMPLETED'`))[0].n),
    async sample(i) {
      const t0 = epochMs();
      const { id } = await submit(i);
      const done = await until(`execution ${id} completed`, async () => {
        const e = await ns.getExecution(id);
        return e?.status === 'COMPLETED' ? e : undefined;
      }, 10_000, 5);
      return done.steps[0].startTime!.getTime() - t0;
    },
    async close() {
      await Promise.all(nodes.map((n) => n.stop()));
      await ns.close();
      await dropSchemas(schema);
    },
  };
}

/** A peer's latency sample: the client enqueues job `i` marked for it, its worker reports the handler's start. */
async function peerSample(inbox: ReturnType<typeof latencyInbox>, client: PeerClient, i: number): Promise<number> {
  let t0 = 0;
  const started = await inbox.startOf(i, async () => (t0 = await client.sample(i)));
  return started - t0;
}

async function graphileWorker(o: LaunchOptions): Promise<System> {
  const schema = schemaName('launch_gw');
  const client = await startPeerClient('graphile', schema);
  const counter = await schemaClient(schema);
  const workers = (await Promise.all([0, 1].map(() => startPeerWorker('graphile-worker.mjs', [schema, String(o.concurrency)])))).map((w) => w.proc);
  const inbox = latencyInbox(workers);
  return {
    name: `graphile-worker ${peerVersion('graphile-worker')}`,
    settings: `2 processes × concurrency ${o.concurrency}, pool ${o.concurrency + 1} connections, otherwise defaults (no local queue), \`addJob\``,
    submit: (jobs) => client.singles(1, jobs, PRODUCERS),
    // Completed jobs are deleted.
    remaining: () => countOf(counter, 'SELECT count(*) AS n FROM _private_jobs'),
    sample: (i) => peerSample(inbox, client, i),
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await counter.end();
      await client.close();
      await dropSchemas(schema);
    },
  };
}

async function pgBoss(o: LaunchOptions): Promise<System> {
  const schema = schemaName('launch_pb');
  const client = await startPeerClient('pgboss', schema, { notify: true });
  const counter = await schemaClient(schema);
  const workers = (await Promise.all([0, 1].map(() => startPeerWorker('pg-boss-worker.mjs', [schema, String(o.pgBossBatch), '1'])))).map((w) => w.proc);
  const inbox = latencyInbox(workers);
  return {
    name: `pg-boss ${peerVersion('pg-boss')}`,
    settings: `2 processes × 1 \`work()\` loop, batchSize ${o.pgBossBatch}, burstWhenBatchFull, LISTEN/NOTIFY wake-up (queue \`notify\`), polling 0.5 s, \`send\``,
    submit: (jobs) => client.singles(1, jobs, PRODUCERS),
    remaining: () => countOf(counter, `SELECT count(*) AS n FROM job WHERE state <> 'completed'`),
    sample: (i) => peerSample(inbox, client, i),
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await counter.end();
      await client.close();
      await dropSchemas(schema);
    },
  };
}

interface Measured {
  system: System;
  totalMs: number;
  submitMs: number;
  latencies: number[];
}

async function measure(start: (o: LaunchOptions) => Promise<System>, o: LaunchOptions): Promise<Measured> {
  const system = await start(o);
  try {
    const t0 = performance.now();
    const submitMs = await system.submit(o.jobs);
    await until(`${system.name}: ${o.jobs} jobs completed`, async () => (await system.remaining()) === 0, 1_200_000, 20);
    const totalMs = performance.now() - t0;
    note(`launch: ${system.name} ${int(o.jobs)} jobs in ${secs(totalMs)} (submitted in ${secs(submitMs)})`);
    const latencies: number[] = [];
    for (let k = 0; k < o.samples + 5; k++) {
      const ms = await system.sample(o.jobs + 1 + k);
      if (k >= 5) latencies.push(ms); // the first few warm up
      await sleep(10);
    }
    note(`launch: ${system.name} latency p50 ${quantile(latencies, 0.5).toFixed(1)} ms`);
    return { system, totalMs, submitMs, latencies };
  } finally {
    await system.close();
  }
}

/** Runs the three systems one after another; Markdown lines. */
export async function benchLaunch(o: LaunchOptions): Promise<string[]> {
  ensurePeers(); // before any timing: the first run installs them
  const results: Measured[] = [];
  for (const start of [nightshift, graphileWorker, pgBoss]) results.push(await measure(start, o));
  const rate = (m: Measured) => (o.jobs / m.totalMs) * 1000;
  const ns = rate(results[0]);
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  return [
    `## Launch throughput and latency: ${int(o.jobs)} no-op jobs, 2 worker processes per system, ${PRODUCERS} concurrent submitters`,
    '',
    ...table(['system', 'settings', 'launches/s', 'all completed', 'submitting alone', 'Nightshift ÷ this', `latency p50 / p99 (${o.samples} samples)`],
      results.map((m) => [
        m.system.name, m.system.settings, `**${int(rate(m))}/s**`, secs(m.totalMs), secs(m.submitMs),
        m === results[0] ? '1.00x' : `${(ns / rate(m)).toFixed(2)}x`,
        `${ms(quantile(m.latencies, 0.5))} / ${ms(quantile(m.latencies, 0.99))}`,
      ])),
    '',
    'Launches/s: jobs ÷ time from the first submit until a count query finds all completed. Latency: enqueue call to handler start on an idle system, one job at a time.',
    'graphile-worker and pg-boss run under Node 22 (bench/peers), their submitters in a client process of their own; Nightshift\'s submitters run in this process. graphile-worker wakes its workers with LISTEN/NOTIFY (its local queue batching is measured in the drain section); pg-boss 12 does with `useListenNotify` and a queue created with `notify`, and fetches again at once after a full batch (burstWhenBatchFull).',
  ];
}
