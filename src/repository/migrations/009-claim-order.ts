import type { Dialect } from '../tx.ts';

/**
 * Version 9: the queued executions a PostgreSQL claim takes, read in id order from the queue's
 * partial index and never sorted. The planner picks a plan from its statistics, and right after
 * a bulk submit they still say the queue is nearly empty: it then reads every queued row and
 * sorts them to take the first few (10 ms per claim at 13,000 queued, on every claim of the
 * drain). A function's own settings are the only per-statement planner hint PostgreSQL has:
 * without sorts and bitmap scans, the one plan left reads the index in order and stops at `n`.
 * Row locks as the claim takes them: SKIP LOCKED, so nodes claim side by side. The body names
 * its arguments by position: in a SQL function a column (ns_job_execution.node_name) would win
 * over an argument of the same name.
 */
export function claimOrderSchema(d: Dialect): string[] {
  if (d === 'sqlite') return [];
  return [
    `CREATE OR REPLACE FUNCTION ns_queued_ids(node_id BIGINT, node_name TEXT, jobs TEXT[], n INTEGER)
    RETURNS SETOF BIGINT LANGUAGE sql VOLATILE
    SET enable_sort = off SET enable_bitmapscan = off
    AS $body$
      SELECT id FROM ns_job_execution
      WHERE status = 'STARTING' AND owner_node_id IS NULL AND (target_node IS NULL OR target_node = $2)
        AND job_name = ANY($3)
        AND EXISTS (SELECT 1 FROM ns_node nd WHERE nd.id = $1 AND nd.status = 'alive' AND nd.lease_until >= ns_now()
          AND nd.drain_requested_at IS NULL)
      ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED
    $body$`,
    // When the first execution queued for any node (of these jobs) was queued or requeued: how
    // long work has waited, for the even spread (cluster/fair-share), read the same way.
    `CREATE OR REPLACE FUNCTION ns_queued_since(jobs TEXT[]) RETURNS BIGINT LANGUAGE sql STABLE
    SET enable_sort = off SET enable_bitmapscan = off
    AS $body$
      SELECT last_updated FROM ns_job_execution
      WHERE status = 'STARTING' AND owner_node_id IS NULL AND target_node IS NULL AND job_name = ANY($1)
      ORDER BY id LIMIT 1
    $body$`,
    // Work addressed to a node, which the spread counts apart: rare, so a small index.
    `CREATE INDEX IF NOT EXISTS ns_job_execution_queued_for ON ns_job_execution (target_node, id)
      WHERE status = 'STARTING' AND target_node IS NOT NULL`,
  ];
}
