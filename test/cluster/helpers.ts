/**
 * Shared helpers for the cluster suites: real `nightshift node` processes, CLI calls, and
 * observations of the PostgreSQL job repository.
 */
import { spawn } from 'node:child_process';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import type { Database } from '../../src/repository/database.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { backends, waitFor, type Backend } from '../support/backends.ts';
import { CLI, CONFIG, ROOT } from '../support/node-procs.ts';
import { count, noop } from '../../examples/nightshift.config.ts';

export { CLI, CONFIG, ROOT, freshPerTest, killAll, startNode, type NodeProc } from '../support/node-procs.ts';

export const pgBackend = (): Backend => backends().find((b) => b.name === 'postgres')!;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one `nightshift` command to its end. */
export function cli(args: string[], timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolveResult, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'silent' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nightshift ${args.join(' ')} did not end within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolveResult({ code, stdout, stderr });
    });
  });
}

export interface NodeJson {
  name: string;
  status: 'alive' | 'dead' | 'left';
  lastHeartbeat: string;
  jobs: string[];
  running: number[];
}

export async function nodesJson(url: string): Promise<NodeJson[]> {
  const r = await cli(['nodes', '--db', url, '--config', CONFIG, '--json']);
  if (r.code !== 0) throw new Error(`nodes --json exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as NodeJson[];
}

/** A fresh repository with an operator (for submitting and observing) and a raw connection. */
export interface Cluster {
  url: string;
  ns: Nightshift;
  db: Database;
  close(): Promise<void>;
}

export async function openCluster(backend: Backend, label: string): Promise<Cluster> {
  const url = backend.freshUrl(label);
  const ns = await createNightshift({ db: url, jobs: [noop, count], logger: silentLogger });
  const db = await openDatabase(url);
  return {
    url,
    ns,
    db,
    async close() {
      await ns.close().catch(() => undefined);
      await db.close().catch(() => undefined);
    },
  };
}

/** Rows in count_items for a tag (0 while the table does not exist yet). */
export async function rowsOf(db: Database, where: { tag?: string; executionId?: number }): Promise<number> {
  // A query error is thrown, never read as "0 rows": waitFor retries it, and a direct check fails.
  const rows = where.executionId !== undefined
    ? await db.query<{ n: number | string }>('SELECT count(*) AS n FROM count_items WHERE execution_id = $1', [where.executionId])
    : await db.query<{ n: number | string }>('SELECT count(*) AS n FROM count_items WHERE tag = $1', [where.tag]);
  return Number(rows[0].n);
}

/** Asserts-friendly summary: items written for a tag, and whether each of 1..n is there exactly once. */
export async function exactlyOnce(db: Database, tag: string, n: number): Promise<{ total: number; distinct: number; min: number; max: number; ok: boolean }> {
  const rows = await db.query<{ total: string | number; distinct: string | number; min: number | null; max: number | null }>(
    'SELECT count(*) AS total, count(DISTINCT item) AS distinct, min(item) AS min, max(item) AS max FROM count_items WHERE tag = $1',
    [tag],
  );
  const r = rows[0];
  const total = Number(r.total);
  const distinct = Number(r.distinct);
  const min = Number(r.min);
  const max = Number(r.max);
  return { total, distinct, min, max, ok: total === n && distinct === n && min === 1 && max === n };
}

/** Waits until every named node has joined and is alive (by `ns.nodes()`). */
export async function waitAlive(ns: Nightshift, names: string[], timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => {
    const nodes = await ns.nodes();
    return names.every((n) => nodes.some((x) => x.name === n && x.status === 'alive'));
  }, timeoutMs, `nodes ${names.join(', ')} alive`);
}

/** All executions of the instance of `executionId`, newest first. */
export async function instanceExecutions(ns: Nightshift, executionId: number) {
  const first = (await ns.explorer.getExecution(executionId))!;
  return ns.explorer.executionsOfInstance(first.instanceId);
}

export { waitFor };
