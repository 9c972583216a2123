import { keepPrepared } from './prepared.ts';
import type { Dialect } from './tx.ts';

/**
 * Every statement the repository runs, in one place. Placeholders are `$n` on both dialects;
 * `ns_now()` is the database's clock in epoch milliseconds. Where the dialects differ the
 * statement is a function of the dialect.
 */

const EXEC_COLS = `e.id, e.instance_id, e.job_name, e.status, e.exit_code, e.exit_description, e.params,
  e.create_time, e.start_time, e.end_time, e.last_updated, e.version, e.owner_node_id, e.owner_epoch,
  e.node_name, e.context, e.target_node, e.affinity_key`;

const STEP_COLS = `s.id, s.job_execution_id, s.step_name, s.status, s.exit_code, s.exit_description,
  s.read_count, s.write_count, s.filter_count, s.read_skip_count, s.process_skip_count, s.write_skip_count,
  s.commit_count, s.rollback_count, s.start_time, s.end_time, s.last_updated, s.version, s.context, s.node_name`;

/**
 * The executions `page` selects (EXEC_COLS, at most a page of them), each with the newest later
 * execution of its instance (a restart, or the execution a failover handed the instance to):
 * `restarted_id` and `restarted_status`, both null when it is its instance's newest. Newest first.
 * Per row, one entry of `ns_job_execution_by_instance` (migration 16), and the later row's own
 * when there is one: put it over a page's rows, never a scan.
 */
const withRestart = (page: string) => `SELECT p.*, r.id AS restarted_id, r.status AS restarted_status FROM (${page}) p
    LEFT JOIN ns_job_execution r ON r.id = (SELECT max(x.id) FROM ns_job_execution x WHERE x.instance_id = p.instance_id AND x.id > p.id)
    ORDER BY p.id DESC`;

/**
 * Columns of a just-claimed execution: its row and its number in the instance. (Not for INSERT
 * ... RETURNING: on PostgreSQL the subquery would not see the new row.)
 */
const RUN_COLS = `${EXEC_COLS.replace(/e\./g, '')}, (SELECT count(*) FROM ns_job_execution x
  WHERE x.instance_id = ns_job_execution.instance_id AND x.id <= ns_job_execution.id) AS execution_number`;

/**
 * Claims queued executions for a node: jobs it has, addressed to it or to anyone, the oldest
 * first. SKIP LOCKED lets nodes claim concurrently without a global lock; each claim bumps the
 * epoch. On PostgreSQL the ids come from `ns_queued_ids` (migration 9), which reads the queue in
 * id order whatever the statistics say, and `= ANY(ARRAY(...))` looks them up one by one: a join
 * with them may scan the whole table while it is small. On SQLite the queue's partial index is
 * named: once ANALYZE has run, SQLite would otherwise read the whole history in id order hoping
 * to meet a queued row early (an empty queue: every row).
 */
const CLAIM = (d: Dialect) => `UPDATE ns_job_execution SET status = 'STARTED', exit_code = 'EXECUTING', owner_node_id = $1,
      owner_epoch = owner_epoch + 1, node_name = $2, start_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE id ${d === 'postgres' ? '= ANY(ARRAY(SELECT ns_queued_ids($1, $2, $3::text[], $4)))' : `IN (
      SELECT id FROM ns_job_execution INDEXED BY ns_job_execution_queued
      WHERE status = 'STARTING' AND owner_node_id IS NULL AND (target_node IS NULL OR target_node = $2)
        AND EXISTS (SELECT 1 FROM ns_node n WHERE n.id = $1 AND n.status = 'alive' AND n.lease_until >= ns_now()
          AND n.drain_requested_at IS NULL)
        AND job_name IN (SELECT value FROM json_each($3))
      ORDER BY id LIMIT $4)`}
    RETURNING ${RUN_COLS}`;

/** The filters of an execution list that are given (see SQL.listExecutions). */
export interface ExecutionFilters {
  job?: boolean;
  status?: boolean;
  node?: boolean;
  from?: boolean;
  to?: boolean;
  before?: boolean;
  minId?: boolean;
  maxId?: boolean;
  text?: boolean;
  /**
   * The status given is one of ENDED_NOT_COMPLETED: the query says so as well, so that a status
   * and node filter reads the partial index of migration 6.
   */
  endedNotCompleted?: boolean;
}

/** The statuses of the partial index `ns_job_execution_node_ended` (migration 6), in its order. */
export const ENDED_NOT_COMPLETED = ['FAILED', 'STOPPED', 'ABANDONED', 'UNKNOWN'] as const;

const forUpdate = (d: Dialect) => (d === 'postgres' ? ' FOR UPDATE' : '');

/**
 * A node incarnation that ended more than `$1` ms ago and owns no running execution or partition
 * (its failover must still find it): what `pruneNodes` deletes and `countPrunableNodes` counts.
 */
const PRUNABLE_NODE = `n.ended_at IS NOT NULL AND n.ended_at < ns_now() - $1 AND n.status <> 'alive'
        AND NOT EXISTS (SELECT 1 FROM ns_job_execution e WHERE e.owner_node_id = n.id AND e.status IN ('STARTING', 'STARTED', 'STOPPING'))
        AND NOT EXISTS (SELECT 1 FROM ns_step_execution s WHERE s.owner_node_id = n.id AND s.status = 'STARTED' AND s.manager_id IS NOT NULL)`;

/** The ids in a JSON array parameter, as a subquery's rows. */
const jsonIds = (d: Dialect, p: string) =>
  d === 'sqlite' ? `SELECT value FROM json_each(${p})` : `SELECT jsonb_array_elements_text(${p}::jsonb)::bigint`;

/**
 * The SET list of a step's end: the step id is `$n`, its other values from `$n+1` to `$n+12` in
 * finishStep's order, at time `at`. A step's end may be written with the
 * next fenced write (a later step's start, the job's end): it then takes that write's time, so
 * that a step never ends after its job, nor after the next step started.
 */
const endStep = (n: number, at = 'ns_now()') => `read_count = $${n + 1}, write_count = $${n + 2}, filter_count = $${n + 3},
      read_skip_count = $${n + 4}, process_skip_count = $${n + 5}, write_skip_count = $${n + 6}, commit_count = $${n + 7},
      rollback_count = $${n + 8}, context = $${n + 9}, status = $${n + 10}, exit_code = $${n + 11}, exit_description = $${n + 12},
      end_time = ${at}, last_updated = ${at}, version = version + 1`;

/** Ends a job execution, fenced; returns its id and end time (`at`). */
const FINISH_EXECUTION = `UPDATE ns_job_execution SET status = $4, exit_code = $5, exit_description = $6, end_time = ns_now(),
      last_updated = ns_now(), version = version + 1, context = $7
    WHERE id = $1 AND owner_node_id = $2 AND owner_epoch = $3 AND status IN ('STARTED', 'STOPPING') RETURNING id, end_time AS at`;

