import { instantOption } from '../core/dates.ts';
import { LaunchRefusedError, ParameterError, UsageError } from '../core/errors.ts';
import { runnableJob, type JobDefinition, type SomeJob } from '../core/job.ts';
import { paramsToJson, resolveParams, type JsonParams, type ParamsSchema } from '../core/params.ts';
import type { JobExecution } from '../core/model.ts';
import { createExecutionIn, requireJob } from '../engine/launch.ts';
import type { Database } from '../repository/database.ts';
import type { Tx } from '../repository/tx.ts';
import { CronError, parseCron, type CronSchedule } from './cron.ts';
import { SCHED_SQL } from './sql.ts';
import { FiringParamsThrew, firingParams, type FiringTrigger } from './firing.ts';

/** What to do with fire times found more than the misfire threshold late. */
export type MisfirePolicy = 'fire-once' | 'skip';
export const MISFIRE_POLICIES: readonly MisfirePolicy[] = ['fire-once', 'skip'];

/** Default misfire threshold: a fire time more than this late (by the database's clock) is a misfire. */
export const DEFAULT_MISFIRE_THRESHOLD_MS = 5000;
/** Smallest interval of a fixed-interval trigger. */
export const MIN_EVERY_MS = 100;

/**
 * A trigger as declared (in the config's `schedules` export) or added at runtime: a cron
 * expression in an IANA time zone, a fixed interval, or one time (`at`), that runs a job. A cron
 * or interval trigger may be bounded by `startAt` and `endAt`.
 *
 * Times (`at`, `startAt`, `endAt`) are Dates or ISO-8601 date-times with an offset or Z
 * (`2027-01-15T10:00:00Z`); a local time without an offset is refused as ambiguous.
 */
export interface ScheduleSpec {
  /** Unique name of the trigger. */
  name: string;
  /** The job it runs. */
  job: string;
  /** A Quartz cron expression (with seconds), e.g. `0 0/15 9-17 ? * MON-FRI`. */
  cron?: string | undefined;
  /** The IANA time zone of `cron` (default UTC). */
  tz?: string | undefined;
  /** A fixed interval instead of `cron`: fires at every multiple of it since the Unix epoch. */
  everyMs?: number | undefined;
  /**
   * One fire time instead of `cron` or `everyMs` (Quartz's SimpleTrigger with no repeat): fires
   * once in the whole cluster, then has no next fire time, and stays listed until removed. A time
   * already past when it is added is a misfire, handled by `misfire` at once (as in Quartz):
   * `fire-once` fires it now, `skip` records it skipped.
   */
  at?: Date | string | undefined;
  /** A cron or interval trigger fires no fire time before this one (inclusive). Default: no bound. */
  startAt?: Date | string | undefined;
  /** A cron or interval trigger fires no fire time after this one (inclusive); then it has no next fire time. */
  endAt?: Date | string | undefined;
  /** Job parameters (typed by the job's declaration). `fireTime` is added by the scheduler. */
  params?: Record<string, unknown> | undefined;
  /** Default `fire-once`. */
  misfire?: MisfirePolicy | undefined;
  /** Default 5000 ms. */
  misfireThresholdMs?: number | undefined;
  /** While the previous firing's execution still runs, a due firing waits. Default false. */
  noConcurrent?: boolean | undefined;
}

/** A validated trigger definition, in its stored form. */
export interface TriggerDefinition {
  /** The trigger's unique name. */
  name: string;
  /** The job each firing launches. */
  job: string;
  /** A Quartz cron expression (seconds first), or null for an interval trigger. */
  cron: string | null;
  /** The IANA time zone the cron expression is read in (null: UTC). */
  tz: string | null;
  /** The interval of an interval trigger, in ms (fires at multiples of it since the epoch), or null. */
  everyMs: number | null;
  /** The one fire time of a one-shot trigger, or null. */
  at: Date | null;
  /** No fire time before this one (cron and interval triggers), or null. */
  startAt: Date | null;
  /** No fire time after this one (cron and interval triggers), or null. */
  endAt: Date | null;
  /** The job parameters of every firing (`fireTime` is added). */
  params: JsonParams;
  /** What to do with fire times found later than the threshold. */
  misfire: MisfirePolicy;
  /** How late a fire time may be found and still fire normally. */
  misfireThresholdMs: number;
  /** Wait while the previous firing's instance is still queued or running. */
  noConcurrent: boolean;
}

