import type { ExecutionContext, ExecutionSummary, JobExecution, JobInstance, StepCounters, StepExecution } from '../core/model.ts';
import { requireId } from '../core/ids.ts';
import type { JsonParams } from '../core/params.ts';
import type { BatchStatus, ExitStatus } from '../core/status.ts';
import type { Database } from './database.ts';
import { ENDED_NOT_COMPLETED, SQL } from './sql.ts';
import type { SqlClient } from './tx.ts';

type Row = Record<string, unknown>;

const time = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(Number(v)));
const json = <T>(v: unknown, fallback: T): T => (typeof v === 'string' && v.length ? (JSON.parse(v) as T) : fallback);

export function toInstance(r: Row): JobInstance {
  return {
    id: Number(r.id),
    jobName: String(r.job_name),
    key: String(r.job_key),
    identifyingParams: json<JsonParams>(r.identifying_params, {}),
    createTime: time(r.create_time)!,
  };
}

export function toJobExecution(r: Row): JobExecution {
  return {
    id: Number(r.id),
    instanceId: Number(r.instance_id),
    jobName: String(r.job_name),
    status: r.status as BatchStatus,
    exitStatus: { code: String(r.exit_code), description: String(r.exit_description ?? '') },
    params: json<JsonParams>(r.params, {}),
    createTime: time(r.create_time)!,
    startTime: time(r.start_time),
    endTime: time(r.end_time),
    lastUpdated: time(r.last_updated),
    version: Number(r.version),
    ownerNodeId: r.owner_node_id === null || r.owner_node_id === undefined ? null : Number(r.owner_node_id),
    ownerEpoch: Number(r.owner_epoch),
    node: (r.node_name as string | null) ?? null,
    context: json<ExecutionContext>(r.context, {}),
    targetNode: (r.target_node as string | null) ?? null,
    affinityKey: (r.affinity_key as string | null) ?? null,
    ...(r.execution_number !== undefined ? { executionNumber: Number(r.execution_number) } : {}),
  };
}

/**
 * A row of a statement made by withRestart (sql.ts): the execution with the newest later
 * execution of its instance, or null when it is the newest (`restartedAs`: see ExecutionSummary
 * in core/model.ts, which documents it for users).
 */
export function toExecutionWithRestart(r: Row): ExecutionSummary {
  const id = r.restarted_id;
  return {
    ...toJobExecution(r),
    restartedAs: id === null || id === undefined ? null : { id: Number(id), status: r.restarted_status as BatchStatus },
  };
}

export function toStepExecution(r: Row): StepExecution {
  return {
    id: Number(r.id),
    jobExecutionId: Number(r.job_execution_id),
    stepName: String(r.step_name),
    status: r.status as BatchStatus,
    exitStatus: { code: String(r.exit_code), description: String(r.exit_description ?? '') },
    readCount: Number(r.read_count),
    writeCount: Number(r.write_count),
    filterCount: Number(r.filter_count),
    readSkipCount: Number(r.read_skip_count),
    processSkipCount: Number(r.process_skip_count),
    writeSkipCount: Number(r.write_skip_count),
    commitCount: Number(r.commit_count),
    rollbackCount: Number(r.rollback_count),
    startTime: time(r.start_time),
    endTime: time(r.end_time),
    lastUpdated: time(r.last_updated),
    version: Number(r.version),
    context: json<ExecutionContext>(r.context, {}),
    node: (r.node_name as string | null) ?? null,
  };
}

export function counterParams(s: StepCounters): number[] {
  return [s.readCount, s.writeCount, s.filterCount, s.readSkipCount, s.processSkipCount, s.writeSkipCount, s.commitCount, s.rollbackCount];
}

/** Filters for listing executions, newest first. */
export interface ExecutionQuery {
  /** Executions of this job. */
  job?: string | undefined;
  /** Executions in this status. */
  status?: BatchStatus | undefined;
  /** Any of these statuses (with `status`, both must hold). */
  statuses?: readonly BatchStatus[] | undefined;
  /** The node that ran (or runs) the execution. */
  node?: string | undefined;
  /** Created at or after this time. */
  from?: Date | undefined;
  /** Created before this time. */
  to?: Date | undefined;
  /** Executions with an id below this one: the cursor of the next page. */
  before?: number | undefined;
  /**
   * Text contained in the parameters (their JSON form), ignoring case. No index serves it within
   * the latency goal (see README, History and retention), so one page looks at a window of at
   * most `SEARCH_WINDOW` ids and says where to go on.
   */
  text?: string | undefined;
  /** Most executions returned (default 20). */
  limit?: number | undefined;
}

/** A page of executions, newest first, and the cursor of the next page (null: there is none). */
export interface ExecutionPage {
  /** The page's executions, newest first, each with the newest later execution of its instance. */
  executions: ExecutionSummary[];
  /** Pass as `before` for the next page. */
  nextCursor: number | null;
}

