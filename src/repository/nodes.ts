import type { Database } from './database.ts';
import { SQL } from './sql.ts';

/** A cluster node as an operations console shows it; ages and lease by the database's clock. */
export interface NodeOverview {
  name: string;
  status: 'alive' | 'dead' | 'left';
  host: string;
  pid: number;
  jobs: string[];
  /** Executions and partitions it runs at once. */
  concurrency: number;
  heartbeatMs: number;
  leaseMs: number;
  lastHeartbeat: Date;
  /** Milliseconds since its last heartbeat. */
  heartbeatAgeMs: number;
  /** Milliseconds left on its lease (negative: expired). */
  leaseLeftMs: number;
  /** Alive, but two heartbeats late. */
  suspected: boolean;
  /** Asked to drain: it takes no more work and hands over what it runs. */
  draining: boolean;
  drainRequestedAt: Date | null;
  startedAt: Date;
  endedAt: Date | null;
  endReason: string | null;
  /** Executions it runs now. */
  running: number[];
  /** Partitions (step executions) it runs now, with their executions. */
  runningPartitions: { id: number; executionId: number }[];
}

const date = (v: unknown) => (v === null || v === undefined ? null : new Date(Number(v)));
const bool = (v: unknown) => v === true || v === 1 || v === '1';

/**
 * The node rows a list shows, in their order (oldest first): the newest incarnation of each name
 * and every live one (two nodes started with one name are both shown), or with `all` every row.
 */
export function shownIncarnations<R extends { name: unknown; id: unknown; status: unknown }>(rows: readonly R[], all: boolean): R[] {
  const newest = new Map(rows.map((r) => [String(r.name), Number(r.id)]));
  return rows.filter((r) => all || r.status === 'alive' || newest.get(String(r.name)) === Number(r.id));
}

/** Whether a node row is a live node asked to drain (one that has ended drains nothing). */
export const isDraining = (r: { status: unknown; drain_requested_at?: unknown }) =>
  r.status === 'alive' && r.drain_requested_at !== null && r.drain_requested_at !== undefined;

/** What each node runs now, by node id: its executions and the partitions it claimed. */
export async function runningByNode(db: Database): Promise<(nodeId: number) => Pick<NodeOverview, 'running' | 'runningPartitions'>> {
  const [executions, partitions] = await Promise.all([
    db.query<{ owner_node_id: number; id: number }>(SQL.runningByNode),
    db.query<{ owner_node_id: number; id: number; job_execution_id: number }>(SQL.runningPartitionsByNode),
  ]);
  return (nodeId) => ({
    running: executions.filter((x) => Number(x.owner_node_id) === nodeId).map((x) => Number(x.id)),
    runningPartitions: partitions
      .filter((x) => Number(x.owner_node_id) === nodeId)
      .map((x) => ({ id: Number(x.id), executionId: Number(x.job_execution_id) })),
  });
}

/**
 * Nodes that are alive, or that ended at most `withinMs` ago, oldest first, with what each runs:
 * the newest incarnation of each name and every live one, or with `all` every incarnation.
 */
export async function recentNodes(db: Database, withinMs: number, all = false): Promise<NodeOverview[]> {
  const [rows, runningOf] = await Promise.all([
    db.query<Record<string, unknown> & { name: unknown; id: unknown; status: unknown }>(SQL.recentNodes, [withinMs]),
    runningByNode(db),
  ]);
  return shownIncarnations(rows, all).map((r) => {
    const id = Number(r.id);
    return {
      name: String(r.name),
      status: r.status as NodeOverview['status'],
      host: String(r.host),
      pid: Number(r.pid),
      jobs: registeredJobs(r.jobs),
      concurrency: Number(r.concurrency),
      heartbeatMs: Number(r.heartbeat_ms),
      leaseMs: Number(r.lease_ms),
      lastHeartbeat: date(r.last_heartbeat)!,
      heartbeatAgeMs: Number(r.heartbeat_age),
      leaseLeftMs: Number(r.lease_left),
      suspected: r.status === 'alive' && bool(r.suspected),
      draining: isDraining(r),
      drainRequestedAt: date(r.drain_requested_at),
      startedAt: date(r.started_at)!,
      endedAt: date(r.ended_at),
      endReason: (r.end_reason as string | null) ?? null,
      ...runningOf(id),
    };
  });
}

/** The other live incarnations of a node's name (names should be unique, but nothing stops a second `node --name` while the first runs). */
export async function liveNamesakes(db: Database, nodeId: number, name: string): Promise<{ host: string; pid: number }[]> {
  const rows = await db.query<{ host: string; pid: number }>(SQL.liveNamesakes, [name, nodeId]);
  return rows.map((r) => ({ host: String(r.host), pid: Number(r.pid) }));
}

/** Asks the live node of this name to drain; false when no live node has that name. */
export async function requestDrain(db: Database, name: string): Promise<boolean> {
  return (await db.query(SQL.requestDrain, [name])).length > 0;
}

/**
 * Withdraws the drain request of the live node of this name: it takes work again once it sees
 * that (within a heartbeat). False when no live node has that name; true too for a live node that
 * was not draining (nothing changes then).
 */
export async function resumeNode(db: Database, name: string): Promise<boolean> {
  return (await db.query(SQL.resumeNode, [name])).length > 0;
}

/** Whether an operator asked this node (by id) to drain. */
export async function drainRequested(db: Database, nodeId: number): Promise<boolean> {
  const rows = await db.query<{ drain_requested_at: unknown }>(SQL.drainRequested, [nodeId]);
  return rows.length > 0 && rows[0].drain_requested_at !== null;
}

/**
 * The job names a node registered (`ns_node.jobs`, JSON text). A row no Nightshift wrote (by hand,
 * or cut short) has none, rather than failing whatever reads the cluster.
 */
export function registeredJobs(jobs: unknown): string[] {
  let names: unknown;
  try {
    names = JSON.parse(String(jobs));
  } catch {
    return [];
  }
  return Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
}

/** The jobs the live nodes registered, each with the names of the nodes that have it, by job name. */
export async function liveNodeJobs(db: Database): Promise<Map<string, string[]>> {
  const byJob = new Map<string, string[]>();
  for (const row of await db.query<{ name: string; jobs: string }>(SQL.liveNodeJobs)) {
    for (const job of registeredJobs(row.jobs)) {
      const nodes = byJob.get(job) ?? [];
      if (!nodes.includes(row.name)) nodes.push(row.name);
      byJob.set(job, nodes);
    }
  }
  return new Map([...byJob].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
