/**
 * `npm run bench`: runs the benchmarks and prints ratio tables against baselines measured in the
 * same run, then updates their sections of bench/RESULTS.md (sections not run are kept).
 *
 * Select benchmarks with arguments or BENCH_ONLY: `npm run bench -- csv memory`, or
 * `BENCH_ONLY=csv,memory npm run bench`. Names: chunk, csv, memory, launch, failover, cron, partition, api,
 * concurrency, submit-many, drain, drain-anatomy, history, startup, many-nodes, lone-launches.
 * Sizes (defaults in parentheses): BENCH_ITEMS (1,000,000), BENCH_ROUNDS (3) and
 * BENCH_CHUNK_BACKENDS (sqlite,postgres) for chunk;
 * BENCH_CSV_ROWS (1,000,000) and BENCH_CSV_ROUNDS (BENCH_ROUNDS) for csv; BENCH_MEMORY_ROWS
 * (10,000,000) for memory; BENCH_LAUNCH_JOBS (5,000), BENCH_LATENCY_SAMPLES (200),
 * BENCH_CONCURRENCY (16), BENCH_PGBOSS_BATCH (100) for launch; BENCH_FAILOVER_REPS (10) for
 * failover; BENCH_CRON_SECONDS (120), BENCH_CRON_TRIGGERS (250,500,1000,2000: one throughput run per count), BENCH_CRON_LOAD_SECONDS (20),
 * BENCH_CRON_PROCESSES (nodes: `nightshift node` processes that also run the jobs; schedulers: firing only)
 * for cron; BENCH_PARTITION_ITEMS (3,200), BENCH_PARTITION_ROUNDS (1,000,000 hash rounds per
 * item), BENCH_PARTITION_GRID (8) for partition; BENCH_API_SECONDS (15), BENCH_API_CLIENTS (200),
 * BENCH_API_WINDOW_SECONDS (10: the job's throughput before and after the load) for api;
 * BENCH_PROCESS_ITEMS (2,000), BENCH_PROCESS_CHUNK (100), BENCH_PROCESS_DELAY_MS (5) for concurrency;
 * BENCH_SUBMIT_JOBS (100,000), BENCH_SUBMIT_BATCH (10,000 items per call), BENCH_SUBMIT_SINGLES (5,000) for submit-many.
 * BENCH_DRAIN_JOBS (20,000), BENCH_DRAIN_BATCH (5,000 per bulk call), BENCH_DRAIN_NS_CONCURRENCY (16,64: a Nightshift
 * run per node concurrency), BENCH_DRAIN_CONCURRENCY (16: graphile-worker's), BENCH_DRAIN_LOCAL_QUEUE (500: graphile-worker's local
 * queue size), BENCH_DRAIN_PGBOSS_BATCH (100) for drain.
 * BENCH_ANATOMY_JOBS (20,000), BENCH_ANATOMY_BATCHES (64,500: claim sizes), BENCH_ANATOMY_ROUNDS (3) for drain-anatomy.
 * BENCH_HISTORY_SIZES (1000000,10000000: past executions, each size timed in turn), BENCH_HISTORY_REPS (30), BENCH_HISTORY_BACKENDS (sqlite,postgres) for history.
 * BENCH_STARTUP_RUNS (15) for startup.
 * BENCH_MANY_NODES (10,50: cluster sizes), BENCH_MANY_NODES_RATE (200 launches/s), BENCH_MANY_NODES_SECONDS (20),
 * BENCH_MANY_NODES_CONCURRENCY (1), BENCH_MANY_NODES_ARGS (the nodes' other arguments; default
 * `--no-listen --no-scheduler --pool-size 1 --pool-idle-ms 100`) for many-nodes.
 * BENCH_LONE_SIZES (10,20: cluster sizes), BENCH_LONE_RATE (50 single submits a second), BENCH_LONE_SECONDS (10),
 * BENCH_LONE_BEFORE (another checkout, its dist/ built, whose nodes run the same sizes too) for lone-launches.
 * BENCH_WRITE=0 leaves RESULTS.md alone.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { benchApiLoad } from './api-load.ts';
import { benchChunkOverhead, type Backend } from './chunk-overhead.ts';
import { benchConcurrency } from './concurrency.ts';
import { benchCron } from './cron.ts';
import { benchCsvImport } from './csv-import.ts';
import { benchDrain } from './drain.ts';
import { benchDrainAnatomy } from './drain-anatomy.ts';
import { benchLoneLaunches } from './lone-launches.ts';
import { benchFailover } from './failover.ts';
import { benchHistory } from './history.ts';
import { benchLaunch } from './launch.ts';
import { benchManyNodes, DEFAULT_NODE_ARGS } from './many-nodes.ts';
import { benchMemory } from './memory.ts';
import { benchPartition } from './partition.ts';
import { benchSubmitMany } from './submit-many.ts';
import { benchStartup } from './startup.ts';
import { envInt, isConnectionLoss, secs, sleep, table } from './lib/util.ts';

const rounds = envInt('BENCH_ROUNDS', 3);

async function chunk(): Promise<string[]> {
  const items = envInt('BENCH_ITEMS', 1_000_000);
  const backends = (process.env.BENCH_CHUNK_BACKENDS ?? 'sqlite,postgres').split(',') as Backend[];
  const rows = await benchChunkOverhead(items, rounds, backends);
  return [
    `## Chunk overhead: count job vs hand-written loop (${items.toLocaleString('en')} items, chunk 1000, median of ${rounds})`,
    '',
    ...table(['backend', 'hand loop', 'Nightshift', 'ratio', 'median of round ratios', 'target', 'main-thread CPU: hand / Nightshift (ratio)'],
      rows.map((r) => [r.backend, secs(r.handMs), secs(r.frameworkMs), `${r.ratio.toFixed(3)}x`, `${r.pairedRatio.toFixed(3)}x`, '<= 1.10x',
        r.handCpuMs === undefined ? 'n/a' : `${secs(r.handCpuMs)} / ${secs(r.frameworkCpuMs!)} (${(r.frameworkCpuMs! / r.handCpuMs).toFixed(2)}x)`])),
    '',
    'Times are wall time: the hand loop\'s, and the step\'s own recorded duration. The ratio is of the two medians; each round runs the hand loop and the job back to back (each side first in every other round; on PostgreSQL after a CHECKPOINT), and the median of those rounds\' own ratios is steadier when the machine\'s speed drifts. The CPU column is this process\'s main thread only (10 ms ticks), the framework\'s from launching the run to its end. On PostgreSQL most of the time is the database\'s.',
  ];
}

const BENCHES: Record<string, () => Promise<string[]>> = {
  chunk,
  csv: () => benchCsvImport(envInt('BENCH_CSV_ROWS', 1_000_000), envInt('BENCH_CSV_ROUNDS', rounds)),
  memory: () => benchMemory(envInt('BENCH_MEMORY_ROWS', 10_000_000)),
  launch: () => benchLaunch({
    jobs: envInt('BENCH_LAUNCH_JOBS', 5000),
    samples: envInt('BENCH_LATENCY_SAMPLES', 200),
    concurrency: envInt('BENCH_CONCURRENCY', 16),
    pgBossBatch: envInt('BENCH_PGBOSS_BATCH', 100),
  }),
  failover: () => benchFailover(envInt('BENCH_FAILOVER_REPS', 10)),
  cron: () => benchCron({
    seconds: envInt('BENCH_CRON_SECONDS', 120),
    triggers: (process.env.BENCH_CRON_TRIGGERS ?? '250,500,1000,2000').split(',').map((n) => Number(n.trim())).filter((n) => n > 0),
    loadSeconds: envInt('BENCH_CRON_LOAD_SECONDS', 20),
    processes: process.env.BENCH_CRON_PROCESSES === 'schedulers' ? 'schedulers' : 'nodes',
  }),
  partition: () => benchPartition({
    items: envInt('BENCH_PARTITION_ITEMS', 3200),
    rounds: envInt('BENCH_PARTITION_ROUNDS', 1_000_000),
    grid: envInt('BENCH_PARTITION_GRID', 8),
  }),
  api: () => benchApiLoad({
    seconds: envInt('BENCH_API_SECONDS', 15),
    clients: envInt('BENCH_API_CLIENTS', 200),
    windowSeconds: envInt('BENCH_API_WINDOW_SECONDS', 10),
  }),
  'submit-many': () => benchSubmitMany({
    jobs: envInt('BENCH_SUBMIT_JOBS', 100_000),
    batch: envInt('BENCH_SUBMIT_BATCH', 10_000),
    singles: envInt('BENCH_SUBMIT_SINGLES', 5000),
  }),
  drain: () => benchDrain({
    jobs: envInt('BENCH_DRAIN_JOBS', 20_000),
    batch: envInt('BENCH_DRAIN_BATCH', 5000),
    nsConcurrency: (process.env.BENCH_DRAIN_NS_CONCURRENCY ?? '16,64').split(',').map((n) => Number(n.trim())).filter((n) => Number.isInteger(n) && n > 0),
    concurrency: envInt('BENCH_DRAIN_CONCURRENCY', 16),
    localQueue: envInt('BENCH_DRAIN_LOCAL_QUEUE', 500),
    pgBossBatch: envInt('BENCH_DRAIN_PGBOSS_BATCH', 100),
    peers: process.env.BENCH_DRAIN_PEERS !== '0',
  }),
  'drain-anatomy': () => benchDrainAnatomy({
    jobs: envInt('BENCH_ANATOMY_JOBS', 20_000),
    rounds: envInt('BENCH_ANATOMY_ROUNDS', 3),
    batches: (process.env.BENCH_ANATOMY_BATCHES ?? '64,500').split(',').map((n) => Number(n.trim())).filter((n) => Number.isInteger(n) && n > 0),
  }),
  history: () => benchHistory({
    sizes: (process.env.BENCH_HISTORY_SIZES ?? process.env.BENCH_HISTORY_EXECUTIONS ?? '1000000,10000000').split(',').map(Number),
    reps: envInt('BENCH_HISTORY_REPS', 30),
    backends: (process.env.BENCH_HISTORY_BACKENDS ?? 'sqlite,postgres').split(',') as ('sqlite' | 'postgres')[],
  }),
  startup: () => benchStartup(envInt('BENCH_STARTUP_RUNS', 15)),
  'many-nodes': () => benchManyNodes({
    sizes: (process.env.BENCH_MANY_NODES ?? '10,50').split(',').map((n) => Number(n.trim())).filter((n) => n > 0),
    rate: envInt('BENCH_MANY_NODES_RATE', 200),
    seconds: envInt('BENCH_MANY_NODES_SECONDS', 20),
    concurrency: envInt('BENCH_MANY_NODES_CONCURRENCY', 1),
    nodeArgs: process.env.BENCH_MANY_NODES_ARGS !== undefined ? process.env.BENCH_MANY_NODES_ARGS.split(/\s+/).filter(Boolean) : DEFAULT_NODE_ARGS,
  }),
  'lone-launches': () => benchLoneLaunches({
    sizes: (process.env.BENCH_LONE_SIZES ?? '10,20').split(',').map((n) => Number(n.trim())).filter((n) => n > 0),
    rate: envInt('BENCH_LONE_RATE', 50),
    seconds: envInt('BENCH_LONE_SECONDS', 10),
    before: process.env.BENCH_LONE_BEFORE || undefined,
  }),
  concurrency: () => benchConcurrency({
    items: envInt('BENCH_PROCESS_ITEMS', 2000),
    chunk: envInt('BENCH_PROCESS_CHUNK', 100),
    delayMs: envInt('BENCH_PROCESS_DELAY_MS', 5),
  }),
};

const args = process.argv.slice(2).flatMap((a) => a.split(',')).filter(Boolean);
const only = args.length ? args : (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean);
const selected = only.length ? only : Object.keys(BENCHES);
const unknown = selected.filter((n) => !(n in BENCHES));
if (unknown.length) throw new Error(`unknown benchmark(s) ${unknown.join(', ')}; choose from ${Object.keys(BENCHES).join(', ')}`);

const RESULTS = new URL('./RESULTS.md', import.meta.url);
const HEADER = `# Benchmark results

Each section below is the output of one \`npm run bench\` run, which replaces the sections it
ran and keeps the others; each section names the command and date that produced it. Machine:
this project's 2-core host, with PostgreSQL 15 on 127.0.0.1 on the same host as the benchmark,
its workers and its database. Other processes (test suites, other engineers' work) may have
shared the machine during a run: treat single runs as about ±15 %.
`;

const envSet = Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_') && k !== 'BENCH_ONLY' && k !== 'BENCH_WRITE')
  .map(([k, v]) => `${k}=${v} `).join('');
const command = `${envSet}npm run bench${only.length ? ` -- ${selected.join(' ')}` : ''}`;

/** Replaces (or appends) the section `name` of RESULTS.md, keeping everything else. */
function writeSection(name: string, body: string[], load: string): void {
  let text: string;
  try {
    text = readFileSync(RESULTS, 'utf8');
  } catch {
    text = HEADER;
  }
  if (!text.includes('<!-- bench:')) text = HEADER; // the old single-section format
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const stamp = `_Produced by \`${command}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; 1-minute load average ${load}._`;
  const section = [start, ...body, '', stamp, end].join('\n');
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + section + text.slice(j + end.length) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(RESULTS, text);
}

