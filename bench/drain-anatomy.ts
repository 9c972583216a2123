/**
 * Where a drained no-op job's database work goes (issue 17): the drain's two statements alone,
 * without nodes or the engine. N no-op jobs are queued with `ns.submitMany`; then one connection
 * claims a batch (the nodes' claim, which starts each execution's first step) and ends it (the
 * nodes' grouped end, fenced per execution), again and again until all are done. Each variant
 * runs in a fresh schema and measures PostgreSQL's CPU per job (all its processes, autovacuum
 * included) and this process's, from /proc:
 *
 * - the repository as it is, with a claim the size of a node's concurrency and a larger one;
 * - without what keeps the history queryable: the history indexes, the status counters' trigger
 *   and the step's foreign key (what a job costs when it is a queue entry and little more).
 *
 * A loop lasts seconds, less than autovacuum's nap (a minute by default): whether autovacuum
 * runs meanwhile is chance, and none of the variants turns it off.
 *
 * The variants are measurements, not options: the repository needs each part they remove.
 */
import { noop } from '../examples/nightshift.config.ts';
import { silentLogger } from '../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../src/operator.ts';
import { SQL } from '../src/repository/sql.ts';
import { dropSchemas, int, note, postgresCpuMs, procCpuMs, schemaName, schemaUrl, table } from './lib/util.ts';

export interface AnatomyOptions {
  jobs: number;
  /** Claim sizes: the variant "as it is" runs once per size. */
  batches: readonly number[];
  /** Rounds of every variant, interleaved; each row shows the round of median PostgreSQL CPU. */
  rounds: number;
}

interface Variant {
  name: string;
  batch: number;
  /** Statements run on the fresh repository before the jobs are queued. */
  prepare: string[];
}

/** The indexes of migrations 4-6 and 8 that serve history reads, not the claim or the fence. */
const HISTORY_INDEXES = ['updated', 'created', 'status', 'job', 'node', 'node_ended', 'running'].map(
  (i) => `DROP INDEX ns_job_execution_${i}`,
);

const STRIPPED = [
  ...HISTORY_INDEXES,
  'DROP TRIGGER ns_count_update ON ns_job_execution',
  'ALTER TABLE ns_step_execution DROP CONSTRAINT ns_step_execution_job_execution_id_fkey',
  'DROP INDEX ns_step_execution_job',
];

interface Measured {
  variant: Variant;
  jobs: number;
  claims: number;
  pgCpuMs: number;
  clientCpuMs: number;
  wallMs: number;
}

