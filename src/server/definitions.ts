/**
 * A server may have no job definitions: `nightshift serve` started without a config (none given,
 * none in its working directory). It still serves everything that acts on the repository only
 * (history, nodes, schedules, metrics, stop and abandon); what needs a job's definition (launch,
 * restart, adding a schedule, firing one) answers 409 saying so.
 */
import type { Nightshift } from '../operator.ts';
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
