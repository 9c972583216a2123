import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UsageError, errorMessage } from '../core/errors.ts';
import { isJobDefinition, type JobDefinition } from '../core/job.ts';
import { validateSchedules, type ScheduleSpec, type TriggerDefinition } from '../scheduler/triggers.ts';
import { CronError } from '../scheduler/cron.ts';
import { MIN_RETENTION_EVERY_MS, validateHousekeeping, type HousekeepingOptions, type RetentionOptions } from '../cluster/housekeeping.ts';
import { parseDuration } from '../core/duration.ts';
import { BATCH_STATUSES, type BatchStatus } from '../core/status.ts';
import { prepareImport } from './loaders.ts';

const DEFAULT_NAMES = ['nightshift.config.ts', 'nightshift.config.mts', 'nightshift.config.js', 'nightshift.config.mjs'];

/** The config files looked for in the working directory, as the help and errors name them. */
export const DEFAULT_CONFIG_NAMES = 'nightshift.config.ts (or .mts, .js, .mjs)';

export interface LoadedConfig {
  file: string;
  jobs: JobDefinition[];
  /** Every export, for other parts (e.g. declared schedules). */
  exports: Record<string, unknown>;
  /** Declared triggers: the `schedules` export (or the default export's `schedules`), as given. */
  schedules: ScheduleSpec[];
  /** The same triggers validated against the jobs, as a node stores them when it starts. */
  triggers: TriggerDefinition[];
  /**
   * Automatic retention on the nodes: the `retention` export (or the default export's), e.g.
   * `{ olderThan: '30d', statuses: ['COMPLETED'], keepLast: 100, includeRestartable: false,
   * every: '1h', nodes: '7d' }`. `nodes` is how long ended node incarnations are kept.
   */
  retention?: RetentionOptions;
  nodeRetentionMs?: number;
}

/** Finds the config file: --config, NIGHTSHIFT_CONFIG, or nightshift.config.{ts,js,mjs} here. */
export function findConfig(explicit: string | undefined): string {
  const given = explicit ?? process.env.NIGHTSHIFT_CONFIG;
  if (given) {
    const file = resolve(given);
    if (!existsSync(file)) throw new UsageError(`config file ${given} not found`);
    return file;
  }
  for (const name of DEFAULT_NAMES) {
    const file = resolve(name);
    if (existsSync(file)) return file;
  }
  throw new UsageError(`no config file: pass --config FILE, set NIGHTSHIFT_CONFIG, or create ${DEFAULT_CONFIG_NAMES} here`);
}

/**
 * Loads the config when one was given (--config, NIGHTSHIFT_CONFIG) or one of the default names
 * is in the working directory; undefined when there is none. A given file that does not exist
 * is still a UsageError.
 */
export async function loadConfigIfAny(explicit: string | undefined): Promise<LoadedConfig | undefined> {
  if (!(explicit ?? process.env.NIGHTSHIFT_CONFIG) && !DEFAULT_NAMES.some((name) => existsSync(resolve(name)))) return undefined;
  return loadConfig(explicit);
}

/**
 * Loads the jobs a config file exports: its default export (a job, an array of jobs, or an
 * object with `jobs`) and every named export that is a job.
 */
export async function loadConfig(explicit: string | undefined): Promise<LoadedConfig> {
  const file = findConfig(explicit);
  let mod: Record<string, unknown>;
  try {
    await prepareImport(file);
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(`config ${file}: ${err.message}`, { cause: err });
    const commonJs = /Cannot find module 'nightshift'|require\(\) of ES Module|ERR_REQUIRE_ESM|require is not defined/.test(errorMessage(err));
    const hint = commonJs ? " (a config is an ES module: import { defineJob } from 'nightshift', not require)" : '';
    const syntax = syntaxError(err, file) ?? thrownAt(err);
    // A syntax error in the config itself is named FILE:LINE:COLUMN; one in a module it imports, in that module.
    const what = !syntax ? `${file}: ${firstLine(errorMessage(err))}`
      : syntax.file === file ? `${syntax.where}: ${syntax.message}` : `${file}: ${syntax.where}: ${syntax.message}`;
    throw new UsageError(`cannot load config ${what}${hint}`, { cause: err });
  }
  const found = new Set<JobDefinition>();
  const consider = (v: unknown) => {
    if (isJobDefinition(v)) found.add(v);
    else if (Array.isArray(v)) v.forEach(consider);
  };
  const def = mod.default;
  consider(def);
  if (def && typeof def === 'object' && !Array.isArray(def) && 'jobs' in def) consider((def as { jobs: unknown }).jobs);
  for (const [name, value] of Object.entries(mod)) if (name !== 'default') consider(value);
  if (found.size === 0) throw new UsageError(`config ${file} exports no jobs (export jobs made with defineJob)`);
  const jobs = [...found];
  const names = new Set<string>();
  for (const j of jobs) {
    if (names.has(j.name)) throw new UsageError(`config ${file} defines two jobs named ${j.name}`);
    names.add(j.name);
  }
  const schedules = declaredSchedules(file, mod);
  const { retention, nodeRetentionMs } = declaredRetention(file, mod);
  const triggers = checkAsNodeWould(file, jobs, schedules, { retention, nodeRetentionMs });
  // Recorded for processes this one starts (a partitioned step's local workers load the same file).
  process.env.NIGHTSHIFT_CONFIG = file;
  return { file, jobs, exports: mod, schedules, triggers, retention, nodeRetentionMs };
}

