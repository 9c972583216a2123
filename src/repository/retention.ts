import { UsageError } from '../core/errors.ts';
import { BATCH_STATUSES, type BatchStatus } from '../core/status.ts';
import type { Database } from './database.ts';
import { ID_ORDER_MARGIN_MS } from './job-repository.ts';
import { SQL } from './sql.ts';

/** Which history a prune deletes (running and, by default, restartable work is always kept). */
export interface PruneOptions {
  /** Executions that ended (or, never started, were created) more than this long ago. */
  olderThanMs: number;
  /** Only executions with one of these statuses (default: every status that is not running). */
  statuses?: readonly BatchStatus[] | undefined;
  /** Keeps the newest N executions of every job, however old. */
  keepLast?: number | undefined;
  /**
   * Also instances that could still be restarted (their newest execution FAILED, STOPPED or
   * UNKNOWN). Default false: such an instance keeps its whole history, which its restart reads.
   */
  includeRestartable?: boolean | undefined;
  /** Executions deleted per transaction (default 1000): each batch is a short transaction. */
  batchSize?: number | undefined;
  /** Also node incarnations that ended more than `olderThanMs` ago (default true). */
  nodes?: boolean | undefined;
  /**
   * Deletes nothing: counts what a prune with the same options would delete now (see
   * {@link pruneHistory}). It only reads, statement by statement, and takes no lock that running
   * work could wait for. Default false.
   */
  dryRun?: boolean | undefined;
  /** Told after each batch that deleted something (in a dry run: that would delete something). */
  onBatch?: ((deleted: PruneResult) => void) | undefined;
}

/** What a prune deleted, or in a dry run what it would delete. */
export interface PruneResult {
  /** Job executions deleted. */
  executions: number;
  /** Step executions (partitions included) deleted with them. */
  steps: number;
  /** Job instances left with no executions, deleted. */
  instances: number;
  /** Ended node incarnations deleted. */
  nodes: number;
  /** Transactions that deleted executions. */
  batches: number;
  /** True when nothing was deleted: the numbers are what the same prune would delete. */
  dryRun: boolean;
}

const RUNNING: readonly BatchStatus[] = ['STARTING', 'STARTED', 'STOPPING'];
const RESTARTABLE: readonly BatchStatus[] = ['FAILED', 'STOPPED', 'UNKNOWN'];
const FOLD_LIMIT = 50_000;

/**
 * Deletes old history in batches, each a short transaction, walking the executions by primary key
 * from the oldest: so it holds no lock that running work waits for beyond one batch, and costs
 * the same per batch however long the history is.
 *
 * Never deleted: running executions (STARTING, STARTED, STOPPING) and every execution of an
 * instance whose newest execution is running; unless `includeRestartable`, every execution of an
 * instance whose newest execution FAILED, STOPPED or is UNKNOWN (it can still be restarted, and
 * its restart reads its earlier executions' steps). An instance none of whose executions is left
 * is deleted too: its parameters can then run again as a new instance.
 *
 * With `dryRun` it deletes nothing and returns what it would delete: the same walk, the same
 * candidates and recheck (read, without the instances' locks), and count queries for the step
 * executions, the instances left empty and the node incarnations, so its memory is one batch
 * whatever the history's size. The numbers are exact for the repository as it is: work that
 * ends, starts or is restarted meanwhile changes what a later prune deletes. (One corner: a
 * partition still marked STARTED under an ended node, in an execution that is no longer running,
 * keeps that node from being counted, while the real prune deletes the partition with its
 * execution first and then the node.)
 */
