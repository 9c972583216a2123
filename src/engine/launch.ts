import { hostname } from 'node:os';
import { LaunchRefusedError, MaxRunningError, ParameterError, UnknownJobError, UsageError } from '../core/errors.ts';
import { resolveJobParams, type JobDefinition } from '../core/job.ts';
import type { ExecutionContext, JobExecution } from '../core/model.ts';
import { storedDescription } from '../core/status.ts';
import {
  givenParams, identifyingParams, instanceKey, paramsFromJson, paramsToJson, type JsonParams, type ParamsSchema,
} from '../core/params.ts';
import { announceLaunch, encodeLaunchWake } from '../repository/announce.ts';
import { toJobExecution, type JobExplorer } from '../repository/job-repository.ts';
import { lockRunningOfJob, type RunningOfJob } from '../repository/max-running.ts';
import type { Database } from '../repository/database.ts';
import { SQL } from '../repository/sql.ts';
import { endQueuedPartitions } from './partition-worker.ts';
import type { Tx } from '../repository/tx.ts';

/** Who will own a new execution: this process now, or whichever node claims it later. */
export type LaunchOwner =
  | { kind: 'local'; nodeId: number; nodeName: string }
  | { kind: 'queued'; targetNode: string | null; affinityKey: string | null };

/** A running execution with its owner (the rows of SQL.runningOfInstance and runningOfJob). */
type RunningRow = RunningOfJob;

/**
 * Creates a job execution for the given parameters, applying the instance rules in one
 * transaction that holds the instance's lock: a completed or abandoned instance is refused, an
 * instance running on a live node is refused, and one whose owner died is failed (naming the
 * node) so that it can run again at once. On PostgreSQL a new instance is launched in a single
 * statement; only an existing one takes the locked path.
 */
export async function createExecution(
  db: Database,
  def: JobDefinition<ParamsSchema>,
  rawParams: Record<string, unknown>,
  owner: LaunchOwner,
  parentExecutionId?: number,
): Promise<JobExecution> {
  const launch = prepareLaunch(def, rawParams, owner, parentExecutionId);
  // A job with a maxRunning starts in this process only while it has a free slot, decided under
  // the job's slot lock, which the nodes' claims of its queued work take too. (A job step's child
  // is not limited: its parent already runs, and refusing it would fail the parent.)
  const limit = def.maxRunning;
  if (owner.kind === 'local' && limit !== undefined && parentExecutionId === undefined) {
    return db.transaction(async (tx) => {
      refuseAtMaxRunning(def.name, limit, await liveRunningOfJob(tx, await lockRunningOfJob(tx, def.name)));
      return launchIn(tx, def, launch, owner, true);
    });
  }
  if (db.dialect === 'postgres') {
    const rows = await db.query<Record<string, unknown>>(SQL.launchNewInstance, [
      def.name, launch.key, JSON.stringify(launch.ident), ...launch.columns({}),
    ]);
    if (rows.length) {
      const execution = toJobExecution(rows[0]);
      if (owner.kind === 'queued') await announceLaunch(db, def.name, turnOf(owner, execution.id));
      return { ...execution, executionNumber: 1 };
    }
  }
  return db.transaction((tx) => launchIn(tx, def, launch, owner, true));
}

/**
 * {@link createExecution} inside a transaction the caller holds, so that something else (a
 * trigger's firing, say) commits atomically with the launch.
 */
export async function createExecutionIn(
  tx: Tx,
  def: JobDefinition<ParamsSchema>,
  rawParams: Record<string, unknown>,
  owner: LaunchOwner,
): Promise<JobExecution> {
  // Launches in the caller's transaction come in batches (a scheduler's firings): one notification
  // per job for the whole batch (PostgreSQL folds equal payloads of a transaction), waking every node.
  return launchIn(tx, def, prepareLaunch(def, rawParams, owner), owner, false);
}

/**
 * The execution a launch's notification names, so that only the node whose turn it is wakes
 * (see announceLaunch); none for work routed to a node or a key, which only that node may take.
 */
function turnOf(owner: LaunchOwner & { kind: 'queued' }, executionId: number): number | undefined {
  return owner.targetNode === null && owner.affinityKey === null ? executionId : undefined;
}

