/**
 * Statements kept prepared on each PostgreSQL connection. PostgreSQL parses and plans an
 * unnamed statement on every execution: for a chunk's checkpoint that costs more than running
 * it, and for a 1000-row INSERT it is about half the statement's time. A text marked here runs
 * as a named statement, parsed once per connection. (SQLite caches every prepared statement.)
 *
 * Each name lives on every pooled connection until it closes, so only statements that recur
 * are marked, and their number is capped.
 */
const names = new Map<string, string>();

/** How many distinct texts may be kept prepared: bounds each connection's plan cache. */
const MAX_PREPARED = 128;

/**
 * Marks `sql` to be kept prepared, unless the cap is reached; returns `sql`. Only for texts
 * whose result columns never change: a prepared `SELECT *` fails once a migration adds a column.
 */
export function keepPrepared(sql: string): string {
  if (!names.has(sql) && names.size < MAX_PREPARED) names.set(sql, `ns_${names.size + 1}`);
  return sql;
}

/** The statement name `sql` is kept prepared under, if it is. */
export function preparedName(sql: string): string | undefined {
  return names.get(sql);
}