export async function pruneHistory(db: Database, o: PruneOptions): Promise<PruneResult> {
  if (!Number.isSafeInteger(o.olderThanMs) || o.olderThanMs < 0) throw new UsageError(`prune: olderThan must be a duration of 0 or more, got ${o.olderThanMs}`);
  if (o.keepLast !== undefined && (!Number.isSafeInteger(o.keepLast) || o.keepLast < 0)) {
    throw new UsageError(`prune: keepLast must be a whole number of 0 or more, got ${o.keepLast}`);
  }
  const batchSize = o.batchSize ?? 1000;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new UsageError(`prune: batchSize must be a whole number of 1 or more, got ${batchSize}`);
  const statuses = [...new Set(o.statuses ?? [])];
  for (const s of statuses) {
    if (!BATCH_STATUSES.includes(s)) throw new UsageError(`prune: unknown status ${JSON.stringify(s)} (one of ${BATCH_STATUSES.join(', ')})`);
    if (RUNNING.includes(s)) throw new UsageError(`prune: ${s} executions are running work and are never pruned`);
  }
  const protectedStatuses = o.includeRestartable ? RUNNING : [...RUNNING, ...RESTARTABLE];
  const dryRun = o.dryRun === true;
  const result: PruneResult = { executions: 0, steps: 0, instances: 0, nodes: 0, batches: 0, dryRun };
  const cutoff = Number((await db.query<{ now: number }>(SQL.dbNow))[0].now) - o.olderThanMs;

  // Keep-last: per job, the lowest id that is kept (ids only grow, so later executions are kept too).
  const keepFrom = new Map<string, number>();
  if (o.keepLast !== undefined) {
    // The counts read the pending deltas too: folding them first only makes that read short (a dry run writes nothing).
    if (!dryRun) await foldExecutionCounts(db);
    const jobs = [...new Set((await db.query<{ job_name: string }>(SQL.executionCounts)).map((r) => r.job_name))];
    for (const job of jobs) {
      const rows = o.keepLast === 0 ? [] : await db.query<{ id: number }>(SQL.keepLastFloor, [job, o.keepLast - 1]);
      if (rows.length) keepFrom.set(job, Number(rows[0].id));
    }
  }

  // Executions created before the cutoff are a range of ids (created-time index), walked by primary
  // key; the margin covers ids that concurrent inserts took out of creation order.
  const last = await db.query<{ id: number }>(SQL.lastIdBefore, [cutoff + ID_ORDER_MARGIN_MS]);
  const first = await db.query<{ id: number | null }>(SQL.minExecutionId);
  if (last.length && first[0]?.id !== null && first[0]?.id !== undefined) {
    const top = Number(last[0].id);
    const select = SQL.pruneCandidates(statuses.length, protectedStatuses);
    for (let lo = Number(first[0].id); lo <= top; lo += batchSize) {
      const hi = Math.min(top, lo + batchSize - 1);
      const rows = await db.query<{ id: number; job_name: string; instance_id: number }>(select, [lo, hi, cutoff, ...statuses]);
      const picked = rows.filter((r) => !(keepFrom.has(r.job_name) && Number(r.id) >= keepFrom.get(r.job_name)!));
      if (!picked.length) continue;
      const batch = dryRun ? await countBatch(db, picked, protectedStatuses, cutoff, statuses) : await deleteBatch(db, picked, protectedStatuses);
      result.executions += batch.executions;
      result.steps += batch.steps;
      result.instances += batch.instances;
      if (batch.executions) {
        result.batches++;
        o.onBatch?.({ ...batch, nodes: 0, batches: 1, dryRun });
      }
    }
  }
  if (o.nodes !== false) result.nodes = dryRun ? await countPrunableNodes(db, o.olderThanMs) : await pruneNodes(db, o.olderThanMs);
  if (!dryRun) await foldExecutionCounts(db);
  return result;
}

/** One batch in one transaction: rechecked under the instances' locks, so a restart that raced it wins. */
async function deleteBatch(db: Database, picked: { id: number; instance_id: number }[], protectedStatuses: readonly string[]) {
  const d = db.dialect;
  const instances = JSON.stringify([...new Set(picked.map((r) => Number(r.instance_id)))]);
  return db.transaction(async (tx) => {
    await tx.query(SQL.lockInstances(d), [instances]);
    const ids = (await tx.query<{ id: number }>(SQL.stillPrunable(d, protectedStatuses), [JSON.stringify(picked.map((r) => Number(r.id)))]))
      .map((r) => Number(r.id));
    if (!ids.length) return { executions: 0, steps: 0, instances: 0 };
    const json = JSON.stringify(ids);
    const steps = await tx.execute(SQL.deleteStepsOf(d), [json]);
    const executions = await tx.execute(SQL.deleteExecutions(d), [json]);
    const emptied = await tx.execute(SQL.deleteEmptyInstances(d), [instances]);
    return { executions, steps, instances: emptied };
  });
}

