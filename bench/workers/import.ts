/**
 * Child process of the memory benchmark: runs the import-csv job once on a CSV file into the
 * given repository (`sqlite:PATH` or a PostgreSQL URL) and sends its result over IPC, including
 * this process's own peak resident set (VmHWM).
 *
 * Usage: node --import tsx bench/workers/import.ts CSV_PATH DB_URL
 */
import { readFileSync } from 'node:fs';
import { importCsv } from '../../examples/nightshift.config.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift } from '../../src/operator.ts';

/** A field of /proc/self/status in KiB (Linux). */
const statusKb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);

/** What the child reports. */
export interface ImportResult {
  status: string;
  description: string;
  written: number;
  skipped: number;
  stepMs: number;
  /** Resident memory once the job's modules are loaded and the repository is open, before the run. */
  rssBeforeKb: number;
  hwmKb: number;
}

const [csv, db] = process.argv.slice(2);
const ns = await createNightshift({ db, jobs: [importCsv], logger: silentLogger });
const rssBeforeKb = statusKb('VmRSS');
process.send!({ started: true });
const e = await ns.run('import-csv', { input: csv, chunk: 1000, skipLimit: 1_000_000_000 });
await ns.close();
const step = e.steps.find((s) => s.stepName === 'import');
const result: ImportResult = {
  status: e.status,
  description: e.exitStatus.description,
  written: step?.writeCount ?? 0,
  skipped: (step?.readSkipCount ?? 0) + (step?.processSkipCount ?? 0),
  stepMs: step?.endTime && step.startTime ? step.endTime.getTime() - step.startTime.getTime() : NaN,
  rssBeforeKb,
  hwmKb: statusKb('VmHWM'),
};
process.send!({ result }, () => process.disconnect());
