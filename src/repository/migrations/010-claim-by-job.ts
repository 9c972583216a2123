import type { Dialect } from '../tx.ts';

/**
 * Version 10: a PostgreSQL node with several jobs claims without reading past other jobs' work.
 * Version 9 read the queue's partial index in id order and skipped the executions of jobs the
 * node does not have: with a deep queue of another job ahead, every claim of such a node read
 * all of it. Now each of the node's jobs gives its first `n` candidates from the
 * (job_name, status, id) index, the first `n` of those by id are locked (SKIP LOCKED), and when
 * a peer held some of them the next candidates are read after the last one seen. A claim so
 * reads at most `n` entries per job of the node, whatever waits ahead of them; a node with one
 * job is unchanged. The even spread's age of the queue is read the same way.
 */
export function claimByJobSchema(d: Dialect): string[] {
  if (d === 'sqlite') return [];
  return [
    `CREATE OR REPLACE FUNCTION ns_queued_ids(p_node BIGINT, p_name TEXT, p_jobs TEXT[], p_n INTEGER)
    RETURNS SETOF BIGINT LANGUAGE plpgsql VOLATILE
    SET enable_sort = off SET enable_bitmapscan = off SET jit = off
    AS $body$
    DECLARE
      got BIGINT[] := '{}';
      candidates BIGINT[];
      seen BIGINT := 0;
      need INTEGER := p_n;
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM ns_node nd WHERE nd.id = p_node AND nd.status = 'alive' AND nd.lease_until >= ns_now()
          AND nd.drain_requested_at IS NULL) THEN
        RETURN;
      END IF;
      IF cardinality(p_jobs) = 1 THEN
        RETURN QUERY SELECT e.id FROM ns_job_execution e
          WHERE e.job_name = p_jobs[1] AND e.status = 'STARTING' AND e.owner_node_id IS NULL
            AND (e.target_node IS NULL OR e.target_node = p_name)
          ORDER BY e.job_name, e.status, e.id LIMIT p_n FOR UPDATE SKIP LOCKED;
        RETURN;
      END IF;
      -- A few rounds at most: each reads the next n candidates after those seen, which peers held.
      FOR attempt IN 1..4 LOOP
        -- Sorted apart: sorting the join's output is what the planner would avoid (sorts are
        -- off here) by reading the whole table in id order. A sort it cannot avoid costs it
        -- "disabled" (10^10), which would also make it compile the statement (JIT): jit is off.
        candidates := ARRAY(SELECT c.id FROM unnest(p_jobs) AS j(name) CROSS JOIN LATERAL (
            SELECT e.id FROM ns_job_execution e
            WHERE e.job_name = j.name AND e.status = 'STARTING' AND e.owner_node_id IS NULL
              AND (e.target_node IS NULL OR e.target_node = p_name) AND e.id > seen
            ORDER BY e.job_name, e.status, e.id LIMIT p_n) c);
        candidates := ARRAY(SELECT c FROM unnest(candidates) AS c ORDER BY c LIMIT p_n);
        EXIT WHEN cardinality(candidates) = 0;
        got := got || ARRAY(SELECT e.id FROM ns_job_execution e
          WHERE e.id = ANY(candidates) AND e.status = 'STARTING' AND e.owner_node_id IS NULL
          ORDER BY e.id LIMIT need FOR UPDATE SKIP LOCKED);
        need := p_n - cardinality(got);
        EXIT WHEN need <= 0 OR cardinality(candidates) < p_n;
        seen := candidates[cardinality(candidates)];
      END LOOP;
      RETURN QUERY SELECT unnest(got);
    END $body$`,
    `CREATE OR REPLACE FUNCTION ns_queued_since(p_jobs TEXT[]) RETURNS BIGINT LANGUAGE plpgsql STABLE
    SET enable_sort = off SET enable_bitmapscan = off SET jit = off
    AS $body$
    DECLARE
      head BIGINT;
    BEGIN
      -- The first of the jobs' heads, by min(): ordering the join's rows is what the planner
      -- would avoid (sorts are off here) by reading the whole table in id order.
      SELECT min(c.id) INTO head FROM unnest(p_jobs) AS j(name) CROSS JOIN LATERAL (
          SELECT e.id FROM ns_job_execution e
          WHERE e.job_name = j.name AND e.status = 'STARTING' AND e.owner_node_id IS NULL AND e.target_node IS NULL
          ORDER BY e.job_name, e.status, e.id LIMIT 1) c;
      RETURN (SELECT e.last_updated FROM ns_job_execution e WHERE e.id = head);
    END $body$`,
  ];
}
