import { performance } from 'node:perf_hooks';
import { UsageError, errorMessage } from '../core/errors.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import type { JsonParams } from '../core/params.ts';
import { createExecutionIn } from '../engine/launch.ts';
import type { Database } from '../repository/database.ts';
import { openDatabase } from '../repository/open.ts';
import { createDbClock, type DbClock } from './clock.ts';
import { listenOn } from '../repository/listen.ts';
import { SCHED_SQL } from './sql.ts';
import {
  decide, jobMap, nextAfter, rowTiming, upsertTrigger, validateSchedules, type FireRecord, type JobsLike, type ScheduleSpec,
  type TriggerRow,
} from './triggers.ts';

/** What {@link startScheduler} takes. */
export interface SchedulerOptions {
  /** The job repository: an open Database, or a URL. */
  db: string | Database;
  /** The jobs this process can launch: it fires only triggers of these jobs. */
  jobs: JobsLike;
  /** Declared triggers (a config's `schedules`): validated, then added or replaced at start. */
  schedules?: readonly ScheduleSpec[];
  /** Recorded in the fire log as the process that fired. */
  nodeName?: string;
  /** Where the loop logs firings and misfires. */
  logger?: Logger;
  /** Longest sleep between two looks at the triggers (the safety net under notifications). Default 1000 ms. */
  pollMs?: number;
  /** How often to re-measure the offset to the database's clock. Default 10 s. */
  resyncMs?: number;
  /** Firings this process performs at once when many triggers are due. Default 2 on PostgreSQL, 1 on SQLite. */
  fireConcurrency?: number;
  /** Fire-log rows older than this are deleted. Default 7 days. */
  fireLogRetentionMs?: number;
  /** Called after each committed firing, misfire or refusal. */
  onFire?: (event: FireEvent) => void;
}

/** A committed firing decision. */
export interface FireEvent {
  /** The trigger's name. */
  trigger: string;
  /** Its job. */
  job: string;
  /** The scheduled time handled. */
  fireTime: Date;
  /** What happened (see {@link FireRecord.outcome}). */
  outcome: FireRecord['outcome'];
  /** The execution launched, if any. */
  executionId: number | null;
  /** Database time of the decision minus the scheduled time, in ms. */
  lateMs: number;
}

/** A running scheduler loop (see {@link startScheduler}). */
export interface Scheduler {
  /** Looks at the triggers now (e.g. after a change). */
  wake(): void;
  /** Stops the loop (an in-flight firing commits or rolls back first). */
  stop(): Promise<void>;
  /** This process's estimate of the database's clock. */
  readonly clock: DbClock;
}

/** A session stuck inside a firing transaction (a paused process) loses it after this long. */
const IDLE_TX_TIMEOUT = '5s';
const PRUNE_EVERY_MS = 10 * 60_000;

class LostRace extends Error {}

const QUEUED = { kind: 'queued', targetNode: null, affinityKey: null } as const;

function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/**
 * Starts the scheduler loop of one process (every cluster node runs one; so can a single process
 * on SQLite, next to a node that runs what it launches).
 *
 * Every process computes when the earliest trigger is due and sleeps until then, by its estimate
 * of the database's clock. Whether a trigger is due, and how late it is, is decided by the
 * database (`ns_now()`) in the statement that takes it. Firing takes the trigger's row (`FOR
 * UPDATE SKIP LOCKED`: processes take different due triggers at once, nobody queues on a global
 * lock), launches the job with `fireTime` = the scheduled time through the cluster's launch queue,
 * records the fire time in the fire log (unique per trigger and fire time) and moves the trigger
 * to its next fire time with `UPDATE ... WHERE next_fire_time = $cur`, all in one transaction:
 * each fire time launches exactly one execution, and a process that dies half-way launches none.
 */
