import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type pg from 'pg';
import type { from as copyFrom } from 'pg-copy-streams';
import { UsageError } from '../core/errors.ts';

// The database drivers load on first use, synchronously (both are CommonJS): a process that only
// uses SQLite never loads pg, one that only uses PostgreSQL never loads better-sqlite3, and
// `nightshift --version` loads neither.
const require = createRequire(import.meta.url);
let pgModule: typeof pg | undefined;
let sqliteModule: typeof BetterSqlite3 | undefined;
let copyFromFn: typeof copyFrom | undefined;

/** The pg module. */
export const loadPg = (): typeof pg => (pgModule ??= require('pg') as typeof pg);

/** pg-copy-streams' COPY FROM STDIN. */
export const loadCopyFrom = (): typeof copyFrom => (copyFromFn ??= (require('pg-copy-streams') as { from: typeof copyFrom }).from);

/**
 * The better-sqlite3 module. It is an optional dependency, so that an application on PostgreSQL
 * installs where its native part has no prebuilt binary and cannot be compiled: without it, a
 * SQLite repository is refused with what to do.
 */
export const loadBetterSqlite3 = (): typeof BetterSqlite3 => {
  try {
    return (sqliteModule ??= require('better-sqlite3') as typeof BetterSqlite3);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND' || !/'better-sqlite3'/.test((err as Error).message)) throw err;
    throw new UsageError(
      'a SQLite repository needs the better-sqlite3 package, which is not installed (an optional dependency of nightshift, ' +
        'left out where its native part has no prebuilt binary and cannot be compiled): npm install better-sqlite3, or use a postgres:// URL',
    );
  }
};

/**
 * The error of better-sqlite3's native part failing to load (built for another Node, or for
 * another platform), as one line that says what to do; undefined for any other error.
 */
export function sqliteBindingError(err: unknown): UsageError | undefined {
  const message = err instanceof Error ? err.message : '';
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'ERR_DLOPEN_FAILED' && !/bindings file|NODE_MODULE_VERSION|better_sqlite3\.node/.test(message)) return undefined;
  const first = message.split('\n')[0].trim();
  return new UsageError(
    `the better-sqlite3 package is installed but its native part does not load on Node ${process.version} (${first}): npm rebuild better-sqlite3 ` +
      '(where npm runs only the install scripts a project allows: npm install-scripts approve better-sqlite3 first)',
  );
}