export const SQL = {
  // ---- nodes -------------------------------------------------------------------------------
  insertNode: `INSERT INTO ns_node (name, cluster, host, pid, kind, status, jobs, concurrency, heartbeat_ms, lease_ms,
      started_at, last_heartbeat, lease_until)
    VALUES ($1, $2, $3, $4, $5, 'alive', $6, $7, $8, $9, ns_now(), ns_now(), ns_now() + $10)
    RETURNING id, started_at`,
  heartbeat: `UPDATE ns_node SET last_heartbeat = ns_now(), lease_until = ns_now() + lease_ms
    WHERE id = $1 AND status = 'alive' RETURNING lease_until`,
  leaveNode: `UPDATE ns_node SET status = 'left', ended_at = ns_now(), end_reason = $2 WHERE id = $1 AND status = 'alive'`,
  /** Declares a node dead exactly once: only the first caller sees a row. */
  declareDead: `UPDATE ns_node SET status = 'dead', ended_at = ns_now(), end_reason = $2
    WHERE id = $1 AND status = 'alive' AND lease_until < ns_now() RETURNING id, name`,
  /** For a node whose process is known to be gone (same host, no such pid): dead without waiting for the lease. */
  declareDeadNow: `UPDATE ns_node SET status = 'dead', ended_at = ns_now(), end_reason = $2
    WHERE id = $1 AND status = 'alive' RETURNING id, name`,
  stoppingOfNode: `SELECT id FROM ns_job_execution WHERE owner_node_id = $1 AND status = 'STOPPING'`,
  /**
   * What a cluster node's heartbeat thread reads after each beat, in one statement, so that the
   * node's own recurring checks cost the same however many nodes there are (each part is one
   * index probe or range that holds only what changed): `$1` the node's id, `$2` its job names
   * (an array on PostgreSQL, JSON on SQLite), `$3` its name, `$4` how close (ms) to running out
   * a peer's lease makes it late (2 heartbeats missed at this node's settings). It returns the
   * executions an operator asked this node to stop (`stopping`, JSON ids), whether one asked it to
   * drain, the membership version (the newest node id, the newest end of any incarnation, and
   * how many live nodes were asked to drain with the newest such request, on the index of
   * migration 17: a join, an end, a drain or a resume changes it), whether any peer is late or
   * expired (`late`, on the index of live nodes' leases), and whether work this node could claim
   * is queued (`queued`, on the queued-work indexes), and whether execution count deltas wait to
   * be folded (`counts_pending`, PostgreSQL; see migration 5). Reads only: the heartbeat itself
   * writes one row.
   */
  nodeProbe: (d: Dialect) => {
    const jobs = (col: string) => (d === 'postgres' ? `${col} = ANY($2::text[])` : `${col} IN (SELECT value FROM json_each($2))`);
    return `SELECT
      (SELECT ${d === 'postgres' ? 'json_agg(id)' : 'json_group_array(id)'} FROM ns_job_execution WHERE owner_node_id = $1 AND status = 'STOPPING') AS stopping,
      (SELECT drain_requested_at FROM ns_node WHERE id = $1) AS drain_requested_at,
      (SELECT max(id) FROM ns_node) AS last_joined,
      (SELECT max(ended_at) FROM ns_node WHERE ended_at IS NOT NULL) AS last_ended,
      (SELECT count(*) FROM ns_node WHERE status = 'alive' AND drain_requested_at IS NOT NULL) AS draining,
      (SELECT max(drain_requested_at) FROM ns_node WHERE status = 'alive' AND drain_requested_at IS NOT NULL) AS last_drained,
      EXISTS (SELECT 1 FROM ns_node WHERE status = 'alive' AND lease_until < ns_now() + $4 AND id <> $1) AS late,
      (${d === 'postgres' ? 'ns_has_queued($2::text[], $3)' : `EXISTS (SELECT 1 FROM ns_job_execution WHERE status = 'STARTING' AND owner_node_id IS NULL
          AND (target_node IS NULL OR target_node = $3) AND ${jobs('job_name')})`}
        OR EXISTS (SELECT 1 FROM ns_step_execution s JOIN ns_job_execution e ON e.id = s.job_execution_id
          WHERE s.status = 'STARTING' AND s.manager_id IS NOT NULL AND (s.target_node IS NULL OR s.target_node = $3)
            AND e.status IN ('STARTED', 'STOPPING') AND ${jobs('e.job_name')})) AS queued,
      ${d === 'postgres' ? '(SELECT id FROM ns_execution_count_delta ORDER BY id LIMIT 1) IS NOT NULL' : 'false'} AS counts_pending`;
  },
  dbNow: `SELECT ns_now() AS now`,

  // ---- instances -------------------------------------------------------------------------------
  /** Returns a row only when the instance is new. */
  insertInstance: `INSERT INTO ns_job_instance (job_name, job_key, identifying_params, create_time)
    VALUES ($1, $2, $3, ns_now()) ON CONFLICT (job_name, job_key) DO NOTHING RETURNING id`,
  lockInstance: (d: Dialect) =>
    `SELECT id, job_name, job_key, identifying_params, create_time FROM ns_job_instance
     WHERE job_name = $1 AND job_key = $2${forUpdate(d)}`,
  /**
   * Locks the instance of execution `$1` (PostgreSQL; SQLite's writer lock already excludes
   * others): a launch or restart of the instance holds the same lock while it adds an execution.
   */
  lockInstanceOfExecution: (d: Dialect) =>
    `SELECT i.id FROM ns_job_instance i WHERE i.id = (SELECT e.instance_id FROM ns_job_execution e WHERE e.id = $1)${forUpdate(d)}`,
  findInstance: `SELECT id FROM ns_job_instance WHERE job_name = $1 AND job_key = $2`,
  getInstance: `SELECT id, job_name, job_key, identifying_params, create_time FROM ns_job_instance WHERE id = $1`,
  lastInstance: `SELECT id, job_name, job_key, identifying_params, create_time FROM ns_job_instance
    WHERE job_name = $1 ORDER BY id DESC LIMIT 1`,
  /**
   * The identifying parameters of the job's newest instance that has a `run.id` (the default
   * next instance counts from it): an instance launched without one (a plain `run`) does not
   * reset the count to 1, which would name an instance that completed long ago. The newest few
   * that may have one: LIKE is not case-sensitive on SQLite, nor exact about JSON (the caller
   * reads the parameters). The predicate is ns_job_instance_run_id's (migration 15), word for word.
   */
  lastRunIdParams: `SELECT identifying_params FROM ns_job_instance
    WHERE job_name = $1 AND identifying_params LIKE '%"run.id":%' ORDER BY id DESC LIMIT 10`,

  // ---- job executions ----------------------------------------------------------------------------
  insertExecution: `INSERT INTO ns_job_execution (instance_id, job_name, status, exit_code, params, create_time,
      start_time, last_updated, owner_node_id, owner_epoch, node_name, context, target_node, affinity_key)
    VALUES ($1, $2, $3, $4, $5, ns_now(), CASE WHEN CAST($6 AS BIGINT) IS NULL THEN NULL ELSE ns_now() END, ns_now(),
      $6, CASE WHEN CAST($6 AS BIGINT) IS NULL THEN 0 ELSE 1 END, $7, $8, $9, $10)
    RETURNING ${EXEC_COLS.replace(/e\./g, '')}`,
  /**
   * Launches a new instance in one statement (PostgreSQL): its instance and its first execution.
   * Returns no row when the instance already exists (nothing is written then). `$1` job, `$2`
   * key, `$3` identifying params, `$4`..`$11` as insertExecution's `$3`..`$10`.
   */
  launchNewInstance: `WITH i AS (
      INSERT INTO ns_job_instance (job_name, job_key, identifying_params, create_time)
      VALUES ($1, $2, $3, ns_now()) ON CONFLICT (job_name, job_key) DO NOTHING RETURNING id
    ), e AS (
      INSERT INTO ns_job_execution (instance_id, job_name, status, exit_code, params, create_time,
        start_time, last_updated, owner_node_id, owner_epoch, node_name, context, target_node, affinity_key)
      SELECT i.id, $1, $4, $5, $6, ns_now(), CASE WHEN CAST($7 AS BIGINT) IS NULL THEN NULL ELSE ns_now() END, ns_now(),
        $7, CASE WHEN CAST($7 AS BIGINT) IS NULL THEN 0 ELSE 1 END, $8, $9, $10, $11
      FROM i RETURNING ${EXEC_COLS.replace(/e\./g, '')}
    )
    SELECT * FROM e`,
  /**
   * Submits a batch of new instances in one statement (PostgreSQL): one instance and one queued
   * execution per row of the arrays (`$1` item index, `$2` job, `$3` key, `$4` identifying
   * params, `$5` params, `$6` context). An instance that already exists gets nothing (no row back
   * for its index); the caller takes it through the locked path. The keys of one batch must be
   * distinct.
   * - Each row takes its instance and execution ids first, in the items' order: from `$7` and
   *   `$8` (see reserveSubmitIds) when given, else from the sequences. So the statement joins its
   *   parts on integers (not on the text key), a later item's instance is newer (`lastInstance`)
   *   and its execution is claimed later. A row whose instance exists leaves gaps in the ids.
   * - Instances go in in key order: concurrent batches lock the keys they share in the same order,
   *   so they wait for each other instead of deadlocking.
   */
  submitNewInstances: `WITH input AS (
      SELECT t.idx, t.job_name, t.job_key, t.ident, t.params, t.context,
        COALESCE(t.instance_id, nextval('ns_job_instance_id_seq')) AS instance_id,
        COALESCE(t.id, nextval('ns_job_execution_id_seq')) AS id
      FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])
        AS t (idx, job_name, job_key, ident, params, context, instance_id, id)
    ), now AS (SELECT ns_now() AS t), i AS (
      INSERT INTO ns_job_instance (id, job_name, job_key, identifying_params, create_time)
      SELECT instance_id, job_name, job_key, ident, now.t FROM input, now ORDER BY job_name, job_key
      ON CONFLICT (job_name, job_key) DO NOTHING RETURNING id
    ), e AS (
      INSERT INTO ns_job_execution (id, instance_id, job_name, status, exit_code, params, create_time, last_updated,
        owner_epoch, context)
      SELECT input.id, input.instance_id, input.job_name, 'STARTING', 'UNKNOWN', input.params, now.t, now.t, 0, input.context
      FROM input JOIN i ON i.id = input.instance_id CROSS JOIN now ORDER BY input.id
      RETURNING id
    )
    SELECT input.idx, e.id, input.instance_id FROM e JOIN input ON input.id = e.id`,
  /**
   * The SQLite counterpart of submitNewInstances, in three statements of one transaction (each
   * statement journals a page once, where a statement per row journalled every page it touched):
   * `$1` is a JSON array of `[job, key, identifying params, params, context]`, one per item.
   * First the instances that are new (in the items' order; ids above `$2`, the highest id before),
   * then an execution for each of them, then `(idx, id, instance_id)` of each new execution.
   */
  submitNewInstancesSqlite: {
    instances: `INSERT INTO ns_job_instance (job_name, job_key, identifying_params, create_time)
      SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, ns_now() FROM json_each($1) j WHERE true ORDER BY j.key
      ON CONFLICT (job_name, job_key) DO NOTHING`,
    executions: `INSERT INTO ns_job_execution (instance_id, job_name, status, exit_code, params, create_time, last_updated,
        owner_epoch, context)
      SELECT i.id, i.job_name, 'STARTING', 'UNKNOWN', j.value ->> 3, i.create_time, i.create_time, 0, j.value ->> 4
      FROM json_each($1) j JOIN ns_job_instance i ON i.job_name = j.value ->> 0 AND i.job_key = j.value ->> 1
      WHERE i.id > $2 ORDER BY j.key`,
    created: `SELECT j.key AS idx, e.id, i.id AS instance_id
      FROM json_each($1) j JOIN ns_job_instance i ON i.job_name = j.value ->> 0 AND i.job_key = j.value ->> 1
      JOIN ns_job_execution e ON e.instance_id = i.id
      WHERE i.id > $2`,
  },
  maxInstanceId: `SELECT max(id) AS id FROM ns_job_instance`,
  /**
   * `$1` instance ids and as many execution ids (PostgreSQL), each as an array literal, in
   * ascending order: a batch of submitNewInstances numbered before the next batch is, though
   * the two may then insert at the same time.
   */
  reserveSubmitIds: `SELECT array_agg(i ORDER BY i)::text AS instances, array_agg(e ORDER BY e)::text AS executions
    FROM (SELECT nextval('ns_job_instance_id_seq') AS i, nextval('ns_job_execution_id_seq') AS e FROM generate_series(1, $1)) ids`,
  getExecution: `SELECT ${EXEC_COLS} FROM ns_job_execution e WHERE e.id = $1`,
  /** getExecution with the newest later execution of its instance (see withRestart): what operators are shown. */
  getExecutionSummary: withRestart(`SELECT ${EXEC_COLS} FROM ns_job_execution e WHERE e.id = $1`),
  executionNumber: `SELECT count(*) AS n FROM ns_job_execution WHERE instance_id = $1 AND id <= $2`,
  executionsOfInstance: `SELECT ${EXEC_COLS} FROM ns_job_execution e WHERE e.instance_id = $1 ORDER BY e.id DESC`,
  /** Running executions with their owner's liveness, judged by the database's clock. */
  runningOfInstance: `SELECT e.id, e.status, e.owner_node_id, e.node_name, n.status AS node_status, n.host, n.pid,
      (n.lease_until < ns_now()) AS lease_expired
    FROM ns_job_execution e LEFT JOIN ns_node n ON n.id = e.owner_node_id
    WHERE e.instance_id = $1 AND e.status IN ('STARTING', 'STARTED', 'STOPPING')`,
  ownerOfExecution: `SELECT e.id, e.owner_node_id, e.node_name, n.status AS node_status, n.host, n.pid,
      (n.lease_until < ns_now()) AS lease_expired
    FROM ns_job_execution e LEFT JOIN ns_node n ON n.id = e.owner_node_id WHERE e.id = $1`,
  stopAllOfNode: `UPDATE ns_job_execution SET status = 'STOPPING', last_updated = ns_now(), version = version + 1
    WHERE owner_node_id = $1 AND status = 'STARTED'`,
  /**
   * Newest first; `$1` is the limit, then one parameter per filter given, in this order. Every
   * filter keeps the read on an index ending in `id` (see migrations 4 and 6), or on a range of
   * ids: `minId`/`maxId` bound a time range (see firstIdFrom) and the parameter-text search
   * (which no index serves within the goal), so a page costs one index range however long the
   * history is. Each row comes with the newest later execution of its instance (withRestart),
   * looked up for the page's rows only: the page is chosen first, in a subquery.
   */
  listExecutions: (filters: ExecutionFilters) => {
    let n = 1;
    const f = filters;
    return withRestart(
      `SELECT ${EXEC_COLS} FROM ns_job_execution e WHERE 1 = 1` +
      (f.job ? ` AND e.job_name = $${++n}` : '') +
      (f.status ? ` AND e.status = $${++n}` : '') +
      (f.node ? ` AND e.node_name = $${++n}` : '') +
      // The times only filter the range of ids they became (`+ 0`: no index on create_time may
      // serve them). Read by (create_time, id), a range would have to be sorted by id, which a
      // planner taking ids and times for independent chose for short ranges.
      (f.from ? ` AND e.create_time + 0 >= $${++n}` : '') +
      (f.to ? ` AND e.create_time + 0 < $${++n}` : '') +
      (f.before ? ` AND e.id < $${++n}` : '') +
      (f.minId ? ` AND e.id >= $${++n}` : '') +
      (f.maxId ? ` AND e.id <= $${++n}` : '') +
      (f.text ? ` AND lower(e.params) LIKE $${++n} ESCAPE '\\'` : '') +
      (f.endedNotCompleted ? ` AND e.status IN (${ENDED_NOT_COMPLETED.map((s) => `'${s}'`).join(', ')})` : '') +
      ` ORDER BY e.id DESC LIMIT $1`,
    );
  },
  maxExecutionId: `SELECT max(id) AS id FROM ns_job_execution`,
  /**
   * The first execution created at or after `$1`, and the last created before `$1`: ids and
   * creation times rise together (up to the little a concurrent insert can reorder them), so a
   * time range becomes a range of ids, which the primary key reads newest first.
   */
  firstIdFrom: `SELECT id FROM ns_job_execution WHERE create_time >= $1 ORDER BY create_time, id LIMIT 1`,
  lastIdBefore: `SELECT id FROM ns_job_execution WHERE create_time < $1 ORDER BY create_time DESC, id DESC LIMIT 1`,
  /**
   * Executions whose row changed at or after `$1` (database time), oldest change first, at most
   * `$2`: what the live-events poll reads (index on last_updated).
   */
  changedExecutions: `SELECT ${EXEC_COLS} FROM ns_job_execution e WHERE e.last_updated >= $1 ORDER BY e.last_updated LIMIT $2`,
  /** Executions a node is running now (the partial index on running executions' owners). */
  activeExecutions: `SELECT ${EXEC_COLS} FROM ns_job_execution e
    WHERE e.status IN ('STARTING', 'STARTED', 'STOPPING') AND e.owner_node_id IS NOT NULL ORDER BY e.id`,
  /**
   * The fence: proves in the chunk's own transaction that this owner still holds the execution.
   * Zero rows means another node took it over; the caller rolls back and stops. The row lock
   * (FOR UPDATE) makes a takeover wait for this transaction, and a takeover that committed first
   * makes this find nothing: the two are serialised without writing a new row version.
   */
  fenceExecution: `SELECT status FROM ns_job_execution
    WHERE id = $1 AND owner_node_id = $2 AND owner_epoch = $3 AND status IN ('STARTED', 'STOPPING') FOR UPDATE`,
  /**
   * The fence on SQLite: BEGIN IMMEDIATE already excludes every other writer until COMMIT, so
   * reading the owner is as strong as PostgreSQL's row-locking UPDATE (and writes no page).
   */
  fenceExecutionCheck: `SELECT status FROM ns_job_execution
    WHERE id = $1 AND owner_node_id = $2 AND owner_epoch = $3 AND status IN ('STARTED', 'STOPPING')`,
  saveJobContext: `UPDATE ns_job_execution SET context = $2 WHERE id = $1`,
  /**
   * Ends a job execution. Its WHERE is the fence (owner, epoch, still running), and its row lock
   * comes first in the transaction, as in every takeover: no row changed means this owner lost it.
   */
  finishExecution: FINISH_EXECUTION,
  /** finishExecution and, in the same statement (PostgreSQL), a step's end: finishStep's parameters from `$8`. */
  finishExecutionEndingStep: keepPrepared(`WITH job AS (${FINISH_EXECUTION})
    UPDATE ns_step_execution SET ${endStep(8, 'job.at')} FROM job WHERE ns_step_execution.id = $8 RETURNING job.id`),
  /**
   * finishExecutionEndingStep for many executions at once (PostgreSQL): parameter `$n` is the
   * array of every execution's `$n` of finishExecutionEndingStep. Each execution is fenced on its
   * own (owner, epoch, running); the rows are the ids of those that ended. The executions are found
   * by their ids (`e.id = ANY($1)`), and the running statuses are matched with `array_position`,
   * which no index serves: with statistics that a bulk submit has outdated, the planner would
   * otherwise combine the status and running indexes, reading every running row (4 ms of a 5 ms
   * end of 16 executions in the drain benchmark).
   */
  finishExecutionsEndingSteps: keepPrepared(`WITH v AS (
      SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[],
        $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[],
        $15::bigint[], $16::bigint[], $17::text[], $18::text[], $19::text[], $20::text[])
        AS v (id, node, epoch, status, exit_code, exit_description, context, step_id, read_count, write_count,
          filter_count, read_skip_count, process_skip_count, write_skip_count, commit_count, rollback_count,
          step_context, step_status, step_exit_code, step_exit_description)
      ORDER BY id),
    job AS (UPDATE ns_job_execution e SET status = v.status, exit_code = v.exit_code, exit_description = v.exit_description,
        end_time = ns_now(), last_updated = ns_now(), version = e.version + 1, context = v.context
      FROM v WHERE e.id = ANY($1::bigint[]) AND e.id = v.id AND e.owner_node_id = v.node AND e.owner_epoch = v.epoch
        AND array_position(ARRAY['STARTED', 'STOPPING'], e.status) IS NOT NULL
      RETURNING e.id, e.end_time AS at)
    UPDATE ns_step_execution s SET read_count = v.read_count, write_count = v.write_count, filter_count = v.filter_count,
      read_skip_count = v.read_skip_count, process_skip_count = v.process_skip_count, write_skip_count = v.write_skip_count,
      commit_count = v.commit_count, rollback_count = v.rollback_count, context = v.step_context, status = v.step_status,
      exit_code = v.step_exit_code, exit_description = v.step_exit_description, end_time = job.at, last_updated = job.at,
      version = s.version + 1
    FROM job JOIN v ON v.id = job.id WHERE s.id = v.step_id RETURNING job.id`),
  /** Fails a running execution whose owner is gone; the WHERE makes it happen once. */
  failOrphan: `UPDATE ns_job_execution SET status = 'FAILED', exit_code = 'FAILED', exit_description = $2,
      end_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE id = $1 AND status IN ('STARTING', 'STARTED', 'STOPPING') AND owner_node_id = $3`,
  failOrphanSteps: `UPDATE ns_step_execution SET status = 'FAILED', exit_code = 'FAILED', exit_description = $2,
      end_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE job_execution_id = $1 AND status IN ('STARTING', 'STARTED', 'STOPPING')`,
  /**
   * A running execution of node `$3` that the node hands over without waiting for its chunk
   * boundary (it leaves: see handOverExecution): STOPPED, naming why. Its WHERE is the fence of
   * the node's own commits, which this end makes fail: the chunk under way rolls back.
   */
  handOverRunning: `UPDATE ns_job_execution SET status = 'STOPPED', exit_code = 'STOPPED', exit_description = $2,
      end_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE id = $1 AND status IN ('STARTED', 'STOPPING') AND owner_node_id = $3`,
  handOverRunningSteps: `UPDATE ns_step_execution SET status = 'STOPPED', exit_code = 'STOPPED', exit_description = $2,
      end_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE job_execution_id = $1 AND status IN ('STARTING', 'STARTED', 'STOPPING')`,
  requestStop: `UPDATE ns_job_execution SET status = 'STOPPING', last_updated = ns_now(), version = version + 1
    WHERE id = $1 AND status = 'STARTED'`,
  /** A queued execution that no node has taken yet stops at once. */
  stopQueued: `UPDATE ns_job_execution SET status = 'STOPPED', exit_code = 'STOPPED', exit_description = 'stopped before it started',
      end_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE id = $1 AND status = 'STARTING' AND owner_node_id IS NULL`,
  abandon: `UPDATE ns_job_execution SET status = 'ABANDONED', exit_code = 'ABANDONED', exit_description = $2,
      end_time = COALESCE(end_time, ns_now()), last_updated = ns_now(), version = version + 1
    WHERE id = $1 AND status = $3
      AND NOT EXISTS (SELECT 1 FROM ns_job_execution later WHERE later.instance_id = ns_job_execution.instance_id AND later.id > $1)`,
  abandonSteps: `UPDATE ns_step_execution SET status = 'ABANDONED', exit_code = 'ABANDONED',
      end_time = COALESCE(end_time, ns_now()), last_updated = ns_now(), version = version + 1
    WHERE job_execution_id = $1 AND status IN ('STARTING', 'STARTED', 'STOPPING', 'STOPPED', 'FAILED')`,

  // ---- cluster ---------------------------------------------------------------------------------
  /** Claims queued executions for this node (see CLAIM). */
  claim: (d: Dialect) => keepPrepared(CLAIM(d)),
  /**
   * claim (PostgreSQL) that also starts the first step of each claimed first execution of the
   * jobs in `$5`, whose first steps are in `$6` (same order): jobs whose flow begins with a step
   * and that have no beforeJob listener, so that nothing would run between the claim and that
   * step's start. Each row has the step as `first_step` (JSON), or null.
   */
  claimStartingStep: keepPrepared(`WITH claimed AS (${CLAIM('postgres')}), first AS (
      INSERT INTO ns_step_execution (job_execution_id, step_name, status, exit_code, start_time, last_updated, context, node_name)
      SELECT c.id, f.step, 'STARTED', 'EXECUTING', ns_now(), ns_now(), '{}', $2
      FROM claimed c JOIN unnest($5::text[], $6::text[]) AS f (job, step) ON f.job = c.job_name
      WHERE c.execution_number = 1
      RETURNING ${STEP_COLS.replace(/s\./g, '')})
    SELECT c.*, to_json(s) AS first_step FROM claimed c LEFT JOIN first s ON s.job_execution_id = c.id`),
  // ---- per-job concurrency limit (a job's maxRunning) -------------------------------------------
  /**
   * Serialises, per job `$1`, the transactions that count the job's running executions and then
   * start one (a node's claim, an in-process launch): under READ COMMITTED two of them could both
   * count one free slot and both take it. A transaction-level advisory lock in the two-key space
   * (which never meets the one-key locks of the fold and migrations), keyed by the schema and the
   * job, so that clusters in other schemas do not wait on each other. SQLite needs none: its
   * transactions begin IMMEDIATE, one writer at a time.
   */
  lockJobSlots: `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.nightshift-max-running'), hashtext($1))`,
  /**
   * Job `$1`'s executions that hold a slot of its maxRunning (running or stopping, anywhere),
   * oldest first, with their owners (as runningOfInstance), so that one whose owner is gone can be
   * told from one that runs.
   */
  runningOfJob: `SELECT e.id, e.status, e.owner_node_id, e.node_name, n.status AS node_status, n.host, n.pid,
      (n.lease_until < ns_now()) AS lease_expired
    FROM ns_job_execution e LEFT JOIN ns_node n ON n.id = e.owner_node_id
    WHERE e.job_name = $1 AND e.status IN ('STARTED', 'STOPPING') ORDER BY e.id`,
  /**
   * Which of the limited jobs `$1` have work queued that node `$2` (by name) may claim: one
   * look for all of them, each an index probe of `(job_name, status, id)` that stops at its
   * first row, before their claims take their slot locks.
   */
  limitedJobsQueued: (d: Dialect) => `SELECT j.name FROM ${d === 'postgres' ? 'unnest($1::text[]) AS j (name)' : '(SELECT value AS name FROM json_each($1)) j'}
    WHERE EXISTS (SELECT 1 FROM ns_job_execution e WHERE e.job_name = j.name AND e.status = 'STARTING' AND e.owner_node_id IS NULL
      AND (e.target_node IS NULL OR e.target_node = $2))`,
  /**
   * Claims up to `$4` queued executions of the one job `$3` for node `$1` named `$2`, the oldest
   * first, as CLAIM does (same columns, same checks of the node and of the target): the claim of a
   * job with a maxRunning, in the transaction that holds lockJobSlots and counted its running ones.
   */
  claimOfJob: (d: Dialect) => `UPDATE ns_job_execution SET status = 'STARTED', exit_code = 'EXECUTING', owner_node_id = $1,
      owner_epoch = owner_epoch + 1, node_name = $2, start_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE id IN (
      SELECT id FROM ns_job_execution
      WHERE job_name = $3 AND status = 'STARTING' AND owner_node_id IS NULL AND (target_node IS NULL OR target_node = $2)
        AND EXISTS (SELECT 1 FROM ns_node n WHERE n.id = $1 AND n.status = 'alive' AND n.lease_until >= ns_now()
          AND n.drain_requested_at IS NULL)
      ORDER BY id LIMIT $4${d === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : ''})
    RETURNING ${RUN_COLS}`,
  /** Alive nodes whose lease ran out by the database's clock: candidates to declare dead. */
  expiredNodes: `SELECT id, name, kind FROM ns_node WHERE status = 'alive' AND lease_until < ns_now() AND id <> $1`,
  /**
   * Running executions and partitions whose owner is already dead or gone, left behind when the
   * owner was declared dead elsewhere (e.g. by a launch that found its process gone).
   */
  orphanedExecutions: `SELECT e.id, e.job_name, e.context, n.id AS node_id, n.name, n.kind FROM ns_job_execution e
    JOIN ns_node n ON n.id = e.owner_node_id
    WHERE e.status IN ('STARTED', 'STOPPING') AND n.status IN ('dead', 'left')`,
  orphanedPartitions: `SELECT s.id, e.job_name, n.name FROM ns_step_execution s
    JOIN ns_node n ON n.id = s.owner_node_id JOIN ns_job_execution e ON e.id = s.job_execution_id
    WHERE s.status = 'STARTED' AND s.manager_id IS NOT NULL AND n.status IN ('dead', 'left')`,
  runningOfNode: `SELECT id, instance_id, job_name, params, affinity_key, target_node, context FROM ns_job_execution
    WHERE owner_node_id = $1 AND status IN ('STARTED', 'STOPPING')`,
  /** One execution, if the node still runs it. */
  runningOfNodeById: `SELECT id, job_name, context FROM ns_job_execution
    WHERE owner_node_id = $1 AND id = $2 AND status IN ('STARTED', 'STOPPING')`,
  /** A queued restart of an instance, for the cluster to claim. */
  requeue: `INSERT INTO ns_job_execution (instance_id, job_name, status, exit_code, params, create_time, last_updated,
      owner_epoch, context, target_node, affinity_key)
    SELECT instance_id, job_name, 'STARTING', 'UNKNOWN', params, ns_now(), ns_now(), 0, context, NULL, affinity_key
    FROM ns_job_execution WHERE id = $1 RETURNING id`,
  /** Queued work addressed by affinity to a node that died goes back to any node. */
  releaseAffinity: `UPDATE ns_job_execution SET target_node = NULL
    WHERE status = 'STARTING' AND owner_node_id IS NULL AND target_node = $1 AND affinity_key IS NOT NULL`,
  /**
   * The nodes a member watches (see listNodes): alive ones, and those that ended at or after `$1`
   * (database time), on the indexes of live nodes' leases and of ends, not the whole history.
   */
  watchNodes: `SELECT n.id, n.name, n.status, n.kind, (n.last_heartbeat + 2 * n.heartbeat_ms < ns_now()) AS suspected,
      n.drain_requested_at, n.ended_at, n.jobs, ns_now() AS now
    FROM ns_node n WHERE n.kind = 'node' AND (n.status = 'alive' OR n.ended_at >= $1) ORDER BY n.id`,
  listNodes: `SELECT n.id, n.name, n.status, n.kind, n.host, n.pid, n.jobs, n.concurrency, n.last_heartbeat, n.started_at,
      n.ended_at, n.end_reason, (n.lease_until < ns_now()) AS lease_expired,
      (n.last_heartbeat + 2 * n.heartbeat_ms < ns_now()) AS suspected, n.drain_requested_at
    FROM ns_node n WHERE n.kind = 'node' ORDER BY n.id`,
  /**
   * Nodes that are alive or ended at most `$1` ms ago, with their heartbeat's age and the time
   * left on their lease, both by the database's clock.
   */
  recentNodes: `SELECT n.id, n.name, n.status, n.host, n.pid, n.jobs, n.concurrency, n.heartbeat_ms, n.lease_ms,
      n.last_heartbeat, n.started_at, n.ended_at, n.end_reason, n.drain_requested_at,
      ns_now() - n.last_heartbeat AS heartbeat_age, n.lease_until - ns_now() AS lease_left,
      (n.last_heartbeat + 2 * n.heartbeat_ms < ns_now()) AS suspected
    FROM ns_node n WHERE n.kind = 'node' AND (n.status = 'alive' OR n.ended_at >= ns_now() - $1) ORDER BY n.id`,
  /** The jobs each live node registered, by name (a console without job definitions lists these). */
  liveNodeJobs: `SELECT n.name, n.jobs FROM ns_node n WHERE n.kind = 'node' AND n.status = 'alive' ORDER BY n.name`,
  /** The partitions every node runs, for all nodes at once. */
  runningPartitionsByNode: `SELECT owner_node_id, id, job_execution_id FROM ns_step_execution
    WHERE status = 'STARTED' AND manager_id IS NOT NULL AND owner_node_id IS NOT NULL ORDER BY id`,
  /**
   * Asks the live node of this name to drain: it takes no more work from now on (claims check
   * this column), and hands over what it runs once it sees the request.
   */
  requestDrain: `UPDATE ns_node SET drain_requested_at = COALESCE(drain_requested_at, ns_now())
    WHERE id IN (SELECT id FROM ns_node WHERE name = $1 AND kind = 'node' AND status = 'alive') RETURNING id`,
  /**
   * Withdraws the drain request of the live node of this name: claims take it into account at
   * once, and the node takes work again once it sees the request gone (see cluster/node).
   */
  resumeNode: `UPDATE ns_node SET drain_requested_at = NULL
    WHERE id IN (SELECT id FROM ns_node WHERE name = $1 AND kind = 'node' AND status = 'alive') RETURNING id`,
  drainRequested: `SELECT drain_requested_at FROM ns_node WHERE id = $1`,
  /** Live nodes of this name other than this one, oldest first. */
  liveNamesakes: `SELECT host, pid FROM ns_node WHERE name = $1 AND kind = 'node' AND status = 'alive' AND id <> $2 ORDER BY id`,
  /** What every node runs, for all nodes at once. */
  runningByNode: `SELECT owner_node_id, id FROM ns_job_execution
    WHERE owner_node_id IS NOT NULL AND status IN ('STARTED', 'STOPPING') ORDER BY id`,
  liveNodesWithJob: `SELECT n.name, n.concurrency, n.jobs,
      (SELECT count(*) FROM ns_job_execution e WHERE e.owner_node_id = n.id AND e.status IN ('STARTED', 'STOPPING')) AS running_count
    FROM ns_node n WHERE n.kind = 'node' AND n.status = 'alive' AND n.lease_until >= ns_now() AND n.drain_requested_at IS NULL
    ORDER BY n.name`,
  /**
   * What an even spread is computed from (see cluster/fair-share), in one statement: the live
   * nodes that run the same jobs as node `$1` (itself included), each with what it runs now
   * (executions and partitions); and on every row, the queued work of the jobs in `$2`
   * (executions and partitions, each counted up to `$3`) for any node (`shared`) and addressed to
   * the node named `$4` (`mine`), and whether work for any node has waited longer than `$5` ms
   * (`stale`): the first execution in the queue's order (on PostgreSQL read by ns_queued_since,
   * migration 9, so that a deep queue is not read whole), or any partition.
   */
  spreadState: (d: Dialect) => {
    const jobs = (col: string) => (d === 'postgres' ? `${col} = ANY($2::text[])` : `${col} IN (SELECT value FROM json_each($2))`);
    const executions = (target: string) => `FROM ns_job_execution WHERE status = 'STARTING' AND owner_node_id IS NULL AND ${target}
      AND ${jobs('job_name')}`;
    const partitions = (target: string) => `FROM ns_step_execution s JOIN ns_job_execution e ON e.id = s.job_execution_id
      WHERE s.status = 'STARTING' AND s.manager_id IS NOT NULL AND ${target} AND e.status IN ('STARTED', 'STOPPING')
      AND ${jobs('e.job_name')}`;
    const count = (from: string) => `(SELECT count(*) FROM (SELECT 1 ${from} LIMIT $3) q)`;
    // PostgreSQL reads each job's queue as a key range (see migration 11).
    const shared = d === 'postgres' ? 'ns_queued_count($2::text[], $3::int)' : count(executions('target_node IS NULL'));
    return keepPrepared(`SELECT n.id, n.concurrency,
      (SELECT count(*) FROM ns_job_execution e WHERE e.owner_node_id = n.id AND e.status IN ('STARTED', 'STOPPING'))
      + (SELECT count(*) FROM ns_step_execution s WHERE s.owner_node_id = n.id AND s.status = 'STARTED' AND s.manager_id IS NOT NULL)
        AS load,
      w.shared, w.mine, w.stale
    FROM ns_node n CROSS JOIN (SELECT ${shared} + ${count(partitions('s.target_node IS NULL'))} AS shared,
      ${count(executions('target_node = $4'))} + ${count(partitions('s.target_node = $4'))} AS mine,
      (${d === 'postgres' ? 'ns_queued_since($2::text[])' : `(SELECT last_updated ${executions('target_node IS NULL')} ORDER BY id LIMIT 1)`} < ns_now() - $5
        OR EXISTS (SELECT 1 ${partitions('s.target_node IS NULL')} AND s.last_updated < ns_now() - $5)) AS stale) w
    WHERE n.kind = 'node' AND n.status = 'alive' AND n.lease_until >= ns_now() AND n.drain_requested_at IS NULL
      AND n.jobs = (SELECT me.jobs FROM ns_node me WHERE me.id = $1)`);
  },
  nodeByName: `SELECT id, name, status FROM ns_node WHERE name = $1 AND kind = 'node' ORDER BY id DESC LIMIT 1`,
  affinityHolder: `SELECT e.target_node AS node FROM ns_job_execution e
    JOIN ns_node n ON n.name = e.target_node AND n.status = 'alive' AND n.lease_until >= ns_now() AND n.drain_requested_at IS NULL
    WHERE e.affinity_key = $1 AND e.target_node IS NOT NULL ORDER BY e.id DESC LIMIT 1`,
  /** Wakes idle nodes (PostgreSQL only; delivered when the transaction commits). */
  notifyLaunch: `SELECT pg_notify('ns_launch', $1)`,
  /** The step execution a possibly-committed insertStep created. */
  startedStepOfExecution: `SELECT id FROM ns_step_execution WHERE job_execution_id = $1 AND step_name = $2 AND status = 'STARTED'
    ORDER BY id DESC LIMIT 1`,
  stepCommitCount: `SELECT commit_count FROM ns_step_execution WHERE id = $1`,
  /**
   * How many executions each job has in each status (metrics, console): the counter rows and the
   * deltas not folded into them yet, in one snapshot (see migration 5). Never reads history.
   */
  executionCounts: `SELECT job_name, status, sum(n) AS n FROM (
      SELECT job_name, status, n FROM ns_execution_count
      UNION ALL SELECT job_name, status, n FROM ns_execution_count_delta) c
    GROUP BY job_name, status HAVING sum(n) <> 0 ORDER BY job_name, status`,
  /**
   * The executions that wait for a node (queued, claimed by no node), the next to run first: in
   * id order, as nodes claim them, at most `$1` (read by status: never history).
   */
  queuedExecutions: `SELECT ${EXEC_COLS} FROM ns_job_execution e
    WHERE e.status = 'STARTING' AND e.owner_node_id IS NULL ORDER BY e.id LIMIT $1`,
  /**
   * How many executions of each job have entered each ended status, ever (migration 12): only
   * goes up, a prune does not lower it. Counter rows and pending deltas, in one snapshot.
   */
  endedCounts: `SELECT job_name, status, sum(ended) AS n FROM (
      SELECT job_name, status, ended FROM ns_execution_count
      UNION ALL SELECT job_name, status, ended FROM ns_execution_count_delta) c
    GROUP BY job_name, status HAVING sum(ended) > 0 ORDER BY job_name, status`,
  /** How long the oldest execution that waits for a node has waited, in ms of the database's clock (no row: none waits). */
  oldestQueuedAge: `SELECT ns_now() - create_time AS age_ms FROM ns_job_execution
    WHERE status = 'STARTING' AND owner_node_id IS NULL ORDER BY id LIMIT 1`,
  /**
   * PostgreSQL: whether the schema `$1` (else the connection's current schema) exists and holds a
   * repository. The schema is created unquoted, so PostgreSQL folded its name to lower case.
   */
  /**
   * Whether ns_meta is in the search_path (`?schema=` sets it) and this role may read it
   * (PostgreSQL): read before anything is created, so a repository at this version is opened
   * without DDL. A schema the role may not use is not searched: the table is then not present.
   */
  schemaMetaPresent: `SELECT to_regclass('ns_meta') IS NOT NULL AS present,
      coalesce(has_table_privilege(to_regclass('ns_meta'), 'SELECT'), false) AS readable`,
  /**
   * The repository's schema version and the oldest version of Nightshift's schema that can run
   * on it (rows of ns_meta; none before the first migration, no `compatible_from` before version 18).
   * The table holds only such rows: read whole, it is one scan of a page.
   */
  schemaVersion: `SELECT key, value FROM ns_meta`,
  /** The role this session acts as (PostgreSQL), named when it may not migrate. */
  currentRole: `SELECT current_user AS role`,
  repositoryPresent: `SELECT s.name, EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s.name) AS schema_exists,
      EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = s.name AND c.relname = 'ns_meta') AS present
    FROM (SELECT coalesce(lower($1::text), current_schema()) AS name) s`,
  /** A row when more than `$1` count deltas wait to be folded. */
  countDeltaBacklog: `SELECT id FROM ns_execution_count_delta ORDER BY id LIMIT 1 OFFSET $1`,
  /** Only one folder at a time (PostgreSQL); the others skip, their deltas are folded by it. */
  tryFoldLock: `SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.nightshift-fold')) AS ok`,
  /**
   * Moves the oldest `$1` count deltas into the counter rows (PostgreSQL), in counter order so
   * that folders never deadlock. Each delta is deleted in the transaction that adds it.
   */
  foldExecutionCounts: `WITH moved AS (
      DELETE FROM ns_execution_count_delta WHERE id IN (SELECT id FROM ns_execution_count_delta ORDER BY id LIMIT $1)
      RETURNING job_name, status, n, ended)
    INSERT INTO ns_execution_count (job_name, status, n, ended)
    SELECT job_name, status, sum(n), sum(ended) FROM moved GROUP BY job_name, status ORDER BY job_name, status
    ON CONFLICT (job_name, status) DO UPDATE SET n = ns_execution_count.n + excluded.n, ended = ns_execution_count.ended + excluded.ended`,

  // ---- retention -------------------------------------------------------------------------------
  minExecutionId: `SELECT min(id) AS id FROM ns_job_execution`,
  /** The id of the `$2`+1-th newest execution of job `$1`: what keep-last N keeps is above it. */
  keepLastFloor: `SELECT id FROM ns_job_execution WHERE job_name = $1 ORDER BY id DESC LIMIT 1 OFFSET $2`,
  /**
   * Executions with ids in [`$1`, `$2`] (a primary-key range) that ended before `$3`, are not
   * running, have one of the given statuses (`$4`...), and whose instance's newest execution has
   * none of the protected statuses (running work, and restartable work unless asked): so a
   * restartable instance keeps all its executions, whose steps its restart reads.
   */
  pruneCandidates: (statuses: number, protectedStatuses: readonly string[]) => `SELECT e.id, e.job_name, e.instance_id
    FROM ns_job_execution e
    WHERE e.id >= $1 AND e.id <= $2 AND e.status NOT IN ('STARTING', 'STARTED', 'STOPPING')
      AND COALESCE(e.end_time, e.create_time) < $3
      ${statuses ? `AND e.status IN (${Array.from({ length: statuses }, (_, i) => `$${i + 4}`).join(', ')})` : ''}
      AND (SELECT l.status FROM ns_job_execution l WHERE l.instance_id = e.instance_id ORDER BY l.id DESC LIMIT 1)
        NOT IN (${protectedStatuses.map((s) => `'${s}'`).join(', ')})
    ORDER BY e.id`,
  /** Locks the instances of a batch (PostgreSQL), so no restart adds an execution while it is pruned. */
  lockInstances: (d: Dialect) => `SELECT id FROM ns_job_instance WHERE id IN (${jsonIds(d, '$1')}) ORDER BY id${forUpdate(d)}`,
  /** Of the executions `$1` (JSON ids), those still prunable now that their instances are locked. */
  stillPrunable: (d: Dialect, protectedStatuses: readonly string[]) => `SELECT e.id FROM ns_job_execution e
    WHERE e.id IN (${jsonIds(d, '$1')}) AND e.status NOT IN ('STARTING', 'STARTED', 'STOPPING')
      AND (SELECT l.status FROM ns_job_execution l WHERE l.instance_id = e.instance_id ORDER BY l.id DESC LIMIT 1)
        NOT IN (${protectedStatuses.map((s) => `'${s}'`).join(', ')})`,
  /** How many step executions the executions `$1` (JSON ids) have (a dry run's count of what would go with them). */
  countStepsOf: (d: Dialect) => `SELECT count(*) AS n FROM ns_step_execution WHERE job_execution_id IN (${jsonIds(d, '$1')})`,
  /**
   * Of the executions `$1` (JSON ids) that a prune would delete, how many are the newest of an
   * instance all of whose executions the prune would delete too: the instances it would leave
   * empty (a dry run). The prune deletes by ascending id, and an execution is prunable when its
   * instance's newest one is (and keep-last keeps ids from a floor up), so an older execution of
   * such an instance goes unless it is running, ended at or after the cutoff `$2`, or has none of
   * the statuses asked for (`$3`...).
   */
  countEmptiedInstances: (d: Dialect, statuses: number) => `SELECT count(*) AS n FROM ns_job_execution e
    WHERE e.id IN (${jsonIds(d, '$1')})
      AND NOT EXISTS (SELECT 1 FROM ns_job_execution l WHERE l.instance_id = e.instance_id AND l.id > e.id)
      AND NOT EXISTS (SELECT 1 FROM ns_job_execution x WHERE x.instance_id = e.instance_id
        AND (x.status IN ('STARTING', 'STARTED', 'STOPPING') OR COALESCE(x.end_time, x.create_time) >= $2
          ${statuses ? `OR x.status NOT IN (${Array.from({ length: statuses }, (_, i) => `$${i + 3}`).join(', ')})` : ''}))`,
  deleteStepsOf: (d: Dialect) => `DELETE FROM ns_step_execution WHERE job_execution_id IN (${jsonIds(d, '$1')})`,
  deleteExecutions: (d: Dialect) => `DELETE FROM ns_job_execution WHERE id IN (${jsonIds(d, '$1')})`,
  /** Instances of `$1` (JSON ids) that no execution is left of. */
  deleteEmptyInstances: (d: Dialect) => `DELETE FROM ns_job_instance WHERE id IN (${jsonIds(d, '$1')})
    AND NOT EXISTS (SELECT 1 FROM ns_job_execution x WHERE x.instance_id = ns_job_instance.id)`,
  /**
   * Up to `$2` node incarnations that ended more than `$1` ms ago and own no running execution
   * or partition (their failover must still find them).
   */
  pruneNodes: `DELETE FROM ns_node WHERE id IN (
      SELECT n.id FROM ns_node n WHERE ${PRUNABLE_NODE}
      ORDER BY n.ended_at LIMIT $2)`,
  /** How many node incarnations `pruneNodes` would delete with the same `$1` (a dry run). */
  countPrunableNodes: `SELECT count(*) AS n FROM ns_node n WHERE ${PRUNABLE_NODE}`,

  // ---- audit -----------------------------------------------------------------------------------
  insertAudit: `INSERT INTO ns_audit (at, actor, role, action, target, detail, remote, outcome, status_code, message)
    VALUES (ns_now(), $1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id, at`,
  /** Newest first; `$1` is the limit, then one parameter per filter given, in this order. */
  listAudit: (f: { actor: boolean; action: boolean; before: boolean }) => {
    let n = 1;
    return (
      `SELECT id, at, actor, role, action, target, detail, remote, outcome, status_code, message FROM ns_audit WHERE 1 = 1` +
      (f.actor ? ` AND actor = $${++n}` : '') +
      (f.action ? ` AND action = $${++n}` : '') +
      (f.before ? ` AND id < $${++n}` : '') +
      ` ORDER BY id DESC LIMIT $1`
    );
  },

  // ---- partitions ------------------------------------------------------------------------------
  insertPartition: `INSERT INTO ns_step_execution (job_execution_id, step_name, status, exit_code, last_updated, context,
      manager_id, target_node)
    VALUES ($1, $2, 'STARTING', 'UNKNOWN', ns_now(), $3, $4, $5) RETURNING id`,
  /**
   * Claims queued partitions of running executions, for jobs this node has (optionally only
   * those of one manager). Like executions: SKIP LOCKED, and each claim bumps the epoch.
   */
  claimPartitions: (d: Dialect, oneManager: boolean) => `UPDATE ns_step_execution SET status = 'STARTED', exit_code = 'EXECUTING',
      owner_node_id = $1, owner_epoch = owner_epoch + 1, node_name = $2, start_time = ns_now(), last_updated = ns_now(),
      version = version + 1
    WHERE id IN (
      SELECT s.id FROM ns_step_execution s JOIN ns_job_execution e ON e.id = s.job_execution_id
      WHERE s.status = 'STARTING' AND s.manager_id IS NOT NULL AND (s.target_node IS NULL OR s.target_node = $2)
        AND EXISTS (SELECT 1 FROM ns_node n WHERE n.id = $1 AND n.status = 'alive' AND n.lease_until >= ns_now()
          AND n.drain_requested_at IS NULL)
        AND e.status IN ('STARTED', 'STOPPING')
        AND ${d === 'postgres' ? 'e.job_name = ANY($3::text[])' : 'e.job_name IN (SELECT value FROM json_each($3))'}
        ${oneManager ? 'AND s.manager_id = $5' : ''}
      ORDER BY s.id LIMIT $4${d === 'postgres' ? ' FOR UPDATE OF s SKIP LOCKED' : ''})
    RETURNING id`,
  /** The fence of a partition: its own owner and epoch, and a job execution still running. */
  fencePartition: `SELECT e.status FROM ns_step_execution s JOIN ns_job_execution e ON e.id = s.job_execution_id
    WHERE s.id = $1 AND s.owner_node_id = $2 AND s.owner_epoch = $3 AND s.status = 'STARTED'
      AND e.status IN ('STARTED', 'STOPPING')
    FOR UPDATE OF s`,
  fencePartitionCheck: `SELECT (SELECT e.status FROM ns_job_execution e WHERE e.id = s.job_execution_id) AS status
    FROM ns_step_execution s
    WHERE s.id = $1 AND s.owner_node_id = $2 AND s.owner_epoch = $3 AND s.status = 'STARTED'
      AND EXISTS (SELECT 1 FROM ns_job_execution e WHERE e.id = s.job_execution_id AND e.status IN ('STARTED', 'STOPPING'))`,
  getPartition: `SELECT ${STEP_COLS}, s.manager_id, s.owner_epoch, s.target_node FROM ns_step_execution s WHERE s.id = $1`,
  partitionsOfManager: `SELECT ${STEP_COLS}, s.manager_id FROM ns_step_execution s WHERE s.manager_id = $1 ORDER BY s.id`,
  /** Every partition execution a partitioned step had in an instance, oldest first. */
  partitionsOfInstance: `SELECT ${STEP_COLS}, s.manager_id FROM ns_step_execution s
    JOIN ns_job_execution e ON e.id = s.job_execution_id
    WHERE e.instance_id = $1 AND s.manager_id IS NOT NULL AND s.step_name LIKE $2 ORDER BY s.id`,
  runningPartitionsOfNode: `SELECT s.id, s.job_execution_id, e.job_name FROM ns_step_execution s
    JOIN ns_job_execution e ON e.id = s.job_execution_id
    WHERE s.owner_node_id = $1 AND s.status = 'STARTED' AND s.manager_id IS NOT NULL`,
  failPartition: `UPDATE ns_step_execution SET status = 'FAILED', exit_code = 'FAILED', exit_description = $2,
      end_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE id = $1 AND status = 'STARTED'`,
  /** A partition this node claimed and could not run (see releasePartition): failed, if still its own. */
  releasePartition: `UPDATE ns_step_execution SET status = 'FAILED', exit_code = 'FAILED', exit_description = $2,
      end_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE id = $1 AND status IN ('STARTING', 'STARTED', 'STOPPING') AND owner_node_id = $3`,
  /** A queued retry of a partition, from its last checkpoint, while its execution and manager step still run. */
  requeuePartition: `INSERT INTO ns_step_execution (job_execution_id, step_name, status, exit_code, last_updated, context,
      manager_id, target_node)
    SELECT s.job_execution_id, s.step_name, 'STARTING', 'UNKNOWN', ns_now(), s.context, s.manager_id, s.target_node
    FROM ns_step_execution s JOIN ns_job_execution e ON e.id = s.job_execution_id
    WHERE s.id = $1 AND e.status IN ('STARTED', 'STOPPING')
      AND EXISTS (SELECT 1 FROM ns_step_execution m WHERE m.id = s.manager_id AND m.status = 'STARTED') RETURNING id`,
  jobOfStep: `SELECT e.job_name FROM ns_step_execution s JOIN ns_job_execution e ON e.id = s.job_execution_id WHERE s.id = $1`,
  /** Ends a manager's unfinished partitions (its timeout): their owners' next commits are fenced. */
  timeOutPartitions: `UPDATE ns_step_execution SET status = 'FAILED', exit_code = 'FAILED', exit_description = $2,
      end_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE manager_id = $1 AND status IN ('STARTING', 'STARTED') RETURNING step_name`,
  notifyPartition: `SELECT pg_notify('ns_partition', $1)`,
  /**
   * Ends the partitions of execution `$1` that no node claimed (still queued) with status and
   * exit code `$2` and description `$3`: once an execution ends, or stops, nothing may stay
   * queued under it. A partition a node claims first is not queued any more: fencing ends it.
   */
  endQueuedPartitions: `UPDATE ns_step_execution SET status = $2, exit_code = $2, exit_description = $3,
      end_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE job_execution_id = $1 AND status = 'STARTING' AND manager_id IS NOT NULL`,
  /** endQueuedPartitions for the partitions of one manager step `$1`. */
  endQueuedPartitionsOfManager: `UPDATE ns_step_execution SET status = $2, exit_code = $2, exit_description = $3,
      end_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE manager_id = $1 AND status = 'STARTING'`,
  /** A row when endStaleQueuedPartitions has anything to end (read first: see reapDeadNodes). */
  anyStaleQueuedPartition: `SELECT s.id FROM ns_step_execution s JOIN ns_job_execution e ON e.id = s.job_execution_id
    WHERE s.status = 'STARTING' AND s.manager_id IS NOT NULL AND e.status NOT IN ('STARTING', 'STARTED', 'STOPPING') LIMIT 1`,
  /**
   * Ends, as FAILED, queued partitions whose execution has ended anyway (left by a version that
   * did not end them, or by a hand-made change): at most `$1`, on the index of queued partitions.
   */
  endStaleQueuedPartitions: `UPDATE ns_step_execution SET status = 'FAILED', exit_code = 'FAILED',
      exit_description = 'not run: job execution ' || job_execution_id || ' ended '
        || (SELECT e.status FROM ns_job_execution e WHERE e.id = ns_step_execution.job_execution_id),
      end_time = ns_now(), last_updated = ns_now(), version = version + 1
    WHERE status = 'STARTING' AND id IN (SELECT s.id FROM ns_step_execution s JOIN ns_job_execution e ON e.id = s.job_execution_id
      WHERE s.status = 'STARTING' AND s.manager_id IS NOT NULL AND e.status NOT IN ('STARTING', 'STARTED', 'STOPPING')
      ORDER BY s.id LIMIT $1)`,

  // ---- step executions ---------------------------------------------------------------------------
  /**
   * Starts a step execution of a job execution, fenced in the same statement: `fence` is
   * fenceExecution or fenceExecutionCheck (parameters $1-$3). No row back means this owner lost
   * the execution and nothing was written.
   */
  startStepFenced: (fence: string) => `WITH fence AS (${fence})
    INSERT INTO ns_step_execution (job_execution_id, step_name, status, exit_code, start_time, last_updated, context, node_name)
    SELECT $1, $4, 'STARTED', 'EXECUTING', ns_now(), ns_now(), $5, $6 FROM fence
    RETURNING ${STEP_COLS.replace(/s\./g, '')}, start_time AS at`,
  /**
   * startStepFenced and, in the same statement (PostgreSQL), the previous step's end: finishStep's
   * parameters from `$7`. The one ends when the other starts.
   */
  startStepEndingStep: (fence: string) => `WITH fence AS (${fence}), t AS (SELECT ns_now() AS at), ended AS (
      UPDATE ns_step_execution SET ${endStep(7, 't.at')} FROM fence, t WHERE ns_step_execution.id = $7)
    INSERT INTO ns_step_execution (job_execution_id, step_name, status, exit_code, start_time, last_updated, context, node_name)
    SELECT $1, $4, 'STARTED', 'EXECUTING', t.at, t.at, $5, $6 FROM fence, t
    RETURNING ${STEP_COLS.replace(/s\./g, '')}, start_time AS at`,
  getStep: `SELECT ${STEP_COLS} FROM ns_step_execution s WHERE s.id = $1`,
  stepsOfExecution: `SELECT ${STEP_COLS} FROM ns_step_execution s WHERE s.job_execution_id = $1 ORDER BY s.id`,
  /** The steps and partitions of an execution, each partition with its manager step's id. */
  stepTreeOfExecution: `SELECT ${STEP_COLS}, s.manager_id FROM ns_step_execution s WHERE s.job_execution_id = $1 ORDER BY s.id`,
  /** The steps of the executions whose ids $1 lists as a JSON array: one text for any number. */
  stepsOfExecutions: (d: Dialect) =>
    `SELECT ${STEP_COLS} FROM ns_step_execution s
    WHERE s.job_execution_id IN (${d === 'sqlite' ? 'SELECT value FROM json_each($1)' : 'SELECT jsonb_array_elements_text($1::jsonb)::bigint'})
    ORDER BY s.id`,
  /** The newest execution of a step within an instance, and how many times the step was started. */
  lastStepOfInstance: `SELECT ${STEP_COLS}, (SELECT count(*) FROM ns_step_execution s2
        JOIN ns_job_execution e2 ON e2.id = s2.job_execution_id
        WHERE e2.instance_id = $1 AND s2.step_name = $2) AS start_count
    FROM ns_step_execution s JOIN ns_job_execution e ON e.id = s.job_execution_id
    WHERE e.instance_id = $1 AND s.step_name = $2 ORDER BY s.id DESC LIMIT 1`,
  /**
   * A chunk's checkpoint and its fence in one statement, at the end of the chunk's transaction
   * (PostgreSQL): `fence` is fenceExecution or fencePartition (parameters $1-$3). If this owner
   * lost the execution the statement fails with SQLSTATE NS001 (ns_fence_lost), so a COMMIT
   * sent with it does not run and the whole chunk rolls back. The fence's row lock is taken
   * before the step row's, the order every takeover uses too.
   */
  checkpointFenced: (fence: string) => `WITH fence AS (${fence}), saved AS (
      UPDATE ns_step_execution SET read_count = $5, write_count = $6, filter_count = $7,
        read_skip_count = $8, process_skip_count = $9, write_skip_count = $10, commit_count = $11, rollback_count = $12,
        context = $13, last_updated = ns_now(), version = version + 1
      FROM fence WHERE ns_step_execution.id = $4
      RETURNING fence.status)
    SELECT COALESCE((SELECT status FROM saved), ns_fence_lost()) AS status`,
  /**
   * A chunk's checkpoint on SQLite, after its fence (two local calls beat one combined statement).
   * Its placeholders are in order, so SQLite binds the parameters as they are.
   */
  checkpoint: `UPDATE ns_step_execution SET read_count = $1, write_count = $2, filter_count = $3,
      read_skip_count = $4, process_skip_count = $5, write_skip_count = $6, commit_count = $7, rollback_count = $8,
      context = $9, last_updated = ns_now(), version = version + 1
    WHERE id = $10`,
  /** Ends a step: its id, counters, context and status as `$1`..`$13`; its end time `$14`, or null for now. */
  finishStep: `UPDATE ns_step_execution SET ${endStep(1, 'COALESCE($14, ns_now())')} WHERE id = $1`,
} as const;