/**
 * What {@link deleteBatch} would delete, read without a transaction or lock: the same recheck, and
 * counts of the step executions and of the instances that the prune would leave empty.
 */
async function countBatch(db: Database, picked: { id: number }[], protectedStatuses: readonly string[], cutoff: number, statuses: readonly string[]) {
  const d = db.dialect;
  const ids = (await db.query<{ id: number }>(SQL.stillPrunable(d, protectedStatuses), [JSON.stringify(picked.map((r) => Number(r.id)))]))
    .map((r) => Number(r.id));
  if (!ids.length) return { executions: 0, steps: 0, instances: 0 };
  const json = JSON.stringify(ids);
  const [{ n: steps }] = await db.query<{ n: number | string }>(SQL.countStepsOf(d), [json]);
  const [{ n: instances }] = await db.query<{ n: number | string }>(SQL.countEmptiedInstances(d, statuses.length), [json, cutoff, ...statuses]);
  return { executions: ids.length, steps: Number(steps), instances: Number(instances) };
}

/** How many node incarnations {@link pruneNodes} would delete now with the same `olderThanMs`. */
export async function countPrunableNodes(db: Database, olderThanMs: number): Promise<number> {
  return Number((await db.query<{ n: number | string }>(SQL.countPrunableNodes, [olderThanMs]))[0].n);
}

/**
 * Deletes node incarnations that ended more than `olderThanMs` ago, in batches, except those that
 * still own running work (failover must find them). Returns how many were deleted.
 */
export async function pruneNodes(db: Database, olderThanMs: number, batchSize = 500): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await db.execute(SQL.pruneNodes, [olderThanMs, batchSize]);
    total += n;
    if (n < batchSize) return total;
  }
}

/**
 * Folds pending count deltas into the counter rows (PostgreSQL; a no-op on SQLite, whose triggers
 * update the counters directly). One folder at a time; the others return at once.
 */
export async function foldExecutionCounts(db: Database, limit = FOLD_LIMIT): Promise<void> {
  if (db.dialect !== 'postgres') return;
  await db.transaction(async (tx) => {
    const [{ ok }] = await tx.query<{ ok: boolean }>(SQL.tryFoldLock);
    if (ok) await tx.execute(SQL.foldExecutionCounts, [limit]);
  });
}

/**
 * Folds the count deltas only when at least `backlog` are pending (one cheap probe otherwise):
 * for readers such as the metrics scrape, where nodes fold every second anyway.
 */
export async function foldExecutionCountsIfBacklog(db: Database, backlog = 1000): Promise<void> {
  if (db.dialect !== 'postgres') return;
  if ((await db.query(SQL.countDeltaBacklog, [backlog - 1])).length) await foldExecutionCounts(db);
}

/** How many executions each job has in each status, from the counters (never a scan of history). */
export async function executionCounts(db: Database): Promise<{ job: string; status: BatchStatus; count: number }[]> {
  const rows = await db.query<{ job_name: string; status: string; n: number | string }>(SQL.executionCounts);
  return rows.map((r) => ({ job: r.job_name, status: r.status as BatchStatus, count: Number(r.n) }));
}

/**
 * How many executions of each job have ended in each status, ever, from the counters (migration
 * 12): only goes up, a prune does not lower it. An execution that failed and was abandoned later
 * counts once in each.
 */
export async function endedCounts(db: Database): Promise<{ job: string; status: BatchStatus; count: number }[]> {
  const rows = await db.query<{ job_name: string; status: string; n: number | string }>(SQL.endedCounts);
  return rows.map((r) => ({ job: r.job_name, status: r.status as BatchStatus, count: Number(r.n) }));
}
