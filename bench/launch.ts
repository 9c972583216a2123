/**
 * Launch throughput and latency (SPEC section 9, issue 4): no-op jobs through Nightshift's
 * `submit` with 2 `nightshift node` processes, side by side with graphile-worker 0.17 and
 * pg-boss 10 (2 worker processes each) on the same PostgreSQL, each system in its own schema
 * and run alone.
 *
 * - Throughput: PRODUCERS concurrent submitters in this process enqueue N jobs; the clock runs
 *   from the first submit until one count query finds every job completed (polled every 20 ms).
 * - Latency: on the idle system, one job at a time, from just before the enqueue call to the
 *   start of its handler (Nightshift: the noop step's recorded start; the others: the handler
 *   reports its start over IPC). Same host, same clock.
 */
import { makeWorkerUtils } from 'graphile-worker';
import type pg from 'pg';
import PgBoss from 'pg-boss';
import { count, noop } from '../examples/nightshift.config.ts';
import { silentLogger } from '../src/core/logger.ts';
import { createNightshift } from '../src/operator.ts';
import { nextMessage, startNode, startScript, type Proc } from './lib/proc.ts';
import { dropSchemas, epochMs, int, note, PG, quantile, schemaClient, schemaName, schemaUrl, secs, sleep, table, until } from './lib/util.ts';

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
  /** Enqueues no-op job `i` (distinct identifying parameters per i). */
  enqueue(i: number): Promise<unknown>;
  /** Jobs enqueued so far that have not completed (one query). */
  remaining(): Promise<number>;
  /** Enqueues job `i` and resolves with the ms from before the enqueue to its handler's start. */
  sample(i: number): Promise<number>;
  /** Pause between latency samples: random over a polling period, so samples are not phase-locked to it. */
  gapMs?: () => number;
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
    enqueue: submit,
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

async function graphileWorker(o: LaunchOptions): Promise<System> {
  const schema = schemaName('launch_gw');
  const utils = await makeWorkerUtils({ connectionString: PG, schema });
  await utils.migrate();
  const counter = await schemaClient(schema);
  const workers = [0, 1].map(() => startScript('workers/graphile.ts', [schema, String(o.concurrency)]));
  await Promise.all(workers.map((w) => nextMessage<{ ready?: boolean }>(w, (m) => m.ready === true, 60_000)));
  const inbox = latencyInbox(workers);
  return {
    name: 'graphile-worker 0.17',
    settings: `2 processes × concurrency ${o.concurrency}, \`addJob\``,
    enqueue: (i) => utils.addJob('noop', { i }),
    // Completed jobs are deleted.
    remaining: () => countOf(counter, 'SELECT count(*) AS n FROM _private_jobs'),
    async sample(i) {
      const t0 = epochMs();
      return (await inbox.startOf(i, () => utils.addJob('noop', { i, lat: i }))) - t0;
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await counter.end();
      await utils.release();
      await dropSchemas(schema);
    },
  };
}

async function pgBoss(o: LaunchOptions): Promise<System> {
  const schema = schemaName('launch_pb');
  const loops = 1;
  const boss = new PgBoss({ connectionString: PG, schema, supervise: false, schedule: false });
  boss.on('error', (err) => note(`pg-boss (producer) error: ${err.message}`));
  await boss.start();
  await boss.createQueue('noop');
  const counter = await schemaClient(schema);
  const workers = [0, 1].map(() => startScript('workers/pgboss.ts', [schema, String(o.pgBossBatch), String(loops)]));
  await Promise.all(workers.map((w) => nextMessage<{ ready?: boolean }>(w, (m) => m.ready === true, 60_000)));
  const inbox = latencyInbox(workers);
  return {
    name: 'pg-boss 10',
    settings: `2 processes × ${loops} \`work()\` loop, batchSize ${o.pgBossBatch}, polling 0.5 s (its minimum), \`send\``,
    enqueue: (i) => boss.send('noop', { i }),
    remaining: () => countOf(counter, `SELECT count(*) AS n FROM job WHERE state <> 'completed'`),
    async sample(i) {
      const t0 = epochMs();
      return (await inbox.startOf(i, () => boss.send('noop', { i, lat: i }))) - t0;
    },
    gapMs: () => Math.random() * 500,
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await counter.end();
      await boss.stop({ graceful: false, wait: true });
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
    let next = 1;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: PRODUCERS }, async () => {
      while (next <= o.jobs) await system.enqueue(next++);
    }));
    const submitMs = performance.now() - t0;
    await until(`${system.name}: ${o.jobs} jobs completed`, async () => (await system.remaining()) === 0, 1_200_000, 20);
    const totalMs = performance.now() - t0;
    note(`launch: ${system.name} ${int(o.jobs)} jobs in ${secs(totalMs)} (submitted in ${secs(submitMs)})`);
    const latencies: number[] = [];
    for (let k = 0; k < o.samples + 5; k++) {
      const ms = await system.sample(o.jobs + 1 + k);
      if (k >= 5) latencies.push(ms); // the first few warm up
      await sleep(system.gapMs?.() ?? 10);
    }
    note(`launch: ${system.name} latency p50 ${quantile(latencies, 0.5).toFixed(1)} ms`);
    return { system, totalMs, submitMs, latencies };
  } finally {
    await system.close();
  }
}

/** Runs the three systems one after another; Markdown lines. */
export async function benchLaunch(o: LaunchOptions): Promise<string[]> {
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
    'pg-boss 10 has no LISTEN/NOTIFY wake-up: each `work()` loop polls (0.5 s at the least) and waits out the interval even after a full batch, so it is bound by batchSize ÷ 0.5 s per loop. graphile-worker 0.17 uses LISTEN/NOTIFY and no local queue batching (that came in 0.18).',
  ];
}
