import { setTimeout as sleep } from 'node:timers/promises';
import type { Database } from '../core/database.ts';
import { ClosedError, UsageError } from '../core/errors.ts';
import { isRunning } from '../core/status.ts';
import type { ExecutionQuery, JobExplorer } from '../repository/job-repository.ts';
import { isDraining, registeredJobs, runningByNode, shownIncarnations } from '../repository/nodes.ts';
import { SQL } from '../repository/sql.ts';
import type { ExecutionDetails, Nightshift, NodeInfo } from './types.ts';

/** What an operator reads from the repository. */
export type Queries = Pick<Nightshift, 'getExecution' | 'listExecutions' | 'nodes' | 'waitForEnd'>;

interface NodeRow {
  id: number;
  name: string;
  status: string;
  jobs: string;
  last_heartbeat: number;
  host: string;
  pid: number;
  concurrency: number;
  drain_requested_at: unknown;
}

/**
 * `beforeRead` runs before each read (the sweep of expired leases, see sweep.ts). Once `ending`
 * is aborted (the operator is closing), `waitForEnd` looks once more and, if the execution has not
 * ended, refuses with a ClosedError.
 */
export function createQueries(
  db: Database,
  explorer: JobExplorer,
  beforeRead: () => Promise<void> = async () => undefined,
  ending: AbortSignal = new AbortController().signal,
): Queries {
  const details = async (id: number): Promise<ExecutionDetails | undefined> => {
    await beforeRead();
    const execution = await explorer.getExecutionSummary(id);
    return execution && { ...execution, steps: await explorer.stepsOf(id) };
  };
  return {
    getExecution: details,
    async listExecutions(q: ExecutionQuery & { steps?: boolean } = {}): Promise<ExecutionDetails[]> {
      await beforeRead();
      const list = await explorer.listExecutions(q);
      // Without steps the list is plain executions, as the second overload says.
      if (!q.steps) return list as ExecutionDetails[];
      const steps = await explorer.stepsOfMany(list.map((e) => e.id));
      return list.map((e) => ({ ...e, steps: steps.get(e.id)! }));
    },
    async nodes({ all = false }: { all?: boolean } = {}) {
      await beforeRead();
      const [rows, runningOf] = await Promise.all([db.query<NodeRow>(SQL.listNodes), runningByNode(db)]);
      return shownIncarnations(rows, all).map((r) => ({
        name: r.name,
        status: r.status as NodeInfo['status'],
        lastHeartbeat: new Date(Number(r.last_heartbeat)),
        jobs: registeredJobs(r.jobs),
        ...runningOf(Number(r.id)),
        host: r.host,
        pid: Number(r.pid),
        concurrency: Number(r.concurrency),
        draining: isDraining(r),
      }));
    },
    async waitForEnd(executionId, { pollMs = 50, timeoutMs } = {}) {
      const first = await explorer.getExecution(executionId);
      if (!first) throw new UsageError(`no execution with id ${executionId}`);
      const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
      for (;;) {
        await beforeRead();
        const newest = (await explorer.executionsOfInstance(first.instanceId)).find((e) => e.id >= executionId)!;
        if (!isRunning(newest.status)) return (await details(newest.id))!;
        if (ending.aborted) {
          throw new ClosedError('waitForEnd', `this Nightshift is closed: ns.close() was called while ns.waitForEnd(${executionId}) waited, and execution ${newest.id} is still ${newest.status}`);
        }
        if (Date.now() > deadline) throw new Error(`execution ${executionId} did not end within ${timeoutMs} ms`);
        await sleep(pollMs, undefined, { signal: ending }).catch(() => undefined);
      }
    },
  };
}
