import { UsageError } from './core/errors.ts';
import type { JobDefinition } from './core/job.ts';
import { createLogger, type Logger } from './core/logger.ts';
import type { JobExecution, StepExecution } from './core/model.ts';
import { resolveParams, type ParamsSchema, type ParamValues } from './core/params.ts';
import { isRunning } from './core/status.ts';
import { route, type Routing } from './cluster/routing.ts';
import { startHeartbeat, type Heartbeat } from './cluster/heartbeat.ts';
import { DEFAULT_LEASE, idleLimit, registerNode, validateLease, type LeaseOptions, type NodeIdentity } from './cluster/node-identity.ts';
import { createExecution, failOrphan, ownerGone, requireJob } from './engine/launch.ts';
import { createHandle, type ExecutionHandle } from './engine/execution-handle.ts';
import { runJobExecution } from './engine/job-run.ts';
import type { Database } from './repository/database.ts';
import { createJobExplorer, type ExecutionQuery, type JobExplorer } from './repository/job-repository.ts';
import { openDatabase } from './repository/open.ts';
import { SQL } from './repository/sql.ts';

/** A job execution with its step executions. */
export interface ExecutionDetails extends JobExecution {
  steps: StepExecution[];
  /** For an execution this process ran and that failed: the error that failed it. */
  failure?: unknown;
}

/** A cluster member as `nodes` shows it. */
export interface NodeInfo {
  name: string;
  status: 'alive' | 'dead' | 'left';
  lastHeartbeat: Date;
  jobs: string[];
  running: number[];
  host: string;
  pid: number;
  concurrency: number;
}

interface NodeRow {
  id: number;
  name: string;
  status: string;
  jobs: string;
  last_heartbeat: number;
  host: string;
  pid: number;
  concurrency: number;
}

export interface NightshiftOptions {
  /** `sqlite:PATH` (default `sqlite:nightshift.db`), `postgres://...`, or an open Database. */
  db?: string | Database;
  jobs: readonly JobDefinition<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  logger?: Logger;
  /** Heartbeat and lease of this process while it runs executions. */
  lease?: Partial<LeaseOptions>;
  /** The name this process registers under while running executions. */
  nodeName?: string;
  /** Called after every chunk commit of an execution run by this process. */
  onProgress?: (execution: JobExecution, step: StepExecution) => void;
}

type AnyJob = JobDefinition<ParamsSchema>;
type ParamsOf<J> = J extends JobDefinition<infer S> ? Partial<Record<keyof ParamValues<S>, unknown>> : Record<string, unknown>;

/**
 * The job operator of one process: launches, restarts, stops and abandons executions, and
 * queries the repository. Executions it starts run in this process, which registers itself
 * and keeps a lease while they run.
 */
export interface Nightshift {
  readonly db: Database;
  readonly explorer: JobExplorer;
  readonly jobs: ReadonlyMap<string, AnyJob>;
  readonly log: Logger;
  /** Runs a new execution of a job in this process and resolves when it has ended. */
  run(job: string, params?: Record<string, unknown>): Promise<ExecutionDetails>;
  /** Starts a new execution and resolves once it exists; `done` resolves when it ends. */
  start(job: string, params?: Record<string, unknown>): Promise<{ execution: JobExecution; done: Promise<ExecutionDetails> }>;
  /** Runs the next instance of a job: its `run.id` is one more than the newest instance's. */
  runNextInstance(job: string, params?: Record<string, unknown>): Promise<ExecutionDetails>;
  /** Restarts the instance of a FAILED or STOPPED execution in this process. */
  restart(executionId: number): Promise<ExecutionDetails>;
  /** Asks a running execution to stop at its next chunk boundary (it ends STOPPED). */
  stop(executionId: number): Promise<JobExecution>;
  /**
   * Marks a stopped, stopping or failed execution ABANDONED: its instance will not run again. A
   * STOPPING execution's owner, if still running it, commits nothing after this.
   */
  abandon(executionId: number): Promise<JobExecution>;
  /**
   * Asks the cluster to run a job: the execution is created at once (STARTING) and a live node
   * that has the job takes it, as routed (any free node by default).
   */
  submit(job: string, params?: Record<string, unknown>, routing?: Routing): Promise<JobExecution>;
  /**
   * Waits until an execution's instance has ended: follows failovers (a failed-over execution is
   * replaced by a new one) and resolves with the last execution.
   */
  waitForEnd(executionId: number, options?: { pollMs?: number; timeoutMs?: number }): Promise<ExecutionDetails>;
  /** Cluster members and what each runs. */
  nodes(): Promise<NodeInfo[]>;
  getExecution(id: number): Promise<ExecutionDetails | undefined>;
  /** Executions, newest first; with `steps: true` each comes with its steps (two queries in all). */
  listExecutions(query: ExecutionQuery & { steps: true }): Promise<ExecutionDetails[]>;
  listExecutions(query?: ExecutionQuery & { steps?: boolean }): Promise<JobExecution[]>;
  /** Requests a graceful stop of everything this process runs. */
  stopAll(): void;
  close(): Promise<void>;
}

