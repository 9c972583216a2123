import type { Dialect } from '../tx.ts';

/**
 * Version 18 (PostgreSQL): a claim looks past a peer's claim in flight however few it asks for.
 * Version 11 read `p_n` candidates a round, for at most four rounds, and locked those it could
 * (SKIP LOCKED): a claim of one, while a peer's claim of 32 held the head of the queue, looked at
 * four ids, all held, and took nothing. An idle node's first look asks for one, so a node that
 * joined a busy cluster could stay idle while its peer drained a deep queue alone. Each round now
 * reads at least 32 candidates and twice as many as the round before (up to 480 ids in four
 * rounds), and still takes the lowest ids it can lock.
 */
export function claimWindowSchema(d: Dialect): string[] {
  if (d === 'sqlite') return [];
  const queueOf = (job: string, after: string) => `e.job_name = ${job} AND e.status >= 'STARTING' AND e.status <= 'STARTING'
              AND (e.job_name, e.status, e.id) > (${job}, 'STARTING', ${after}) AND e.owner_node_id IS NULL`;
  return [
    `CREATE OR REPLACE FUNCTION ns_queued_ids(p_node BIGINT, p_name TEXT, p_jobs TEXT[], p_n INTEGER)
    RETURNS SETOF BIGINT LANGUAGE plpgsql VOLATILE
    SET enable_sort = off SET enable_bitmapscan = off SET jit = off SET plan_cache_mode = force_generic_plan
    AS $body$
    DECLARE
      got BIGINT[] := '{}';
      candidates BIGINT[];
      seen BIGINT := 0;
      need INTEGER := p_n;
      win INTEGER := greatest(p_n, 32);
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
      FOR attempt IN 1..4 LOOP
        candidates := ARRAY(SELECT c.id FROM unnest(p_jobs) AS j(name) CROSS JOIN LATERAL (
            SELECT e.id FROM ns_job_execution e
            WHERE ${queueOf('j.name', 'seen')} AND (e.target_node IS NULL OR e.target_node = p_name)
            ORDER BY e.job_name, e.status, e.id LIMIT win) c);
        candidates := ARRAY(SELECT c FROM unnest(candidates) AS c ORDER BY c LIMIT win);
        EXIT WHEN cardinality(candidates) = 0;
        got := got || ARRAY(SELECT e.id FROM ns_job_execution e
          WHERE e.id = ANY(candidates) AND e.status = 'STARTING' AND e.owner_node_id IS NULL
          ORDER BY e.id LIMIT need FOR UPDATE SKIP LOCKED);
        need := p_n - cardinality(got);
        EXIT WHEN need <= 0 OR cardinality(candidates) < win;
        seen := candidates[cardinality(candidates)];
        win := 2 * win;
      END LOOP;
      RETURN QUERY SELECT unnest(got);
    END $body$`,
  ];
}
