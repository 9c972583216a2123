import { keepPrepared } from '../repository/prepared.ts';
import type { Dialect } from '../repository/tx.ts';

/**
 * Every statement the scheduler runs. As in src/repository/sql.ts: `$n` placeholders on both
 * dialects and `ns_now()`, the database's clock in epoch milliseconds, which decides every
 * question of time (is a trigger due, how late is it). Node clocks only decide when to wake up.
 */

export const TRIGGER_COLS = `t.name, t.job_name, t.cron_expr, t.time_zone, t.every_ms, t.once_at, t.start_at, t.end_at, t.params, t.misfire,
  t.misfire_threshold_ms, t.no_concurrent, t.paused, t.next_fire_time, t.last_fire_time, t.last_execution_id,
  t.last_instance_id, t.source, t.version, t.create_time, t.update_time`;

/** `t.job_name` among the jobs this process has; the list is one parameter (`$n`). */
const hasJob = (d: Dialect, n: number) =>
  d === 'postgres' ? `t.job_name = ANY($${n}::text[])` : `t.job_name IN (SELECT value FROM json_each($${n}))`;

/**
 * A no-concurrent trigger whose previous firing's instance still runs (queued, running or
 * stopping) is not due: it waits, without advancing, until that instance ends.
 */
const NOT_BLOCKED = `NOT (t.no_concurrent = 1 AND t.last_instance_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM ns_job_execution e
    WHERE e.instance_id = t.last_instance_id AND e.status IN ('STARTING', 'STARTED', 'STOPPING')))`;

