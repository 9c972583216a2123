/**
 * Small helpers shared by the benchmarks: configuration from the environment, statistics,
 * Markdown tables, and throw-away PostgreSQL schemas.
 */
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';

/** The PostgreSQL the benchmarks use (the test database unless NIGHTSHIFT_TEST_PG is set). */
export const PG = process.env.NIGHTSHIFT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A positive integer from the environment, or `fallback` when unset. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** Wall-clock time in epoch milliseconds with sub-millisecond resolution (comparable across processes). */
export const epochMs = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The q-quantile (0..1) of `xs` by the nearest-rank method. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export const median = (xs: readonly number[]) => quantile(xs, 0.5);

/** Seconds with two decimals, from milliseconds. */
export const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** A whole number with thousands separators. */
export const int = (n: number) => Math.round(n).toLocaleString('en');

/** A Markdown table. */
export function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string[] {
  return [`| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

/** Progress on stderr (the result tables go to stdout). */
export const note = (msg: string) => process.stderr.write(`  [bench] ${msg}\n`);

let schemas = 0;

/** A unique schema name for one system or round of one benchmark. */
export const schemaName = (label: string) => `nsbench_${label}_${process.pid}_${schemas++}`;

/** A PostgreSQL URL whose connections use `schema` (Nightshift's `?schema=` parameter). */
export const schemaUrl = (schema: string) => `${PG}${PG.includes('?') ? '&' : '?'}schema=${schema}`;

/** A connected client whose search_path is `schema` (created if missing). */
export async function schemaClient(schema: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: PG, options: `-c search_path=${schema}` });
  client.on('error', () => undefined); // a dropped connection fails the next query instead
  await client.connect();
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  return client;
}

/** Drops schemas (and everything in them). */
export async function dropSchemas(...names: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: PG });
  client.on('error', () => undefined);
  await client.connect();
  try {
    for (const s of names) await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  } finally {
    await client.end();
  }
}

/** Polls `check` every `everyMs` until it returns a truthy value, or throws after `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T>, timeoutMs: number, everyMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Whether `err` means PostgreSQL went away (restarted, or refused connections) rather than a bug. */
export function isConnectionLoss(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  return ['57P01', '57P02', '57P03', 'ECONNREFUSED', 'ECONNRESET', '08006', '08003'].includes(e?.code ?? '') ||
    /terminat|Connection terminated|ECONNREFUSED|cannot connect/i.test(e?.message ?? '');
}

/**
 * CPU milliseconds of a process so far, from /proc (Linux; 100 clock ticks a second); 0 elsewhere.
 * With `reaped`, also that of its children that ended and that it waited for.
 */
export function procCpuMs(pid: number, reaped = false): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const own = Number(fields[11]) + Number(fields[12]);
    return (reaped ? own + Number(fields[13]) + Number(fields[14]) : own) * 10;
  } catch {
    return 0;
  }
}

/**
 * CPU milliseconds so far of every PostgreSQL server process on this host (backends, WAL writer,
 * autovacuum, ...), from /proc; 0 elsewhere. A difference of two readings is what the database
 * spent in between, whichever backend did the work. A process that exits in between (an
 * autovacuum worker, a closed connection's backend) counts in the postmaster, which reaps it.
 */
export function postgresCpuMs(): number {
  let total = 0;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return 0;
  }
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') total += procCpuMs(Number(pid), true);
    } catch {
      // gone meanwhile
    }
  }
  return total;
}
