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
  params?: Record<string, unknown> | undefined;
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

/**
 * How many batch statements of one call run at once on PostgreSQL, each on its own pooled
 * connection: while the database inserts one batch, this process checks the next, and a second
 * backend can insert it on the other core.
 */
export const SUBMIT_PARALLEL = 2;

interface Ready {
  index: number;
  def: JobDefinition<ParamsSchema>;
  params: Record<string, unknown>;
  launch: PreparedLaunch;
}

/** Ids taken for one batch (PostgreSQL, SQL.reserveSubmitIds): array literals, ascending, as many as its items. */
export interface ReservedIds {
  instances: string;
  executions: string;
}

const QUEUED = { kind: 'queued', targetNode: null, affinityKey: null } as const;

/**
 * Queues many executions for the cluster, as many `submit` calls would, but with one statement
 * per {@link SUBMIT_BATCH} new instances (PostgreSQL: a multi-row INSERT over unnest; SQLite: three
 * set-based statements in one transaction). Each item is answered on its own and never fails the batch:
 * - an unknown job or bad parameters: an error for that item, nothing written for it;
 * - the same instance twice in the batch: the first is submitted, the later ones are refused;
 * - an instance that already exists: it takes submit's own locked path, in a transaction of its
 *   own, so it is refused (completed, abandoned, already queued or running) or restarted
 *   (failed, stopped) exactly as `submit` would do.
 * The new instances of one batch commit together. On PostgreSQL up to {@link SUBMIT_PARALLEL}
 * batches are in flight at once, while the items of the next are checked; their instances and
 * executions are numbered in the items' order all the same (a later item's instance is the newer
 * one, and its execution is claimed later). Results come back in the items' order.
 */
export async function submitMany(
  db: Database,
  jobs: ReadonlyMap<string, JobDefinition<ParamsSchema>>,
  items: readonly SubmitItem[],
): Promise<SubmitResult[]> {
  const results: (SubmitResult | undefined)[] = new Array(items.length);
  // An item with a fireTime may only run a scheduled firing's instance again (see
  // refuseForgedFireTime): it never takes the path that creates instances.
  const existing: Ready[] = [];
  const seen = new Map<string, number>();
  let submittedNew = false;
  const jobNames = new Set<string>();
  const insertBatch = async (batch: readonly Ready[], ids: ReservedIds | undefined) => {
    const created = await insertNew(db, batch, ids);
    for (const r of batch) {
      const id = created.get(r.index);
      if (id === undefined) existing.push(r);
      else {
        results[r.index] = { index: r.index, executionId: id };
        submittedNew = true;
      }
    }
  };
  // PostgreSQL: batches in flight at once; each first takes its ids, in the batches' order, so a
  // later item's instance and execution are numbered after an earlier one's.
  const inFlight = new Set<Promise<void>>();
  let numbered: Promise<unknown> = Promise.resolve();
  const send = async (batch: readonly Ready[], last: boolean) => {
    let ids: Promise<ReservedIds | undefined> = Promise.resolve(undefined);
    if (db.dialect === 'postgres' && SUBMIT_PARALLEL > 1 && !(last && inFlight.size === 0)) {
      ids = numbered.then(() => db.query<ReservedIds>(SQL.reserveSubmitIds, [batch.length])).then((rows) => rows[0]);
      numbered = ids.catch(() => undefined);
    }
    const sent = ids.then((reserved) => insertBatch(batch, reserved)).finally(() => inFlight.delete(sent));
    inFlight.add(sent);
    sent.catch(() => undefined); // awaited below; a failure fails the call
    if (db.dialect !== 'postgres' || inFlight.size >= SUBMIT_PARALLEL) await Promise.race(inFlight);
    // Let the statements go out before this process checks the next batch.
    else await new Promise<void>((resolve) => setImmediate(resolve));
  };

  let batch: Ready[] = [];
  for (let index = 0; index < items.length; index++) {
    const r = check(jobs, items[index], index, seen);
    if ('error' in r) results[index] = r;
    else if (hasFireTime(r.params)) existing.push(r);
    else {
      jobNames.add(r.def.name);
      batch.push(r);
      if (batch.length === SUBMIT_BATCH) {
        await send(batch, false);
        batch = [];
      }
    }
  }
  if (batch.length) await send(batch, true);
  await Promise.all(inFlight);
  if (db.dialect === 'postgres' && submittedNew) {
    for (const job of jobNames) await announceLaunch(db, job);
  }
  // Existing instances: submit's own rules, each in its own transaction, in the items' order.
  existing.sort((a, b) => a.index - b.index);
  for (const r of existing) {
    try {
      await refuseForgedFireTime(db, r.def, r.params);
      const e = await createExecution(db, r.def, r.params, QUEUED);
      results[r.index] = { index: r.index, executionId: e.id };
    } catch (err) {
      results[r.index] = { index: r.index, error: errorMessage(err) };
    }
  }
  return results as SubmitResult[];
}

