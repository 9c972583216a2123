import type { Dialect } from '../../src/repository/database.ts';
import { SQL } from '../../src/repository/sql.ts';

/** A statement the CLI, API, console, metrics or claim path runs, with typical parameters. */
export interface HotQuery {
  name: string;
  sql: string;
  params: unknown[];
  /**
   * SQLite: the plan may scan executions in primary-key order (`SCAN e`), because the statement
   * reads newest first and stops at its LIMIT (the plan does not show the LIMIT).
   */
  orderedScan?: boolean;
  /**
   * It sorts only a bounded set: running or queued rows (read through their partial index), or
   * the rows of one execution or instance (read through their parent's index), never history.
   */
  boundedSort?: boolean;
  /** The plan must read this index (where what it costs to pick another would not show as a scan). */
  index?: string;
}

/**
 * The hot queries over history, for a repository seeded by seedHistory (`job0`.., `node0`..,
 * execution ids up to `lastId`). `now` is about when the newest execution was created.
 */
export function hotQueries(d: Dialect, o: { lastId: number; now: number }): HotQuery[] {
  const list = (f: Parameters<typeof SQL.listExecutions>[0]) => SQL.listExecutions(f);
  const jobs = d === 'postgres' ? ['job1', 'job2'] : JSON.stringify(['job1', 'job2']);
  return [
    { name: 'list newest 20', sql: list({}), params: [21], orderedScan: true },
    { name: 'list next page', sql: list({ before: true }), params: [21, o.lastId - 500], orderedScan: true },
    { name: 'list by job', sql: list({ job: true }), params: [21, 'job3'] },
    { name: 'list by status', sql: list({ status: true }), params: [21, 'FAILED'] },
    { name: 'list by job and status', sql: list({ job: true, status: true }), params: [21, 'job3', 'FAILED'] },
    { name: 'list by node', sql: list({ node: true }), params: [21, 'node2'] },
    // FAILED, STOPPED, ABANDONED, UNKNOWN and a node: the partial index of migration 6, also when
    // the pair is rare (a node that ran none), where reading (status, id) would walk every FAILED one.
    { name: 'list by status and node', sql: list({ status: true, node: true, endedNotCompleted: true }), params: [21, 'STOPPED', 'node2'] },
    { name: 'list by status and node, none match', sql: list({ status: true, node: true, endedNotCompleted: true }), params: [21, 'FAILED', 'node-gone'], index: 'ns_job_execution_node_ended' },
    { name: 'list by COMPLETED and node', sql: list({ status: true, node: true }), params: [21, 'COMPLETED', 'node2'] },
    { name: 'list by a running status and node', sql: list({ status: true, node: true }), params: [21, 'STARTED', 'node2'], boundedSort: true },
    { name: 'time range: first id from', sql: SQL.firstIdFrom, params: [o.now - 3_600_000] },
    { name: 'time range: last id before', sql: SQL.lastIdBefore, params: [o.now - 1_800_000] },
    { name: 'list in a time range', sql: list({ minId: true, maxId: true }), params: [21, o.lastId - 3600, o.lastId - 1800] },
    // As pageExecutions sends it: the times as well as the ids they became. A short range (about
    // 1,000 executions here, 1 s apart) is where PostgreSQL, taking the two conditions for
    // independent, expected a handful of rows and read the range of ns_job_execution_created and
    // sorted it; at 10,000,000 executions it did so for the last hour (36,000 rows, 35-53 ms).
    { name: 'list since a time', sql: list({ from: true, minId: true }), params: [21, o.now - 1_000_000, o.lastId - 1060] },
    { name: 'list in a time range, both ends', sql: list({ from: true, to: true, minId: true, maxId: true }), params: [21, o.now - 1_000_000, o.now - 500_000, o.lastId - 1060, o.lastId - 440] },
    { name: 'parameter text search (one window)', sql: list({ minId: true, text: true }), params: [21, o.lastId - 5_000, '%in-99%'] },
    { name: 'newest execution id', sql: SQL.maxExecutionId, params: [] },
    { name: 'execution by id', sql: SQL.getExecution, params: [o.lastId - 7] },
    // Each listed or shown execution looks up the newest later one of its instance: an index probe
    // on the instance, also deep in history, where a walk down the primary key from the newest id
    // would read everything above it.
    { name: 'execution by id, with its restart', sql: SQL.getExecutionSummary, params: [o.lastId - 7] },
    { name: 'execution deep in history, with its restart', sql: SQL.getExecutionSummary, params: [7], index: 'ns_job_execution_by_instance' },
    { name: 'list an old page by status', sql: list({ status: true, before: true }), params: [21, 'FAILED', 500], index: 'ns_job_execution_by_instance' },
    { name: 'steps of an execution', sql: SQL.stepsOfExecution, params: [o.lastId - 7], boundedSort: true },
    { name: 'step tree of an execution', sql: SQL.stepTreeOfExecution, params: [o.lastId - 7], boundedSort: true },
    { name: 'steps of 200 executions', sql: SQL.stepsOfExecutions(d), params: [JSON.stringify(Array.from({ length: 200 }, (_, i) => o.lastId - i))], boundedSort: true },
    { name: 'executions of an instance', sql: SQL.executionsOfInstance, params: [o.lastId - 7], boundedSort: true },
    { name: 'live events: changed since', sql: SQL.changedExecutions, params: [o.now - 1000, 500] },
    { name: 'running executions (console)', sql: SQL.activeExecutions, params: [], boundedSort: true },
    { name: 'what every node runs', sql: SQL.runningByNode, params: [], boundedSort: true },
    { name: 'metrics: counts by job and status', sql: SQL.executionCounts, params: [] },
    { name: 'metrics: ends by job and status, ever', sql: SQL.endedCounts, params: [] },
    { name: 'metrics: the oldest queued execution', sql: SQL.oldestQueuedAge, params: [] },
    { name: 'queued executions, next to run first (console)', sql: SQL.queuedExecutions, params: [51] },
    { name: 'claim queued executions', sql: SQL.claim(d), params: [1, 'node0', jobs, 8] },
    // A job launched once beside busy ones (the seed's jobs are job0..job9): its newest instance
    // must not be found by walking the others'.
    { name: 'next instance: newest of a job', sql: SQL.lastInstance, params: ['job-rare'], index: 'ns_job_instance_job' },
    { name: 'next instance: newest with a run.id', sql: SQL.lastRunIdParams, params: ['job3'], index: 'ns_job_instance_run_id' },
    { name: 'orphaned executions', sql: SQL.orphanedExecutions, params: [] },
    { name: 'prune: keep-last floor of a job', sql: SQL.keepLastFloor, params: ['job3', 99] },
    { name: 'prune: one batch of candidates', sql: SQL.pruneCandidates(0, ['STARTING', 'STARTED', 'STOPPING', 'FAILED', 'STOPPED']), params: [1, 1000, o.now], boundedSort: true },
    { name: 'prune --dry-run: steps of a batch', sql: SQL.countStepsOf(d), params: [JSON.stringify(Array.from({ length: 1000 }, (_, i) => i + 1))] },
    { name: 'prune --dry-run: instances a batch would empty', sql: SQL.countEmptiedInstances(d, 1), params: [JSON.stringify(Array.from({ length: 1000 }, (_, i) => i + 1)), o.now, 'COMPLETED'] },
  ];
}

