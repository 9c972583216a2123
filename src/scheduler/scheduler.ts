import { performance } from 'node:perf_hooks';
import { UsageError, errorMessage } from '../core/errors.ts';
import { createLogger, redactingLogger, type Logger } from '../core/logger.ts';
import { insertNewQueued } from '../engine/bulk-launch.ts';
import { createExecutionIn, prepareLaunch, type PreparedLaunch } from '../engine/launch.ts';
import type { Database } from '../repository/database.ts';
import type { Statement, Tx } from '../repository/tx.ts';
import { openDatabase } from '../repository/open.ts';
import { createDbClock, type DbClock } from './clock.ts';
import { listenOn } from '../repository/listen.ts';
import { SCHED_SQL } from './sql.ts';
import { firingParams } from './firing.ts';
import {
  decide, jobMap, nextAfter, rowTiming, triggerOf, upsertTrigger, validateSchedules, type FireRecord, type JobsLike, type ScheduleSpec,
  type TriggerRow,
} from './triggers.ts';

/** What {@link startScheduler} takes. */
export interface SchedulerOptions {
  /** The job repository: an open Database, or a URL. */
  db: string | Database;
  /** The jobs this process can launch: it fires only triggers of these jobs. */
  jobs: JobsLike;
  /** Declared triggers (a config's `schedules`): validated, then added or replaced at start. */
  schedules?: readonly ScheduleSpec[] | undefined;
  /** Recorded in the fire log as the process that fired. */
  nodeName?: string | undefined;
  /** Where the loop logs firings and misfires (URL passwords hidden, also in a logger of yours). */
  logger?: Logger | undefined;
  /** Longest sleep between two looks at the triggers (the safety net under notifications). Default 1000 ms. */
  pollMs?: number | undefined;
  /** How often to re-measure the offset to the database's clock. Default 10 s. */
  resyncMs?: number | undefined;
  /**
   * Firing transactions this process runs at once when many triggers are due (each takes a batch
   * of triggers and holds a connection; only one looks at the triggers while few are due).
   * Default 4 on PostgreSQL, 1 on SQLite.
   */
  fireConcurrency?: number | undefined;
  /**
   * PostgreSQL: at most how long before a fire time a firing transaction may take its trigger,
   * launch its execution and move the trigger on, so that at the fire time only the fire-log row
   * and the COMMIT are left: what the cluster launches becomes visible at the fire time (never
   * before; the database's clock decides), not a transaction later. Within this bound a process
   * takes its batches about twice as long ahead as preparing one has taken lately (at least
   * 250 ms, as preparing varies a lot on a busy host). Meanwhile the trigger's row is locked: a
   * change to it (pause, update) waits for the firing. Default 500 ms; 0 fires only triggers
   * already due. SQLite (one writer at a time) always uses 0.
   */
  fireAheadMs?: number | undefined;
  /** Fire-log rows older than this are deleted. Default 7 days. */
  fireLogRetentionMs?: number | undefined;
  /**
   * Due triggers this process fires in one transaction, when many are due at once. Default 250.
   * Larger batches fire more triggers a second; each batch commits or rolls back whole.
   */
  fireBatchSize?: number | undefined;
  /** Called after each committed firing, misfire or refusal. */
  onFire?: ((event: FireEvent) => void) | undefined;
  /** LISTEN for trigger changes (PostgreSQL; default true). With false it polls (`pollMs`) only. */
  listen?: boolean | undefined;
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
/**
 * A batch taken ahead of time commits at its latest fire time: it takes triggers whose fire times
 * are at most this far apart (or already due), so none of them fires later than that for it.
 */
const BATCH_SPREAD_MS = 10;
/**
 * A batch's last statement goes out this long before its fire time, and the database sleeps out
 * the rest: the firing then waits on the database's timer, not on this process getting the CPU
 * back (under load its timers fire tens of ms late).
 */
const SEND_EARLY_MS = 20;
/** The least look-ahead (when batches are quick to prepare), and how fast the estimate of that decays per batch. */
const MIN_AHEAD_MS = 250;
const PREP_DECAY = 0.9;
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
 * database (`ns_now()`) in the statement that takes it. Firing takes a batch of due triggers' rows
 * (`FOR UPDATE SKIP LOCKED`: processes take different due triggers at once, nobody queues on a
 * global lock) and, for each, launches the job with `fireTime` = the scheduled time through the cluster's launch queue,
 * records the fire time in the fire log (unique per trigger and fire time) and moves the trigger
 * to its next fire time with `UPDATE ... WHERE next_fire_time = $cur`, the batch in one transaction:
 * each fire time launches exactly one execution, and a process that dies half-way launches none.
 *
 * On PostgreSQL several lanes (`fireConcurrency`) fire side by side, and a batch may be taken up to
 * `fireAheadMs` before its fire time: its launches and the trigger's move are written then, and
 * only the fire-log row and the COMMIT wait for the fire time (the database sleeps out any error
 * of this process's clock estimate first), so nothing becomes visible early, and a large batch is
 * not a transaction late. A process that dies meanwhile rolls its batch back; its rows unlock and
 * another process fires them.
 */
export async function startScheduler(options: SchedulerOptions): Promise<Scheduler> {
  const jobs = jobMap(options.jobs);
  const declared = validateSchedules(options.schedules ?? [], jobs);
  const log = (options.logger ? redactingLogger(options.logger) : createLogger()).child({ component: 'scheduler' });
  const db = typeof options.db === 'object' ? options.db : await openDatabase(options.db, { logger: log });
  const ownsDb = typeof options.db !== 'object';
  const pollMs = options.pollMs ?? 1000;
  const resyncMs = options.resyncMs ?? 10_000;
  const retention = options.fireLogRetentionMs ?? 7 * 24 * 3600_000;
  const workers = Math.max(1, options.fireConcurrency ?? (db.dialect === 'postgres' ? 4 : 1));
  const maxAhead = db.dialect === 'postgres' ? Math.max(0, Math.floor(options.fireAheadMs ?? 500)) : 0;
  // How long preparing a batch (claim to the trigger's move) took lately: a decaying maximum,
  // quick to rise under load and slow to fall. The look-ahead follows it.
  let prepMs = maxAhead / 2;
  const notePrep = (ms: number) => {
    prepMs = Math.max(ms, prepMs * PREP_DECAY);
  };
  const ahead = () => (maxAhead === 0 ? 0 : Math.min(maxAhead, Math.max(MIN_AHEAD_MS, Math.ceil(2 * prepMs) + SEND_EARLY_MS)));
  const batchSize = Math.max(1, Math.floor(options.fireBatchSize ?? 250));
  const nodeName = options.nodeName ?? null;
  const names = [...jobs.keys()];
  const jobsParam = db.dialect === 'postgres' ? names : JSON.stringify(names);

  for (const d of declared) {
    const result = await db.transaction((tx) => upsertTrigger(tx, d, 'config'));
    if (result !== 'unchanged') log.info({ schedule: d.name, result }, `schedule ${d.name} ${result} from the declared schedules`);
    if (d.at === null && nextAfter(d, Date.now()) === null) {
      const why = d.endAt ? `its endAt ${d.endAt.toISOString()} has passed` : 'its cron expression has no time after now';
      log.warn({ schedule: d.name }, `schedule ${d.name} never fires again (${why}): remove it from the declared schedules`);
    }
  }

  const clock = createDbClock(db);
  await clock.sync();

  let stopped = false;
  // Each wake() starts a new generation: a lane that looked at the triggers in an older one does
  // not go to sleep on what it saw.
  let generation = 0;
  const sleepers = new Set<() => void>();
  const wake = () => {
    generation++;
    for (const s of [...sleepers]) s();
  };
  const sleep = (ms: number, seen: number) =>
    new Promise<void>((resolve) => {
      if (generation !== seen || stopped) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      }
      sleepers.add(done);
    });
  /** Resolves once this process's estimate of the database's clock reaches `t` (it may be a little early). */
  const untilDb = (t: number) =>
    new Promise<void>((resolve) => {
      const ms = t - clock.now();
      if (ms <= 0) resolve();
      else setTimeout(resolve, Math.ceil(ms));
    });

  type Duplicate = { name: string; cur: number; next: number | null };
  type DueRow = TriggerRow & { now: number | string };

  /** What a batch does with one taken trigger: its decision, and the launch it will try. */
  interface Plan {
    row: DueRow;
    now: number;
    cur: number;
    d: ReturnType<typeof decide>;
    /** The database's clock when the firing's last statement ran. */
    at: number;
    outcome: FireRecord['outcome'];
    detail: string | null;
    params?: Record<string, unknown>;
    execution?: { id: number; instanceId: number };
  }

  const planOf = (row: DueRow): Plan => {
    const now = Number(row.now);
    const cur = Number(row.next_fire_time);
    const d = decide(rowTiming(row), cur, now);
    const launch = d.action === 'fire' || d.policy === 'fire-once';
    const outcome: FireRecord['outcome'] = d.action === 'fire' ? 'fired' : d.policy === 'fire-once' ? 'misfired' : 'skipped';
    const plan: Plan = { row, now, cur, d, at: now, outcome, detail: null };
    if (launch) {
      try {
        plan.params = firingParams(jobs.get(row.job_name)!, triggerOf(row), d.fireTime);
      } catch (err) {
        refuse(plan, err);
      }
    }
    return plan;
  };

  /**
   * A refused launch (the instance already ran, the parameters no longer fit the job) is
   * recorded and the trigger moves on; anything else rolls the firing back.
   */
  const refuse = (plan: Plan, err: unknown) => {
    if (!(err instanceof UsageError)) throw err;
    plan.outcome = 'refused';
    plan.detail = errorMessage(err);
  };

  const eventOf = (p: Plan): FireEvent => ({
    trigger: p.row.name, job: p.row.job_name, fireTime: new Date(p.d.fireTime), outcome: p.outcome,
    executionId: p.execution?.id ?? null, lateMs: p.at - p.d.fireTime,
  });

  /** One trigger after another, a few statements each: SQLite, where a statement is a function call. */
  const fireEach = async (tx: Tx, plans: Plan[]) => {
    for (const p of plans) {
      if (p.params) {
        try {
          p.execution = await createExecutionIn(tx, jobs.get(p.row.job_name)!, p.params, QUEUED);
        } catch (err) {
          refuse(p, err);
        }
      }
      await tx.execute(SCHED_SQL.logFire, [
        p.row.name, p.d.fireTime, nodeName, p.outcome, p.execution?.id ?? null, p.d.action === 'misfire' ? p.d.missedFrom : null, p.detail,
      ]);
      const changed = await tx.execute(SCHED_SQL.advance, [
        p.row.name, p.cur, p.d.next, p.execution ? p.d.fireTime : null, p.execution?.id ?? null, p.execution?.instanceId ?? null,
      ]);
      if (changed !== 1) throw new LostRace();
    }
  };

  /**
   * The whole batch in a fixed number of statements, whatever its size: PostgreSQL, where each
   * statement is a round trip. New instances and their executions go in with one statement; an
   * instance that exists already (or twice in the batch) takes the locked path of a single launch.
   */
  const fireTogether = async (tx: Tx, plans: Plan[], started: number): Promise<Statement> => {
    const fresh: { plan: Plan; launch: PreparedLaunch }[] = [];
    const again: Plan[] = [];
    const keys = new Set<string>();
    for (const p of plans) {
      if (!p.params) continue;
      try {
        const launch = prepareLaunch(jobs.get(p.row.job_name)!, p.params, QUEUED);
        const key = `${p.row.job_name}\u0000${launch.key}`;
        if (keys.has(key)) again.push(p);
        else {
          keys.add(key);
          fresh.push({ plan: p, launch });
        }
      } catch (err) {
        refuse(p, err);
      }
    }
    if (fresh.length) {
      const created = await insertNewQueued(tx, fresh.map((f) => ({ job: f.plan.row.job_name, launch: f.launch })));
      for (const [i, e] of created) fresh[i].plan.execution = e;
      again.push(...fresh.filter((f) => !f.plan.execution).map((f) => f.plan));
    }
    for (const p of again) {
      try {
        p.execution = await createExecutionIn(tx, jobs.get(p.row.job_name)!, p.params!, QUEUED);
      } catch (err) {
        refuse(p, err);
      }
    }
    const col = <T>(f: (p: Plan) => T) => plans.map(f);
    const launched = [...new Set(fresh.filter((f) => f.plan.execution).map((f) => f.plan.row.job_name))];
    const [{ n }] = await tx.query<{ n: number | string }>(SCHED_SQL.advanceMany, [
      col((p) => p.row.name), col((p) => p.cur), col((p) => p.d.next), col((p) => (p.execution ? p.d.fireTime : null)),
      col((p) => p.execution?.id ?? null), col((p) => p.execution?.instanceId ?? null), launched,
    ]);
    if (Number(n) !== plans.length) throw new LostRace();
    notePrep(performance.now() - started);
    // A batch taken ahead of its fire time has written everything but its fire log: that, and the
    // COMMIT, wait for the fire time (the statement itself sleeps until the database's clock has
    // passed it).
    const due = Math.max(...plans.map((p) => p.d.fireTime));
    await untilDb(due - SEND_EARLY_MS);
    const rows = plans.map((p) => ({
      name: p.row.name, fire_time: p.d.fireTime, outcome: p.outcome, execution_id: p.execution?.id ?? null,
      missed_from: p.d.action === 'misfire' ? p.d.missedFrom : null, detail: p.detail,
    }));
    return { sql: SCHED_SQL.logFires, params: [JSON.stringify(rows), nodeName, due] };
  };

  const report = (e: FireEvent) => {
    const msg = `schedule ${e.trigger}: ${e.outcome} ${e.fireTime.toISOString()}`;
    if (e.outcome === 'fired') log.debug({ ...e, fireTime: e.fireTime.toISOString() }, msg);
    else if (e.outcome === 'refused') log.warn({ ...e, fireTime: e.fireTime.toISOString() }, msg);
    else log.info({ ...e, fireTime: e.fireTime.toISOString() }, msg);
    options.onFire?.(e);
  };

  /**
   * The taken rows less the no-concurrent triggers whose previous instance still runs, judged
   * after their rows were locked (see SCHED_SQL.stillRunning). A row left out stays locked,
   * unchanged, until this transaction ends: it waits for that instance as if never taken.
   */
  const withoutBlocked = async (tx: Tx, rows: DueRow[]): Promise<DueRow[]> => {
    const waitsOn = (r: DueRow) => (r.no_concurrent === true || Number(r.no_concurrent) === 1) && r.last_instance_id !== null;
    const waits = rows.filter(waitsOn).map((r) => Number(r.last_instance_id));
    if (!waits.length) return rows;
    const running = new Set((await tx.query<{ instance_id: number | string }>(SCHED_SQL.stillRunning, [waits])).map((r) => Number(r.instance_id)));
    return rows.filter((r) => !(waitsOn(r) && running.has(Number(r.last_instance_id))));
  };

  /**
   * Fires up to `limit` due triggers in one transaction: all of them commit, or none. How many
   * fired; 'lost' when another process moved a trigger first. A batch that fails on a race or on
   * an already handled fire time is retried one trigger at a time, which sorts that out.
   */
  const fire = async (limit: number): Promise<number | 'lost'> => {
    let plans: Plan[] = [];
    let last: Duplicate | undefined;
    try {
      const claim = async (tx: Tx) => {
        const rows = await tx.query<DueRow>(SCHED_SQL.claimDue(tx.dialect),
          tx.dialect === 'postgres' ? [jobsParam, limit, ahead(), BATCH_SPREAD_MS, IDLE_TX_TIMEOUT] : [jobsParam, limit, 0]);
        plans = (tx.dialect === 'postgres' ? await withoutBlocked(tx, rows) : rows).map(planOf);
        // A full batch: there may be more due at once, for the other lanes.
        if (rows.length >= limit) callHelpers();
        if (plans.length === 1) last = { name: plans[0].row.name, cur: plans[0].cur, next: nextAfter(rowTiming(plans[0].row), plans[0].cur) };
      };
      if (db.dialect === 'postgres') {
        const started = performance.now();
        const { rows } = await db.transactionEndingWith<void, { at: number | string | null }>(async (tx) => {
          await claim(tx);
          return { value: undefined, last: plans.length ? await fireTogether(tx, plans, started) : { sql: SCHED_SQL.nothing, params: [null] } };
        });
        const at = Number(rows[0]?.at);
        for (const p of plans) p.at = Number.isFinite(at) ? at : p.d.fireTime;
      } else {
        await db.transaction(async (tx) => {
          await claim(tx);
          if (plans.length) await fireEach(tx, plans);
        });
      }
    } catch (err) {
      const race = err instanceof LostRace || isUniqueViolation(err);
      if (race && limit > 1) return fire(1);
      if (err instanceof LostRace) return 'lost';
      if (isUniqueViolation(err) && last) {
        // This fire time was handled already (possible only if the database's clock went back
        // across a change of the trigger): never fire it twice, move past it.
        const dup = last;
        log.warn({ schedule: dup.name, fireTime: new Date(dup.cur).toISOString() }, 'fire time already handled; skipping it');
        await db.execute(SCHED_SQL.advance, [dup.name, dup.cur, dup.next, null, null, null]);
        return 'lost';
      }
      throw err;
    }
    for (const p of plans) report(eventOf(p));
    return plans.length;
  };

  let lastSync = performance.now();
  let lastPrune = -Infinity;
  // The other lanes wait, without polling (an idle process looks at the triggers once per wake-up),
  // until the first lane takes a full batch: then they take the next ones while it holds its own.
  const parked = new Set<() => void>();
  const callHelpers = () => {
    for (const p of [...parked]) p();
  };
  const helper = async () => {
    while (!stopped) {
      await new Promise<void>((resolve) => {
        const done = () => {
          parked.delete(done);
          resolve();
        };
        parked.add(done);
      });
      try {
        while (!stopped && (await fire(batchSize)) !== 0);
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'scheduler: firing failed; the first lane will retry');
      }
    }
  };
  /**
   * The first firing lane: fires batch after batch while triggers are due (or due within the
   * look-ahead window), then sleeps until the next one is. The other lanes join in when it takes a
   * full batch, each in its own transaction: while one holds a batch taken ahead until its fire
   * time, the others take the next batches (SKIP LOCKED).
   */
  const lane = async () => {
    let failures = 0;
    let contended = 0;
    while (!stopped) {
      const seen = generation;
      try {
        if (performance.now() - lastSync > resyncMs) {
          await clock.sync();
          lastSync = performance.now();
        }
        if (performance.now() - lastPrune > PRUNE_EVERY_MS) {
          lastPrune = performance.now();
          await db.execute(SCHED_SQL.pruneFires, [retention]);
        }
        while ((await fire(batchSize)) !== 0) if (stopped) return;
        const window = ahead();
        const plan = (await db.query<{ next: number | string | null; beyond: number | string | null }>(
          SCHED_SQL.nextDue(db.dialect), [jobsParam, window]))[0];
        let delay = pollMs;
        const next = plan?.next === null || plan?.next === undefined ? null : Number(plan.next);
        const beyond = plan?.beyond === null || plan?.beyond === undefined ? null : Number(plan.beyond);
        if (next !== null && next <= clock.now() + window) {
          // Due (or within the window), but another lane or process holds it (it is firing it):
          // look again once that firing should have committed, then more often.
          const held = next - clock.now();
          delay = held > 0 ? Math.ceil(held) + 5 : Math.min(100, 2 << Math.min(contended++, 6));
        } else contended = 0;
        if (beyond !== null) delay = Math.min(delay, Math.max(1, Math.ceil(beyond - window - clock.now())));
        failures = 0;
        await sleep(Math.min(pollMs, delay), seen);
      } catch (err) {
        failures++;
        log.warn({ err: errorMessage(err) }, 'scheduler: looking at the triggers failed; will retry');
        await sleep(Math.min(5000, 50 * 2 ** Math.min(failures, 7)), seen);
      }
    }
  };

  const listener = options.listen === false ? { close: async () => undefined } : listenOn(db, ['ns_trigger'], { onNotify: wake, onConnect: wake }, log);
  const running = Promise.all(Array.from({ length: workers }, (_, i) => (i === 0 ? lane() : helper())));
  log.info({ triggers: declared.length, clockRttMs: Number(clock.rttMs.toFixed(2)) }, 'scheduler started');

  return {
    wake,
    clock,
    async stop() {
      if (stopped) return;
      stopped = true;
      wake();
      callHelpers();
      await listener.close();
      await running;
      if (ownsDb) await db.close();
    },
  };
}
