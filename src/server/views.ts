/**
 * The API's JSON shapes beyond the CLI's (src/json.ts): an execution's details, jobs with their
 * steps, nodes with their heartbeats, audit records, sessions. Each matches its schema in
 * schemas.ts.
 */
import type { JobDefinition } from '../core/job.ts';
import type { JobExecution, StepExecution } from '../core/model.ts';
import type { ParamsSchema } from '../core/params.ts';
import { partitionedProgress } from '../core/progress.ts';
import { executionJson, jobJson, stepJson } from '../json.ts';
import type { AuditRecord } from '../repository/audit.ts';
import type { NodeOverview } from '../repository/nodes.ts';
import type { Principal } from './auth.ts';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

const stepDetailJson = (s: StepExecution, partitions: StepExecution[] = []) => ({
  ...stepJson(s, partitions.length ? partitionedProgress(partitions) : undefined),
  id: s.id,
  context: s.context,
});

/**
 * One execution with everything the details page shows: its steps with their partitions grouped
 * under the manager step, the job and step ExecutionContexts, the items skipped, and the job's
 * own summary (see JobSummary).
 */
export function executionDetailJson(
  e: JobExecution,
  tree: { step: StepExecution; partitions: StepExecution[] }[],
  summary: Record<string, unknown> | null,
) {
  // A manager step's counters already add up its partitions': count top-level steps only.
  const sum = (k: 'readSkipCount' | 'processSkipCount' | 'writeSkipCount') => tree.reduce((n, t) => n + t.step[k], 0);
  return {
    ...executionJson(e),
    steps: tree.map(({ step, partitions }) => ({
      ...stepDetailJson(step, partitions),
      ...(partitions.length ? { partitions: partitions.map((p) => stepDetailJson(p)) } : {}),
    })),
    context: e.context,
    lastUpdated: iso(e.lastUpdated),
    targetNode: e.targetNode,
    affinityKey: e.affinityKey,
    skips: { read: sum('readSkipCount'), process: sum('processSkipCount'), write: sum('writeSkipCount') },
    summary,
  };
}

/** A job with its parameter schema (to build a launch form) and its steps. */
export function jobDetailJson(j: JobDefinition<ParamsSchema>) {
  const base = jobJson(j);
  return {
    ...base,
    parameters: Object.fromEntries(
      Object.entries(base.parameters).map(([name, p]) => [name, { ...p, description: j.params[name].description ?? null }]),
    ),
    steps: j.flow.map((el) => ({ name: el.name, type: el.type })),
    launchable: true,
  };
}

/**
 * A job this server has no definition of (its config lacks it, or serve started without one) that
 * live nodes registered: its name and those nodes; what it takes and whether it restarts are
 * unknown here.
 */
export function nodeJobJson(name: string, nodes: string[]) {
  return { name, description: null, restartable: null, parameters: {}, steps: [], launchable: false, nodes };
}

export function nodeOverviewJson(n: NodeOverview) {
  return {
    name: n.name,
    status: n.status,
    lastHeartbeat: n.lastHeartbeat.toISOString(),
    jobs: n.jobs,
    running: n.running,
    runningPartitions: n.runningPartitions,
    host: n.host,
    pid: n.pid,
    concurrency: n.concurrency,
    heartbeatMs: n.heartbeatMs,
    leaseMs: n.leaseMs,
    heartbeatAgeMs: n.heartbeatAgeMs,
    leaseLeftMs: n.leaseLeftMs,
    suspected: n.suspected,
    draining: n.draining,
    drainRequestedAt: iso(n.drainRequestedAt),
    startedAt: n.startedAt.toISOString(),
    endedAt: iso(n.endedAt),
    endReason: n.endReason,
  };
}

export function auditJson(a: AuditRecord) {
  return { ...a, at: a.at.toISOString() };
}

export function sessionJson(p: Principal) {
  return { name: p.name, role: p.role, via: p.via, expiresAt: iso(p.expiresAt) };
}
