/**
 * Memory (SPEC section 9, issue 3): a large CSV import by the import-csv job, run in a child
 * process whose resident memory is sampled from /proc every 50 ms; its own VmHWM (peak RSS)
 * at the end is the figure reported. The repository is SQLite (BENCH_MEMORY_DB=postgres for
 * PostgreSQL); the CSV is generated streaming in os.tmpdir() and deleted afterwards.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writePeopleCsv } from './lib/csv.ts';
import { nextMessage, startScript } from './lib/proc.ts';
import { dropSchemas, int, note, schemaName, schemaUrl, secs, table } from './lib/util.ts';
import type { ImportResult } from './workers/import.ts';

const rssKb = (pid: number) => {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0; // exited
  }
};

const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;

/** Imports `rows` rows in a child process; Markdown lines. */
export async function benchMemory(rows: number): Promise<string[]> {
  const backend = process.env.BENCH_MEMORY_DB === 'postgres' ? 'postgres' : 'sqlite';
  const csv = await writePeopleCsv(rows);
  note(`memory: generated ${int(rows)} rows, ${(csv.bytes / 2 ** 20).toFixed(0)} MiB`);
  const dir = mkdtempSync(join(tmpdir(), 'nsbench-mem-'));
  const schema = schemaName('mem');
  const db = backend === 'sqlite' ? `sqlite:${join(dir, 'mem.db')}` : schemaUrl(schema);
  let polledKb = 0;
  let result: ImportResult;
  let dbBytes = 0;
  try {
    const child = startScript('workers/import.ts', [csv.path, db]);
    const timer = setInterval(() => (polledKb = Math.max(polledKb, rssKb(child.pid))), 50);
    try {
      ({ result } = await nextMessage<{ result?: ImportResult }>(child, (m) => m.result !== undefined, 3_600_000) as { result: ImportResult });
    } finally {
      clearInterval(timer);
      await child.stop();
    }
    if (backend === 'sqlite') dbBytes = statSync(join(dir, 'mem.db')).size;
  } finally {
    csv.remove();
    rmSync(dir, { recursive: true, force: true });
    if (backend === 'postgres') await dropSchemas(schema);
  }
  if (result.status !== 'COMPLETED') throw new Error(`import-csv ended ${result.status}: ${result.description}`);
  if (result.written !== rows - csv.bad) throw new Error(`import-csv wrote ${result.written} rows, expected ${rows - csv.bad}`);
  const peakKb = Math.max(result.hwmKb, polledKb);
  return [
    `## Memory: import-csv of ${int(rows)} rows into ${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, in a child process`,
    '',
    ...table(['rows', 'CSV file', 'import step', 'rows/s', 'RSS before the run', 'peak RSS (VmHWM)', 'target'], [[
      int(rows), `${(csv.bytes / 2 ** 20).toFixed(0)} MiB`, secs(result.stepMs), `${int((rows / result.stepMs) * 1000)}/s`,
      mb(result.rssBeforeKb), `**${mb(peakKb)}**`, '< 200 MB',
    ]]),
    '',
    `Peak RSS is the child's VmHWM at the end (the highest VmRSS sampled every 50 ms was ${mb(polledKb)}); "before the run" is after loading the job's modules (through tsx) and opening the repository. ${int(result.skipped)} bad rows were skipped.${dbBytes ? ` The SQLite file reached ${(dbBytes / 2 ** 20).toFixed(0)} MiB.` : ''}`,
  ];
}
