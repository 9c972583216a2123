import type { Dialect } from '../tx.ts';

/**
 * Version 15: the default next instance (`--next`, `launch({ next: true })`) reads a job's
 * newest instance through an index, whatever the size of history and however rare the job.
 *
 * - `ns_job_instance_job (job_name, id)` serves the newest instance of a job (SQL.lastInstance,
 *   a job with an incrementer). Without it, both planners walked the instances newest first and
 *   skipped the other jobs' (a job launched once in a while beside a busy one read all history).
 * - `ns_job_instance_run_id` holds only instances whose parameters name `run.id`, and serves the
 *   newest of them (SQL.lastRunIdParams, which repeats the predicate so that both planners can
 *   prove the partial index applies). Without it, a job launched mostly without `run.id` (a cron
 *   job with an occasional `--next`) read back through every instance since its last `run.id`.
 *
 * Each instance adds one entry to the first; only instances with a `run.id` add one to the second.
 */
export function newestInstanceSchema(_d: Dialect): string[] {
  return [
    `CREATE INDEX ns_job_instance_job ON ns_job_instance (job_name, id)`,
    `CREATE INDEX ns_job_instance_run_id ON ns_job_instance (job_name, id) WHERE identifying_params LIKE '%"run.id":%'`,
  ];
}
