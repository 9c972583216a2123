import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { errorMessage, RepositoryMissingError, UsageError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { redactUrls } from '../core/redact.ts';
import type { Database, PgOptions } from './database.ts';
import { openPostgres, parsePgUrl } from './postgres.ts';
import { compatibleFrom, migrations, SCHEMA_VERSION } from './schema.ts';
import { SQL } from './sql.ts';
import { openSqlite } from './sqlite.ts';

/** The default repository: an SQLite file in the working directory. */
export const DEFAULT_DB_URL = 'sqlite:nightshift.db';

const PG_NOW = `CREATE OR REPLACE FUNCTION ns_now() RETURNS BIGINT LANGUAGE sql VOLATILE AS
  $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT $$`;

/** Fails the statement (and so its transaction) that finds this node no longer owns an execution. */
export const FENCE_LOST_SQLSTATE = 'NS001';
const PG_FENCE_LOST = `CREATE OR REPLACE FUNCTION ns_fence_lost() RETURNS TEXT LANGUAGE plpgsql VOLATILE AS
  $$ BEGIN RAISE EXCEPTION 'this node no longer owns the execution' USING ERRCODE = '${FENCE_LOST_SQLSTATE}'; END $$`;

/**
 * Opens the job repository's database from a URL (`sqlite:PATH` or `postgres://...`, optionally
 * with `?schema=NAME`) and brings its schema up to date.
 */
export async function openDatabase(url: string = DEFAULT_DB_URL, options: OpenOptions = {}): Promise<Database> {
  const db = open(url, options);
  try {
    await migrate(db, url, options.logger);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  return db;
}

/**
 * Creates the job repository or brings its schema up to this Nightshift's version (as the first
 * process to open it would), then closes it: what `nightshift migrate` runs at deploy time with
 * the role that owns the schema. Returns the version found (0: none) and the version now.
 */
export async function migrateDatabase(url: string = DEFAULT_DB_URL, options: OpenOptions = {}): Promise<SchemaMigration> {
  const db = open(url, { ...options, poolSize: 1 });
  try {
    return await migrate(db, url, options.logger);
  } finally {
    await db.close();
  }
}

/** The file of an SQLite URL (`sqlite:PATH`, `sqlite:///abs/path`); undefined for another URL. */
function sqlitePath(url: string): string | undefined {
  if (!url.startsWith('sqlite:')) return undefined;
  const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
  if (!path) throw new UsageError(`invalid database URL ${JSON.stringify(url)}: expected sqlite:PATH`);
  return path;
}

/**
 * Refuses an SQLite repository whose file does not exist, for commands that only read or act on
 * what is already there: opening would create the file (and its folders), so a mistyped path
 * would show an empty repository instead of an error. A PostgreSQL URL passes (see
 * {@link openExistingDatabase}, which checks its schema). The error names the file
 * only: how to name another one is the caller's to say (the CLI's --db).
 */
export function assertRepositoryExists(url: string = DEFAULT_DB_URL): void {
  const path = sqlitePath(url);
  if (path === undefined || path === ':memory:') return;
  if (!existsSync(resolve(path))) throw new RepositoryMissingError(resolve(path));
}

/**
 * Opens a job repository that must already exist, for commands that only read or act on what
 * is already there, and brings its schema up to date as {@link openDatabase} does: an SQLite
 * file must exist (see {@link assertRepositoryExists}), and a PostgreSQL schema (`?schema=`,
 * else the connection's current schema) must have Nightshift's tables, which opening would
 * create, so that a mistyped `?schema=` shows an error instead of an empty repository. The check
 * runs on the pool that is then migrated and returned, before anything is created: no second
 * connection. A repository of an older version passes (and is migrated).
 */
export async function openExistingDatabase(url: string = DEFAULT_DB_URL, options: OpenOptions = {}): Promise<Database> {
  assertRepositoryExists(url);
  const db = open(url, options);
  try {
    if (db.dialect === 'postgres') await assertSchemaPresent(db, url);
    await migrate(db, url, options.logger);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  return db;
}

/** Refuses a PostgreSQL schema without Nightshift's tables (see openExistingDatabase). */
async function assertSchemaPresent(db: Database, url: string): Promise<void> {
  const { schema } = parsePgUrl(url);
  const [row] = await db.query<{ name: string | null; schema_exists: boolean; present: boolean }>(SQL.repositoryPresent, [schema ?? null]);
  if (row.present) return;
  const where = redactUrls(url);
  const why = row.name === null ? 'no schema of its search_path exists'
    : !row.schema_exists ? `schema ${row.name} does not exist` : `schema ${row.name} has no Nightshift tables`;
  throw new RepositoryMissingError(where, `no job repository at ${where} (PostgreSQL): ${why}`);
}

/** The database of a URL, not migrated (a PostgreSQL pool connects on its first statement). */
function open(url: string, options: PgOptions): Database {
  const path = sqlitePath(url);
  if (path !== undefined) return openSqlite(path);
  if (/^postgres(ql)?:\/\//.test(url)) return openPostgres(url, options);
  // A bare file name (`--db nightshift.db`) is the likeliest slip: name the URL it meant.
  const bare = !url.trim() || /^[a-z][a-z0-9+.-]*:/i.test(url) ? '' : ` (for an SQLite file: sqlite:${redactUrls(url)})`;
  throw new UsageError(`invalid database URL ${JSON.stringify(redactUrls(url))}: expected sqlite:PATH or postgres://USER@HOST:PORT/DB${bare}`);
}

/**
 * Opens the job repository's database without connecting yet: the schema is brought up to date
 * by the first statement, and again by the next one while the database cannot be reached. For a
 * server that must start (and answer 503) while its database is down. A malformed URL still
 * fails at once.
 */
export function openDatabaseWhenReachable(url: string = DEFAULT_DB_URL, options: OpenOptions = {}): Database {
  const db = open(url, options);
  let ready: Promise<SchemaMigration> | undefined;
  const migrated = () =>
    (ready ??= migrate(db, url, options.logger).catch((err: unknown) => {
      ready = undefined;
      throw err;
    }));
  return {
    dialect: db.dialect,
    url: db.url,
    connectUrl: db.connectUrl,
    query: async (sql, params) => (await migrated(), db.query(sql, params)),
    execute: async (sql, params) => (await migrated(), db.execute(sql, params)),
    exec: async (sql) => (await migrated(), db.exec(sql)),
    transaction: async (fn) => (await migrated(), db.transaction(fn)),
    transactionEndingWith: async (fn) => (await migrated(), db.transactionEndingWith(fn)),
    close: () => db.close(),
  };
}

/** What opening did to the repository's schema: the version it found (0: none) and the one it is at now. */
export interface SchemaMigration {
  readonly from: number;
  readonly to: number;
  /**
   * The oldest schema version whose processes can run on the repository as it is now: below
   * `to` when processes of older versions may keep running on it (a rolling upgrade).
   */
  readonly compatibleFrom: number;
}

/** How {@link openDatabase} opens a repository: PostgreSQL's pool options, and where a migration is logged. */
export interface OpenOptions extends PgOptions {
  /**
   * Gets one info line when opening migrates the schema (from and to versions), or finds it at
   * a newer version that this Nightshift can run on.
   */
  readonly logger?: Pick<Logger, 'info'> | undefined;
}

/**
 * Brings the repository's schema up to this Nightshift's version. A PostgreSQL schema already at
 * this version is only read: no DDL, no lock, so a role with only the runtime privileges (see
 * the README's "Database roles and privileges") can open it. Otherwise the schema is created or
 * migrated under an advisory lock, the version read again under it (another process may have
 * migrated meanwhile). A schema of a newer version is left as it is: this Nightshift runs on it
 * when the newer one says it can (see compatibleFrom), and refuses it otherwise.
 */
async function migrate(db: Database, url: string, logger?: Pick<Logger, 'info'>): Promise<SchemaMigration> {
  let found: SchemaMeta | undefined;
  if (db.dialect === 'postgres') {
    found = await readMeta(db);
    if (found !== undefined && found.version >= SCHEMA_VERSION) return unchanged(db, found, logger);
  }
  let done: SchemaMigration;
  try {
    done = await migrateLocked(db, url, found !== undefined, logger);
  } catch (err) {
    if (db.dialect === 'postgres' && (err as { code?: string }).code === INSUFFICIENT_PRIVILEGE) throw await mayNotMigrate(db, found?.version, err);
    throw err;
  }
  if (done.from !== done.to) {
    const msg = done.from === 0 ? `job repository schema created at version ${done.to}` : `job repository schema migrated from version ${done.from} to ${done.to}`;
    logger?.info({ from: done.from, to: done.to }, msg);
  }
  return done;
}

/** A repository's schema version (0: none), and the oldest version that can run on it. */
interface SchemaMeta {
  version: number;
  compatibleFrom: number;
}

/** ns_meta's rows; a schema of before version 18 did not say what can run on it: only its own version. */
function metaOf(rows: readonly { key: string; value: string }[]): SchemaMeta {
  const value = (key: string) => Number(rows.find((r) => r.key === key)?.value ?? 0);
  const version = value('schema_version');
  return { version, compatibleFrom: value('compatible_from') || version };
}

/**
 * A repository at this version or a newer one, left as it is: at a newer one, this Nightshift
 * runs only if that version says processes of this one can (and says so in the log).
 */
function unchanged(db: Database, found: SchemaMeta, logger: Pick<Logger, 'info'> | undefined): SchemaMigration {
  if (found.version > SCHEMA_VERSION) {
    if (found.compatibleFrom > SCHEMA_VERSION) {
      const from = found.compatibleFrom === found.version ? '' : ` (processes of schema version ${found.compatibleFrom} or later can run on it)`;
      throw new UsageError(`the job repository ${db.url} has schema version ${found.version}, newer than this Nightshift (${SCHEMA_VERSION})${from}: upgrade Nightshift`);
    }
    logger?.info(
      { version: found.version, compatibleFrom: found.compatibleFrom, thisVersion: SCHEMA_VERSION },
      `job repository schema version ${found.version} is newer than this Nightshift (${SCHEMA_VERSION}), which can run on it (processes of schema version ${found.compatibleFrom} or later can): upgrade Nightshift when you can`,
    );
  }
  return { from: found.version, to: found.version, compatibleFrom: found.compatibleFrom };
}

/** PostgreSQL's insufficient_privilege: the role may not create or change the schema. */
const INSUFFICIENT_PRIVILEGE = '42501';

/**
 * The schema version of a PostgreSQL repository, read without creating anything (the first
 * schema of the search_path, which `?schema=` sets): version 0 without a version row; undefined
 * when ns_meta is not there or this role may not see or read it.
 */
async function readMeta(db: Database): Promise<SchemaMeta | undefined> {
  const [meta] = await db.query<{ present: boolean; readable: boolean }>(SQL.schemaMetaPresent);
  if (!meta.present || !meta.readable) return undefined;
  return metaOf(await db.query<{ key: string; value: string }>(SQL.schemaVersion));
}

/**
 * The error for a role that may not create or migrate the schema (a runtime role after an
 * upgrade, or before the owner created the repository): what to run, rather than the server's
 * bare "permission denied".
 */
async function mayNotMigrate(db: Database, found: number | undefined, err: unknown): Promise<UsageError> {
  const role = await db.query<{ role: string }>(SQL.currentRole).then(([r]) => r.role, () => 'this role');
  const denied = errorMessage(err);
  const fix = `run \`nightshift migrate\` with the role that owns the schema (it needs version ${SCHEMA_VERSION}), then start this again`;
  return new UsageError(found === undefined || found === 0
    ? `no Nightshift schema that role ${role} can read at ${db.url}, and it may not create one (${denied}): ${fix}; if the schema exists, grant ${role} the runtime privileges (README: Database roles and privileges)`
    : `the job repository ${db.url} has schema version ${found}, older than this Nightshift (${SCHEMA_VERSION}), and role ${role} may not migrate it (${denied}): ${fix}`,
  { cause: err });
}

/** Creates or migrates the schema under the advisory lock; `schemaFound`: ns_meta is there, so its schema is too (not created again). */
async function migrateLocked(db: Database, url: string, schemaFound: boolean, logger: Pick<Logger, 'info'> | undefined): Promise<SchemaMigration> {
  if (db.dialect === 'postgres' && !schemaFound) {
    const { schema } = parsePgUrl(url);
    if (schema) {
      try {
        await db.exec(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      } catch (err) {
        // Two processes creating the schema at once: one loses the race, which is fine.
        if ((err as { code?: string }).code !== '23505') throw err;
      }
    }
  }
  const steps = migrations(db.dialect);
  const done = await db.transaction(async (tx): Promise<SchemaMigration> => {
    if (db.dialect === 'postgres') {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.nightshift-migrate'))`);
    }
    await tx.exec(`CREATE TABLE IF NOT EXISTS ns_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    const found = metaOf(await tx.query<{ key: string; value: string }>(SQL.schemaVersion));
    if (found.version >= SCHEMA_VERSION) return unchanged(db, found, logger);
    // Replaced with each migration only: replacing a function needs its ownership.
    if (db.dialect === 'postgres') await tx.exec(`${PG_NOW}; ${PG_FENCE_LOST}`);
    for (let v = found.version; v < SCHEMA_VERSION; v++) {
      for (const statement of steps[v]) await tx.exec(statement);
    }
    const migrated = { from: found.version, to: SCHEMA_VERSION, compatibleFrom: compatibleFrom() };
    for (const [key, value] of [['schema_version', migrated.to], ['compatible_from', migrated.compatibleFrom]] as const) {
      await tx.execute(`INSERT INTO ns_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [key, String(value)]);
    }
    return migrated;
  });
  // PostgreSQL keeps a transaction's connection for the next one until the event loop turns; a
  // statement right after opening would meanwhile open a second connection. Let it go back first.
  if (db.dialect === 'postgres') await new Promise((resolveTurn) => setImmediate(resolveTurn));
  return done;
}
