import type { Dialect } from '../tx.ts';

/**
 * Version 9: the queued executions a PostgreSQL claim takes, read in id order from an index and
 * never sorted. The planner picks a plan from its statistics, and right after a bulk submit they
 * still say the queue is nearly empty: it then reads every queued row and sorts them to take the
 * first few (10 ms per claim at 13,000 queued, on every claim of the drain). A function's own
 * settings are the only per-statement planner hint PostgreSQL has: without sorts and bitmap
 * scans, what is left reads an index in id order and stops at `n`.
 * - A node with one job reads that job's queue from the (job_name, status, id) index, whatever
 *   other work waits ahead of it.
 * - A node with several reads the queue's partial index in id order and skips the work of jobs
 *   it does not have (PostgreSQL 15 cannot merge several jobs' ranges in order).
 * Row locks as the claim takes them: SKIP LOCKED, so nodes claim side by side.
 */
export function claimOrderSchema(d: Dialect): string[] {
  if (d === 'sqlite') return [];
  return [
    `CREATE OR REPLACE FUNCTION ns_queued_ids(p_node BIGINT, p_name TEXT, p_jobs TEXT[], p_n INTEGER)
    RETURNS SETOF BIGINT LANGUAGE plpgsql VOLATILE
    SET enable_sort = off SET enable_bitmapscan = off
    AS $body$
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM ns_node nd WHERE nd.id = p_node AND nd.status = 'alive' AND nd.lease_until >= ns_now()
          AND nd.drain_requested_at IS NULL) THEN
        RETURN;
      END IF;
      IF cardinality(p_jobs) = 1 THEN
        RETURN QUERY SELECT e.id FROM ns_job_execution e
          WHERE e.job_name = p_jobs[1] AND e.status = 'STARTING' AND e.owner_node_id IS NULL
            AND (e.target_node IS NULL OR e.target_node = p_name)
          ORDER BY e.id LIMIT p_n FOR UPDATE SKIP LOCKED;
      ELSE
        RETURN QUERY SELECT e.id FROM ns_job_execution e
          WHERE e.status = 'STARTING' AND e.owner_node_id IS NULL AND (e.target_node IS NULL OR e.target_node = p_name)
            AND e.job_name = ANY(p_jobs)
          ORDER BY e.id LIMIT p_n FOR UPDATE SKIP LOCKED;
      END IF;
    END $body$`,
    // When the first execution queued for any node (of these jobs) was queued or requeued: how
    // long work has waited, for the even spread (cluster/fair-share), read the same way.
    `CREATE OR REPLACE FUNCTION ns_queued_since(p_jobs TEXT[]) RETURNS BIGINT LANGUAGE plpgsql STABLE
    SET enable_sort = off SET enable_bitmapscan = off
    AS $body$
    BEGIN
      IF cardinality(p_jobs) = 1 THEN
        RETURN (SELECT e.last_updated FROM ns_job_execution e
          WHERE e.job_name = p_jobs[1] AND e.status = 'STARTING' AND e.owner_node_id IS NULL AND e.target_node IS NULL
          ORDER BY e.id LIMIT 1);
      END IF;
      RETURN (SELECT e.last_updated FROM ns_job_execution e
        WHERE e.status = 'STARTING' AND e.owner_node_id IS NULL AND e.target_node IS NULL AND e.job_name = ANY(p_jobs)
        ORDER BY e.id LIMIT 1);
    END $body$`,
    // Work addressed to a node, which the spread counts apart: rare, so a small index.
    `CREATE INDEX IF NOT EXISTS ns_job_execution_queued_for ON ns_job_execution (target_node, id)
      WHERE status = 'STARTING' AND target_node IS NOT NULL`,
  ];
}