/** How far the creation order of executions may differ from the order of their ids. */
export const ID_ORDER_MARGIN_MS = 60_000;

/**
 * How many execution ids a parameter-text search looks at per page: what fits the history goal's
 * 5 ms (a page that finds too few reads the whole window: 20,000 took 9-12 ms on SQLite and
 * 10-35 ms on a loaded PostgreSQL at 1-10 million executions).
 */
export const SEARCH_WINDOW = 5_000;

/** A LIKE pattern for text contained anywhere, with the pattern characters escaped. */
const containing = (text: string) => `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Read access to the job repository: instances, executions and step executions. Writes that
 * change ownership or status live with the engine and cluster code that owns those rules,
 * using the same statements in sql.ts.
 */
export function createJobExplorer(db: Database) {
  /** One page of executions, newest first, with the cursor of the next. */
  async function pageExecutions(q: ExecutionQuery = {}): Promise<ExecutionPage> {
    const limit = q.limit ?? 20;
    // Several statuses: one index range each ((status, id)), merged here.
    if (q.statuses && q.statuses.length > 1) {
      const pages = await Promise.all([...new Set(q.statuses)].map((status) => pageExecutions({ ...q, statuses: undefined, status, limit })));
      const all = pages.flatMap((p) => p.executions).sort((a, b) => b.id - a.id);
      const executions = all.slice(0, limit);
      const more = all.length > limit || pages.some((p) => p.nextCursor !== null);
      return { executions, nextCursor: more && executions.length ? executions[executions.length - 1].id : null };
    }
    if (q.statuses?.length === 1) {
      if (q.status !== undefined && q.status !== q.statuses[0]) return { executions: [], nextCursor: null };
      q = { ...q, status: q.statuses[0] };
    }
    let minId: number | undefined;
    let maxId: number | undefined;
    // A time range becomes a range of ids, with a margin for inserts that a concurrent one reordered.
    if (q.from !== undefined) {
      const rows = await db.query<{ id: number }>(SQL.firstIdFrom, [q.from.getTime() - ID_ORDER_MARGIN_MS]);
      if (!rows.length) return { executions: [], nextCursor: null };
      minId = Number(rows[0].id);
    }
    if (q.to !== undefined) {
      const rows = await db.query<{ id: number }>(SQL.lastIdBefore, [q.to.getTime() + ID_ORDER_MARGIN_MS]);
      if (!rows.length) return { executions: [], nextCursor: null };
      maxId = Number(rows[0].id);
    }
    let searchFloor: number | undefined;
    if (q.text !== undefined) {
      const top = Math.min(
        q.before ?? Infinity,
        maxId === undefined ? Infinity : maxId + 1,
        Number((await db.query<{ id: number | null }>(SQL.maxExecutionId))[0]?.id ?? 0) + 1,
      );
      searchFloor = Math.max(1, top - SEARCH_WINDOW);
      minId = Math.max(minId ?? 1, searchFloor);
    }
    const given = {
      job: q.job !== undefined, status: q.status !== undefined, node: q.node !== undefined, from: q.from !== undefined, to: q.to !== undefined,
      before: q.before !== undefined, minId: minId !== undefined, maxId: maxId !== undefined, text: q.text !== undefined,
      endedNotCompleted: q.node !== undefined && (ENDED_NOT_COMPLETED as readonly string[]).includes(q.status ?? ''),
    };
    const params: unknown[] = [limit + 1];
    if (given.job) params.push(q.job);
    if (given.status) params.push(q.status);
    if (given.node) params.push(q.node);
    if (given.from) params.push(q.from!.getTime());
    if (given.to) params.push(q.to!.getTime());
    if (given.before) params.push(q.before);
    if (given.minId) params.push(minId);
    if (given.maxId) params.push(maxId);
    if (given.text) params.push(containing(q.text!));
    const rows = (await db.query<Row>(SQL.listExecutions(given), params)).map(toExecutionWithRestart);
    const executions = rows.slice(0, limit);
    // A full page goes on after its last row; a search window that ended short of the page goes on
    // below the window (unless the time range ends there too).
    const windowEnded = searchFloor !== undefined && searchFloor > 1 && searchFloor === minId;
    const nextCursor = rows.length > limit ? executions[limit - 1].id : windowEnded ? searchFloor! : null;
    return { executions, nextCursor };
  }

  return {
    /** One job execution, or undefined. */
    async getExecution(id: number, client: SqlClient = db): Promise<JobExecution | undefined> {
      const rows = await client.query<Row>(SQL.getExecution, [requireId('an execution id', id)]);
      return rows.length ? toJobExecution(rows[0]) : undefined;
    },
    /**
     * One job execution with the newest later execution of its instance (`restartedAs`), or
     * undefined: what operators are shown (getExecution, which the engine reads, does without it).
     */
    async getExecutionSummary(id: number): Promise<ExecutionSummary | undefined> {
      const rows = await db.query<Row>(SQL.getExecutionSummary, [requireId('an execution id', id)]);
      return rows.length ? toExecutionWithRestart(rows[0]) : undefined;
    },
    /** One job instance, or undefined. */
    async getInstance(id: number): Promise<JobInstance | undefined> {
      const rows = await db.query<Row>(SQL.getInstance, [requireId('an instance id', id)]);
      return rows.length ? toInstance(rows[0]) : undefined;
    },
    /** The executions of a job instance, newest first. */
    async executionsOfInstance(instanceId: number, client: SqlClient = db): Promise<JobExecution[]> {
      return (await client.query<Row>(SQL.executionsOfInstance, [requireId('an instance id', instanceId)])).map(toJobExecution);
    },
    /** Executions matching the query, newest first (one page; see `pageExecutions` for the next). */
    async listExecutions(q: ExecutionQuery = {}): Promise<ExecutionSummary[]> {
      return (await pageExecutions(q)).executions;
    },
    /** One page of executions, newest first, with the cursor of the next page (`before`). */
    pageExecutions,
    /** The step executions of a job execution, in start order. */
    async stepsOf(jobExecutionId: number, client: SqlClient = db): Promise<StepExecution[]> {
      return (await client.query<Row>(SQL.stepsOfExecution, [requireId('an execution id', jobExecutionId)])).map(toStepExecution);
    },
    /** The steps of several executions in one query, by execution id (each in step order). */
    async stepsOfMany(jobExecutionIds: readonly number[]): Promise<Map<number, StepExecution[]>> {
      const steps = new Map<number, StepExecution[]>(jobExecutionIds.map((id) => [id, []]));
      if (jobExecutionIds.length === 0) return steps;
      for (const row of await db.query<Row>(SQL.stepsOfExecutions(db.dialect), [JSON.stringify(jobExecutionIds)])) {
        const step = toStepExecution(row);
        steps.get(step.jobExecutionId)?.push(step);
      }
      return steps;
    },
    /** The steps of an execution in start order, each with its partitions (oldest first) when it has any. */
    async stepTree(jobExecutionId: number): Promise<
      {
        /** A step of the execution (for a partitioned step, its manager). */
        step: StepExecution;
        /** Its partitions' step executions, oldest first (none for other steps). */
        partitions: StepExecution[];
      }[]
    > {
      const rows = await db.query<Row>(SQL.stepTreeOfExecution, [requireId('an execution id', jobExecutionId)]);
      const tree = new Map<number, { step: StepExecution; partitions: StepExecution[] }>();
      for (const r of rows) if (r.manager_id === null || r.manager_id === undefined) tree.set(Number(r.id), { step: toStepExecution(r), partitions: [] });
      for (const r of rows) if (r.manager_id !== null && r.manager_id !== undefined) tree.get(Number(r.manager_id))?.partitions.push(toStepExecution(r));
      return [...tree.values()];
    },
    /** One step execution, or undefined. */
    async getStep(id: number): Promise<StepExecution | undefined> {
      const rows = await db.query<Row>(SQL.getStep, [requireId('a step execution id', id)]);
      return rows.length ? toStepExecution(rows[0]) : undefined;
    },
    /** The newest execution of a step in an instance, with how often the step was started. */
    async lastStepOfInstance(
      instanceId: number,
      stepName: string,
    ): Promise<
      | {
          /** The newest execution of the step. */
          step: StepExecution;
          /** How many times the step was started in the instance. */
          startCount: number;
        }
      | undefined
    > {
      const rows = await db.query<Row>(SQL.lastStepOfInstance, [instanceId, stepName]);
      return rows.length ? { step: toStepExecution(rows[0]), startCount: Number(rows[0].start_count) } : undefined;
    },
    /** The database's clock, in epoch milliseconds (what leases and triggers are judged by). */
    async dbNow(): Promise<number> {
      const rows = await db.query<{ now: number }>(SQL.dbNow);
      return Number(rows[0].now);
    },
    /**
     * The executions that wait for a node (queued, claimed by no node), the next to run first
     * (nodes claim them oldest first), at most `limit`.
     */
    async queuedExecutions(limit: number): Promise<JobExecution[]> {
      return (await db.query<Row>(SQL.queuedExecutions, [limit])).map(toJobExecution);
    },
    /**
     * How long the oldest execution that waits for a node (queued, claimed by no node) has
     * waited, in milliseconds of the database's clock; 0 when none waits.
     */
    async oldestQueuedAgeMs(): Promise<number> {
      const rows = await db.query<{ age_ms: number | string }>(SQL.oldestQueuedAge);
      return rows.length ? Math.max(0, Number(rows[0].age_ms)) : 0;
    },
  };
}

export type JobExplorer = ReturnType<typeof createJobExplorer>;

export type { ExitStatus };