/** A stored trigger, as `schedule list` shows it. */
export interface Schedule extends TriggerDefinition {
  /** Paused triggers do not fire. */
  paused: boolean;
  /** The next fire time (null: paused, a one-shot that fired, past its `endAt`, or a cron expression that never fires again). */
  nextFireTime: Date | null;
  /** The scheduled time of the newest firing. */
  lastFireTime: Date | null;
  /** The execution the newest firing launched. */
  lastExecutionId: number | null;
  /** `config` when declared in a config's `schedules`, `runtime` when added by API or CLI. */
  source: 'config' | 'runtime';
  /** When the trigger was added. */
  createTime: Date;
  /** When it was last replaced, paused or resumed. */
  updateTime: Date;
}

/** One handled fire time, from the fire log. */
export interface FireRecord {
  /** The trigger's name. */
  trigger: string;
  /** The scheduled time (the `fireTime` parameter of the execution, when one was launched). */
  fireTime: Date;
  /** When it was handled, by the database's clock. */
  firedAt: Date;
  /** The node that handled it. */
  node: string | null;
  /**
   * `fired` on time (within the threshold); `misfired` fired once for a run of missed times
   * (policy fire-once; `fireTime` is the latest of them); `skipped` a run of missed times (policy
   * skip; `fireTime` is the latest of them); `refused` the launch was refused (see `detail`);
   * `manual` an operator fired it now (`fireTime` is when, by the database's clock).
   */
  outcome: 'fired' | 'misfired' | 'skipped' | 'refused' | 'manual';
  /** The execution it launched, if any. */
  executionId: number | null;
  /** For misfires: the first missed fire time (the run is `missedFrom`..`fireTime`). */
  missedFrom: Date | null;
  /** Why a launch was refused, or who fired it by hand. */
  detail: string | null;
}

type AnyJob = JobDefinition<ParamsSchema>;
/** Jobs by name, or a list of jobs. */
export type JobsLike = ReadonlyMap<string, JobDefinition<ParamsSchema>> | readonly SomeJob[];

export function jobMap(jobs: JobsLike): ReadonlyMap<string, AnyJob> {
  if (jobs instanceof Map) return jobs as ReadonlyMap<string, AnyJob>;
  return new Map((jobs as readonly SomeJob[]).map((j) => [j.name, runnableJob(j)]));
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;

/**
 * Validates a trigger against the jobs it may run. Errors are UsageErrors (or CronErrors, naming
 * the cron field) with one line naming the problem, and the trigger once its name is known.
 * `mustFireAgain` (default true): a cron expression with no fire time after now is refused, as
 * when a trigger is added; a config's declared schedules pass false, since whether they fire
 * again depends on the day the config is loaded (such a trigger is kept, with no next fire time).
 */
export function validateSchedule(input: ScheduleSpec, jobs: JobsLike, { mustFireAgain = true }: { mustFireAgain?: boolean | undefined } = {}): TriggerDefinition {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new UsageError(`a schedule must be an object with name, job and cron, everyMs or at, got ${JSON.stringify(input)}`);
  }
  const spec = input as unknown as Record<string, unknown>;
  const name = spec.name;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new UsageError(`schedule name ${JSON.stringify(name)} is not valid (letters, digits and . _ : @ / -, at most 128)`);
  }
  return namingSchedule(name, () => triggerDefinition(name, spec, jobs, mustFireAgain));
}

/**
 * Runs `fn`; a user error it throws is thrown again naming the schedule (`schedule NAME: ...`),
 * of the same kind (a CronError keeps its field), so that every message says which schedule.
 */
