/**
 * A server may have no job definitions: `nightshift serve` started without a config (none given,
 * none in its working directory). It still serves everything that acts on the repository only
 * (history, nodes, schedules, metrics, stop and abandon); what needs a job's definition (launch,
 * restart, adding a schedule, firing one) answers 409 saying so.
 */
import type { Nightshift } from '../operator.ts';
import { liveNodeJobs } from '../repository/nodes.ts';
import { conflict, type HttpError } from './errors.ts';

/** Whether this server has no job definitions at all (serve without a config). */
export const withoutDefinitions = (ns: Pick<Nightshift, 'jobs'>): boolean => ns.jobs.size === 0;

/** The 409 of an action that needs the definition of a job this server does not have. */
export function notDefinedHere(job: string, toDo = 'launch jobs'): HttpError {
  return conflict(`job ${JSON.stringify(job)} is not defined in this server's config: start serve with --config FILE to ${toDo}`);
}

/** Refuses with {@link notDefinedHere} when this server has no job definitions at all. */
export function requireDefinitions(ns: Pick<Nightshift, 'jobs'>, job: string, toDo?: string): void {
  if (withoutDefinitions(ns)) throw notDefinedHere(job, toDo);
}

/** Why an action on a job that exists (nodes run it, or it has run) but that this server's config lacks is refused. */
export function notInConfigMessage(job: string, toDo = 'launch it from here', nodes: readonly string[] = []): string {
  const where = nodes.length ? ` (live nodes run it: ${nodes.join(', ')})` : '';
  return `job ${JSON.stringify(job)} is not in this server's config${where}: add it to the config serve loads to ${toDo}`;
}

/** The 409 of {@link notInConfigMessage}. */
export function notInConfig(job: string, toDo?: string, nodes?: readonly string[]): HttpError {
  return conflict(notInConfigMessage(job, toDo, nodes));
}

/**
 * Refuses an action on a job known to exist (an execution or a schedule names it) that needs its
 * definition: 409 when this server has no config, or a config without that job.
 */
export function requireDefinition(ns: Pick<Nightshift, 'jobs'>, job: string, toDo: string): void {
  requireDefinitions(ns, job, toDo);
  if (!ns.jobs.has(job)) throw notInConfig(job, toDo);
}

/** The live nodes of each of `jobs` that this server's config lacks but live nodes run (no look when it lacks none). */
export async function jobsRunElsewhere(ns: Pick<Nightshift, 'jobs' | 'db'>, jobs: Iterable<string>): Promise<Map<string, string[]>> {
  const lacked = new Set([...jobs].filter((job) => !ns.jobs.has(job)));
  if (!lacked.size) return new Map();
  return new Map([...(await liveNodeJobs(ns.db))].filter(([job]) => lacked.has(job)));
}

/**
 * Refuses an action on a job that this server's config lacks but live nodes run: 409 naming
 * them. A job that nothing runs is left to the action's own answer (an unknown job).
 */
export async function refuseIfRunElsewhere(ns: Pick<Nightshift, 'jobs' | 'db'>, job: string, toDo: string): Promise<void> {
  const nodes = (await jobsRunElsewhere(ns, [job])).get(job);
  if (nodes) throw notInConfig(job, toDo, nodes);
}
