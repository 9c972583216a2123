import type { Dialect } from '../tx.ts';

/**
 * Version 17: the live nodes asked to drain, indexed, so that each heartbeat's probe can tell
 * that a peer began or stopped draining (SQL.nodeProbe) by reading only those. Nodes then take
 * the peer out of (or back into) the turns of lone launches within a beat, not at their next
 * full look at the cluster (30 s later), meanwhile passing its turns on.
 */
export function drainingNodesSchema(_d: Dialect): string[] {
  return [`CREATE INDEX ns_node_draining ON ns_node (drain_requested_at) WHERE status = 'alive' AND drain_requested_at IS NOT NULL`];
}
