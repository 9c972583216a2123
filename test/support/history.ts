import type { Database } from '../../src/repository/database.ts';

export interface SeedOptions {
  /** How many past executions (one instance and one step execution each). */
  count: number;
  /** Jobs the executions are spread over, `job0`..`jobN-1` (default 10). */
  jobs?: number;
  /** The newest seeded execution was created this long ago (default 1 day). */
  newestAgeMs?: number;
  /** Milliseconds between two executions' creation (default 1000). */
  spacingMs?: number;
}

/**
 * Fills a repository with past executions in a few set-based statements (generate_series on
 * PostgreSQL, a recursive CTE on SQLite), not through the engine: 1,000,000 take seconds. Every
 * 50th execution FAILED (its instance restartable), every 100th STOPPED, the rest COMPLETED; they
 * ran on `node0`..`node4`, with parameters `{"n": i, "file": "in-i.csv"}`.
 */
export async function seedHistory(db: Database, o: SeedOptions): Promise<{ firstId: number; lastId: number }> {
  const jobs = o.jobs ?? 10;
  const spacing = o.spacingMs ?? 1000;
  const base = Date.now() - (o.newestAgeMs ?? 86_400_000);
  const max = async (table: string) => Number((await db.query<{ m: number | null }>(`SELECT max(id) AS m FROM ${table}`))[0].m ?? 0);
  const from = Math.max(await max('ns_job_execution'), await max('ns_job_instance')) + 1;
  const to = from + o.count - 1;
  const stepFrom = (await max('ns_step_execution')) + 1 - from;
  const pg = db.dialect === 'postgres';
  const series = pg ? `generate_series(${from}, ${to}) AS s (g)` : 'seq s';
  const withSeq = pg ? '' : `WITH RECURSIVE seq (g) AS (SELECT ${from} UNION ALL SELECT g + 1 FROM seq WHERE g < ${to}) `;
  const cat = (...parts: string[]) => parts.join(' || ');
  const created = `(${base} - (${to} - g) * ${spacing})`;
  const status = `CASE WHEN g % 97 = 0 THEN 'STOPPED' WHEN g % 47 = 0 THEN 'FAILED' ELSE 'COMPLETED' END`;
  const job = cat(`'job'`, `CAST(g % ${jobs} AS TEXT)`);
  await db.transaction(async (tx) => {
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
    if (pg) {
      for (const t of ['ns_job_instance', 'ns_job_execution', 'ns_step_execution']) {
        await tx.exec(`SELECT setval(pg_get_serial_sequence('${t}', 'id'), (SELECT max(id) FROM ${t}))`);
      }
    }
  });
  return { firstId: from, lastId: to };
}