export interface PreparedLaunch {
  ident: JsonParams;
  key: string;
  /** All the parameters, in their stored JSON form. */
  params: string;
  /** The new execution's columns after instance_id and job_name, as insertExecution takes them. */
  columns(context: ExecutionContext): unknown[];
  /** The new execution's context (JSON) when it carries on `carried`: naming this launch's parent, if any. */
  context(carried: ExecutionContext): string;
}

/**
 * Job-context key of a child execution (launched by a job step): its parent execution's id. A
 * failover does not requeue such an execution; the parent's restart restarts it.
 */
export const PARENT_EXECUTION = 'ns.parentExecution';

/** A checked launch, ready to insert. A class: bulk submit prepares one per item, and its methods are shared. */
class Prepared implements PreparedLaunch {
  constructor(
    readonly ident: JsonParams,
    readonly key: string,
    readonly params: string,
    private readonly owner: LaunchOwner,
    private readonly parentExecutionId: number | undefined,
  ) {}

  columns(context: ExecutionContext): unknown[] {
    const owner = this.owner;
    const local = owner.kind === 'local';
    return [
      local ? 'STARTED' : 'STARTING', local ? 'EXECUTING' : 'UNKNOWN', this.params,
      local ? owner.nodeId : null, local ? owner.nodeName : null, this.context(context),
      local ? null : owner.targetNode, local ? null : owner.affinityKey,
    ];
  }

  /** The carried-over context names this launch's parent, if any (not an earlier execution's). */
  context(carried: ExecutionContext): string {
    if (this.parentExecutionId === undefined && !Object.hasOwn(carried, PARENT_EXECUTION)) return JSON.stringify(carried);
    const { [PARENT_EXECUTION]: _earlier, ...context } = carried;
    return JSON.stringify(this.parentExecutionId === undefined ? context : { ...context, [PARENT_EXECUTION]: this.parentExecutionId });
  }
}

/** The ways to start a job's next instance, named in a message that reaches CLI and API users alike. */
const NEXT_INSTANCE = '`nightshift run --next` or `submit --next`, `ns.runNextInstance()` or `ns.submitNextInstance()`, or `next: true` in the HTTP API';

export function prepareLaunch(
  def: JobDefinition<ParamsSchema>,
  rawParams: Record<string, unknown>,
  owner: LaunchOwner,
  parentExecutionId?: number,
): PreparedLaunch {
  const values = resolveJobParams(def, rawParams);
  const ident = identifyingParams(def.params, values, def.fireTimeIdentifying);
  return new Prepared(ident, instanceKey(ident), JSON.stringify(paramsToJson(values)), owner, parentExecutionId);
}

async function launchIn(tx: Tx, def: JobDefinition<ParamsSchema>, launch: PreparedLaunch, owner: LaunchOwner, lone: boolean): Promise<JobExecution> {
  const created = await tx.query<{ id: number }>(SQL.insertInstance, [def.name, launch.key, JSON.stringify(launch.ident)]);
  // A new instance has no executions to check; an existing one is locked and checked.
  const { instanceId, last, count } = created.length
    ? { instanceId: Number(created[0].id), last: undefined, count: 0 }
    : await checkExisting(tx, def, launch.ident, launch.key);
  const rows = await tx.query<Record<string, unknown>>(SQL.insertExecution, [instanceId, def.name, ...launch.columns(last?.context ?? {})]);
  const execution = toJobExecution(rows[0]);
  if (owner.kind === 'queued' && tx.dialect === 'postgres') {
    await tx.query(SQL.notifyLaunch, [encodeLaunchWake({ job: def.name, executionId: lone ? turnOf(owner, execution.id) : undefined, hop: 0 })]);
  }
  return { ...execution, executionNumber: count + 1 };
}

/**
 * Locks an existing instance and applies the rules for launching it again; returns its id.
 * Refuses a completed or abandoned instance, a job that is not restartable, and an instance
 * running on a live node; fails running executions whose owner is gone. Returns its id and
 * newest execution (whose context a restart carries on).
 */