/** Checks one item: its job, its parameters, and that no earlier item of the call is the same instance. */
function check(
  jobs: ReadonlyMap<string, JobDefinition<ParamsSchema>>,
  item: SubmitItem,
  index: number,
  seen: Map<string, number>,
): Ready | { index: number; error: string } {
  try {
    if (typeof item !== 'object' || item === null || typeof item.job !== 'string') {
      throw new Error('an item needs a job name ("job") and may have parameters ("params")');
    }
    const params = item.params ?? {};
    if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new Error('"params" must be an object');
    const def = requireJob(jobs, item.job);
    const launch = prepareLaunch(def, params, QUEUED);
    const instance = `${def.name}\u0000${launch.key}`;
    const first = seen.get(instance);
    if (first !== undefined) throw new Error(`the same instance of job ${def.name} as item ${first} of this batch`);
    seen.set(instance, index);
    return { index, def, params, launch };
  } catch (err) {
    return { index, error: errorMessage(err) };
  }
}

const hasFireTime = (params: Record<string, unknown>) => Object.hasOwn(params, 'fireTime') && params.fireTime !== undefined;

/**
 * PostgreSQL: new instances, each with its queued execution, in one statement, for launches
 * already prepared (`prepareLaunch` with a queued owner). Returns, per array index, the new
 * execution and its instance; an instance that exists already gets nothing back, and the caller
 * takes it through the locked path of a single launch. Runs in `client`'s transaction, if any.
 */
export async function insertNewQueued(
  client: SqlClient,
  items: readonly { job: string; launch: PreparedLaunch }[],
  ids?: ReservedIds,
): Promise<Map<number, { id: number; instanceId: number }>> {
  const created = new Map<number, { id: number; instanceId: number }>();
  if (!items.length) return created;
  const n = items.length;
  const idx = new Array<number>(n);
  const job = new Array<string>(n);
  const key = new Array<string>(n);
  const ident = new Array<string>(n);
  const params = new Array<string>(n);
  const context = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const { launch } = items[i];
    idx[i] = i;
    job[i] = items[i].job;
    key[i] = launch.key;
    ident[i] = JSON.stringify(launch.ident);
    params[i] = launch.params;
    context[i] = launch.context({});
  }
  const rows = await client.query<{ idx: number; id: number | string; instance_id: number | string }>(SQL.submitNewInstances, [
    idx, job, key, ident, params, context, ids?.instances ?? null, ids?.executions ?? null,
  ]);
  for (const row of rows) created.set(Number(row.idx), { id: Number(row.id), instanceId: Number(row.instance_id) });
  return created;
}

/** Inserts the instances of a batch that are new, each with its queued execution: item index to execution id. */
async function insertNew(db: Database, batch: readonly Ready[], reserved: ReservedIds | undefined): Promise<Map<number, number>> {
  const created = new Map<number, number>();
  if (!batch.length) return created;
  if (db.dialect === 'postgres') {
    const ids = await insertNewQueued(db, batch.map((r) => ({ job: r.def.name, launch: r.launch })), reserved);
    for (const [i, e] of ids) created.set(batch[i].index, e.id);
    return created;
  }
  // SQLite: one transaction, three statements for the whole batch.
  const input = JSON.stringify(batch.map((r) => [r.def.name, r.launch.key, JSON.stringify(r.launch.ident), r.launch.params, r.launch.context({})]));
  const { instances, executions, created: createdRows } = SQL.submitNewInstancesSqlite;
  await db.transaction(async (tx) => {
    const before = Number((await tx.query<{ id: number | null }>(SQL.maxInstanceId))[0].id ?? 0);
    await tx.execute(instances, [input]);
    await tx.execute(executions, [input, before]);
    for (const row of await tx.query<{ idx: number; id: number }>(createdRows, [input, before])) {
      created.set(batch[Number(row.idx)].index, Number(row.id));
    }
  });
  return created;
}
