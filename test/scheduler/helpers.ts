/**
 * Helpers for the scheduler suites: real `nightshift node` processes (optionally with a skewed
 * clock under libfaketime), and observations of what the triggers launched, read straight from
 * the job repository and judged by the database's clock.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { count, noop } from '../../examples/nightshift.config.ts';
import type { Database } from '../../src/repository/database.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { scheduleAdmin, type ScheduleAdmin } from '../../src/scheduler/triggers.ts';
import { afterAll } from 'vitest';
import { waitFor, type Backend } from '../support/backends.ts';

export { CONFIG, freshPerTest, kill, killAll, startNode, type NodeProc } from '../support/node-procs.ts';

export const SOAK = process.env.NIGHTSHIFT_SOAK === '1';
export const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
export const hasFaketime = () => existsSync(FAKETIME_LIB);

/** Environment that runs a process with its clock moved by `skew` (libfaketime syntax: "+30s"). */
export function skewEnv(skew: string): Record<string, string> {
  return { LD_PRELOAD: FAKETIME_LIB, FAKETIME: skew, FAKETIME_DONT_RESET: '1' };
}

/** What Date.now() says in a process run with `env`, minus what it says here (ms). */
export function clockSkewOf(env: Record<string, string>): number {
  const before = Date.now();
  const theirs = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(Date.now()))'], { env: { ...process.env, ...env } }).toString());
  return theirs - (before + Date.now()) / 2;
}

/** A fresh repository with a raw connection and schedule administration over the example jobs. */
export interface Repo {
  url: string;
  db: Database;
  admin: ScheduleAdmin;
  close(): Promise<void>;
}

export async function openRepo(backend: Backend, label: string): Promise<Repo> {
  const url = backend.freshUrl(label);
  const db = await openDatabase(url);
  return { url, db, admin: scheduleAdmin({ db, jobs: [noop, count] }), close: () => db.close() };
}

/** Opens repositories for one suite (`describe`), and closes them and cleans the backend up after it. */
export function suiteRepos(backend: Backend): (label: string) => Promise<Repo> {
  const repos: Repo[] = [];
  afterAll(async () => {
    for (const r of repos) await r.close();
    await backend.cleanup();
  });
  return async (label) => {
    const r = await openRepo(backend, label);
    repos.push(r);
    return r;
  };
}

export async function dbNow(db: Database): Promise<number> {
  return Number((await db.query<{ now: number | string }>('SELECT ns_now() AS now'))[0].now);
}

/** Waits until the database's clock reaches `t`. */
export async function untilDbTime(db: Database, t: number, timeoutMs = 120_000): Promise<void> {
  await waitFor(async () => (await dbNow(db)) >= t, timeoutMs, `database time ${new Date(t).toISOString()}`);
}

/** Waits until every named node is alive (a row registered after `since`, by the database's clock). */
export async function waitAlive(db: Database, names: string[], since = 0, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => {
    const rows = await db.query<{ name: string }>(`SELECT name FROM ns_node WHERE status = 'alive' AND started_at >= $1`, [since]);
    return names.every((n) => rows.some((r) => r.name === n));
  }, timeoutMs, `nodes ${names.join(', ')} alive`);
}

export interface Run {
  id: number;
  instanceId: number;
  status: string;
  fireTime: number;
  createTime: number;
  startTime: number | null;
  endTime: number | null;
  node: string | null;
  description: string;
  params: Record<string, unknown>;
}

/** Executions of `job` launched by a trigger (they have a fireTime), oldest first; `tag` filters count's. */
export async function runsOf(db: Database, job: string, tag?: string): Promise<Run[]> {
  const rows = await db.query<{
    id: number; instance_id: number; status: string; params: string; create_time: number; start_time: number | null; end_time: number | null;
    node_name: string | null; exit_description: string;
  }>(
    `SELECT id, instance_id, status, params, create_time, start_time, end_time, node_name, exit_description
     FROM ns_job_execution WHERE job_name = $1 ORDER BY id`,
    [job],
  );
  return rows
    .map((r) => {
      const params = JSON.parse(r.params) as Record<string, unknown>;
      return {
        id: Number(r.id), instanceId: Number(r.instance_id), status: r.status, params,
        fireTime: typeof params.fireTime === 'string' ? Date.parse(params.fireTime) : NaN,
        createTime: Number(r.create_time), startTime: r.start_time === null ? null : Number(r.start_time),
        endTime: r.end_time === null ? null : Number(r.end_time), node: r.node_name, description: r.exit_description,
      };
    })
    .filter((r) => !Number.isNaN(r.fireTime) && (tag === undefined || r.params.tag === tag));
}

