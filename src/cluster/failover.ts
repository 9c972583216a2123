import type { Database } from '../repository/database.ts';
import type { Tx } from '../repository/tx.ts';
import { SQL } from '../repository/sql.ts';
import { retryingConnectionErrors } from '../repository/connection-errors.ts';
import { PARENT_EXECUTION, failOrphan } from '../engine/launch.ts';
import { endQueuedPartitions } from '../engine/partition-worker.ts';
import { storedDescription } from '../core/status.ts';

export interface FailedOver {
  node: string;
  failedExecutionId: number;
  /** The queued execution that resumes the instance from its last checkpoint, if any. */
  newExecutionId: number | null;
}

/**
 * Declares dead every other node whose lease ran out by the database's clock. Each declaration
 * happens once in the whole cluster (the UPDATE's WHERE lets one caller win) and, in the same
 * transaction, fails the node's running executions naming the node and queues their restart,
 * so a failover can neither be lost nor happen twice. Executions of plain processes
 * (`nightshift run`) are failed but not requeued: their owner restarts them; nor are child
 * executions of job steps: their parent's restart restarts them. Then sweeps work
 * still marked running under an owner that is already dead or gone (declared elsewhere), and
 * partitions still queued under an execution that has ended.
 */
export async function reapDeadNodes(db: Database, selfId: number): Promise<{ dead: string[]; failedOver: FailedOver[] }> {
  const expired = await db.query<{ id: number; name: string; kind: string }>(SQL.expiredNodes, [selfId]);
  const dead: string[] = [];
  const failedOver: FailedOver[] = [];
  for (const node of expired) {
    await db.transaction(async (tx) => {
      await boundLockWait(tx);
      const reason = `node ${node.name} lost: no heartbeat within its lease`;
      const won = await tx.query(SQL.declareDead, [node.id, reason]);
      if (!won.length) return;
      dead.push(node.name);
      for (const r of await tx.query<{ id: number; job_name: string; context: string }>(SQL.runningOfNode, [node.id])) {
        const f = await failOver(tx, r, node, reason);
        if (f) failedOver.push(f);
      }
      for (const part of await tx.query<{ id: number; job_name: string }>(SQL.runningPartitionsOfNode, [node.id])) {
        await failOverPartition(tx, part, reason);
      }
      await tx.execute(SQL.releaseAffinity, [node.name]);
    });
  }
  for (const r of await db.query<{ id: number; job_name: string; context: string; node_id: number; name: string; kind: string }>(SQL.orphanedExecutions)) {
    const f = await db.transaction(async (tx) => {
      await boundLockWait(tx);
      return failOver(tx, r, { id: r.node_id, name: r.name, kind: r.kind }, `node ${r.name} lost while running it`);
    });
    if (f) failedOver.push(f);
  }
  for (const part of await db.query<{ id: number; job_name: string; name: string }>(SQL.orphanedPartitions)) {
    await db.transaction((tx) => failOverPartition(tx, part, `node ${part.name} lost while running it`));
  }
  // Every end of an execution ends its queued partitions; this ends those an older version left.
  // Looked for first: an UPDATE takes SQLite's write lock even when it changes nothing, and this
  // sweep runs before an operator's reads. A failure here must not lose the failovers above,
  // which are committed: the next sweep tries again.
  try {
    if ((await db.query(SQL.anyStaleQueuedPartition)).length) await db.execute(SQL.endStaleQueuedPartitions, [STALE_QUEUED_BATCH]);
  } catch {
    // The next sweep tries again.
  }
  return { dead, failedOver };
}

/** At most this many stale queued partitions are ended per sweep. */
const STALE_QUEUED_BATCH = 1000;

// A dead owner paused inside a transaction may still hold the row; try again next round.
async function boundLockWait(tx: Tx): Promise<void> {
  if (tx.dialect === 'postgres') await tx.exec(`SET LOCAL lock_timeout = '1s'`);
}