async function checkExisting(
  tx: Tx,
  def: JobDefinition<ParamsSchema>,
  ident: JsonParams,
  key: string,
): Promise<{ instanceId: number; last: JobExecution | undefined; count: number }> {
  const instance = (await tx.query<{ id: number }>(SQL.lockInstance(tx.dialect), [def.name, key]))[0];
  await failOrphans(tx, instance.id, ident, def.name);
  const previous = (await tx.query<Record<string, unknown>>(SQL.executionsOfInstance, [instance.id])).map(toJobExecution);
  const last = previous[0];
  const described = describeParams(ident);
  // Also without identifying parameters: Spring Batch 5 ran such an instance again, Spring
  // Batch 6 refuses it like any other (its issue 4755), and so does Nightshift.
  const completed = previous.find((e) => e.status === 'COMPLETED');
  if (completed) {
    const hint = Object.keys(ident).length
      ? `change an identifying parameter, or start the job's next instance (${NEXT_INSTANCE}), to run a new instance`
      : `start the job's next instance (${NEXT_INSTANCE}) to run it again`;
    throw new LaunchRefusedError(`job ${def.name} already completed for ${described} (execution ${completed.id}); ${hint}`);
  }
  if (last?.status === 'ABANDONED') {
    throw new LaunchRefusedError(`job ${def.name} instance for ${described} was abandoned (execution ${last.id}) and cannot run again`);
  }
  if (last && !def.restartable) {
    throw new LaunchRefusedError(
      `job ${def.name} is not restartable: its instance for ${described} already ran (execution ${last.id}, ${last.status})`,
    );
  }
  return { instanceId: Number(instance.id), last, count: previous.length };
}

/** Fails the instance's running executions whose owner is gone; refuses if one is really running. */
async function failOrphans(tx: Tx, instanceId: number, ident: JsonParams, job: string): Promise<void> {
  const running = await tx.query<RunningRow>(SQL.runningOfInstance, [instanceId]);
  for (const r of running) {
    const reason = ownerGone(r);
    if (!reason) {
      const where = r.owner_node_id === null ? 'queued, waiting for a node' : `running on node ${r.node_name}`;
      throw new LaunchRefusedError(`job ${job} for ${describeParams(ident)} is already ${where} (execution ${r.id})`);
    }
    await failOrphan(tx, r, reason);
  }
}

/** Why a running execution's owner is considered gone, or undefined while it lives. */
export function ownerGone(r: Pick<RunningRow, 'owner_node_id' | 'node_name' | 'node_status' | 'host' | 'pid' | 'lease_expired'>): string | undefined {
  if (r.owner_node_id === null) return undefined;
  const name = r.node_name ?? `#${r.owner_node_id}`;
  if (r.node_status === 'dead') return `node ${name} lost: declared dead`;
  if (r.node_status === 'left') return `node ${name} left the cluster while running it`;
  if (r.host === hostname() && r.pid !== null && !processAlive(Number(r.pid))) {
    return `node ${name} died: its process ${r.pid} on ${r.host} is gone`;
  }
  if (r.lease_expired === true || r.lease_expired === 1) return `node ${name} lost: no heartbeat within its lease`;
  return undefined;
}

/** Whether a process on this host is alive (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Marks the owner dead (once) and fails its execution and running steps. */
export async function failOrphan(
  tx: Tx,
  r: Pick<RunningRow, 'id' | 'owner_node_id' | 'node_status'>,
  why: string,
): Promise<boolean> {
  const reason = storedDescription(why);
  if (r.node_status === 'alive') await tx.query(SQL.declareDeadNow, [r.owner_node_id, reason]);
  const changed = await tx.execute(SQL.failOrphan, [r.id, reason, r.owner_node_id]);
  if (changed) {
    // Its queued partitions first, naming why they never ran; then its running steps.
    const end = endQueuedPartitions(r.id, 'FAILED', `failed: ${reason}`);
    await tx.execute(end.sql, end.params);
    await tx.execute(SQL.failOrphanSteps, [r.id, reason]);
  }
  return changed > 0;
}

