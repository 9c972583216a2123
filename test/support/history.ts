import type { Database } from '../../src/repository/database.ts';
import { ENDED_STATUSES } from '../../src/repository/migrations/012-ended-counters.ts';

export interface SeedOptions {
  /** How many past executions (one instance and one step execution each). */
  count: number;
  /** Jobs the executions are spread over, `job0`..`jobN-1` (default 10). */
  jobs?: number;
  /** The newest seeded execution was created this long ago (default 1 day). */
  newestAgeMs?: number;
  /** Milliseconds between two executions' creation (default 1000). */
  spacingMs?: number;
  /**
   * The newest seeded execution was created at this epoch time (instead of `newestAgeMs` ago);
   * with `firstId`, lets older history be added below rows already seeded.
   */
  newestAt?: number;
  /** Id of the first execution and instance (default: above every id in use). */
  firstId?: number;
  /**
   * Bulk load, for millions of rows: drop the history tables' secondary indexes (and on SQLite the
   * counter triggers; on PostgreSQL skip the foreign-key and counter triggers for the session),
   * insert, then build the indexes again and add the counts in one statement. The same rows,
   * indexes and counters as inserting with them in place, in a fraction of the time.
   */
  bulk?: boolean;
}

const TABLES = ['ns_job_instance', 'ns_job_execution', 'ns_step_execution'];
/** Rows per INSERT statement. */
const BATCH = 1_000_000;

/**
 * Fills a repository with past executions in a few set-based statements (generate_series on
 * PostgreSQL, a recursive CTE on SQLite), not through the engine: 1,000,000 take seconds. Every
 * 47th execution FAILED (its instance restartable), every 97th STOPPED, the rest COMPLETED; they
 * ran on `node0`..`node4`, with parameters `{"n": i, "file": "in-i.csv"}`.
 */
export async function seedHistory(db: Database, o: SeedOptions): Promise<{ firstId: number; lastId: number; oldestAt: number }> {
  const jobs = o.jobs ?? 10;
  const spacing = o.spacingMs ?? 1000;
  const base = o.newestAt ?? Date.now() - (o.newestAgeMs ?? 86_400_000);
  const max = async (table: string) => Number((await db.query<{ m: number | null }>(`SELECT max(id) AS m FROM ${table}`))[0].m ?? 0);
  const from = o.firstId ?? Math.max(await max('ns_job_execution'), await max('ns_job_instance')) + 1;
  const to = from + o.count - 1;
  const stepFrom = (await max('ns_step_execution')) + 1 - from;
  const pg = db.dialect === 'postgres';
  const cat = (...parts: string[]) => parts.join(' || ');
  const created = `(${base} - (${to} - g) * ${spacing})`;
  const status = `CASE WHEN g % 97 = 0 THEN 'STOPPED' WHEN g % 47 = 0 THEN 'FAILED' ELSE 'COMPLETED' END`;
  const job = cat(`'job'`, `CAST(g % ${jobs} AS TEXT)`);
  await db.transaction(async (tx) => {
    const rebuild: string[] = [];
    if (o.bulk) {
      // Secondary indexes (and SQLite's counter triggers), to build again after the load; primary
      // keys and unique constraints stay.
      const defs = pg
        ? await tx.query<{ name: string; sql: string; kind: string }>(`SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS sql,
              'index' AS kind
            FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relname IN (${TABLES.map((t) => `'${t}'`).join(', ')})
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`)
        : await tx.query<{ name: string; sql: string; kind: string }>(`SELECT name, sql, type AS kind FROM sqlite_master
            WHERE type IN ('index', 'trigger') AND sql IS NOT NULL AND tbl_name IN (${TABLES.map((t) => `'${t}'`).join(', ')})`);
      for (const d of defs) {
        await tx.exec(`DROP ${d.kind === 'trigger' ? 'TRIGGER' : 'INDEX'} ${d.name}`);
        rebuild.push(d.sql);
      }
      if (pg) {
        // Foreign-key checks and the counter triggers do not fire for this transaction: the rows
        // are consistent by construction, and the counts are added below.
        await tx.exec(`SET LOCAL session_replication_role = replica`);
        await tx.exec(`SET LOCAL maintenance_work_mem = '512MB'`);
      }
    }
    for (let lo = from; lo <= to; lo += o.bulk ? BATCH : o.count) {
      const hi = Math.min(to, lo + (o.bulk ? BATCH : o.count) - 1);
      const series = pg ? `generate_series(${lo}, ${hi}) AS s (g)` : 'seq s';
      const withSeq = pg ? '' : `WITH RECURSIVE seq (g) AS (SELECT ${lo} UNION ALL SELECT g + 1 FROM seq WHERE g < ${hi}) `;
      await tx.exec(`${withSeq}INSERT INTO ns_job_instance (id, job_name, job_key, identifying_params, create_time)
        SELECT g, ${job}, ${cat(`'k'`, 'CAST(g AS TEXT)')}, '{}', ${created} FROM ${series}`);
      await tx.exec(`${withSeq}INSERT INTO ns_job_execution (id, instance_id, job_name, status, exit_code, exit_description, params,
          create_time, start_time, end_time, last_updated, version, owner_epoch, node_name, context)
        SELECT g, g, ${job}, ${status}, ${status}, '', ${cat(`'{"n":'`, 'CAST(g AS TEXT)', `',"file":"in-'`, 'CAST(g AS TEXT)', `'.csv"}'`)},
          ${created}, ${created} + 5, ${created} + 900, ${created} + 900, 3, 1, ${cat(`'node'`, 'CAST(g % 5 AS TEXT)')}, '{}'
        FROM ${series}`);
      await tx.exec(`${withSeq}INSERT INTO ns_step_execution (id, job_execution_id, step_name, status, exit_code, read_count, write_count,
          commit_count, start_time, end_time, last_updated, version, context, node_name)
        SELECT g + ${stepFrom}, g, 'import', ${status}, ${status}, 1000, 1000, 10, ${created} + 10, ${created} + 890, ${created} + 890, 12,
          '{"offset":1000}', ${cat(`'node'`, 'CAST(g % 5 AS TEXT)')}
        FROM ${series}`);
    }
    if (o.bulk) {
      for (const sql of rebuild) await tx.exec(sql);
      // What the counter triggers would have added.
      const counts = `SELECT job_name, status, count(*) AS n,
          CASE WHEN status IN (${ENDED_STATUSES.map((x) => `'${x}'`).join(', ')}) THEN count(*) ELSE 0 END AS ended
        FROM ns_job_execution WHERE id BETWEEN ${from} AND ${to} GROUP BY job_name, status`;
      await tx.exec(pg
        ? `INSERT INTO ns_execution_count_delta (job_name, status, n, ended) ${counts}`
        : `INSERT INTO ns_execution_count (job_name, status, n, ended) ${counts}
            ON CONFLICT (job_name, status) DO UPDATE SET n = n + excluded.n, ended = ended + excluded.ended`);
    }
    if (pg) {
      for (const t of TABLES) {
        await tx.exec(`SELECT setval(pg_get_serial_sequence('${t}', 'id'), (SELECT max(id) FROM ${t}))`);
      }
    }
  });
  return { firstId: from, lastId: to, oldestAt: base - (to - from) * spacing };
}
