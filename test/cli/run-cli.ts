/**
 * Runs the real `nightshift` command as a child process (node bin/nightshift.js), as users and
 * the acceptance checks do, and reads the job repository directly to check what it did.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { openDatabase } from '../../src/repository/open.ts';
import { builtCliEnv } from '../support/built-cli.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = join(ROOT, 'bin', 'nightshift.js');
export const EXAMPLES = join(ROOT, 'examples', 'nightshift.config.ts');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  /** Extra environment; NIGHTSHIFT_* variables of the test's own environment are removed first. */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

function childEnv(extra: CliOptions['env'] = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...builtCliEnv() };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('NIGHTSHIFT_') && !k.startsWith('VITEST') && v !== undefined) env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Runs `nightshift ARGS` to its end. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: options.cwd ?? ROOT, env: childEnv(options.env), timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; signal?: NodeJS.Signals | null }) | null;
        const code = e ? (typeof e.code === 'number' ? e.code : null) : 0;
        done({ code, signal: e?.signal ?? null, stdout, stderr });
      },
    );
  });
}

export interface CliChild {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited (and has been reaped). */
  readonly exited: Promise<CliResult>;
}

/** Starts `nightshift ARGS` in the background, for runs the test stops or kills. */
export function spawnCli(args: string[], options: CliOptions = {}): CliChild {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env: childEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<CliResult>((done) => {
    child.on('close', (code, signal) => done({ code, signal, stdout: out, stderr: err }));
  });
  return { child, pid: child.pid!, stdout: () => out, stderr: () => err, exited };
}

/** The CLI bound to one repository and the example jobs. */
export function cliFor(db: string, config = EXAMPLES) {
  const extra = ['--db', db, '--config', config];
  return {
    run: (args: string[], options?: CliOptions) => runCli([...args, ...extra], options),
    spawn: (args: string[], options?: CliOptions) => spawnCli([...args, ...extra], options),
    /** Runs with --json, expects `code`, and parses all of stdout. */
    async json<T = ExecutionJson>(args: string[], code = 0): Promise<T> {
      const r = await runCli([...args, ...extra, '--json']);
      expect(r.code, `nightshift ${args.join(' ')} --json\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(code);
      return JSON.parse(r.stdout) as T;
    },
  };
}

/** Runs SQL against the repository at `url` (a fresh connection each time). */
export async function query<T = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const db = await openDatabase(url, { poolSize: 1 });
  try {
    return await db.query<T & Record<string, unknown>>(sql, params);
  } finally {
    await db.close();
  }
}

/** One number from a `SELECT count(*) AS n ...`-like query (PostgreSQL returns bigints as strings). */
export async function scalar(url: string, sql: string, params: unknown[] = []): Promise<number> {
  const rows = await query<Record<string, unknown>>(url, sql, params);
  return Number(Object.values(rows[0])[0]);
}

export interface StepJson {
  name: string;
  status: string;
  exitStatus: { code: string; description: string };
  readCount: number;
  writeCount: number;
  filterCount: number;
  readSkipCount: number;
  processSkipCount: number;
  writeSkipCount: number;
  commitCount: number;
  rollbackCount: number;
  node: string | null;
}

export interface ExecutionJson {
  id: number;
  jobName: string;
  instanceId: number;
  status: string;
  exitStatus: { code: string; description: string };
  parameters: Record<string, unknown>;
  createTime: string | null;
  startTime: string | null;
  endTime: string | null;
  node: string | null;
  /** The newest later execution of its instance, or null (lists and single executions). */
  restartedAs?: { id: number; status: string } | null;
  steps?: StepJson[];
}

export const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Checks the contract's JSON shape of an execution (SPEC section 7). */
export function expectExecutionShape(e: ExecutionJson, withSteps = true): void {
  expect(Number.isInteger(e.id) && e.id > 0).toBe(true);
  expect(typeof e.jobName).toBe('string');
  expect(Number.isInteger(e.instanceId)).toBe(true);
  expect(typeof e.status).toBe('string');
  expect(typeof e.exitStatus.code).toBe('string');
  expect(typeof e.exitStatus.description).toBe('string');
  expect(e.parameters).toBeTypeOf('object');
  for (const t of [e.createTime, e.startTime, e.endTime]) if (t !== null) expect(t).toMatch(ISO_MS);
  expect(e.createTime).toMatch(ISO_MS);
  expect(e).toHaveProperty('node');
  if (!withSteps) return;
  expect(Array.isArray(e.steps)).toBe(true);
  for (const s of e.steps!) {
    expect(typeof s.name).toBe('string');
    expect(typeof s.status).toBe('string');
    expect(typeof s.exitStatus.code).toBe('string');
    expect(typeof s.exitStatus.description).toBe('string');
    for (const k of ['readCount', 'writeCount', 'filterCount', 'readSkipCount', 'processSkipCount', 'writeSkipCount', 'commitCount', 'rollbackCount'] as const) {
      expect(Number.isInteger(s[k]), `${s.name}.${k}`).toBe(true);
    }
    expect(s).toHaveProperty('node');
  }
}

/** The contract's "one clear line on stderr, no stack trace". */
export function expectOneLineError(r: CliResult, pattern: RegExp, code = 2): void {
  const context = `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  expect(r.code, context).toBe(code);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, context).toHaveLength(1);
  expect(r.stderr, context).not.toMatch(/^\s+at /m);
  expect(lines[0], context).toMatch(pattern);
}