/** Fails one execution of a dead node (once: only the first caller changes it) and requeues it. */
async function failOver(
  tx: Tx,
  r: { id: number; job_name: string; context: string },
  node: { id: number; name: string; kind: string },
  reason: string,
): Promise<FailedOver | undefined> {
  if (!(await failOrphan(tx, { id: r.id, owner_node_id: node.id, node_status: 'dead' }, reason))) return undefined;
  let newExecutionId: number | null = null;
  if (node.kind === 'node' && !isChildExecution(r.context)) {
    newExecutionId = Number((await tx.query<{ id: number }>(SQL.requeue, [r.id]))[0].id);
    if (tx.dialect === 'postgres') await tx.query(SQL.notifyLaunch, [r.job_name]);
  }
  return { node: node.name, failedExecutionId: r.id, newExecutionId };
}

/** A dead node's partition resumes from its checkpoint on a live node, while its job runs on. */
async function failOverPartition(tx: Tx, part: { id: number; job_name: string }, reason: string): Promise<void> {
  if (!(await tx.execute(SQL.failPartition, [part.id, reason]))) return;
  const requeued = await tx.query(SQL.requeuePartition, [part.id]);
  if (requeued.length && tx.dialect === 'postgres') await tx.query(SQL.notifyLaunch, [part.job_name]);
}

function isChildExecution(context: string): boolean {
  try {
    return (JSON.parse(context) as Record<string, unknown>)[PARENT_EXECUTION] !== undefined;
  } catch {
    return false;
  }
}

/**
 * An execution this live node claimed but could not run to a recorded end (it could not connect,
 * or could not record the failure): failed, naming the node and the cause, if it is still this
 * node's, and queued again from its last checkpoint, so that the repository never says a live
 * node runs what it does not (and `stop` and `abandon` act on it). Keeps trying while the
 * database turns connections away, for at most `forMs`.
 */
export async function releaseExecution(
  db: Database,
  node: { id: number; name: string },
  executionId: number,
  reason: string,
  forMs = 5 * 60_000,
): Promise<FailedOver | undefined> {
  return retryingConnectionErrors(
    () =>
      db.transaction(async (tx) => {
        const [r] = await tx.query<{ id: number; job_name: string; context: string }>(SQL.runningOfNodeById, [node.id, executionId]);
        return r ? failOver(tx, r, { ...node, kind: 'node' }, reason) : undefined;
      }),
    forMs,
  );
}

/**
 * An execution this node still runs as it leaves, handed over now rather than at its chunk
 * boundary (a second signal, or a shutdown's timeout): in one transaction, ended STOPPED naming
 * `reason` (its running steps too), which fences off the chunk under way here (it rolls back),
 * and queued again so that a live node resumes it at once from its last commit, as a drain's
 * hand-over does. A child execution of a job step is only stopped: its parent's restart reruns
 * it. Nothing happens if the node no longer runs it (it ended meanwhile). Returns the queued
 * execution's id, or null when none was queued, or undefined when nothing was handed over.
 */
export async function handOverExecution(db: Database, node: { id: number }, executionId: number, reason: string): Promise<number | null | undefined> {
  return retryingConnectionErrors(
    () =>
      db.transaction(async (tx) => {
        const [r] = await tx.query<{ id: number; job_name: string; context: string }>(SQL.runningOfNodeById, [node.id, executionId]);
        if (!r) return undefined;
        const why = storedDescription(reason);
        if (!(await tx.execute(SQL.handOverRunning, [r.id, why, node.id]))) return undefined;
        const end = endQueuedPartitions(r.id, 'STOPPED', `stopped: ${why}`);
        await tx.execute(end.sql, end.params);
        await tx.execute(SQL.handOverRunningSteps, [r.id, why]);
        if (isChildExecution(r.context)) return null;
        const requeued = Number((await tx.query<{ id: number }>(SQL.requeue, [r.id]))[0].id);
        if (tx.dialect === 'postgres') await tx.query(SQL.notifyLaunch, [r.job_name]);
        return requeued;
      }),
    10_000,
  );
}
