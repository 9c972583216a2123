import { UsageError } from '../core/errors.ts';
import type { Database } from '../repository/database.ts';
import { SQL } from '../repository/sql.ts';
import { registeredJobs } from '../repository/nodes.ts';

/** A live node that could run a job, as routing sees it. */
export interface NodeCandidate {
  /** The node's name. */
  name: string;
  /** How many executions it runs at once. */
  concurrency: number;
  /** How many it runs now. */
  running: number;
}

/**
 * How a submitted launch picks its node. `any` (default) lets the first free node take it;
 * the others choose a node at submit time from the live nodes that have the job.
 */
export type Routing =
  | 'any'
  | 'round-robin'
  | 'least-loaded'
  | {
      /** Run on the node of this name (waiting for it to join if it is not alive). */
      node: string;
    }
  | {
      /** Launches with the same key go to the same live node. */
      affinityKey: string;
    }
  | ((candidates: NodeCandidate[], job: string) => string | undefined);

export interface RouteDecision {
  targetNode: string | null;
  affinityKey: string | null;
}

let roundRobin = 0;

async function candidates(db: Database, job: string): Promise<NodeCandidate[]> {
  const rows = await db.query<{ name: string; concurrency: number; jobs: string; running_count: number }>(SQL.liveNodesWithJob);
  return rows
    .filter((r) => registeredJobs(r.jobs).includes(job))
    .map((r) => ({ name: r.name, concurrency: Number(r.concurrency), running: Number(r.running_count) }));
}

const leastLoaded = (list: NodeCandidate[]) =>
  [...list].sort((a, b) => a.running / Math.max(1, a.concurrency) - b.running / Math.max(1, b.concurrency))[0]?.name;

/** Decides where a launch goes. With no live node for the job it stays queued for any node. */
export async function route(db: Database, job: string, routing: Routing = 'any'): Promise<RouteDecision> {
  if (routing === 'any') return { targetNode: null, affinityKey: null };
  if (typeof routing === 'object' && 'node' in routing) {
    const rows = await db.query<{ status: string }>(SQL.nodeByName, [routing.node]);
    if (!rows.length) throw new UsageError(`no node named ${routing.node} has ever joined the cluster`);
    return { targetNode: routing.node, affinityKey: null };
  }
  if (typeof routing === 'object' && 'affinityKey' in routing) {
    const held = await db.query<{ node: string }>(SQL.affinityHolder, [routing.affinityKey]);
    if (held.length) return { targetNode: held[0].node, affinityKey: routing.affinityKey };
    const list = await candidates(db, job);
    return { targetNode: leastLoaded(list) ?? null, affinityKey: routing.affinityKey };
  }
  const list = await candidates(db, job);
  if (!list.length) return { targetNode: null, affinityKey: null };
  if (routing === 'round-robin') return { targetNode: list[roundRobin++ % list.length].name, affinityKey: null };
  if (routing === 'least-loaded') return { targetNode: leastLoaded(list) ?? null, affinityKey: null };
  const chosen = routing(list, job);
  if (chosen !== undefined && !list.some((c) => c.name === chosen)) {
    throw new UsageError(`routing function chose ${chosen}, which is not a live node with job ${job}`);
  }
  return { targetNode: chosen ?? null, affinityKey: null };
}
