import { route, type Routing } from '../cluster/routing.ts';
import type { Database } from '../core/database.ts';
import { UsageError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { resolveJobParams } from '../core/job.ts';
import { createHandle, findHandle } from '../engine/execution-handle.ts';
import { submitMany } from '../engine/bulk-launch.ts';
import { runJobExecution } from '../engine/job-run.ts';
import { endQueuedPartitions } from '../engine/partition-worker.ts';
import { createExecution, createExecutionIn, failOrphan, liveIds, nextInstanceParams, ownerGone, refuseAtMaxRunning, refuseForgedFireTime, requireJob } from '../engine/launch.ts';
import { announceLaunch } from '../repository/announce.ts';
import { inForeignTransaction, type PgTransactionClient } from '../repository/foreign-transaction.ts';
import { runningOfJob } from '../repository/max-running.ts';
import type { JobExplorer } from '../repository/job-repository.ts';
import { SQL } from '../repository/sql.ts';
import type { ProcessLease } from './lease.ts';
import type { AnyJob, ExecutionDetails, Nightshift, NightshiftOptions } from './types.ts';

/** How an operator starts, restarts, submits, stops and abandons executions. */
export type Launching = Pick<Nightshift, 'run' | 'start' | 'runNextInstance' | 'restart' | 'submit' | 'submitInTransaction' | 'submitNextInstance' | 'submitMany' | 'stop' | 'abandon'>;

/** What launching works with. */
export interface LaunchingParts {
  readonly db: Database;
  readonly explorer: JobExplorer;
  readonly jobs: ReadonlyMap<string, AnyJob>;
  readonly log: Logger;
  /** The lease the executions this process runs are owned under. */
  readonly lease: ProcessLease;
  /** Reads an execution with its steps (what `done` resolves with). */
  readonly details: (id: number) => Promise<ExecutionDetails | undefined>;
  readonly onProgress?: NightshiftOptions['onProgress'];
  readonly onLaunch?: NightshiftOptions['onLaunch'];
}

export function createLaunching({ db, explorer, jobs, log, lease, details, onProgress, onLaunch }: LaunchingParts): Launching {
  const launch = async (def: AnyJob, params: Record<string, unknown>, given = true) => {
    // Bad parameters are refused before anything is written, this process's registration included.
    resolveJobParams(def, params);
    if (given) await refuseForgedFireTime(db, def, params);
    // A job at its maxRunning is refused before this process registers (createExecution checks
    // again under the job's slot lock).
    if (def.maxRunning !== undefined) refuseAtMaxRunning(def.name, def.maxRunning, liveIds(await runningOfJob(db, def.name)));
    const launched = await lease.launch(
      (me) => createExecution(db, def, params, { kind: 'local', nodeId: me.id, nodeName: me.name }),
      (execution, me) => {
        const handle = createHandle(db, execution, me, def, log, onProgress && ((step) => onProgress(execution, step)));
        const done = runJobExecution(def, handle, explorer).then(async () => {
          // Its end frees a slot of the job's maxRunning: the nodes look for the job's queued work now.
          if (def.maxRunning !== undefined && db.dialect === 'postgres') await announceLaunch(db, def.name);
          return { ...(await details(execution.id))!, failure: handle.failure };
        });
        return { handle, done };
      },
    );
    try {
      onLaunch?.(launched.execution);
    } catch (err) {
      log.warn({ err: errorMessage(err), execution: launched.execution.id }, 'the onLaunch callback failed');
    }
    return launched;
  };

  async function submit(def: ReturnType<typeof requireJob>, params: Record<string, unknown>, routing: Routing, client?: PgTransactionClient) {
    resolveJobParams(def, params);
    await refuseForgedFireTime(db, def, params);
    const decision = await route(db, def.name, routing);
    const owner = { kind: 'queued', ...decision } as const;
    if (!client) return createExecution(db, def, params, owner);
    return inForeignTransaction(client, db.schema, (tx) => createExecutionIn(tx, def, params, owner));
  }

  async function orphanReason(executionId: number): Promise<string | undefined> {
    const rows = await db.query<Parameters<typeof ownerGone>[0] & { id: number }>(SQL.ownerOfExecution, [executionId]);
    return rows.length ? ownerGone(rows[0]) : undefined;
  }

  return {
    async run(job: string, params: Record<string, unknown> = {}) {
      return (await launch(requireJob(jobs, job), params)).done;
    },
    async start(job: string, params: Record<string, unknown> = {}) {
      return launch(requireJob(jobs, job), params);
    },
    async runNextInstance(job: string, params: Record<string, unknown> = {}) {
      const def = requireJob(jobs, job);
      return (await launch(def, await nextInstanceParams(db, explorer, def, params))).done;
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
      return (await launch(def, execution.params, false)).done;
    },
    async stop(executionId) {
      // A node may claim a queued execution between the read and the update that stops it
      // queued: it then runs, and the stop is asked of it as of any running one.
      let execution = await explorer.getExecution(executionId);
      for (let look = 1; execution?.status === 'STARTING' && !(await db.execute(SQL.stopQueued, [executionId])); look++) {
        if (look === 3) throw new UsageError(`execution ${executionId} is being started; stop it again in a moment`);
        execution = await explorer.getExecution(executionId);
      }
      if (!execution) throw new UsageError(`no execution with id ${executionId}`);
      const local = findHandle([...lease.running.values()].map((r) => r.handle), executionId);
      if (local) local.stopRequested = true;
      if (execution.status === 'STARTED') {
        const gone = await orphanReason(executionId);
        if (gone) await db.transaction((tx) => failOrphan(tx, { id: executionId, owner_node_id: execution.ownerNodeId, node_status: 'alive' }, gone));
        else {
          // Partitions no node claimed yet will not start: they end STOPPED with the request
          // (the running ones stop at their next chunk, and a restart runs all of them again).
          await db.transaction(async (tx) => {
            if (await tx.execute(SQL.requestStop, [executionId])) {
              const end = endQueuedPartitions(executionId, 'STOPPED', 'was stopped');
              await tx.execute(end.sql, end.params);
            }
          });
        }
      } else if (execution.status !== 'STOPPING' && execution.status !== 'STARTING') {
        // (STARTING: stopped while queued, above.)
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
      // Only the newest execution decides whether its instance may run again: abandoning an
      // older one would change nothing (a restart of the newest would still complete it).
      const newest = (await explorer.executionsOfInstance(execution.instanceId))[0];
      if (newest && newest.id !== execution.id) {
        throw new UsageError(`execution ${executionId} is not the latest of its instance: execution ${newest.id} is ${newest.status}`);
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
        // A restart under way holds its instance while it adds the next execution: once it has
        // committed, the abandon below sees that execution and refuses.
        await tx.query(SQL.lockInstanceOfExecution(db.dialect), [executionId]);
        const changed = await tx.execute(SQL.abandon, [executionId, 'abandoned by an operator', execution.status]);
        if (!changed) throw new UsageError(`execution ${executionId} changed while abandoning it (a restart or its owner's end); look again`);
        const end = endQueuedPartitions(executionId, 'ABANDONED', 'was abandoned');
        await tx.execute(end.sql, end.params);
        await tx.execute(SQL.abandonSteps, [executionId]);
      });
      return (await explorer.getExecution(executionId))!;
    },
    async submit(job: string, params: Record<string, unknown> = {}, routing: Routing = 'any') {
      return submit(requireJob(jobs, job), params, routing);
    },
    async submitInTransaction(client, job: string, params: Record<string, unknown> = {}, routing: Routing = 'any') {
      if (db.dialect !== 'postgres') {
        throw new UsageError(`submitInTransaction needs a PostgreSQL job repository (this one is ${db.url}): use submit`);
      }
      return submit(requireJob(jobs, job), params, routing, client);
    },
    async submitNextInstance(job: string, params: Record<string, unknown> = {}, routing: Routing = 'any') {
      const def = requireJob(jobs, job);
      return submit(def, await nextInstanceParams(db, explorer, def, params), routing);
    },
    async submitMany(items) {
      if (!Array.isArray(items)) throw new UsageError('submitMany takes an array of { job, params } items');
      return submitMany(db, jobs, items);
    },
  };
}