async function measure(o: AnatomyOptions, variant: Variant): Promise<Measured> {
  const schema = schemaName('anatomy');
  let ns: Nightshift<typeof noop> | undefined;
  try {
    ns = await createNightshift({ db: schemaUrl(schema), jobs: [noop], logger: silentLogger });
    for (const statement of variant.prepare) await ns.db.exec(statement);
    for (let from = 0; from < o.jobs; from += 5000) {
      const items = Array.from({ length: Math.min(5000, o.jobs - from) }, (_, k) => ({ job: 'noop' as const, params: { 'run.id': from + k + 1 } }));
      await ns.submitMany(items);
    }
    // Every variant's plans from the same statistics (autovacuum may not have analyzed yet).
    await ns.db.exec('ANALYZE ns_job_execution, ns_job_instance, ns_step_execution');
    const node = Number((await ns.db.query<{ id: number }>(SQL.insertNode, ['anatomy', 'default', 'bench', process.pid, 'node', '["noop"]', variant.batch, 1000, 3_600_000, 3_600_000]))[0].id);
    const claimParams = [node, 'anatomy', ['noop'], variant.batch, ['noop'], ['noop'] /* its one step */];
    const pg0 = postgresCpuMs();
    const me0 = procCpuMs(process.pid);
    const t0 = performance.now();
    let done = 0;
    let claims = 0;
    for (;;) {
      const rows = await ns.db.query<{ id: number; owner_epoch: number; first_step: { id: number } | null }>(SQL.claimStartingStep, claimParams);
      if (!rows.length) break;
      claims++;
      // finishExecutionsEndingSteps' 20 columns, one element per execution.
      const columns: unknown[][] = Array.from({ length: 20 }, () => []);
      for (const r of rows) {
        if (!r.first_step) throw new Error(`execution ${r.id} was claimed without its first step`);
        const values = [r.id, node, r.owner_epoch, 'COMPLETED', 'COMPLETED', '', '{}', r.first_step.id, 0, 0, 0, 0, 0, 0, 1, 0, '{}', 'COMPLETED', 'COMPLETED', ''];
        values.forEach((v, i) => columns[i].push(v));
      }
      const ended = await ns.db.query(SQL.finishExecutionsEndingSteps, columns);
      if (ended.length !== rows.length) throw new Error(`${ended.length} of ${rows.length} claimed executions ended`);
      done += rows.length;
    }
    const measured = { variant, jobs: done, claims, pgCpuMs: postgresCpuMs() - pg0, clientCpuMs: procCpuMs(process.pid) - me0, wallMs: performance.now() - t0 };
    if (done !== o.jobs) throw new Error(`${variant.name}: ${done} of ${o.jobs} jobs ended`);
    return measured;
  } finally {
    await ns?.close();
    await dropSchemas(schema);
  }
}

export async function benchDrainAnatomy(o: AnatomyOptions): Promise<string[]> {
  if (!o.batches.length) throw new Error('drain-anatomy needs at least one claim size (BENCH_ANATOMY_BATCHES)');
  const largest = Math.max(...o.batches);
  const variants: Variant[] = [
    ...o.batches.map((batch) => ({ name: 'the repository as it is', batch, prepare: [] })),
    { name: 'without the history indexes, the status counters and the step\'s foreign key', batch: largest, prepare: STRIPPED },
  ];
  const rounds: Measured[][] = variants.map(() => []);
  for (let round = 1; round <= o.rounds; round++) {
    for (const [i, v] of variants.entries()) {
      note(`drain-anatomy: round ${round} of ${o.rounds}, ${v.name}, claims of ${v.batch}`);
      rounds[i].push(await measure(o, v));
    }
  }
  const results = rounds.map((r) => [...r].sort((a, b) => a.pgCpuMs / a.jobs - b.pgCpuMs / b.jobs)[Math.floor((r.length - 1) / 2)]);
  const perJob = (ms: number, m: Measured) => `${Math.round((ms * 1000) / m.jobs)} µs`;
  return [
    `## Drain anatomy: a no-op job's claim and end alone, ${int(o.jobs)} jobs, one connection (median of ${o.rounds})`,
    '',
    ...table(
      ['repository', 'claim size', 'PostgreSQL CPU per job', 'this process\'s CPU per job', 'wall per job', 'jobs/s'],
      results.map((m) => [m.variant.name, m.variant.batch, perJob(m.pgCpuMs, m), perJob(m.clientCpuMs, m), perJob(m.wallMs, m), `${int((m.jobs * 1000) / m.wallMs)}/s`]),
    ),
    '',
    'The drain\'s statements without nodes or the engine: one connection claims a batch of queued no-op executions (`claimStartingStep`, which also starts each one\'s step) and ends it (`finishExecutionsEndingSteps`, fenced per execution), until all are done; each run in a fresh schema, the variants interleaved, each row the run of median PostgreSQL CPU. CPU from /proc (10 ms ticks): every PostgreSQL process (those that ended meanwhile through the postmaster) and this process. The tables are analyzed after the jobs are queued. The last row removes parts of the repository to show what they cost; the repository needs them all (history reads, the status counts, integrity). A loop lasts seconds, less than autovacuum\'s nap: whether it runs meanwhile is chance.',
  ];
}
