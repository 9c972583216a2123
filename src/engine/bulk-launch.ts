import { errorMessage } from '../core/errors.ts';
import type { JobDefinition } from '../core/job.ts';
import type { ParamsSchema } from '../core/params.ts';
import { announceLaunch } from '../repository/announce.ts';
import type { Database, SqlClient } from '../repository/database.ts';
import { SQL } from '../repository/sql.ts';
import { createExecution, prepareLaunch, refuseForgedFireTime, requireJob, type PreparedLaunch } from './launch.ts';

/** One launch of a batch: a job and its parameters (as `submit` takes them). */
export interface SubmitItem {
  /** The job's name. */
  job: string;
  /** Its parameters, typed and checked as for `submit`. */
  params?: Record<string, unknown>;
}

/** What became of one item of a batch: its queued execution, or why it was refused. */
export type SubmitResult =
  | {
      /** The item's position in the batch. */
      index: number;
      /** The execution queued for it (STARTING). */
      executionId: number;
    }
  | {
      /** The item's position in the batch. */
      index: number;
      /** Why it was refused (a bad parameter, a completed instance, ...). */
      error: string;
    };

/** How many new instances one statement (or one SQLite transaction) inserts. */
export const SUBMIT_BATCH = 5000;

interface Ready {
  index: number;
  def: JobDefinition<ParamsSchema>;
  params: Record<string, unknown>;
  launch: PreparedLaunch;
}

/**
 * Queues many executions for the cluster, as many `submit` calls would, but with one statement
 * per {@link SUBMIT_BATCH} new instances (PostgreSQL: a multi-row INSERT over unnest; SQLite: one
 * transaction). Each item is answered on its own and never fails the batch:
 * - an unknown job or bad parameters: an error for that item, nothing written for it;
 * - the same instance twice in the batch: the first is submitted, the later ones are refused;
 * - an instance that already exists: it takes submit's own locked path, in a transaction of its
 *   own, so it is refused (completed, abandoned, already queued or running) or restarted
 *   (failed, stopped) exactly as `submit` would do.
 * The new instances of one batch commit together. Results come back in the items' order.
 */
export async function submitMany(
  db: Database,
  jobs: ReadonlyMap<string, JobDefinition<ParamsSchema>>,
  items: readonly SubmitItem[],
): Promise<SubmitResult[]> {
  const results: (SubmitResult | undefined)[] = new Array(items.length);
  const ready: Ready[] = [];
  const seen = new Map<string, number>();
  items.forEach((item, index) => {
    try {
      if (typeof item !== 'object' || item === null || typeof item.job !== 'string') {
        throw new Error('an item needs a job name ("job") and may have parameters ("params")');
      }
      const params = item.params ?? {};
      if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new Error('"params" must be an object');
      const def = requireJob(jobs, item.job);
      const launch = prepareLaunch(def, params, { kind: 'queued', targetNode: null, affinityKey: null });
      const instance = `${def.name}\u0000${launch.key}`;
      const first = seen.get(instance);
      if (first !== undefined) throw new Error(`the same instance of job ${def.name} as item ${first} of this batch`);
      seen.set(instance, index);
      ready.push({ index, def, params, launch });
    } catch (err) {
      results[index] = { index, error: errorMessage(err) };
    }
  });

  // An item with a fireTime may only run a scheduled firing's instance again (see
  // refuseForgedFireTime): it never takes the path that creates instances.
  const existing: Ready[] = ready.filter((r) => hasFireTime(r.params));
  const fresh = ready.filter((r) => !hasFireTime(r.params));
  for (let from = 0; from < fresh.length; from += SUBMIT_BATCH) {
    const batch = fresh.slice(from, from + SUBMIT_BATCH);
    const created = await insertNew(db, batch);
    for (const r of batch) {
      const id = created.get(r.index);
      if (id === undefined) existing.push(r);
      else results[r.index] = { index: r.index, executionId: id };
    }
  }
  if (db.dialect === 'postgres' && ready.length > existing.length) {
    for (const job of new Set(ready.map((r) => r.def.name))) await announceLaunch(db, job);
  }
  // Existing instances: submit's own rules, each in its own transaction.
  for (const r of existing) {
    try {
      await refuseForgedFireTime(db, r.def, r.params);
      const e = await createExecution(db, r.def, r.params, { kind: 'queued', targetNode: null, affinityKey: null });
      results[r.index] = { index: r.index, executionId: e.id };
    } catch (err) {
      results[r.index] = { index: r.index, error: errorMessage(err) };
    }
  }
  return results as SubmitResult[];
}

const hasFireTime = (params: Record<string, unknown>) => Object.hasOwn(params, 'fireTime') && params.fireTime !== undefined;

/** Inserts the instances of a batch that are new, each with its queued execution: item index to execution id. */
/**
 * PostgreSQL: new instances, each with its queued execution, in one statement, for launches
 * already prepared (`prepareLaunch` with a queued owner). Returns, per array index, the new
 * execution and its instance; an instance that exists already gets nothing back, and the caller
 * takes it through the locked path of a single launch. Runs in `client`'s transaction, if any.
 */
export async function insertNewQueued(
  client: SqlClient,
  items: readonly { job: string; launch: PreparedLaunch }[],
): Promise<Map<number, { id: number; instanceId: number }>> {
  const created = new Map<number, { id: number; instanceId: number }>();
  if (!items.length) return created;
  const columns = items.map((r) => r.launch.columns({}));
  const rows = await client.query<{ idx: number; id: number | string; instance_id: number | string }>(SQL.submitNewInstances, [
    items.map((_, i) => i),
    items.map((r) => r.job),
    items.map((r) => r.launch.key),
    items.map((r) => JSON.stringify(r.launch.ident)),
    columns.map((c) => c[2]),
    columns.map((c) => c[5]),
  ]);
  for (const row of rows) created.set(Number(row.idx), { id: Number(row.id), instanceId: Number(row.instance_id) });
  return created;
}

/** Inserts the instances of a batch that are new, each with its queued execution: item index to execution id. */
async function insertNew(db: Database, batch: readonly Ready[]): Promise<Map<number, number>> {
  const created = new Map<number, number>();
  if (!batch.length) return created;
  if (db.dialect === 'postgres') {
    const ids = await insertNewQueued(db, batch.map((r) => ({ job: r.def.name, launch: r.launch })));
    for (const [i, e] of ids) created.set(batch[i].index, e.id);
    return created;
  }
  const columns = batch.map((r) => r.launch.columns({}));
  await db.transaction(async (tx) => {
    for (const [i, r] of batch.entries()) {
      const instance = await tx.query<{ id: number }>(SQL.insertInstance, [r.def.name, r.launch.key, JSON.stringify(r.launch.ident)]);
      if (!instance.length) continue;
      const rows = await tx.query<{ id: number }>(SQL.insertExecution, [Number(instance[0].id), r.def.name, ...columns[i]]);
      created.set(r.index, Number(rows[0].id));
    }
  });
  return created;
}