function namingSchedule<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const context = `schedule ${name}`;
    if (err instanceof CronError) throw new CronError(err.expression, err.field, err.reason, context);
    if (err instanceof ParameterError) throw new ParameterError(`${context}: ${err.message}`, { cause: err });
    if (err instanceof UsageError) throw new UsageError(`${context}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** The checks of {@link validateSchedule} once the name is known; its messages leave the name to it. */
function triggerDefinition(name: string, spec: Record<string, unknown>, jobs: JobsLike, mustFireAgain: boolean): TriggerDefinition {
  const known = new Set(['name', 'job', 'cron', 'tz', 'everyMs', 'at', 'startAt', 'endAt', 'params', 'misfire', 'misfireThresholdMs', 'noConcurrent']);
  for (const k of Object.keys(spec)) if (!known.has(k)) throw new UsageError(`unknown property ${k}`);
  if (typeof spec.job !== 'string') throw new UsageError('job must be a job name');
  const def = requireJob(jobMap(jobs), spec.job);
  const timing = timingOf(spec);
  if (mustFireAgain) mustFireAfterNow(timing);
  const { cron, tz, everyMs, at, startAt, endAt } = timing;
  const raw = spec.params ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UsageError('params must be an object');
  if ((raw as Record<string, unknown>).fireTime !== undefined) throw new ParameterError('parameter fireTime is set by the scheduler (the scheduled time of each firing)');
  const resolved = resolveParams(def.name, def.params, raw as Record<string, unknown>, { partial: def.firingParams !== undefined });
  const json = paramsToJson(resolved);
  const params: JsonParams = {};
  for (const k of Object.keys(raw).sort()) if (json[k] !== undefined) params[k] = json[k];
  if (def.firingParams) tryFiringParams(def, { name, tz: tz ?? null, params }, timing);
  const misfire = spec.misfire ?? 'fire-once';
  if (!MISFIRE_POLICIES.includes(misfire as MisfirePolicy)) {
    throw new UsageError(`misfire policy must be fire-once or skip, got ${JSON.stringify(misfire)}`);
  }
  const threshold = spec.misfireThresholdMs ?? DEFAULT_MISFIRE_THRESHOLD_MS;
  if (typeof threshold !== 'number' || !Number.isSafeInteger(threshold) || threshold < 0) {
    throw new UsageError(`the misfire threshold must be a whole number of milliseconds >= 0, got ${JSON.stringify(threshold)}`);
  }
  const noConcurrent = spec.noConcurrent ?? false;
  if (typeof noConcurrent !== 'boolean') throw new UsageError('noConcurrent must be true or false');
  return {
    name, job: def.name, cron, tz, everyMs, at, startAt, endAt, params, misfire: misfire as MisfirePolicy, misfireThresholdMs: threshold, noConcurrent,
  };
}

/**
 * Runs the job's firingParams for the trigger's next fire time (or its one time, or now) and
 * checks the parameters it returns, so that a trigger whose firings would all be refused (an
 * unknown or missing parameter, a wrong type) is refused when it is added instead. One that
 * throws is let through: it may refuse some fire times on purpose, and adding a trigger (or
 * starting a node with its config) must not depend on the day it is done.
 */
function tryFiringParams(def: JobDefinition<ParamsSchema>, trigger: FiringTrigger, timing: Timing): void {
  const now = Date.now();
  const fireTime = timing.at?.getTime() ?? nextAfter(timing, now) ?? now;
  let params;
  try {
    params = firingParams(def, trigger, fireTime);
  } catch (err) {
    if (err instanceof FiringParamsThrew) return;
    throw err;
  }
  resolveParams(def.name, def.params, params);
}

/** Refuses a cron or interval trigger with no fire time left after now (a one-shot in the past is a misfire instead). */
function mustFireAfterNow(t: Timing): void {
  const now = Date.now();
  if (t.at || nextAfter(t, now) !== null) return;
  if (nextAfter({ ...t, startAt: null, endAt: null }, now) === null) throw new UsageError(`cron expression ${JSON.stringify(t.cron)} never fires again`);
  const bounds = [t.startAt && `startAt ${t.startAt.toISOString()}`, t.endAt && `endAt ${t.endAt.toISOString()}`].filter(Boolean);
  throw new UsageError(`${bounds.join(' and ')} ${bounds.length > 1 ? 'leave' : 'leaves'} no fire time after now`);
}

const given = (v: unknown) => v !== undefined && v !== null;

/** The timing fields of a schedule: exactly one of cron, everyMs and at; bounds for the first two only. */
function timingOf(spec: Record<string, unknown>): Required<Timing> {
  const kinds = (['cron', 'everyMs', 'at'] as const).filter((k) => given(spec[k]));
  if (kinds.length !== 1) {
    throw new UsageError(kinds.length === 0
      ? 'give a cron expression (cron), an interval (everyMs) or one time (at)'
      : `give one of cron, everyMs and at, not ${kinds.join(' and ')}`);
  }
  if (kinds[0] === 'at') return oneShot(spec);
  const bounds = boundsOf(spec);
  return kinds[0] === 'cron' ? { ...cronTiming(spec), ...bounds } : { ...intervalTiming(spec), ...bounds };
}

function oneShot(spec: Record<string, unknown>): Required<Timing> {
  for (const k of ['tz', 'startAt', 'endAt'] as const) {
    if (given(spec[k])) throw new UsageError(`${k} does not apply to a one-shot trigger (at): it fires once, at that time`);
  }
  return { cron: null, tz: null, everyMs: null, at: instantOption('at', spec.at), startAt: null, endAt: null };
}

function boundsOf(spec: Record<string, unknown>): Pick<Required<Timing>, 'startAt' | 'endAt'> {
  const startAt = given(spec.startAt) ? instantOption('startAt', spec.startAt) : null;
  const endAt = given(spec.endAt) ? instantOption('endAt', spec.endAt) : null;
  if (startAt && endAt && endAt.getTime() <= startAt.getTime()) {
    throw new UsageError(`endAt ${endAt.toISOString()} must be after startAt ${startAt.toISOString()}`);
  }
  return { startAt, endAt };
}

function cronTiming(spec: Record<string, unknown>): Required<Timing> {
  if (typeof spec.cron !== 'string') throw new UsageError('cron must be a string');
  const tz = given(spec.tz) ? spec.tz : 'UTC';
  if (typeof tz !== 'string') throw new UsageError('tz must be an IANA time zone name');
  try {
    parseCron(spec.cron, tz);
  } catch (err) {
    if (err instanceof CronError && err.field === 'time zone') throw new UsageError(`unknown time zone ${JSON.stringify(tz)}`);
    throw err;
  }
  return { cron: spec.cron, tz, everyMs: null, at: null, startAt: null, endAt: null };
}

function intervalTiming(spec: Record<string, unknown>): Required<Timing> {
  if (given(spec.tz)) throw new UsageError('tz applies to cron expressions only, not to an interval');
  const every = spec.everyMs;
  if (typeof every !== 'number' || !Number.isSafeInteger(every) || every < MIN_EVERY_MS) {
    throw new UsageError(`the interval must be a whole number of milliseconds >= ${MIN_EVERY_MS}, got ${JSON.stringify(every)}`);
  }
  return { cron: null, tz: null, everyMs: every, at: null, startAt: null, endAt: null };
}

/** Validates a list of declared schedules (names must be unique; one that never fires again is kept). */
export function validateSchedules(specs: readonly ScheduleSpec[], jobs: JobsLike): TriggerDefinition[] {
  const seen = new Set<string>();
  return specs.map((s) => {
    const d = validateSchedule(s, jobs, { mustFireAgain: false });
    if (seen.has(d.name)) throw new UsageError(`two schedules are named ${d.name}`);
    seen.add(d.name);
    return d;
  });
}

// ---- timing (pure: all instants are epoch milliseconds of the database's clock) ----------------------

/** The timing part of a trigger (the times of a one-shot and the bounds are optional: none). */
export interface Timing {
  cron: string | null;
  tz: string | null;
  everyMs: number | null;
  at?: Date | null;
  startAt?: Date | null;
  endAt?: Date | null;
}

const ms = (d: Date | null | undefined): number | null => (d ? d.getTime() : null);

const cronCache = new Map<string, CronSchedule>();
function cronOf(t: Timing): CronSchedule {
  const key = `${t.tz ?? 'UTC'}\u0000${t.cron}`;
  let c = cronCache.get(key);
  if (!c) {
    if (cronCache.size > 10_000) cronCache.clear();
    c = parseCron(t.cron!, t.tz ?? 'UTC');
    cronCache.set(key, c);
  }
  return c;
}

/** The first fire time strictly after `after` (within `startAt`..`endAt`), or null if there is none. */
export function nextAfter(t: Timing, after: number): number | null {
  const at = ms(t.at);
  if (at !== null) return at > after ? at : null;
  const start = ms(t.startAt);
  const from = start === null ? after : Math.max(after, start - 1);
  const next = unboundedNextAfter(t, from);
  const end = ms(t.endAt);
  return next === null || (end !== null && next > end) ? null : next;
}

function unboundedNextAfter(t: Timing, after: number): number | null {
  if (t.everyMs !== null) return (Math.floor(after / t.everyMs) + 1) * t.everyMs;
  const next = cronOf(t).next(new Date(after));
  return next === null ? null : next.getTime();
}

/**
 * A new (or re-timed) trigger's first fire time, `now` being the database's clock: a one-shot's
 * time even when it is past (then found late, it is a misfire, as in Quartz), otherwise the first
 * fire time after now.
 */
export function firstFireTime(t: Timing, now: number): number | null {
  return ms(t.at) ?? nextAfter(t, now);
}

/** The latest fire time in [`from`, `now`] (and not after `endAt`), given that `from` is a fire time <= `now`. */
export function latestAtOrBefore(t: Timing, from: number, until: number): number {
  if (ms(t.at) !== null) return from;
  const now = Math.max(from, Math.min(until, ms(t.endAt) ?? until));
  if (t.everyMs !== null) return Math.max(from, Math.floor(now / t.everyMs) * t.everyMs);
  // Search backwards from now in growing windows, so a long outage costs few iterations.
  for (let window = 60_000; ; window *= 4) {
    const start = Math.max(from - 1, now - window);
    let last: number | null = null;
    for (let f = nextAfter(t, start); f !== null && f <= now; f = nextAfter(t, f)) last = f;
    if (last !== null) return last;
    if (start <= from - 1) return from;
  }
}

/** What to do with a trigger found due at `now` (database time). */
export type Decision =
  | { action: 'fire'; fireTime: number; next: number | null; late: number }
  | { action: 'misfire'; policy: MisfirePolicy; fireTime: number; missedFrom: number; next: number | null; late: number };

/**
 * The firing rule. A fire time at most `misfireThresholdMs` late fires (and the trigger moves to
 * the next fire time after it, catching up one by one). A fire time more than the threshold late
 * is a misfire: with `fire-once` the latest missed fire time fires once, with `skip` nothing
 * fires; either way the trigger continues from the first fire time after now.
 */
export function decide(t: Timing & { misfire: MisfirePolicy; misfireThresholdMs: number }, cur: number, now: number): Decision {
  const late = now - cur;
  if (late <= t.misfireThresholdMs) return { action: 'fire', fireTime: cur, next: nextAfter(t, cur), late };
  const latest = latestAtOrBefore(t, cur, now);
  return { action: 'misfire', policy: t.misfire, fireTime: latest, missedFrom: cur, next: nextAfter(t, latest), late: now - latest };
}

// ---- administration ---------------------------------------------------------------------------------

interface TriggerRow {
  name: string;
  job_name: string;
  cron_expr: string | null;
  time_zone: string | null;
  every_ms: number | string | null;
  /** Null in rows written before schema version 19, as by older code. */
  once_at: number | string | null;
  start_at: number | string | null;
  end_at: number | string | null;
  params: string;
  misfire: string;
  misfire_threshold_ms: number | string;
  no_concurrent: number | boolean;
  paused: number | boolean;
  next_fire_time: number | string | null;
  last_fire_time: number | string | null;
  last_execution_id: number | string | null;
  last_instance_id: number | string | null;
  source: string;
  version: number;
  create_time: number | string;
  update_time: number | string;
}
export type { TriggerRow };

/** What a firing needs of its trigger's row. */
export const triggerOf = (row: Pick<TriggerRow, 'name' | 'time_zone' | 'params'>): FiringTrigger => ({
  name: row.name, tz: row.time_zone, params: JSON.parse(row.params) as JsonParams,
});

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));
const date = (v: number | string | null): Date | null => (v === null ? null : new Date(Number(v)));
const bool = (v: number | boolean) => v === true || v === 1;

export function rowTiming(r: TriggerRow): Timing & { misfire: MisfirePolicy; misfireThresholdMs: number } {
  return {
    cron: r.cron_expr, tz: r.time_zone, everyMs: num(r.every_ms), at: date(r.once_at), startAt: date(r.start_at), endAt: date(r.end_at),
    misfire: r.misfire as MisfirePolicy, misfireThresholdMs: Number(r.misfire_threshold_ms),
  };
}

export function toSchedule(r: TriggerRow): Schedule {
  return {
    name: r.name,
    job: r.job_name,
    cron: r.cron_expr,
    tz: r.time_zone,
    everyMs: num(r.every_ms),
    at: date(r.once_at),
    startAt: date(r.start_at),
    endAt: date(r.end_at),
    params: JSON.parse(r.params) as JsonParams,
    misfire: r.misfire as MisfirePolicy,
    misfireThresholdMs: Number(r.misfire_threshold_ms),
    noConcurrent: bool(r.no_concurrent),
    paused: bool(r.paused),
    // A paused trigger keeps its stored fire time (which resume replaces), but will not fire then.
    nextFireTime: bool(r.paused) ? null : date(r.next_fire_time),
    lastFireTime: date(r.last_fire_time),
    lastExecutionId: num(r.last_execution_id),
    source: r.source as Schedule['source'],
    createTime: date(r.create_time)!,
    updateTime: date(r.update_time)!,
  };
}

/** The JSON form of a schedule (`schedule list --json`): times as ISO-8601 UTC strings with ms. */
export function scheduleJson(s: Schedule) {
  return {
    name: s.name,
    job: s.job,
    cron: s.cron,
    tz: s.tz,
    everyMs: s.everyMs,
    at: s.at?.toISOString() ?? null,
    startAt: s.startAt?.toISOString() ?? null,
    endAt: s.endAt?.toISOString() ?? null,
    params: s.params,
    misfire: s.misfire,
    misfireThresholdMs: s.misfireThresholdMs,
    noConcurrent: s.noConcurrent,
    paused: s.paused,
    nextFireTime: s.nextFireTime?.toISOString() ?? null,
    lastFireTime: s.lastFireTime?.toISOString() ?? null,
    lastExecutionId: s.lastExecutionId,
    source: s.source,
  };
}

const sameTiming = (a: Timing, b: Timing) => a.cron === b.cron && a.tz === b.tz && a.everyMs === b.everyMs &&
  ms(a.at) === ms(b.at) && ms(a.startAt) === ms(b.startAt) && ms(a.endAt) === ms(b.endAt);

async function notify(tx: Tx, name: string): Promise<void> {
  if (tx.dialect === 'postgres') await tx.query(SCHED_SQL.notifyTrigger, [name]);
}

/**
 * Inserts or replaces a trigger in a transaction. A new trigger's first fire time is the first
 * one after now (database time), or a one-shot's time (see firstFireTime). A replaced trigger keeps its paused state, its history and, if
 * its timing did not change, its pending fire time. Returns whether it was created, changed or
 * already identical.
 */
export async function upsertTrigger(tx: Tx, d: TriggerDefinition, source: Schedule['source']): Promise<'created' | 'replaced' | 'unchanged'> {
  const now = Number((await tx.query<{ now: number | string }>(SCHED_SQL.dbNow))[0].now);
  const values = (next: number | null) => [
    d.name, d.job, d.cron, d.tz, d.everyMs, JSON.stringify(d.params), d.misfire, d.misfireThresholdMs, d.noConcurrent ? 1 : 0, next, source,
    ms(d.at), ms(d.startAt), ms(d.endAt),
  ];
  const inserted = await tx.execute(SCHED_SQL.insertTrigger, values(firstFireTime(d, now)));
  if (inserted) {
    await notify(tx, d.name);
    return 'created';
  }
  const row = (await tx.query<TriggerRow>(SCHED_SQL.lockTrigger(tx.dialect), [d.name]))[0];
  const old = toSchedule(row);
  const unchanged = old.job === d.job && sameTiming(old, d) && JSON.stringify(old.params) === JSON.stringify(d.params) &&
    old.misfire === d.misfire && old.misfireThresholdMs === d.misfireThresholdMs && old.noConcurrent === d.noConcurrent && old.source === source;
  if (unchanged) return 'unchanged';
  const next = sameTiming(old, d) ? num(row.next_fire_time) : firstFireTime(d, now);
  await tx.execute(SCHED_SQL.updateTrigger, values(next));
  await notify(tx, d.name);
  return 'replaced';
}

/** Operations on a repository's triggers: what `nightshift schedule ...` does. */
export interface ScheduleAdmin {
  /** Adds a trigger, or replaces the one with the same name (see `upsertTrigger`). */
  add(spec: ScheduleSpec): Promise<{
    /** The trigger as stored. */
    schedule: Schedule;
    /** Whether it was new, replaced one with the same name, or was the same already. */
    result: 'created' | 'replaced' | 'unchanged';
  }>;
  /** Every trigger, by name, with its next fire time. */
  list(): Promise<Schedule[]>;
  /** One trigger, or undefined. */
  get(name: string): Promise<Schedule | undefined>;
  /** Stops firing until resumed (takes effect on every node at once). */
  pause(name: string): Promise<Schedule>;
  /** Fires again from the first fire time after now: times that passed while paused are not fired. */
  resume(name: string): Promise<Schedule>;
  /** Deletes a trigger (a declared one too, until a node starts with it in its config again). */
  remove(name: string): Promise<void>;
  /**
   * Fires a trigger now, whatever its timing or paused state: its job is queued for the cluster
   * with the trigger's parameters and `fireTime` = now (database time), and the fire log records
   * it (outcome `manual`, `detail` naming `by`). Its next scheduled fire time does not move.
   * A no-concurrent trigger whose previous firing still runs is refused (LaunchRefusedError).
   */
  fireNow(name: string, by?: string): Promise<JobExecution>;
  /**
   * The newest handled fire times of a trigger, newest first; with `before`, those before that
   * fire time (the oldest fire time of a page asks for the page after it).
   */
  history(name: string, limit?: number, before?: Date): Promise<FireRecord[]>;
  /** The newest handled fire times of all triggers, newest first. */
  recentFires(limit?: number): Promise<FireRecord[]>;
}

/**
 * Schedule administration over a job repository. `jobs` are the jobs a trigger may run (a
 * Nightshift operator can be passed as it is: it has `db` and `jobs`).
 */
export function scheduleAdmin(target: { db: Database; jobs: JobsLike }): ScheduleAdmin {
  const { db } = target;
  const jobs = jobMap(target.jobs);
  // A change returns the trigger as its own transaction left it: read after the commit, a node
  // could have fired it already and moved its next fire time past the one announced.
  const get = async (name: string, client: Pick<Tx, 'query'> = db) => {
    const rows = await client.query<TriggerRow>(SCHED_SQL.getTrigger, [name]);
    return rows.length ? toSchedule(rows[0]) : undefined;
  };
  const mustGet = async (name: string, client: Pick<Tx, 'query'> = db) => {
    const s = await get(name, client);
    if (!s) throw new UsageError(`no schedule named ${name}`);
    return s;
  };
  const locked = async (tx: Tx, name: string) => {
    const rows = await tx.query<TriggerRow & { now: number | string }>(SCHED_SQL.lockTrigger(tx.dialect), [name]);
    if (!rows.length) throw new UsageError(`no schedule named ${name}`);
    return rows[0];
  };
  return {
    async add(spec) {
      const d = validateSchedule(spec, jobs);
      return db.transaction(async (tx) => {
        const result = await upsertTrigger(tx, d, 'runtime');
        return { schedule: (await get(d.name, tx))!, result };
      });
    },
    list: async () => (await db.query<TriggerRow>(SCHED_SQL.listTriggers)).map(toSchedule),
    get: (name) => get(name),
    async pause(name) {
      return db.transaction(async (tx) => {
        await locked(tx, name);
        await tx.execute(SCHED_SQL.pause, [name]);
        await notify(tx, name);
        return mustGet(name, tx);
      });
    },
    async resume(name) {
      return db.transaction(async (tx) => {
        const row = await locked(tx, name);
        if (bool(row.paused)) {
          await tx.execute(SCHED_SQL.resume, [name, nextAfter(rowTiming(row), Number(row.now))]);
          await notify(tx, name);
        }
        return mustGet(name, tx);
      });
    },
    async remove(name) {
      await db.transaction(async (tx) => {
        await locked(tx, name);
        await tx.execute(SCHED_SQL.remove, [name]);
        await tx.execute(SCHED_SQL.removeFires, [name]);
        await notify(tx, name);
      });
    },
    async fireNow(name, by) {
      return db.transaction(async (tx) => {
        const row = await locked(tx, name);
        if (bool(row.no_concurrent) && row.last_instance_id !== null) {
          const [running] = await tx.query<{ id: number | string; status: string }>(SCHED_SQL.runningOf, [row.last_instance_id]);
          if (running) {
            throw new LaunchRefusedError(`schedule ${name} is no-concurrent and its previous firing still runs (execution ${running.id}, ${running.status}): fire it again once that ends`);
          }
        }
        const now = Number(row.now);
        const def = requireJob(jobs, row.job_name);
        const execution = await createExecutionIn(tx, def, firingParams(def, triggerOf(row), now), { kind: 'queued', targetNode: null, affinityKey: null });
        await tx.execute(SCHED_SQL.logFire, [name, now, null, 'manual', execution.id, null, by ? `fired now by ${by}` : 'fired now']);
        await tx.execute(SCHED_SQL.recordManualFire, [name, execution.id, execution.instanceId]);
        return execution;
      });
    },
    history: async (name, limit = 100, before) =>
      (await db.query<FireRow>(SCHED_SQL.firesOf, [name, limit, before ? before.getTime() : Number.MAX_SAFE_INTEGER])).map(toFireRecord),
    recentFires: async (limit = 100) => (await db.query<FireRow>(SCHED_SQL.recentFires, [limit])).map(toFireRecord),
  };
}

interface FireRow {
  trigger_name: string; fire_time: number | string; fired_at: number | string; node_name: string | null; outcome: string;
  execution_id: number | string | null; missed_from: number | string | null; detail: string | null;
}

function toFireRecord(r: FireRow): FireRecord {
  return {
    trigger: r.trigger_name,
    fireTime: date(r.fire_time)!,
    firedAt: date(r.fired_at)!,
    node: r.node_name,
    outcome: r.outcome as FireRecord['outcome'],
    executionId: num(r.execution_id),
    missedFrom: date(r.missed_from),
    detail: r.detail,
  };
}

/** A fire log record in JSON: times as ISO-8601 UTC strings with ms. */
export function fireJson(f: FireRecord) {
  return {
    trigger: f.trigger,
    fireTime: f.fireTime.toISOString(),
    firedAt: f.firedAt.toISOString(),
    node: f.node,
    outcome: f.outcome,
    executionId: f.executionId,
    missedFrom: f.missedFrom?.toISOString() ?? null,
    detail: f.detail,
  };
}