export async function createNightshift(options: NightshiftOptions): Promise<Nightshift> {
  const lease: LeaseOptions = { ...DEFAULT_LEASE, ...options.lease };
  validateLease(lease);
  const db = typeof options.db === 'object' ? options.db : await openDatabase(options.db, { idleInTransactionMs: idleLimit(lease) });
  const ownsDb = typeof options.db !== 'object';
  const log = options.logger ?? createLogger();
  const jobs = new Map<string, AnyJob>();
  for (const job of options.jobs) {
    if (jobs.has(job.name)) throw new UsageError(`two jobs are named ${job.name}`);
    jobs.set(job.name, job as AnyJob);
  }
  const explorer = createJobExplorer(db);
  const running = new Map<number, { handle: ExecutionHandle; done: Promise<ExecutionDetails> }>();
  let node: NodeIdentity | undefined;
  let heartbeat: Heartbeat | undefined;
  let registering: Promise<NodeIdentity> | undefined;

  const ensureNode = () =>
    (registering ??= (async () => {
      node = await registerNode(db, { kind: 'process', name: options.nodeName, jobs: [...jobs.keys()], concurrency: 0, lease });
      heartbeat = startHeartbeat(db, node, lease, {
        onLost: () => {
          for (const r of running.values()) r.handle.lost.abort();
        },
        onStopRequested: (ids) => {
          for (const id of ids) {
            const r = running.get(id);
            if (r) r.handle.stopRequested = true;
          }
        },
      }, log);
      await heartbeat.started;
      return node;
    })());

  const details = async (id: number): Promise<ExecutionDetails | undefined> => {
    const execution = await explorer.getExecution(id);
    return execution && { ...execution, steps: await explorer.stepsOf(id) };
  };

  // This process registers as a node only while it runs executions: a refused launch leaves
  // no registration behind.
  let launching = 0;
  const releaseNodeIfIdle = async () => {
    if (launching > 0 || running.size > 0 || !registering) return;
    const done = registering;
    registering = undefined;
    const me = await done;
    await heartbeat?.stop();
    await db.execute(SQL.leaveNode, [me.id, 'idle']).catch(() => undefined);
    node = undefined;
  };

  const launch = async (def: AnyJob, params: Record<string, unknown>) => {
    launching++;
    let execution: JobExecution;
    let me: NodeIdentity;
    try {
      me = await ensureNode();
      execution = await createExecution(db, def, params, { kind: 'local', nodeId: me.id, nodeName: me.name });
    } catch (err) {
      launching--;
      await releaseNodeIfIdle();
      throw err;
    }
    launching--;
    const handle = createHandle(db, execution, me, def, log, options.onProgress && ((step) => options.onProgress!(execution, step)));
    const done = runJobExecution(def, handle, explorer)
      .then(async () => ({ ...(await details(execution.id))!, failure: handle.failure }))
      .finally(() => running.delete(execution.id));
    running.set(execution.id, { handle, done });
    return { execution, done };
  };

  const ns: Nightshift = {
    db,
    explorer,
    jobs,
    log,
    async run(job, params = {}) {
      return (await launch(requireJob(jobs, job), params)).done;
    },
    async start(job, params = {}) {
      return launch(requireJob(jobs, job), params);
    },
    async runNextInstance(job, params = {}) {
      const def = requireJob(jobs, job);
      const rows = await db.query<{ identifying_params: string }>(SQL.lastInstance, [def.name]);
      const lastRunId = rows.length ? Number(JSON.parse(rows[0].identifying_params)['run.id'] ?? 0) : 0;
      return (await launch(def, { ...params, 'run.id': lastRunId + 1 })).done;
    },
    async restart(executionId) {
      const execution = await explorer.getExecution(executionId);
      if (!execution) throw new UsageError(`no execution with id ${executionId}`);
      const def = requireJob(jobs, execution.jobName);
      if (execution.status === 'COMPLETED') {
        throw new UsageError(`execution ${executionId} of job ${execution.jobName} is COMPLETED: a completed instance cannot be restarted`);
      }
      if (execution.status === 'ABANDONED') {
        throw new UsageError(`execution ${executionId} of job ${execution.jobName} was ABANDONED and cannot be restarted`);
      }
      const newest = (await explorer.executionsOfInstance(execution.instanceId))[0];
      if (newest && newest.id !== execution.id && newest.status !== 'FAILED' && newest.status !== 'STOPPED') {
        throw new UsageError(`execution ${executionId} is not the latest of its instance: execution ${newest.id} is ${newest.status}`);
      }
      return (await launch(def, execution.params)).done;
    },
    async stop(executionId) {
      const execution = await explorer.getExecution(executionId);
      if (!execution) throw new UsageError(`no execution with id ${executionId}`);
      const local = running.get(executionId);
      if (local) local.handle.stopRequested = true;
      if (execution.status === 'STARTING') await db.execute(SQL.stopQueued, [executionId]);
      else if (execution.status === 'STARTED') {
        const gone = await orphanReason(executionId);
        if (gone) await db.transaction((tx) => failOrphan(tx, { id: executionId, owner_node_id: execution.ownerNodeId, node_status: 'alive' }, gone));
        else await db.execute(SQL.requestStop, [executionId]);
      } else if (execution.status !== 'STOPPING') {
        throw new UsageError(`execution ${executionId} is not running (it is ${execution.status})`);
      }
      return (await explorer.getExecution(executionId))!;
    },
    async abandon(executionId) {
      const execution = await explorer.getExecution(executionId);
      if (!execution) throw new UsageError(`no execution with id ${executionId}`);
      if (execution.status === 'COMPLETED' || execution.status === 'ABANDONED') {
        throw new UsageError(`execution ${executionId} is ${execution.status} and cannot be abandoned`);
      }
      // A STOPPING execution may be abandoned while its owner still runs it, as in Spring Batch:
      // fencing makes that safe. Every commit of the owner proves the execution is still STARTED
      // or STOPPING, in the commit's own transaction, so once ABANDONED it commits nothing more
      // and stops at its next commit.
      if (execution.status === 'STARTED') {
        const gone = await orphanReason(executionId);
        if (!gone) {
          throw new UsageError(`execution ${executionId} is running on node ${execution.node}: stop it first`);
        }
      }
      await db.transaction(async (tx) => {
        const changed = await tx.execute(SQL.abandon, [executionId, 'abandoned by an operator', execution.status]);
        if (!changed) throw new UsageError(`execution ${executionId} changed while abandoning it; try again`);
        await tx.execute(SQL.abandonSteps, [executionId]);
      });
      return (await explorer.getExecution(executionId))!;
    },
    async submit(job, params = {}, routing = 'any') {
      const def = requireJob(jobs, job);
      resolveParams(def.name, def.params, params);
      const decision = await route(db, def.name, routing);
      return createExecution(db, def, params, { kind: 'queued', ...decision });
    },
    async waitForEnd(executionId, { pollMs = 50, timeoutMs } = {}) {
      const first = await explorer.getExecution(executionId);
      if (!first) throw new UsageError(`no execution with id ${executionId}`);
      const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
      for (;;) {
        const newest = (await explorer.executionsOfInstance(first.instanceId)).find((e) => e.id >= executionId)!;
        if (!isRunning(newest.status)) return (await details(newest.id))!;
        if (Date.now() > deadline) throw new Error(`execution ${executionId} did not end within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, pollMs));
      }
    },
    async nodes() {
      const [rows, running] = await Promise.all([
        db.query<NodeRow>(SQL.listNodes),
        db.query<{ owner_node_id: number; id: number }>(SQL.runningByNode),
      ]);
      const runningOf = (nodeId: number) => running.filter((x) => Number(x.owner_node_id) === nodeId).map((x) => Number(x.id));
      return rows.map((r) => ({
        name: r.name,
        status: r.status as NodeInfo['status'],
        lastHeartbeat: new Date(Number(r.last_heartbeat)),
        jobs: JSON.parse(r.jobs) as string[],
        running: runningOf(Number(r.id)),
        host: r.host,
        pid: Number(r.pid),
        concurrency: Number(r.concurrency),
      }));
    },
    getExecution: details,
    async listExecutions(q: ExecutionQuery & { steps?: boolean } = {}): Promise<ExecutionDetails[]> {
      const list = await explorer.listExecutions(q);
      // Without steps the list is plain executions, as the second overload says.
      if (!q.steps) return list as ExecutionDetails[];
      const steps = await explorer.stepsOfMany(list.map((e) => e.id));
      return list.map((e) => ({ ...e, steps: steps.get(e.id)! }));
    },
    stopAll() {
      for (const r of running.values()) r.handle.stopRequested = true;
      if (node) void db.execute(SQL.stopAllOfNode, [node.id]).catch(() => undefined);
    },
    async close() {
      await Promise.allSettled([...running.values()].map((r) => r.done));
      await heartbeat?.stop();
      if (node) await db.execute(SQL.leaveNode, [node.id, 'closed']).catch(() => undefined);
      if (ownsDb) await db.close();
    },
  };

  async function orphanReason(executionId: number): Promise<string | undefined> {
    const rows = await db.query<Parameters<typeof ownerGone>[0] & { id: number }>(
SQL.ownerOfExecution, [executionId],
    );
    return rows.length ? ownerGone(rows[0]) : undefined;
  }

  return ns;
}

export type { ParamsOf };
