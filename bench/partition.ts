/**
 * Partitioned steps (issue 6): (a) the speed-up of a CPU-bound partitioned step on the cluster
 * with 2 worker processes against 1, and the same with 2 workers the step launches itself
 * (`workers`, their start-up included); (b) the overhead of partitioning: the same items and
 * work as one chunk step against 8 partitions run one at a time in one process.
 *
 * The job (bench/fixtures/partition.config.ts) hashes each item with a deterministic mixing loop
 * and writes (tag, item, hash) rows; every run must write each item once with the same checksum.
 * Cluster runs: a `nightshift node --concurrency 1` that runs the manager step (its one slot is
 * taken by the execution, so it runs no partitions) and 1 or 2 worker nodes with concurrency 1;
 * the time is the manager step's duration as recorded by the repository.
 */
import { join } from 'node:path';
import { silentLogger } from '../src/core/logger.ts';
import type { StepExecution } from '../src/core/model.ts';
import { createNightshift, type Nightshift } from '../src/operator.ts';
import { cpuPartitioned, cpuPartitionedElastic, cpuPartitionedLocal, cpuPlain } from './fixtures/partition.config.ts';
import { ROOT, startNode, type Proc } from './lib/proc.ts';
import { dropSchemas, note, schemaName, schemaUrl, secs, table, until } from './lib/util.ts';

const FIXTURE = join(ROOT, 'bench/fixtures/partition.config.ts');
const JOBS = [cpuPlain, cpuPartitioned, cpuPartitionedElastic, cpuPartitionedLocal];
const MANAGER = 'pb-manager';

export interface PartitionBenchOptions {
  items: number;
  rounds: number;
  grid: number;
}

interface Run {
  ms: number;
  /** Partitions per node that ran them. */
  spread: Map<string, number>;
  checksum: string;
}

const duration = (s: StepExecution) => s.endTime!.getTime() - s.startTime!.getTime();

/** Rows written for `tag` and the sum of their hashes; each item must be there once. */
async function checksum(ns: Nightshift, tag: string, items: number): Promise<string> {
  const [r] = await ns.db.query<{ n: string | number; d: string | number; sum: string }>(
    'SELECT count(*) AS n, count(DISTINCT item) AS d, sum(hash) AS sum FROM cpu_results WHERE tag = $1', [tag]);
  if (Number(r.n) !== items || Number(r.d) !== items) throw new Error(`${tag}: ${r.n} rows, ${r.d} distinct items, expected ${items}`);
  return String(r.sum);
}

/**
 * One cluster run: the manager node and `workers` worker nodes (or, with `launched`, none: the
 * step launches `launched` itself), all with concurrency 1.
 */
async function clusterRun(o: PartitionBenchOptions, workers: number, launched = 0): Promise<Run> {
  const schema = schemaName(`part${workers}${launched ? 'l' : ''}`);
  const url = schemaUrl(schema);
  const ns = await createNightshift({ db: url, jobs: JOBS, logger: silentLogger });
  // `--config` given again after lib/proc.ts's examples config: the last one wins.
  const args = ['--config', FIXTURE, '--concurrency', '1'];
  const procs: Proc[] = [startNode(url, MANAGER, args)];
  for (let i = 1; i <= workers; i++) procs.push(startNode(url, `pb-worker${i}`, args));
  try {
    await until(`${procs.length} nodes alive`, async () => (await ns.nodes()).filter((n) => n.status === 'alive').length === procs.length, 60_000, 50);
    const job = launched ? 'cpu-partitioned-elastic' : 'cpu-partitioned';
    const tag = `w${workers}l${launched}`;
    const submitted = await ns.submit(job, { ...o, tag, workers: launched || 1 }, { node: MANAGER });
    const done = await ns.waitForEnd(submitted.id, { timeoutMs: 300_000 });
    const manager = done.steps.find((s) => s.stepName === 'work');
    if (done.status !== 'COMPLETED' || !manager) {
      throw new Error(`${job} ended ${done.status}: ${done.exitStatus.description}\n${procs.map((p) => p.output()).join('\n')}`);
    }
    const spread = new Map<string, number>();
    for (const s of done.steps) if (s.stepName.startsWith('work:partition')) spread.set(s.node ?? '?', (spread.get(s.node ?? '?') ?? 0) + 1);
    if (spread.has(MANAGER)) throw new Error(`the manager's node ran partitions: ${[...spread].join(' ')}`);
    if (launched) {
      const nodes = await ns.nodes();
      const gone = nodes.filter((n) => n.name.startsWith(`${MANAGER}-w`));
      if (gone.length !== launched || gone.some((n) => n.status !== 'left')) {
        throw new Error(`launched workers: ${gone.map((n) => `${n.name} ${n.status}`).join(', ') || 'none joined'}`);
      }
    }
    return { ms: duration(manager), spread, checksum: await checksum(ns, tag, o.items) };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await ns.close();
    await dropSchemas(schema);
  }
}