/**
 * Checks what a node checks of its config when it starts (the schedules against the jobs, the
 * retention), whichever command loads the config: a config is deployed as one, so `jobs` or `run`
 * refuses one that a node would refuse. Errors name the config.
 */
function checkAsNodeWould(file: string, jobs: readonly JobDefinition[], schedules: readonly ScheduleSpec[], housekeeping: HousekeepingOptions): TriggerDefinition[] {
  try {
    validateHousekeeping(housekeeping);
    return validateSchedules(schedules, jobs);
  } catch (err) {
    if (err instanceof UsageError || err instanceof CronError) throw new UsageError(`config ${file}: ${errorMessage(err)}`, { cause: err });
    throw err;
  }
}

function declaredSchedules(file: string, mod: Record<string, unknown>): ScheduleSpec[] {
  const def = mod.default;
  const fromDefault = def && typeof def === 'object' && !Array.isArray(def) ? (def as { schedules?: unknown }).schedules : undefined;
  const found = mod.schedules ?? fromDefault;
  if (found === undefined) return [];
  if (!Array.isArray(found) || !found.every((s) => typeof s === 'object' && s !== null && !Array.isArray(s))) {
    throw new UsageError(`config ${file}: schedules must be an array of { name, job, cron, everyMs or at, ... }`);
  }
  return found as ScheduleSpec[];
}

/**
 * A syntax error in a config as `FILE:LINE:COLUMN: message`, when its place can be found:
 * esbuild (a TypeScript config, through tsx) says where in its message; Node's own SyntaxError
 * for an ES module may name only the file and line in its stack (and on Node 20 not even that), so
 * the config is parsed again, as an ES module, by `node --check`, which shows where (a parse, no
 * code of the config runs). Undefined for other errors, or when no place is found.
 */
function syntaxError(err: unknown, file: string): { file: string; where: string; message: string } | undefined {
  const message = errorMessage(err);
  const at = (path: string, line: string, column?: number) => ({ file: path, where: `${path}:${line}${column === undefined ? '' : `:${column}`}` });
  // esbuild: "Transform failed with 1 error:\n/path/x.ts:3:55: ERROR: Unexpected \";\"" (its columns count from 0).
  const esbuild = /^(.+?):(\d+):(\d+): ERROR: (.+)$/m.exec(message);
  if (esbuild && /Transform failed|Build failed/.test(message)) return { ...at(esbuild[1], esbuild[2], Number(esbuild[3]) + 1), message: esbuild[4] };
  if (!(err instanceof SyntaxError)) return undefined;
  const stack = String(err.stack ?? '');
  const head = stack.includes('\n    at ') ? stack.slice(0, stack.indexOf('\n    at ')) : stack;
  const inStack = /^(file:\/\/\S+?):(\d+)(?::(\d+))?$/m.exec(head);
  if (inStack) return { ...at(fileURLToPath(inStack[1]), inStack[2], inStack[3] ? Number(inStack[3]) : undefined), message: firstLine(message) };
  if (!/\.(m?js)$/.test(file)) return undefined;
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const check = spawnSync(process.execPath, ['--input-type=module', '--check'], { input: source, encoding: 'utf8', timeout: 10_000, env });
  // "[stdin]:3\n<the line>\n<spaces>^\n\nSyntaxError: ..."
  const lines = (check.stderr ?? '').split('\n');
  const line = /^\[stdin\]:(\d+)$/.exec(lines[0] ?? '');
  if (check.status === 0 || !line) return undefined;
  const caret = (lines[2] ?? '').indexOf('^');
  const said = lines.find((l) => /^SyntaxError: /.test(l))?.replace(/^SyntaxError: /, '') ?? firstLine(message);
  return { ...at(file, line[1], caret >= 0 ? caret + 1 : undefined), message: said };
}