export const SCHED_SQL = {
  dbNow: `SELECT ns_now() AS now`,

  // ---- the firing loop ---------------------------------------------------------------------------
  /**
   * When to look again: the earliest fire time this process could fire (which another process
   * may hold already, firing it), the earliest beyond the look-ahead window (`$2` ms from now,
   * which nobody has taken yet), and the database's clock.
   */
  nextDue: (d: Dialect) => keepPrepared(`SELECT min(t.next_fire_time) AS next,
      min(t.next_fire_time) FILTER (WHERE t.next_fire_time > ns_now() + $2) AS beyond, ns_now() AS now
    FROM ns_trigger t
    WHERE t.paused = 0 AND t.next_fire_time IS NOT NULL AND ${hasJob(d, 1)} AND ${NOT_BLOCKED}`),
  /**
   * Takes up to `$2` triggers due by the database's clock, or due within `$3` ms (the look-ahead:
   * the firing transaction commits at their fire time, see the loop), for this transaction.
   * On PostgreSQL the row lock with SKIP LOCKED lets every node take a different due trigger at
   * once (no global lock); the lock is re-checked against the row's newest version, so a trigger
   * another node just fired is not due any more. A batch holds the triggers due now and those
   * whose fire time is within `$4` ms of the first one it took (the batch commits at its latest
   * fire time). On SQLite (`$3` is 0 there) the write transaction (BEGIN IMMEDIATE) serialises.
   * On PostgreSQL it also bounds how long the transaction may sit idle (`$5`, e.g. '5s': a paused
   * process loses its batch), and lets its COMMIT return before the WAL is flushed
   * (synchronous_commit off, for this transaction only), without a round trip of its own. That
   * cannot break exactly once: a crash of the server loses a suffix of the WAL, so it loses a
   * firing whole (launches, fire log and the trigger's move, which then fires again) and never
   * half; and nothing acts on a launch before a node's claim of it commits, synchronously, which
   * flushes the WAL up to and past the firing.
   */
  claimDue: (d: Dialect) => d === 'postgres'
    ? keepPrepared(`WITH first AS (
        SELECT t.next_fire_time AS at, set_config('idle_in_transaction_session_timeout', $5, true) AS idle_limit,
          set_config('synchronous_commit', 'off', true) AS async_commit
        FROM ns_trigger t
        WHERE t.paused = 0 AND t.next_fire_time IS NOT NULL AND t.next_fire_time <= (SELECT ns_now()) + $3
          AND ${hasJob(d, 1)} AND ${NOT_BLOCKED}
        ORDER BY t.next_fire_time, t.name LIMIT 1 FOR UPDATE OF t SKIP LOCKED)
      SELECT ${TRIGGER_COLS}, (SELECT ns_now()) AS now FROM ns_trigger t, first
      WHERE t.paused = 0 AND t.next_fire_time IS NOT NULL
        AND t.next_fire_time <= least((SELECT ns_now()) + $3, greatest(first.at + $4, (SELECT ns_now())))
        AND ${hasJob(d, 1)} AND ${NOT_BLOCKED}
      ORDER BY t.next_fire_time, t.name LIMIT $2 FOR UPDATE OF t SKIP LOCKED`)
    : `SELECT ${TRIGGER_COLS}, (SELECT ns_now()) AS now FROM ns_trigger t
      WHERE t.paused = 0 AND t.next_fire_time IS NOT NULL AND t.next_fire_time <= (SELECT ns_now()) + $3
        AND ${hasJob(d, 1)} AND ${NOT_BLOCKED}
      ORDER BY t.next_fire_time, t.name LIMIT $2`,
  /**
   * Which of the instances `$1` still run, read after their triggers' rows were locked. claimDue
   * cannot tell by itself on PostgreSQL: when another process fires a no-concurrent trigger and
   * commits while claimDue is on its way to that row, PostgreSQL re-checks the row's newest
   * version, but reads the executions as of the statement's start, before the launch that
   * process just committed. A statement of its own starts after the lock was taken, so it sees it.
   */
  stillRunning: keepPrepared(`SELECT DISTINCT e.instance_id FROM ns_job_execution e
    WHERE e.instance_id = ANY($1::bigint[]) AND e.status IN ('STARTING', 'STARTED', 'STOPPING')`),
  /**
   * Fires (or skips) the fire time `$2`: moves the trigger on to `$3`. The WHERE makes it happen
   * once: zero rows means another process got there first, and the caller rolls back.
   */
  advance: `UPDATE ns_trigger SET next_fire_time = $3, last_fire_time = COALESCE($4, last_fire_time),
      last_execution_id = COALESCE($5, last_execution_id), last_instance_id = COALESCE($6, last_instance_id),
      version = version + 1
    WHERE name = $1 AND next_fire_time = $2 AND paused = 0`,
  /**
   * A batch's fire times moved on in one statement (PostgreSQL): one row per array element (`$1`
   * name, `$2` the fire time handled, `$3` the next, `$4` last fire time or null, `$5` execution,
   * `$6` instance). Fewer rows changed (`n`) than elements means another process got there first.
   * It also announces the launches of the jobs `$7` to the nodes (the launch queue's channel, as
   * SQL.notifyLaunch does), delivered at COMMIT.
   */
  advanceMany: keepPrepared(`WITH adv AS (
      UPDATE ns_trigger t SET next_fire_time = v.next, last_fire_time = COALESCE(v.last_fire, t.last_fire_time),
        last_execution_id = COALESCE(v.execution_id, t.last_execution_id), last_instance_id = COALESCE(v.instance_id, t.last_instance_id),
        version = t.version + 1
      FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
        AS v (name, cur, next, last_fire, execution_id, instance_id)
      WHERE t.name = v.name AND t.next_fire_time = v.cur AND t.paused = 0
      RETURNING 1)
    SELECT (SELECT count(*) FROM adv) AS n, (SELECT count(pg_notify('ns_launch', j)) FROM unnest($7::text[]) AS j) AS announced`),
  /**
   * A batch's fire-log rows in one statement (PostgreSQL): the firing's last, sent with its COMMIT
   * in one round trip (its parameters are plain values: `$1` the rows as a JSON array, `$2` the
   * node). If the database's clock has not passed `$3` (the batch's latest fire time: this
   * process's estimate of that clock woke it a little early), it first sleeps until it has (the
   * sleep is a row source, so it runs before any row is made), so the launches become visible
   * after their fire time, never before. `fired_at` is the database's clock then; `at` returns it.
   */
  logFires: keepPrepared(`WITH log AS (
      INSERT INTO ns_trigger_fire (trigger_name, fire_time, fired_at, node_name, outcome, execution_id, missed_from, detail)
      SELECT v.name, v.fire_time, ns_now(), $2, v.outcome, v.execution_id, v.missed_from, v.detail
      FROM pg_sleep(greatest(0, $3::bigint + 1 - ns_now()) / 1000.0) AS w
        CROSS JOIN jsonb_to_recordset($1::jsonb) AS v (name text, fire_time bigint, outcome text, execution_id bigint, missed_from bigint, detail text)
      RETURNING fired_at)
    SELECT max(fired_at) AS at FROM log`),
  /** One row per fire time handled; the primary key (trigger, fire time) allows it once. */
  logFire: `INSERT INTO ns_trigger_fire (trigger_name, fire_time, fired_at, node_name, outcome, execution_id, missed_from, detail)
    VALUES ($1, $2, ns_now(), $3, $4, $5, $6, $7)`,
  /**
   * The last statement of a firing transaction that took nothing, `$1` null (its COMMIT goes with
   * it: `EXECUTE name(NULL); COMMIT`, as a prepared statement without parameters cannot be).
   */
  nothing: keepPrepared(`SELECT $1::bigint AS at`),
  pruneFires: `DELETE FROM ns_trigger_fire WHERE fired_at < ns_now() - $1`,

  // ---- administration ------------------------------------------------------------------------------
  getTrigger: `SELECT ${TRIGGER_COLS} FROM ns_trigger t WHERE t.name = $1`,
  lockTrigger: (d: Dialect) => `SELECT ${TRIGGER_COLS}, ns_now() AS now FROM ns_trigger t WHERE t.name = $1${d === 'postgres' ? ' FOR UPDATE' : ''}`,
  listTriggers: `SELECT ${TRIGGER_COLS} FROM ns_trigger t ORDER BY t.name`,
  insertTrigger: `INSERT INTO ns_trigger (name, job_name, cron_expr, time_zone, every_ms, params, misfire, misfire_threshold_ms,
      no_concurrent, paused, next_fire_time, source, once_at, start_at, end_at, create_time, update_time)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, $12, $13, $14, ns_now(), ns_now())
    ON CONFLICT (name) DO NOTHING`,
  /** Replaces a trigger's definition; its paused state and history stay. */
  updateTrigger: `UPDATE ns_trigger SET job_name = $2, cron_expr = $3, time_zone = $4, every_ms = $5, params = $6, misfire = $7,
      misfire_threshold_ms = $8, no_concurrent = $9, next_fire_time = $10, source = $11, once_at = $12, start_at = $13, end_at = $14,
      update_time = ns_now(),
      version = version + 1
    WHERE name = $1`,
  pause: `UPDATE ns_trigger SET paused = 1, update_time = ns_now(), version = version + 1 WHERE name = $1`,
  resume: `UPDATE ns_trigger SET paused = 0, next_fire_time = $2, update_time = ns_now(), version = version + 1 WHERE name = $1`,
  remove: `DELETE FROM ns_trigger WHERE name = $1`,
  removeFires: `DELETE FROM ns_trigger_fire WHERE trigger_name = $1`,
  firesOf: `SELECT trigger_name, fire_time, fired_at, node_name, outcome, execution_id, missed_from, detail
    FROM ns_trigger_fire WHERE trigger_name = $1 AND fire_time < $3 ORDER BY fire_time DESC LIMIT $2`,
  /** The newest handled fire times of all triggers (index on fired_at). */
  recentFires: `SELECT trigger_name, fire_time, fired_at, node_name, outcome, execution_id, missed_from, detail
    FROM ns_trigger_fire ORDER BY fired_at DESC, trigger_name LIMIT $1`,
  /** The newest execution of instance `$1` that still runs, if one does (a manual fire of a no-concurrent trigger waits for none). */
  runningOf: `SELECT e.id, e.status FROM ns_job_execution e
    WHERE e.instance_id = $1 AND e.status IN ('STARTING', 'STARTED', 'STOPPING') ORDER BY e.id DESC LIMIT 1`,
  /** A firing asked for by an operator: the trigger's last execution, which no-concurrent waits for. */
  recordManualFire: `UPDATE ns_trigger SET last_execution_id = $2, last_instance_id = $3, version = version + 1 WHERE name = $1`,
  /** Wakes the nodes' scheduler loops (PostgreSQL only; delivered at commit). */
  notifyTrigger: `SELECT pg_notify('ns_trigger', $1)`,
} as const;
