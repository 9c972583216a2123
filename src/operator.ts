import { idleLimit } from './cluster/node-identity.ts';
import { UsageError } from './core/errors.ts';
import { isJobDefinition, runnableJob } from './core/job.ts';
import { createLogger, redactingLogger } from './core/logger.ts';
import { createJobExplorer } from './repository/job-repository.ts';
import { createCloseGate } from './operator/closing.ts';
import { createLaunching } from './operator/launching.ts';
import { createProcessLease, leaseOptions } from './operator/lease.ts';
import { createQueries } from './operator/queries.ts';
import { openOperatorRepository } from './operator/repository.ts';
import { createLeaseSweep } from './operator/sweep.ts';
import type { AnyJob, Nightshift, NightshiftOptions, SomeJob } from './operator/types.ts';

export type { ExecutionDetails, ExecutionSummary, JobNamed, Nightshift, NightshiftOptions, NodeInfo, ParamsOf, SomeJob, SubmitItemOf } from './operator/types.ts';

/**
 * Creates the job operator of this process (see {@link Nightshift}): opens the repository,
 * and puts together the process's lease, launching, and queries.
 */
export async function createNightshift<J extends SomeJob = SomeJob>(options: NightshiftOptions<J>): Promise<Nightshift<J>> {
  if (typeof options !== 'object' || options === null) {
    throw new UsageError(`createNightshift needs its options, e.g. createNightshift({ db: 'sqlite:nightshift.db', jobs: [myJob] })`);
  }
  const lease = leaseOptions(options.lease);
  const jobs = jobsByName(options.jobs);
  // A user's logger gets Nightshift's lines with URL passwords hidden, as Nightshift's own logger does.
  const log = options.logger ? redactingLogger(options.logger) : createLogger();
  const repository = await openOperatorRepository(options.db, idleLimit(lease), log);
  const { db } = repository;
  const explorer = createJobExplorer(db);
  const processLease = createProcessLease(db, { lease, nodeName: options.nodeName, jobs }, log);
  // Once close() is called, every method refuses (ClosedError); see Nightshift.close for the calls under way.
  const gate = createCloseGate();
  const queries = createQueries(db, explorer, createLeaseSweep(db, log, lease.heartbeatMs), gate.ending);
  const launching = createLaunching({ db, explorer, jobs, log, lease: processLease, details: queries.getExecution, onProgress: options.onProgress, onLaunch: options.onLaunch });
  return gate.guard<Nightshift<J>>({
    db,
    explorer: gate.guard(explorer, {}, 'explorer.'),
    jobs,
    log,
    ...launching,
    ...queries,
    stopAll: () => processLease.stopAll(),
    close: () => gate.close(() => processLease.close(), () => repository.close()),
  }, { stopAll: 'always', waitForEnd: 'waits' });
}

function jobsByName(defs: NightshiftOptions['jobs']): Map<string, AnyJob> {
  // TypeScript requires these; from JavaScript a wrong shape would fail as "defs is not iterable".
  if (!Array.isArray(defs)) throw new UsageError(`createNightshift: jobs must be an array of jobs made by defineJob (jobs: [] for none), got ${defs === null ? 'null' : typeof defs}`);
  const jobs = new Map<string, AnyJob>();
  for (const job of defs) {
    if (!isJobDefinition(job)) throw new UsageError(`createNightshift: jobs must be made by defineJob, got ${JSON.stringify((job as { name?: unknown } | null)?.name ?? null)} that was not`);
    if (jobs.has(job.name)) throw new UsageError(`two jobs are named ${job.name}`);
    jobs.set(job.name, runnableJob(job));
  }
  return jobs;
}
