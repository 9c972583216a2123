import type { Dialect } from '../tx.ts';

/**
 * Version 11: the claim reads a job's queue through a key range of the (job_name, status, id)
 * index that no other index can serve. Versions 9 and 10 wrote `job_name = x AND status =
 * 'STARTING'` and ordered by (job_name, status, id), meaning to leave the planner that index
 * only. But with both columns fixed by equalities, that order is the order of id alone, which
 * the queue's partial index and the (status, id) index give too: once the statistics had seen a
 * deep queue, the planner read a job's queue there, past every other job's queued work, and a
 * node whose other jobs had nothing queued read the whole queue once per such job on every claim
 * (2,000 buffers for a claim of 64 behind 40,000 queued). Row comparisons bound the range
 * instead: they fix neither column for the planner, prove no partial index's predicate, and only
 * an index that begins with (job_name, status, id) can use them, so that index is the only plan
 * that needs no sort (sorts, incremental ones too, are off in these functions: the (job_name, id)
 * index can serve the range's first column, and with an incremental sort it would read the
 * job's whole history).
 *
 * The heartbeat's probe (is anything queued for this node?) and the even spread's count of the
 * queue had the same trap in their generic plans, which a prepared statement uses after five
 * runs: a node whose jobs had nothing queued read every other job's queued work on each beat
 * (7 ms a beat behind 40,000 queued). They now read the same key ranges, in ns_has_queued and
 * ns_queued_count.
 */
export function claimByKeyRangeSchema(d: Dialect): string[] {
  if (d === 'sqlite') return [];
  // Job `job`'s queued executions after id `after`, in id order, as an index range.
  const queueOf = (job: string, after: string) => `(e.job_name, e.status, e.id) > (${job}, 'STARTING', ${after})
              AND (e.job_name, e.status) <= (${job}, 'STARTING') AND e.owner_node_id IS NULL`;
  const settings = 'SET enable_sort = off SET enable_incremental_sort = off SET enable_bitmapscan = off SET jit = off';
  return [
    `CREATE OR REPLACE FUNCTION ns_queued_ids(p_node BIGINT, p_name TEXT, p_jobs TEXT[], p_n INTEGER)
    RETURNS SETOF BIGINT LANGUAGE plpgsql VOLATILE
    ${settings}
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
          WHERE ${queueOf('p_jobs[1]', '0')} AND (e.target_node IS NULL OR e.target_node = p_name)
          ORDER BY e.job_name, e.status, e.id LIMIT p_n FOR UPDATE SKIP LOCKED;
        RETURN;
      END IF;
      -- A few rounds at most: each reads the next n candidates after those seen, which peers held.
      FOR attempt IN 1..4 LOOP
        -- Sorted apart: a sort the planner cannot avoid costs it "disabled" (10^10), which would
        -- also make it compile the statement (JIT): jit is off.
        candidates := ARRAY(SELECT c.id FROM unnest(p_jobs) AS j(name) CROSS JOIN LATERAL (
            SELECT e.id FROM ns_job_execution e
            WHERE ${queueOf('j.name', 'seen')} AND (e.target_node IS NULL OR e.target_node = p_name)
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
    ${settings}
    AS $body$
    DECLARE
      head BIGINT;
    BEGIN
      SELECT min(c.id) INTO head FROM unnest(p_jobs) AS j(name) CROSS JOIN LATERAL (
          SELECT e.id FROM ns_job_execution e
          WHERE ${queueOf('j.name', '0')} AND e.target_node IS NULL
          ORDER BY e.job_name, e.status, e.id LIMIT 1) c;
      RETURN (SELECT e.last_updated FROM ns_job_execution e WHERE e.id = head);
    END $body$`,
    // Whether any of the jobs has work queued for any node or for node p_name (the heartbeat's probe).
    `CREATE OR REPLACE FUNCTION ns_has_queued(p_jobs TEXT[], p_name TEXT) RETURNS BOOLEAN LANGUAGE plpgsql STABLE
    ${settings}
    AS $body$
    BEGIN
      RETURN EXISTS (SELECT 1 FROM unnest(p_jobs) AS j(name) CROSS JOIN LATERAL (
          SELECT e.id FROM ns_job_execution e
          WHERE ${queueOf('j.name', '0')} AND (e.target_node IS NULL OR e.target_node = p_name)
          ORDER BY e.job_name, e.status, e.id LIMIT 1) c);
    END $body$`,
    // The jobs' work queued for any node, counted up to p_limit (the even spread's depth).
    `CREATE OR REPLACE FUNCTION ns_queued_count(p_jobs TEXT[], p_limit INTEGER) RETURNS BIGINT LANGUAGE plpgsql STABLE
    ${settings}
    AS $body$
    BEGIN
      RETURN (SELECT count(*) FROM (SELECT c.id FROM unnest(p_jobs) AS j(name) CROSS JOIN LATERAL (
          SELECT e.id FROM ns_job_execution e
          WHERE ${queueOf('j.name', '0')} AND e.target_node IS NULL
          ORDER BY e.job_name, e.status, e.id LIMIT p_limit) c LIMIT p_limit) q);
    END $body$`,
  ];
}