export async function startScheduler(options: SchedulerOptions): Promise<Scheduler> {
  const jobs = jobMap(options.jobs);
  const declared = validateSchedules(options.schedules ?? [], jobs);
  const db = typeof options.db === 'object' ? options.db : await openDatabase(options.db);
  const ownsDb = typeof options.db !== 'object';
  const log = (options.logger ?? createLogger()).child({ component: 'scheduler' });
  const pollMs = options.pollMs ?? 1000;
  const resyncMs = options.resyncMs ?? 10_000;
  const retention = options.fireLogRetentionMs ?? 7 * 24 * 3600_000;
  const workers = Math.max(1, options.fireConcurrency ?? (db.dialect === 'postgres' ? 2 : 1));
  const nodeName = options.nodeName ?? null;
  const names = [...jobs.keys()];
  const jobsParam = db.dialect === 'postgres' ? names : JSON.stringify(names);

  for (const d of declared) {
    const result = await db.transaction((tx) => upsertTrigger(tx, d, 'config'));
    if (result !== 'unchanged') log.info({ schedule: d.name, result }, `schedule ${d.name} ${result} from the config`);
  }

  const clock = createDbClock(db);
  await clock.sync();

  let stopped = false;
  let kicked = false;
  let wakeSleeper: (() => void) | undefined;
  const wake = () => {
    kicked = true;
    wakeSleeper?.();
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (kicked || stopped) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeSleeper = undefined;
        resolve();
      }
      wakeSleeper = done;
    });

  /** Fires at most one due trigger; 'none' when nothing due could be taken. */
  const fireOne = async (): Promise<'fired' | 'none' | 'lost'> => {
    let event: FireEvent | undefined;
    let duplicate: { name: string; cur: number; next: number | null } | undefined;
    try {
      const taken = await db.transaction(async (tx) => {
        if (tx.dialect === 'postgres') await tx.exec(`SET LOCAL idle_in_transaction_session_timeout = '${IDLE_TX_TIMEOUT}'`);
        const rows = await tx.query<TriggerRow & { now: number | string }>(SCHED_SQL.claimDue(tx.dialect), [jobsParam]);
        if (!rows.length) return false;
        const row = rows[0];
        const now = Number(row.now);
        const cur = Number(row.next_fire_time);
        const timing = rowTiming(row);
        const d = decide(timing, cur, now);
        duplicate = { name: row.name, cur, next: nextAfter(timing, cur) };
        const launch = d.action === 'fire' || d.policy === 'fire-once';
        let outcome: FireRecord['outcome'] = d.action === 'fire' ? 'fired' : d.policy === 'fire-once' ? 'misfired' : 'skipped';
        let execution: { id: number; instanceId: number } | undefined;
        let detail: string | null = null;
        if (launch) {
          try {
            const params = { ...(JSON.parse(row.params) as JsonParams), fireTime: new Date(d.fireTime) };
            execution = await createExecutionIn(tx, jobs.get(row.job_name)!, params, QUEUED);
          } catch (err) {
            // A refused launch (the instance already ran, the parameters no longer fit the job)
            // is recorded and the trigger moves on; anything else rolls the firing back.
            if (!(err instanceof UsageError)) throw err;
            outcome = 'refused';
            detail = errorMessage(err);
          }
        }
        await tx.execute(SCHED_SQL.logFire, [
          row.name, d.fireTime, nodeName, outcome, execution?.id ?? null, d.action === 'misfire' ? d.missedFrom : null, detail,
        ]);
        const changed = await tx.execute(SCHED_SQL.advance, [
          row.name, cur, d.next, execution ? d.fireTime : null, execution?.id ?? null, execution?.instanceId ?? null,
        ]);
        if (changed !== 1) throw new LostRace();
        event = {
          trigger: row.name, job: row.job_name, fireTime: new Date(d.fireTime), outcome, executionId: execution?.id ?? null, lateMs: now - d.fireTime,
        };
        return true;
      });
      if (!taken) return 'none';
    } catch (err) {
      if (err instanceof LostRace) return 'lost';
      if (isUniqueViolation(err) && duplicate) {
        // This fire time was handled already (possible only if the database's clock went back
        // across a change of the trigger): never fire it twice, move past it.
        log.warn({ schedule: duplicate.name, fireTime: new Date(duplicate.cur).toISOString() }, 'fire time already handled; skipping it');
        await db.execute(SCHED_SQL.advance, [duplicate.name, duplicate.cur, duplicate.next, null, null, null]);
        return 'lost';
      }
      throw err;
    }
    const e = event!;
    const msg = `schedule ${e.trigger}: ${e.outcome} ${e.fireTime.toISOString()}`;
    if (e.outcome === 'fired') log.debug({ ...e, fireTime: e.fireTime.toISOString() }, msg);
    else if (e.outcome === 'refused') log.warn({ ...e, fireTime: e.fireTime.toISOString() }, msg);
    else log.info({ ...e, fireTime: e.fireTime.toISOString() }, msg);
    options.onFire?.(e);
    return 'fired';
  };

  const drain = async () => {
    while (!stopped) {
      if ((await fireOne()) === 'none') return;
    }
  };

  const loop = async () => {
    let lastSync = performance.now();
    let lastPrune = -Infinity;
    let failures = 0;
    let contended = 0;
    while (!stopped) {
      kicked = false;
      try {
        if (performance.now() - lastSync > resyncMs) {
          await clock.sync();
          lastSync = performance.now();
        }
        if (performance.now() - lastPrune > PRUNE_EVERY_MS) {
          lastPrune = performance.now();
          await db.execute(SCHED_SQL.pruneFires, [retention]);
        }
        await Promise.all(Array.from({ length: workers }, drain));
        const plan = (await db.query<{ next: number | string | null }>(SCHED_SQL.nextDue(db.dialect), [jobsParam]))[0];
        let delay = pollMs;
        if (plan?.next !== null && plan?.next !== undefined) {
          const until = Number(plan.next) - clock.now();
          if (until > 0) {
            contended = 0;
            delay = Math.min(pollMs, Math.ceil(until));
          } else {
            // Due, but another process holds it (it is firing it): look again very soon.
            delay = Math.min(100, 2 << Math.min(contended++, 6));
          }
        }
        failures = 0;
        await sleep(delay);
      } catch (err) {
        failures++;
        log.warn({ err: errorMessage(err) }, 'scheduler: looking at the triggers failed; will retry');
        await sleep(Math.min(5000, 50 * 2 ** Math.min(failures, 7)));
      }
    }
  };

  const listener = listenOn(db, ['ns_trigger'], { onNotify: wake, onConnect: wake }, log);
  const running = loop();
  log.info({ triggers: declared.length, clockRttMs: Number(clock.rttMs.toFixed(2)) }, 'scheduler started');

  return {
    wake,
    clock,
    async stop() {
      if (stopped) return;
      stopped = true;
      wakeSleeper?.();
      await listener.close();
      await running;
      if (ownsDb) await db.close();
    },
  };
}