/** The firing per fire time: its instances and the execution the trigger created (the first). */
export function byFireTime(runs: Run[]): Map<number, { instances: Set<number>; first: Run; all: Run[] }> {
  const out = new Map<number, { instances: Set<number>; first: Run; all: Run[] }>();
  for (const r of runs) {
    const e = out.get(r.fireTime);
    if (e) {
      e.instances.add(r.instanceId);
      e.all.push(r);
    } else out.set(r.fireTime, { instances: new Set([r.instanceId]), first: r, all: [r] });
  }
  return out;
}

/**
 * Checks that every whole second in [from, to] fired exactly once (one job instance) and that
 * nothing fired twice anywhere; returns problems (empty when all is well).
 */
export function exactlyOncePerSecond(runs: Run[], from: number, to: number): string[] {
  const fires = byFireTime(runs);
  const problems: string[] = [];
  for (const [t, f] of fires) {
    if (f.instances.size !== 1) problems.push(`${new Date(t).toISOString()}: ${f.instances.size} instances`);
    // More than one execution per fire time only as failover restarts of the same instance.
    const extra = f.all.slice(1).filter((r) => r.instanceId !== f.first.instanceId);
    if (extra.length) problems.push(`${new Date(t).toISOString()}: executions ${f.all.map((r) => r.id).join(',')}`);
  }
  for (let t = from; t <= to; t += 1000) if (!fires.has(t)) problems.push(`${new Date(t).toISOString()}: missed`);
  return problems;
}

/**
 * Latency of the first execution per fire time in [from, to], by the database's clock: its
 * fire-log row's firedAt (the firing transaction's last statement, just before its COMMIT)
 * minus the fire time. (Its createTime may be earlier: a batch can be written ahead of its fire
 * time, and commits at it.) An execution without a fire-log row counts as infinitely late.
 */
export function latencies(runs: Run[], log: FireRow[], from = -Infinity, to = Infinity): number[] {
  const firedAt = new Map(log.filter((f) => f.executionId !== null).map((f) => [f.executionId!, f.firedAt]));
  return [...byFireTime(runs).entries()]
    .filter(([t]) => t >= from && t <= to)
    .map(([t, f]) => (firedAt.get(f.first.id) ?? Infinity) - t)
    .sort((a, b) => a - b);
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export interface FireRow {
  fireTime: number;
  firedAt: number;
  outcome: string;
  executionId: number | null;
  missedFrom: number | null;
  node: string | null;
}

export async function fireLog(db: Database, trigger: string): Promise<FireRow[]> {
  const rows = await db.query<{ fire_time: number; fired_at: number; outcome: string; execution_id: number | null; missed_from: number | null; node_name: string | null }>(
    'SELECT fire_time, fired_at, outcome, execution_id, missed_from, node_name FROM ns_trigger_fire WHERE trigger_name = $1 ORDER BY fire_time',
    [trigger],
  );
  return rows.map((r) => ({
    fireTime: Number(r.fire_time), firedAt: Number(r.fired_at), outcome: r.outcome, node: r.node_name,
    executionId: r.execution_id === null ? null : Number(r.execution_id), missedFrom: r.missed_from === null ? null : Number(r.missed_from),
  }));
}

/** Waits until `job` (with `tag`) has a firing with fireTime >= t. */
export async function untilFired(db: Database, job: string, t: number, tag?: string, timeoutMs = Math.max(60_000, t - Date.now() + 30_000)): Promise<void> {
  await waitFor(async () => (await runsOf(db, job, tag)).some((r) => r.fireTime >= t), timeoutMs, `${job}${tag ? `/${tag}` : ''} fired at ${new Date(t).toISOString()}`);
}

/** Waits until no execution of the repository is queued or running. */
export async function untilQuiet(db: Database, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => {
    const rows = await db.query<{ n: number | string }>(`SELECT count(*) AS n FROM ns_job_execution WHERE status IN ('STARTING', 'STARTED', 'STOPPING')`);
    return Number(rows[0].n) === 0;
  }, timeoutMs, 'all executions ended');
}

export const iso = (t: number) => new Date(t).toISOString();
export const sec = (t: number) => Math.floor(t / 1000) * 1000;

export { waitFor };