/**
 * The ids of a limited job's running executions whose owners live. Those whose owner is gone (a
 * `nightshift run` killed with no node to notice) are failed here first, as a launch of their
 * own instance would, so that they do not hold the job's slots until some other process sweeps.
 */
async function liveRunningOfJob(tx: Tx, running: readonly RunningOfJob[]): Promise<number[]> {
  const live: number[] = [];
  for (const r of running) {
    const gone = ownerGone(r);
    if (gone) await failOrphan(tx, r, gone);
    else live.push(Number(r.id));
  }
  return live;
}

/** The ids of a limited job's running executions whose owners live, read without its lock (a first look). */
export function liveIds(running: readonly RunningOfJob[]): number[] {
  return running.filter((r) => !ownerGone(r)).map((r) => Number(r.id));
}

/** Refuses an in-process launch of job `job` while `running` (its running executions) fill its maxRunning `limit`. */
export function refuseAtMaxRunning(job: string, limit: number, running: readonly number[]): void {
  if (running.length >= limit) throw new MaxRunningError(job, limit, running);
}

function describeParams(ident: JsonParams): string {
  const entries = Object.entries(ident);
  return entries.length ? `parameters ${entries.map(([k, v]) => `${k}=${v}`).join(' ')}` : 'no identifying parameters';
}

/**
 * `fireTime` names a scheduled firing: a launch through run, submit or the API
 * may carry one only to run the instance of a firing that exists already (a failed firing run
 * again), never to create an instance, which would make the scheduler's own firing at that time
 * be refused as already run. Backfilling a fire time that never fired is not a launch's business.
 */
export async function refuseForgedFireTime(db: Database, def: JobDefinition<ParamsSchema>, params: Record<string, unknown>): Promise<void> {
  if (!Object.hasOwn(params, 'fireTime') || params.fireTime === undefined) return;
  const key = instanceKey(identifyingParams(def.params, resolveJobParams(def, params), def.fireTimeIdentifying));
  if ((await db.query(SQL.findInstance, [def.name, key])).length) return;
  throw new ParameterError(
    `job ${def.name}: parameter fireTime is set by the scheduler for its firings; a launch may give it only to run a firing's instance again ` +
      "(restart a failed firing; to fire a trigger now, `nightshift schedule trigger NAME` or POST /api/schedules/NAME/trigger)",
  );
}

/**
 * The parameters of a job's next instance: its incrementer's answer for the newest instance's
 * parameters (those of its last execution), or by default `run.id` one higher than that of the
 * newest instance that has one; `given` parameters override either.
 */
export async function nextInstanceParams(
  db: Database,
  explorer: JobExplorer,
  def: JobDefinition<ParamsSchema>,
  given: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  if (!def.incrementer) {
    const rows = await db.query<{ identifying_params: string }>(SQL.lastRunIdParams, [def.name]);
    const runIds = rows.map((r) => (JSON.parse(r.identifying_params) as Record<string, unknown>)['run.id']);
    const lastRunId = runIds.find((id): id is number => Number.isSafeInteger(id)) ?? 0;
    return { ...given, 'run.id': lastRunId + 1 };
  }
  const rows = await db.query<{ id: number; identifying_params: string }>(SQL.lastInstance, [def.name]);
  const last = rows.length ? (await explorer.executionsOfInstance(Number(rows[0].id)))[0] : undefined;
  const next: unknown = def.incrementer(last && (paramsFromJson(def.name, def.params, last.params) as Parameters<typeof def.incrementer>[0]));
  if (typeof next !== 'object' || next === null || Array.isArray(next)) {
    throw new UsageError(`job ${def.name}: its incrementer must return the next instance's parameters as an object, got ${JSON.stringify(next)}`);
  }
  return { ...next, ...givenParams(given) };
}

export function requireJob(jobs: ReadonlyMap<string, JobDefinition<ParamsSchema>>, name: string): JobDefinition<ParamsSchema> {
  const def = jobs.get(name);
  if (!def) {
    const known = [...jobs.keys()];
    throw new UnknownJobError(name, `unknown job ${name}` + (known.length ? ` (known: ${known.join(', ')})` : ' (the config defines no jobs)'));
  }
  return def;
}