/**
 * Where an error thrown while the config was imported (a module that throws, a TypeError in it)
 * was thrown: the first frame of its stack in the user's code, not in Node's internals, in
 * node_modules (tsx's loaders) or in Nightshift itself, so that a bad call of ours names the
 * user's line. Undefined for a thrown value that is not an Error, or a stack without such a frame
 * (a module that cannot be found: its message names the importing file).
 */
function thrownAt(err: unknown): { file: string; where: string; message: string } | undefined {
  if (!(err instanceof Error) || typeof err.stack !== 'string') return undefined;
  const message = firstLine(errorMessage(err));
  for (const line of err.stack.split('\n')) {
    // tsx runs a TypeScript module that Node takes for CommonJS as a data: URL ending in
    // ?filePath=PATH; its line and column are the compiled code's, so only the file is said.
    const compiled = /^\s+at .*\?filePath=([^:()\s]+):\d+:\d+\)?$/.exec(line);
    if (compiled) {
      const path = decodeURIComponent(compiled[1]);
      if (path.includes('/node_modules/')) continue;
      return { file: path, where: path, message };
    }
    const frame = /^\s+at (?:.*? \()?((?:file:\/\/)?\/[^()]*?):(\d+):(\d+)\)?$/.exec(line);
    if (!frame) continue;
    const path = frame[1].startsWith('file://') ? fileURLToPath(frame[1]) : frame[1];
    if (path.includes('/node_modules/') || path.startsWith(OWN_CODE)) continue;
    return { file: path, where: `${path}:${frame[2]}:${frame[3]}`, message };
  }
  return undefined;
}

/** Nightshift's own code (src/ or dist/), whose frames are not where a config went wrong. */
const OWN_CODE = fileURLToPath(new URL('../', import.meta.url));

function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim()) ?? s;
}

/** `ms`, unless it is below `min`: then a UsageError naming the setting as the user wrote it. */
function atLeast(ms: number, min: number, setting: string, written: unknown): number {
  if (ms < min) throw new UsageError(`${setting} must be at least ${min / 1000}s, got ${JSON.stringify(written)}`);
  return ms;
}

function declaredRetention(file: string, mod: Record<string, unknown>): { retention?: RetentionOptions; nodeRetentionMs?: number } {
  const def = mod.default;
  const found = mod.retention ?? (def && typeof def === 'object' && !Array.isArray(def) ? (def as { retention?: unknown }).retention : undefined);
  if (found === undefined) return {};
  const where = `config ${file}: retention`;
  if (typeof found !== 'object' || found === null || Array.isArray(found)) throw new UsageError(`${where} must be an object such as { olderThan: '30d' }`);
  const r = found as Record<string, unknown>;
  const known = ['olderThan', 'statuses', 'keepLast', 'includeRestartable', 'every', 'nodes'];
  for (const k of Object.keys(r)) if (!known.includes(k)) throw new UsageError(`${where}: unknown setting ${JSON.stringify(k)} (known: ${known.join(', ')})`);
  const duration = (k: string) => {
    const v = r[k];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
    if (typeof v === 'string') return parseDuration(`${where}.${k}`, v);
    throw new UsageError(`${where}.${k} must be a duration such as '30d' or milliseconds, got ${JSON.stringify(v)}`);
  };
  const nodeRetentionMs = r.nodes === undefined ? undefined : duration('nodes');
  if (r.olderThan === undefined) {
    if (Object.keys(r).some((k) => k !== 'nodes')) throw new UsageError(`${where}.olderThan is missing (how old history is deleted, e.g. '30d')`);
    return { nodeRetentionMs };
  }
  let statuses: BatchStatus[] | undefined;
  if (r.statuses !== undefined) {
    if (!Array.isArray(r.statuses) || !r.statuses.every((s) => typeof s === 'string' && BATCH_STATUSES.includes(s as BatchStatus))) {
      throw new UsageError(`${where}.statuses must be an array of statuses (${BATCH_STATUSES.join(', ')})`);
    }
    statuses = r.statuses as BatchStatus[];
  }
  if (r.keepLast !== undefined && !(typeof r.keepLast === 'number' && Number.isSafeInteger(r.keepLast) && r.keepLast >= 0)) {
    throw new UsageError(`${where}.keepLast must be a whole number of 0 or more`);
  }
  if (r.includeRestartable !== undefined && typeof r.includeRestartable !== 'boolean') throw new UsageError(`${where}.includeRestartable must be true or false`);
  return {
    nodeRetentionMs,
    retention: {
      olderThanMs: duration('olderThan'),
      statuses,
      keepLast: r.keepLast as number | undefined,
      includeRestartable: r.includeRestartable as boolean | undefined,
      everyMs: r.every === undefined ? undefined : atLeast(duration('every'), MIN_RETENTION_EVERY_MS, `${where}.every`, r.every),
    },
  };
}
