import type { Database } from './database.ts';
import { SQL } from './sql.ts';
import type { Tx } from './tx.ts';

/**
 * A job's `maxRunning` in the repository: how many of its executions run (STARTED or STOPPING,
 * on any node or in any process), counted and acted on while holding the job's slot lock, so that
 * claims and in-process launches on several nodes at once never start more than the limit.
 */

/** A running execution of a limited job, with its owner (see SQL.runningOfJob). */
export interface RunningOfJob {
  id: number;
  status: string;
  owner_node_id: number | null;
  node_name: string | null;
  node_status: string | null;
  host: string | null;
  pid: number | null;
  lease_expired: number | boolean | null;
}

/**
 * Takes job `job`'s slot lock for the rest of `tx` (PostgreSQL: an advisory transaction lock;
 * SQLite: its IMMEDIATE transaction is the lock already) and returns the job's running
 * executions with their owners, oldest first. Statements after it in `tx` see every commit made
 * before it.
 */
export async function lockRunningOfJob(tx: Tx, job: string): Promise<RunningOfJob[]> {
  if (tx.dialect === 'postgres') await tx.query(SQL.lockJobSlots, [job]);
  return tx.query<RunningOfJob>(SQL.runningOfJob, [job]);
}

/** Job `job`'s running executions, without the lock (a first look, before the locked one). */
export async function runningOfJob(db: Database, job: string): Promise<RunningOfJob[]> {
  return db.query<RunningOfJob>(SQL.runningOfJob, [job]);
}

/**
 * Claims for node `node` up to `room` queued executions of job `job`, whose `maxRunning` is
 * `limit`, the oldest first, and never so many that more than `limit` run: in one transaction
 * that holds the job's slot lock, counts its running executions and claims at most the slots left.
 * Returns the claimed rows (as SQL.claim does), in id order; none when the limit is reached or
 * nothing is queued for the node (look first with {@link limitedJobsQueued}, without the lock).
 */
export async function claimLimitedJob(
  db: Database,
  node: { id: number; name: string },
  job: string,
  limit: number,
  room: number,
): Promise<Record<string, unknown>[]> {
  if (room <= 0) return [];
  const rows = await db.transaction(async (tx) => {
    // Every running one counts here, a dead owner's too: the nodes' failover sweep ends those
    // within a lease (and queues them again), which this claim then sees.
    const slots = limit - (await lockRunningOfJob(tx, job)).length;
    if (slots <= 0) return [];
    return tx.query<Record<string, unknown>>(SQL.claimOfJob(tx.dialect), [node.id, node.name, job, Math.min(room, slots)]);
  });
  return rows.sort((a, b) => Number(a.id) - Number(b.id));
}

/**
 * Which of the limited jobs `names` (an array on PostgreSQL, its JSON text on SQLite, as the
 * claim takes them) have work queued that node `nodeName` may claim, in one statement.
 */
export async function limitedJobsQueued(db: Database, nodeName: string, names: string[] | string): Promise<Set<string>> {
  return new Set((await db.query<{ name: string }>(SQL.limitedJobsQueued(db.dialect), [names, nodeName])).map((r) => r.name));
}
