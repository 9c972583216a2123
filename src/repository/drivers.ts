import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type pg from 'pg';
import type { from as copyFrom } from 'pg-copy-streams';

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

/** The better-sqlite3 module. */
export const loadBetterSqlite3 = (): typeof BetterSqlite3 => (sqliteModule ??= require('better-sqlite3') as typeof BetterSqlite3);