/**
 * Where `grid` partitions land on 3 nodes with room for all of them (concurrency 4 each; the
 * manager's execution takes one slot of the node that runs it), with the nodes claiming by
 * `spread`: partitions per node, counted as soon as all are claimed.
 */
async function spreadRun(o: PartitionBenchOptions, spread: 'even' | 'first-come'): Promise<Map<string, number>> {
  const schema = schemaName(`partspread${spread === 'even' ? 'e' : 'f'}`);
  const url = schemaUrl(schema);
  const ns = await createNightshift({ db: url, jobs: JOBS, logger: silentLogger });
  const args = ['--config', FIXTURE, '--concurrency', '4', '--spread', spread];
  const procs = ['ps-a', 'ps-b', 'ps-c'].map((n) => startNode(url, n, args));
  try {
    await until('3 nodes alive', async () => (await ns.nodes()).filter((n) => n.status === 'alive').length === 3, 60_000, 50);
    const submitted = await ns.submit('cpu-partitioned', { ...o, tag: `spread-${spread}`, workers: 1 });
    const sql = `SELECT node_name FROM ns_step_execution WHERE job_execution_id = $1 AND manager_id IS NOT NULL AND node_name IS NOT NULL`;
    const rows = await until(`${o.grid} partitions claimed`, async () => {
      const r = await ns.db.query<{ node_name: string }>(sql, [submitted.id]);
      return r.length >= o.grid ? r : undefined;
    }, 120_000, 20);
    const counts = new Map(['ps-a', 'ps-b', 'ps-c'].map((n) => [n, 0]));
    for (const r of rows) counts.set(r.node_name, (counts.get(r.node_name) ?? 0) + 1);
    const done = await ns.waitForEnd(submitted.id, { timeoutMs: 300_000 });
    if (done.status !== 'COMPLETED') throw new Error(`spread run (${spread}) ended ${done.status}: ${done.exitStatus.description}`);
    return counts;
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await ns.close();
    await dropSchemas(schema);
  }
}

/** The same work in this process: one chunk step, and `grid` partitions run one at a time. */
async function localRuns(o: PartitionBenchOptions): Promise<{ plain: Run; partitioned: Run }> {
  const schema = schemaName('partlocal');
  const ns = await createNightshift({ db: schemaUrl(schema), jobs: JOBS, logger: silentLogger });
  try {
    const run = async (job: (typeof JOBS)[number]['name'], tag: string): Promise<Run> => {
      const e = await ns.run(job, { ...o, tag });
      const step = e.steps.find((s) => s.stepName === 'work');
      if (e.status !== 'COMPLETED' || !step) throw new Error(`${job} ended ${e.status}: ${e.exitStatus.description}`);
      return { ms: duration(step), spread: new Map(), checksum: await checksum(ns, tag, o.items) };
    };
    const plain = await run('cpu-plain', 'plain');
    note(`partition: one chunk step ${secs(plain.ms)}`);
    const partitioned = await run('cpu-partitioned-local', 'local');
    note(`partition: ${o.grid} partitions in one process ${secs(partitioned.ms)}`);
    return { plain, partitioned };
  } finally {
    await ns.close();
    await dropSchemas(schema);
  }
}