const HISTORY_TABLES = ['ns_job_execution', 'ns_step_execution', 'ns_job_instance'];
const ALIASES = ['e', 'x', 'l', 's', 's2'];
/** Partial indexes that hold only queued or running rows: reading all of one is not reading history. */
const LIVE_INDEXES = ['ns_job_execution_queued', 'ns_job_execution_running', 'ns_step_execution_queued', 'ns_step_execution_owner'];

/** The counter reads (counts and ends), which sort the counter rows, not history. */
const COUNTERS = /^\s*SELECT job_name, status, sum\((n|ended)\)/;

/** What is wrong with a plan: a sequential scan or a sort of history; empty when none. */
export async function planProblems(
  query: (sql: string, params: unknown[]) => Promise<Record<string, unknown>[]>,
  d: Dialect,
  q: HotQuery,
): Promise<{ plan: string; problems: string[] }> {
  if (d === 'postgres') {
    const rows = await query(`EXPLAIN ${q.sql}`, q.params);
    const plan = rows.map((r) => String(r['QUERY PLAN'])).join('\n');
    const problems = HISTORY_TABLES.filter((t) => new RegExp(`Seq Scan on ${t}\\b`).test(plan)).map((t) => `sequential scan of ${t}`);
    const sortsCounters = COUNTERS.test(q.sql);
    if (/(^|\s|>)Sort\b/m.test(plan) && !q.boundedSort && !sortsCounters) problems.push('sorts rows read from history');
    if (q.index && !plan.includes(q.index)) problems.push(`does not read ${q.index}`);
    return { plan, problems };
  }
  const rows = await query(`EXPLAIN QUERY PLAN ${q.sql}`, q.params);
  const plan = rows.map((r) => String(r.detail)).join('\n');
  const problems: string[] = [];
  for (const line of plan.split('\n')) {
    const scan = /^SCAN (\w+)(?: AS (\w+))?(.*)$/.exec(line.trim());
    if (scan) {
      const [, table, alias, rest] = scan;
      const isHistory = HISTORY_TABLES.includes(table) || ALIASES.includes(alias ?? table);
      const live = LIVE_INDEXES.some((i) => (rest ?? '').includes(`INDEX ${i}`));
      const orderedByKey = q.orderedScan && (rest ?? '').trim() === '';
      if (isHistory && !live && !orderedByKey) problems.push(`scan: ${line.trim()}`);
    }
    const sortsCounters = COUNTERS.test(q.sql);
    if (/USE TEMP B-TREE FOR ORDER BY/.test(line) && !q.boundedSort && !sortsCounters) problems.push(`sort: ${line.trim()}`);
  }
  if (q.index && !plan.includes(q.index)) problems.push(`does not read ${q.index}`);
  return { plan, problems };
}
