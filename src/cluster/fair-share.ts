import type { Database } from '../repository/database.ts';
import { SQL } from '../repository/sql.ts';

/** A live node as the even spread sees it: what it can run and what it runs now. */
export interface NodeLoad {
  id: number;
  concurrency: number;
  load: number;
}

/**
 * How many of `queued` items node `me` takes when they are spread evenly: each item in turn goes
 * to the least-loaded node that has a free slot (the lowest id among equals). Every node computes
 * the same answer from the same loads, and once some nodes have taken their share, the others'
 * shares are unchanged; so nodes that claim at once still end within one item of each other.
 */
export function evenShare(nodes: readonly NodeLoad[], me: number, queued: number): number {
  const load = nodes.map((n) => ({ ...n }));
  let mine = 0;
  for (let k = 0; k < queued; k++) {
    let best: (typeof load)[number] | undefined;
    for (const n of load) {
      if (n.load >= n.concurrency) continue;
      if (!best || n.load < best.load || (n.load === best.load && n.id < best.id)) best = n;
    }
    if (!best) break;
    best.load++;
    if (best.id === me) mine++;
  }
  return mine;
}

/** Queued work is counted up to this many items: beyond it, every node's share is all its free slots. */
const COUNT_LIMIT = 1000;

/**
 * How many of `queued` items node `me` may claim: its {@link evenShare}, and at least one while it
 * runs nothing. An idle node taking one item keeps the spread within one (it is idle no more), and
 * lets whichever idle node wakes first start a lone launch, rather than the one the even share names.
 */
export function claimLimit(nodes: readonly NodeLoad[], me: number, queued: number): number {
  const share = evenShare(nodes, me, queued);
  const self = nodes.find((n) => n.id === me);
  return self && self.load === 0 && queued > 0 && self.concurrency > 0 ? Math.max(share, 1) : share;
}

/** What a node needs to know about itself to find its share. */
export interface ShareOf {
  id: number;
  name: string;
  /** The node's job names, as its claim takes them (an array on PostgreSQL, JSON on SQLite). */
  jobs: unknown;
  /** Work queued for any node longer than this is anyone's to take, whatever the shares. */
  staleMs: number;
}

/** A node's share of the queued work, and how deep the queue was when it was computed. */
export interface Share {
  /** How many queued items to claim now. */
  take: number;
  /**
   * Queued items beyond what every live node has room for (0 when unknown): while the queue is
   * this deep, every node's share is all its free slots and the spread need not be read again.
   */
  surplus: number;
  /** Live nodes sharing the queue (what draws the surplus down). */
  nodes: number;
}

/**
 * How many queued items this node should claim now, at most `free`: its even share of the work
 * queued for any node (among the live nodes with the same jobs), plus what is addressed to it.
 * Work that waited longer than `staleMs` (a peer that does not claim its share) is up to `free`.
 */
export async function claimShare(db: Database, node: ShareOf, free: number): Promise<Share> {
  if (free <= 0) return { take: 0, surplus: 0, nodes: 1 };
  const rows = await db.query<{
    id: number | string; concurrency: number | string; load: number | string; shared: number | string; mine: number | string; stale: boolean | number;
  }>(SQL.spreadState(db.dialect), [node.id, node.jobs, COUNT_LIMIT, node.name, node.staleMs]);
  const nodes = rows.map((p) => ({ id: Number(p.id), concurrency: Number(p.concurrency), load: Number(p.load) }));
  if (!nodes.some((n) => n.id === node.id)) return { take: free, surplus: 0, nodes: 1 };
  const queued = Number(rows[0].shared);
  const room = nodes.reduce((sum, n) => sum + Math.max(0, n.concurrency - n.load), 0);
  const surplus = Math.max(0, queued - room);
  const q = rows[0];
  if (nodes.length === 1 || q.stale === true || q.stale === 1) return { take: free, surplus, nodes: nodes.length };
  return { take: Math.min(free, claimLimit(nodes, node.id, queued) + Number(q.mine)), surplus, nodes: nodes.length };
}

/**
 * The node whose turn a launch is, among the live nodes that run its job (`runners`, ids
 * ascending): consecutive executions go round the nodes, and each node that passes one on (it has
 * no free slot) hands it to the next. Every node computes the same from the same membership, so
 * one launch wakes one node however many idle; a node whose view is out of date may wake with it,
 * or none may, and then the nodes' polls find the launch.
 */
export function wakeTurn(runners: readonly number[], executionId: number, hop: number): number | undefined {
  return runners.length ? runners[(executionId + hop) % runners.length] : undefined;
}