/**
 * Runs a benchmark, and again (up to twice) if PostgreSQL went away under it: other suites on
 * this machine restart it. A section that needed a retry says so.
 */
async function withRetry(name: string, bench: () => Promise<string[]>): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      const body = await bench();
      return attempt === 1 ? body : [...body, '', `(Attempt ${attempt}: PostgreSQL was restarted by another process during an earlier attempt.)`];
    } catch (err) {
      if (attempt >= 3 || !isConnectionLoss(err)) throw err;
      process.stderr.write(`bench ${name}: PostgreSQL went away (${(err as Error).message}); retrying in 10 s\n`);
      await sleep(10_000);
    }
  }
}

const t0 = Date.now();
for (const name of selected) {
  process.stderr.write(`bench ${name}...\n`);
  const started = Date.now();
  const loadBefore = loadavg()[0].toFixed(1);
  const body = await withRetry(name, BENCHES[name]);
  const load = `${loadBefore} before, ${loadavg()[0].toFixed(1)} after (2 cores)`;
  console.log(`${body.join('\n')}\n`);
  process.stderr.write(`bench ${name}: ${secs(Date.now() - started)}\n`);
  if (process.env.BENCH_WRITE !== '0') writeSection(name, body, load);
}
process.stderr.write(`all benchmarks: ${secs(Date.now() - t0)}\n`);
