import type { Dialect } from '../tx.ts';

/**
 * Version 14 (PostgreSQL): the queue's functions of version 11 plan their statements once per
 * connection (a generic plan) instead of at every call. PL/pgSQL keeps a custom plan for a
 * statement whose generic plan it costs higher, and ns_queued_ids' read of candidates after the
 * ids seen was planned again at every claim: in a drain of no-op jobs, planning took as long as
 * running it (about a quarter of a millisecond a claim). Version 11 wrote these statements so that
 * only the (job_name, status, id) index serves them whatever the parameters, so the generic plan
 * is the plan a custom one would be.
 */
export function genericQueuePlansSchema(d: Dialect): string[] {
  if (d === 'sqlite') return [];
  return [
    'ns_queued_ids(BIGINT, TEXT, TEXT[], INTEGER)',
    'ns_queued_since(TEXT[])',
    'ns_has_queued(TEXT[], TEXT)',
    'ns_queued_count(TEXT[], INTEGER)',
  ].map((f) => `ALTER FUNCTION ${f} SET plan_cache_mode = force_generic_plan`);
}
