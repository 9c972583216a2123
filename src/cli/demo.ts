import { createWriteStream, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createLogger, envLogLevel } from '../core/logger.ts';
import { createNightshift } from '../operator.ts';
import { createProgress } from './progress.ts';
import { executionText } from './output.ts';
import { prepareImport } from './loaders.ts';
import type { JobDefinition } from '../core/job.ts';

/**
 * The example jobs the demo runs (examples/nightshift.config.ts): in the repository the source,
 * in the published package its build (dist/examples/nightshift.config.js).
 */
function examplesConfig(): string {
  const built = fileURLToPath(new URL('../examples/nightshift.config.js', import.meta.url));
  return existsSync(built) ? built : fileURLToPath(new URL('../../examples/nightshift.config.ts', import.meta.url));
}

async function exampleJobs(): Promise<JobDefinition[]> {
  const file = examplesConfig();
  await prepareImport(file);
  const mod = (await import(pathToFileURL(file).href)) as { count: JobDefinition; importCsv: JobDefinition };
  return [mod.count, mod.importCsv];
}

const say = (line = '') => process.stdout.write(line + '\n');

/** `s` as one word for a POSIX shell. */
const shellWord = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Writes a people CSV with a few hundred bad rows of every kind, deterministically. */
async function generateCsv(path: string, rows: number): Promise<{ bad: number }> {
  const out = createWriteStream(path);
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let bad = 0;
  let buffer = 'id,name,email,amount\n';
  for (let id = 1; id <= rows; id++) {
    let line = `${id},Person ${id},person${id}@example.com,${(random() * 1000).toFixed(2)}`;
    if (id % 997 === 0) {
      bad++;
      const kind = bad % 4;
      if (kind === 0) line = `${id}x,Person ${id},person${id}@example.com,12.00`;
      else if (kind === 1) line = `${id},Person ${id},person${id}.example.com,12.00`;
      else if (kind === 2) line = `${id},Person ${id},person${id}@example.com,twelve`;
      else line = `${id},Person ${id},person${id}@example.com`;
    } else if (id % 101 === 0) {
      line = `${id},"Doe, Jane ""JD"" ${id}",jane${id}@example.com,${id % 500}.5`;
    }
    buffer += line + '\n';
    if (buffer.length > 1 << 16) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await once(out, 'finish');
  return { bad };
}

/**
 * The demo: generate a CSV, import it with a progress bar, summarise counts and rejects, then
 * show a failure and a restart that resumes from the last checkpoint. Everything lives in one
 * folder (a new temporary one unless `dir` is given).
 */
export async function runDemo(options: { dir?: string; rows: number }): Promise<void> {
  const dir = options.dir ? resolve(options.dir) : mkdtempSync(join(tmpdir(), 'nightshift-demo-'));
  mkdirSync(dir, { recursive: true });
  const csv = join(dir, 'people.csv');
  const db = `sqlite:${join(dir, 'demo.db')}`;
  say(`Nightshift demo in ${dir}`);
  say(`  job repository: ${db}`);

  const t0 = Date.now();
  const { bad } = await generateCsv(csv, options.rows);
  say(`  generated ${csv}: ${options.rows} rows, ${bad} of them bad (${Date.now() - t0} ms)`);
  say();

  const progress = createProgress(process.stderr);
  const ns = await createNightshift({
    db,
    jobs: await exampleJobs(),
    logger: createLogger({ level: envLogLevel() ?? 'silent' }),
    onProgress: (e, s) => progress.update(e, s),
  });
  try {
    say('1. import-csv: valid rows into people, bad rows into people_rejects');
    const started = Date.now();
    const imported = await ns.run('import-csv', { input: csv, chunk: 1000, skipLimit: 1000 });
    progress.stop();
    const seconds = (Date.now() - started) / 1000;
    say(executionText(imported));
    const step = imported.steps.find((s) => s.stepName === 'import')!;
    say(`   ${step.readCount + step.readSkipCount} rows in ${seconds.toFixed(2)} s: ${Math.round((step.readCount + step.readSkipCount) / seconds)} rows/s`);
    const rejects = await ns.db.query<{ line: number; reason: string }>(
      'SELECT line, reason FROM people_rejects WHERE execution_id = $1 ORDER BY line LIMIT 8', [imported.id],
    );
    const [{ n }] = await ns.db.query<{ n: number }>('SELECT count(*) AS n FROM people_rejects WHERE execution_id = $1', [imported.id]);
    say(`   ${n} rejected rows, the first of them:`);
    for (const r of rejects) say(`     line ${r.line}: ${r.reason}`);
    say();

    say('2. count: a job that fails at item 3500 on its first run (chunks of 1000)');
    const failed = await ns.run('count', { items: 10000, chunk: 1000, tag: 'demo', failAt: 3500 });
    progress.stop();
    const [{ written }] = await ns.db.query<{ written: number }>("SELECT count(*) AS written FROM count_items WHERE tag = 'demo'");
    say(`   execution ${failed.id} ${failed.status}: ${failed.exitStatus.description}`);
    say(`   committed before the failure: ${written} rows (items 1..${written})`);
    say(`   restarting execution ${failed.id}: it resumes after the last committed chunk`);
    const restarted = await ns.restart(failed.id);
    progress.stop();
    const countStep = restarted.steps.find((s) => s.stepName === 'count')!;
    const [check] = await ns.db.query<{ total: number; distinct_items: number }>(
      "SELECT count(*) AS total, count(DISTINCT item) AS distinct_items FROM count_items WHERE tag = 'demo'",
    );
    say(`   execution ${restarted.id} ${restarted.status}: read ${countStep.readCount} items (${written + 1}..10000)`);
    say(`   count_items now holds ${check.total} rows for ${check.distinct_items} distinct items: each written exactly once`);
    say();
    say(`Explore it: npx nightshift executions --db ${shellWord(db)}`);
  } finally {
    progress.stop();
    await ns.close();
  }
}
