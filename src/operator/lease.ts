import { startHeartbeat, type Heartbeat } from '../cluster/heartbeat.ts';
import { registerNode, validateLease, withLeaseDefaults, type LeaseOptions, type NodeIdentity } from '../cluster/node-identity.ts';
import type { Database } from '../core/database.ts';
import type { Logger } from '../core/logger.ts';
import type { JobExecution } from '../core/model.ts';
import { findHandle, type ExecutionHandle } from '../engine/execution-handle.ts';
import { SQL } from '../repository/sql.ts';
import type { ExecutionDetails } from './types.ts';

/** An execution this process runs. */
export interface RunningExecution {
  readonly handle: ExecutionHandle;
  /** Resolves when the execution has ended. */
  readonly done: Promise<ExecutionDetails>;
}

/**
 * The lease of a process that runs executions itself (not a cluster node): it registers as a
 * node of kind `process` when it first launches an execution, and keeps its lease by heartbeat
 * from then on. A launch that fails leaves no registration behind, unless something else runs.
 */
export interface ProcessLease {
  /** The executions this process runs, by id. */
  readonly running: ReadonlyMap<number, RunningExecution>;
  /**
   * Launches an execution owned by this process: registers the process if it is not, then
   * `create`s the execution as that node and `start`s running it.
   */
  launch(
    create: (me: NodeIdentity) => Promise<JobExecution>,
    start: (execution: JobExecution, me: NodeIdentity) => RunningExecution,
  ): Promise<{ execution: JobExecution; done: Promise<ExecutionDetails> }>;
  /** Requests a graceful stop of everything this process runs. */
  stopAll(): void;
  /** Waits for the running executions to end, then stops the heartbeat and leaves. */
  close(): Promise<void>;
}

/** The lease settings: the defaults overridden by `options`, validated. */
export function leaseOptions(options: { [K in keyof LeaseOptions]?: LeaseOptions[K] | undefined } = {}): LeaseOptions {
  const lease: LeaseOptions = withLeaseDefaults(options);
  validateLease(lease);
  return lease;
}

/** A registration of this process as a node, with the heartbeat that keeps its lease. */
interface Registration {
  node: NodeIdentity;
  heartbeat: Heartbeat;
}

export function createProcessLease(
  db: Database,
  registration: { lease: LeaseOptions; nodeName?: string; jobs: ReadonlyMap<string, unknown> },
  log: Logger,
): ProcessLease {
  const { lease } = registration;
  const running = new Map<number, RunningExecution>();
  /** The registration this process's executions run under now, if any. */
  let live: Registration | undefined;
  let registering: Promise<Registration> | undefined;
  /** Registrations being given up (their heartbeat stopping): close() waits for them. */
  let releasing: Promise<void> = Promise.resolve();
  let launching = 0;

  const ensureNode = async () =>
    (await (registering ??= (async () => {
      const node = await registerNode(db, { kind: 'process', name: registration.nodeName, jobs: [...registration.jobs.keys()], concurrency: 0, lease });
      const heartbeat = startHeartbeat(db, node, lease, {
        onLost: () => {
          for (const r of running.values()) r.handle.lost.abort();
        },
        onStopRequested: (ids) => {
          for (const id of ids) {
            const h = findHandle([...running.values()].map((r) => r.handle), id);
            if (h) h.stopRequested = true;
          }
        },
      }, log);
      const mine = { node, heartbeat };
      live = mine;
      await heartbeat.started;
      return mine;
    })())).node;

  // Gives up exactly the registration it found: one that a concurrent launch made meanwhile stays.
  const releaseNodeIfIdle = async () => {
    if (launching > 0 || running.size > 0 || !registering) return;
    const done = registering;
    registering = undefined;
    const mine = await done;
    if (live === mine) live = undefined;
    const release = (async () => {
      await mine.heartbeat.stop();
      await db.execute(SQL.leaveNode, [mine.node.id, 'idle']).catch(() => undefined);
    })();
    releasing = releasing.then(() => release);
    await release;
  };

  return {
    running,
    async launch(create, start) {
      launching++;
      let execution: JobExecution;
      let me: NodeIdentity;
      try {
        me = await ensureNode();
        execution = await create(me);
      } catch (err) {
        launching--;
        await releaseNodeIfIdle();
        throw err;
      }
      launching--;
      const { handle, done: ended } = start(execution, me);
      const done = ended.finally(() => running.delete(execution.id));
      running.set(execution.id, { handle, done });
      return { execution, done };
    },
    stopAll() {
      for (const r of running.values()) r.handle.stopRequested = true;
      if (live) void db.execute(SQL.stopAllOfNode, [live.node.id]).catch(() => undefined);
    },
    async close() {
      await Promise.allSettled([...running.values()].map((r) => r.done));
      await releasing;
      const mine = live;
      live = undefined;
      if (!mine) return;
      await mine.heartbeat.stop();
      await db.execute(SQL.leaveNode, [mine.node.id, 'closed']).catch(() => undefined);
    },
  };
}