const spreadText = (r: Run) => [...r.spread].sort().map(([n, c]) => `${n}: ${c}`).join(', ');

export async function benchPartition(o: PartitionBenchOptions): Promise<string[]> {
  const one = await clusterRun(o, 1);
  note(`partition: 1 worker ${secs(one.ms)}`);
  const two = await clusterRun(o, 2);
  note(`partition: 2 workers ${secs(two.ms)}`);
  const elastic = await clusterRun(o, 0, 2);
  note(`partition: 2 launched workers ${secs(elastic.ms)}`);
  const spreadItems = { ...o, items: Math.max(6, Math.round(o.items / 4)), grid: 6 };
  const spreads: { how: 'even' | 'first-come'; counts: Map<string, number> }[] = [];
  for (const how of ['even', 'first-come'] as const) {
    for (let k = 0; k < 3; k++) spreads.push({ how, counts: await spreadRun(spreadItems, how) });
  }
  note(`partition: spread ${spreads.map((r) => `${r.how} ${[...r.counts.values()].join('/')}`).join(', ')}`);
  const { plain, partitioned } = await localRuns(o);
  const sums = new Set([one, two, elastic, plain, partitioned].map((r) => r.checksum));
  if (sums.size !== 1) throw new Error(`checksums differ between runs: ${[...sums].join(', ')}`);
  const perItem = (plain.ms / o.items).toFixed(2);
  return [
    `## Partitioned steps: CPU-bound partitions on 1 vs 2 worker processes, and the overhead of partitioning (${o.items.toLocaleString('en')} items, ${o.grid} partitions, PostgreSQL)`,
    '',
    ...table(['setting', 'manager step', 'speed-up vs 1 worker', 'partitions per node', 'target'], [
      ['1 worker node (concurrency 1)', secs(one.ms), '1.00x', spreadText(one), ''],
      ['2 worker nodes (concurrency 1 each)', secs(two.ms), `**${(one.ms / two.ms).toFixed(2)}x**`, spreadText(two), '>= 1.8x'],
      ['2 workers launched by the step (`workers: { count: 2, concurrency: 1 }`, start-up included)', secs(elastic.ms), `${(one.ms / elastic.ms).toFixed(2)}x`, spreadText(elastic), ''],
    ]),
    '',
    ...table(['spread: 6 partitions on 3 nodes × concurrency 4', 'partitions per node (a/b/c), 3 runs', 'most minus fewest', 'target'],
      (['even', 'first-come'] as const).map((how) => {
        const runs = spreads.filter((r) => r.how === how).map((r) => [...r.counts.values()]);
        const gap = Math.max(...runs.map((c) => Math.max(...c) - Math.min(...c)));
        return [how === 'even' ? '`--spread even` (default)' : '`--spread first-come` (before)', runs.map((c) => c.join('/')).join(', '), String(gap), how === 'even' ? '<= 1' : ''];
      })),
    '',
    ...table(['same work in one process', 'step', 'ratio', 'target'], [
      ['one chunk step', secs(plain.ms), '1.00x', ''],
      [`${o.grid} partitions, one at a time (\`mode: 'local'\`, concurrency 1)`, secs(partitioned.ms), `**${(partitioned.ms / plain.ms).toFixed(3)}x**`, 'overhead, lower is better'],
    ]),
    '',
    `Each item is a deterministic hash loop of ${o.rounds.toLocaleString('en')} rounds (about ${perItem} ms of CPU here), written as a row in chunks of 25; every run wrote each item once with the same checksum. ` +
      `Cluster runs: a \`nightshift node --concurrency 1\` runs the manager step (its one slot holds the execution, so it runs no partitions) and worker nodes with \`--concurrency 1\` run the partitions; ` +
      'the time is the manager step\'s recorded duration, with the nodes started beforehand (launched workers: started by the step, so their start-up through tsx is included).',
  ];
}
