import type pg from 'pg';
import { loadPg } from './drivers.ts';
import { redactUrls } from '../core/redact.ts';
import { UsageError } from '../core/errors.ts';
import { connectionErrorText, DatabaseUnreachableError, isCapacityError, isConnectionError, isDnsFailure, retrying } from './connection-errors.ts';
import { preparedName } from './prepared.ts';
import type { Database, PgOptions } from './database.ts';
import type { DriverClient } from './driver-client.ts';
import type { Statement, Tx } from './tx.ts';

// BIGINT columns hold epoch milliseconds and ids, all far below 2^53.
export const types = {
  getTypeParser(oid: number, format?: string) {
    if (oid === 20) return (v: string) => Number(v);
    return loadPg().types.getTypeParser(oid, format as 'text');
  },
};

export interface PgTarget {
  /** The connection string handed to pg (without our own `schema` parameter). */
  connectionString: string;
  /** The schema the repository lives in (default: public). */
  schema: string | undefined;
  /**
   * Whether recurring statements are kept prepared on each connection (see prepared.ts). Off
   * with `?prepare=false`, for poolers that hand one session's statements to another
   * connection (PgBouncer in transaction mode).
   */
  prepare: boolean;
  /**
   * The `application_name` of this process's sessions (`?application_name=` in the URL, default
   * `nightshift`); each kind of connection adds its own suffix (see {@link pgClientConfig}).
   */
  appName: string;
  /** `?connect_retry_ms=`: see PgOptions.connectRetryMs. */
  connectRetryMs: number | undefined;
  /**
   * The URL's own `?options=` (server settings, `-c name=value ...`): given with Nightshift's,
   * which come after it, because the driver would otherwise take the URL's instead of them.
   */
  serverOptions: string | undefined;
  display: string;
}

/** The kinds of connection Nightshift opens besides its pool, as named in `pg_stat_activity`. */
export type ConnectionKind = 'heartbeat' | 'listen' | 'cursor';

/** The URL parameters Nightshift reads itself. */
const OWN_URL_PARAMS = ['schema', 'prepare', 'connect_retry_ms', 'application_name'];

/**
 * The URL parameters left to the driver: those node-postgres reads, and libpq's connection
 * keywords (which node-postgres ignores, but a URL shared with psql may carry).
 */
const DRIVER_URL_PARAMS = new Set([
  // node-postgres (pg-connection-string and pg's connection parameters)
  'host', 'port', 'user', 'password', 'db', 'encoding', 'ssl', 'sslmode', 'sslcert', 'sslkey', 'sslrootcert', 'sslnegotiation',
  'uselibpqcompat', 'binary', 'client_encoding', 'options', 'fallback_application_name', 'replication', 'statement_timeout',
  'lock_timeout', 'idle_in_transaction_session_timeout', 'query_timeout',
  // libpq
  'hostaddr', 'dbname', 'passfile', 'require_auth', 'channel_binding', 'connect_timeout', 'keepalives', 'keepalives_idle',
  'keepalives_interval', 'keepalives_count', 'tcp_user_timeout', 'gssencmode', 'requiressl', 'sslcompression', 'sslkeylogfile',
  'sslpassword', 'sslcertmode', 'sslcrl', 'sslcrldir', 'sslsni', 'requirepeer', 'ssl_min_protocol_version', 'ssl_max_protocol_version',
  'min_protocol_version', 'max_protocol_version', 'krbsrvname', 'gsslib', 'gssdelegation', 'service', 'target_session_attrs',
  'load_balance_hosts',
]);

/**
 * Refuses a URL parameter that neither Nightshift nor the driver knows: the driver would ignore
 * it, so a misspelt `?shema=batch` (or JDBC's `?currentSchema=batch`) would put the repository's
 * tables in the default schema without a word.
 */
function checkUrlParams(params: URLSearchParams): void {
  for (const key of new Set(params.keys())) {
    if (OWN_URL_PARAMS.includes(key) || DRIVER_URL_PARAMS.has(key)) continue;
    const safeKey = JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}...` : key);
    const hint = /sc?hem|search_path/i.test(key) ? ' (the repository\'s schema is ?schema=NAME)' : '';
    throw new UsageError(
      `invalid database URL: unknown parameter ${safeKey}${hint}; Nightshift reads ${OWN_URL_PARAMS.join(', ')}, and the driver the PostgreSQL connection parameters (sslmode, options, ...)`,
    );
  }
}

/** Splits our `?schema=` parameter off a postgres:// URL. */
export function parsePgUrl(url: string): PgTarget {
  // A second @ means an @ not percent-encoded in the user name or password: the parser would
  // take the password's tail for the host, and print it in every message.
  if ((url.split('?')[0].match(/@/g) ?? []).length > 1) {
    throw new UsageError(`invalid database URL ${JSON.stringify(redactUrls(url))}: more than one @ (write an @ in the user name or password as %40)`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`invalid database URL ${JSON.stringify(redactUrls(url))}: expected sqlite:PATH or postgres://USER@HOST:PORT/DB`);
  }
  if (!parsed.hostname && !parsed.searchParams.get('host')) {
    throw new UsageError(`invalid database URL ${JSON.stringify(redactUrls(url))}: no host (expected postgres://USER@HOST:PORT/DB)`);
  }
  // Without one, the driver would pick a database by itself (the user's, often "postgres") and
  // Nightshift would create its tables there.
  if (parsed.pathname === '' || parsed.pathname === '/') {
    throw new UsageError(`invalid database URL ${JSON.stringify(redactUrls(url))}: no database name (expected postgres://USER@HOST:PORT/DB)`);
  }
  checkUrlParams(parsed.searchParams);
  const schema = parsed.searchParams.get('schema') ?? undefined;
  if (schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new UsageError(`invalid database URL: schema ${JSON.stringify(schema)} is not a plain identifier`);
  }
  const prepare = parsed.searchParams.get('prepare') ?? 'true';
  if (prepare !== 'true' && prepare !== 'false') {
    throw new UsageError(`invalid database URL: prepare=${JSON.stringify(prepare)} must be true or false`);
  }
  const appName = parsed.searchParams.get('application_name') || 'nightshift';
  const retry = parsed.searchParams.get('connect_retry_ms');
  if (retry !== null && !/^\d{1,9}$/.test(retry)) {
    throw new UsageError(`invalid database URL: connect_retry_ms=${JSON.stringify(retry)} must be a whole number of milliseconds`);
  }
  const serverOptions = parsed.searchParams.get('options') || undefined;
  parsed.searchParams.delete('options');
  parsed.searchParams.delete('connect_retry_ms');
  parsed.searchParams.delete('schema');
  parsed.searchParams.delete('prepare');
  parsed.searchParams.delete('application_name');
  const display = `${parsed.protocol}//${parsed.username ? parsed.username + '@' : ''}${parsed.host}${parsed.pathname}${schema ? `?schema=${schema}` : ''}`;
  return { connectionString: parsed.toString(), schema, prepare: prepare === 'true', appName, connectRetryMs: retry === null ? undefined : Number(retry), serverOptions, display };
}

/**
 * Client options for a connection to this target: the pool's, or a dedicated connection of one
 * `kind`, named `APP-KIND` in `pg_stat_activity` so that operators (and tests) can tell them apart.
 */
export function pgClientConfig(target: PgTarget, settings: Record<string, string | number> = {}, kind?: ConnectionKind): pg.ClientConfig {
  const all = { ...(target.schema ? { search_path: target.schema } : {}), ...settings };
  // Nightshift's last: for a setting given twice, the server keeps the last (the schema's search_path wins).
  const options = [target.serverOptions, ...Object.entries(all).map(([k, v]) => `-c ${k}=${v}`)].filter(Boolean).join(' ');
  return {
    connectionString: target.connectionString,
    types,
    options: options || undefined,
    application_name: (kind ? `${target.appName}-${kind}` : target.appName).slice(0, 63),
  };
}

type PgClient = pg.PoolClient | pg.Client;

/**
 * How long a statement waits for a connection while the server turns connections away (too many
 * clients, starting up, shutting down) or, once it was reached, is unreachable.
 */
export const DEFAULT_CONNECT_RETRY_MS = 30_000;

// The kept-prepared statements each connection has parsed.
const parsedOn = new WeakMap<PgClient, Set<string>>();

// Connections of databases opened with ?prepare=false: they run every statement unnamed.
const unprepared = new WeakSet<PgClient>();

/** Runs one statement, as a named (kept prepared) statement when it is marked so. */
async function run(client: PgClient, sql: string, params?: readonly unknown[]): Promise<pg.QueryResult> {
  const name = unprepared.has(client) ? undefined : preparedName(sql);
  if (!name) return client.query(sql, params as unknown[]);
  const result = await client.query({ name, text: sql, values: params as unknown[] });
  let parsed = parsedOn.get(client);
  if (!parsed) parsedOn.set(client, (parsed = new Set()));
  parsed.add(name);
  return result;
}

/**
 * Runs a transaction's last statement and then `commit` (COMMIT, or COMMIT and the next BEGIN).
 * Once the statement is parsed on this connection, both go in one round trip, as one simple
 * query `EXECUTE name(...); COMMIT` with the parameters as literals; a failing statement skips
 * the COMMIT, and the caller rolls back.
 */
async function runThenCommit(client: PgClient, sql: string, params: readonly unknown[], commit: string): Promise<pg.QueryResult> {
  const name = preparedName(sql);
  const literals = name && parsedOn.get(client)?.has(name) ? asLiterals(params) : undefined;
  if (literals === undefined) {
    const result = await run(client, sql, params);
    await client.query(commit);
    return result;
  }
  // A statement without parameters is executed without parentheses: `EXECUTE name()` is a syntax error.
  const call = params.length ? `EXECUTE ${name}(${literals})` : `EXECUTE ${name}`;
  const [result] = (await client.query(`${call}; ${commit}`)) as unknown as pg.QueryResult[];
  return result;
}

/** The parameters as SQL literals, or undefined if one is not a safe integer, string or null. */
function asLiterals(params: readonly unknown[]): string | undefined {
  const out: string[] = [];
  for (const v of params) {
    if (typeof v === 'string') out.push(loadPg().escapeLiteral(v));
    else if (typeof v === 'number' && Number.isSafeInteger(v)) out.push(String(v));
    else if (v === null || v === undefined) out.push('NULL');
    else return undefined;
  }
  return out.join(',');
}

/**
 * Connects a dedicated connection of one `kind` (a cursor's), retrying the server's capacity
 * errors like the pool does. `onError` hears the session's 'error' events (a terminated
 * backend): without a listener they would crash the process.
 */
export async function connectDedicated(url: string, kind: ConnectionKind, onError: (err: Error) => void): Promise<pg.Client> {
  const target = parsePgUrl(url);
  const forMs = target.connectRetryMs ?? DEFAULT_CONNECT_RETRY_MS;
  return retrying(
    async () => {
      const client = new (loadPg().Client)(pgClientConfig(target, {}, kind));
      client.on('error', onError);
      try {
        await client.connect();
        return client;
      } catch (err) {
        await client.end().catch(() => undefined);
        throw err;
      }
    },
    { forMs, transient: isCapacityError, giveUp: (err, waited) => cannotConnect(target.display, err, isCapacityError(err) && forMs > 0 ? waited : undefined) },
  );
}

/**
 * `cannot connect to <url>: <cause>`, saying how long it was retried when it was. The URL is
 * shown without its password, and so is any URL the driver's words hold.
 */
function cannotConnect(display: string, err: unknown, retriedMs: number | undefined): DatabaseUnreachableError {
  const after = retriedMs === undefined ? '' : ` (still failing after ${(retriedMs / 1000).toFixed(1)} s of retries)`;
  return new DatabaseUnreachableError(`cannot connect to ${display}: ${redactUrls(connectionErrorText(err))}${after}`, { cause: err });
}

export function wrapPgClient(client: PgClient): DriverClient {
  return {
    dialect: 'postgres',
    pg: client,
    async query<R>(sql: string, params?: readonly unknown[]): Promise<R[]> {
      return (await run(client, sql, params)).rows as R[];
    },
    async execute(sql: string, params?: readonly unknown[]): Promise<number> {
      return (await run(client, sql, params)).rowCount ?? 0;
    },
    async exec(sql: string): Promise<void> {
      await client.query(sql);
    },
  };
}

export function openPostgres(url: string, options: PgOptions = {}): Database {
  const target = parsePgUrl(url);
  const settings: Record<string, number> = options.idleInTransactionMs ? { idle_in_transaction_session_timeout: options.idleInTransactionMs } : {};
  const pool = new (loadPg().Pool)({ ...pgClientConfig(target, settings), max: options.poolSize ?? 10, idleTimeoutMillis: options.idleTimeoutMs ?? 10_000 });
  // An idle client that errors (e.g. the server restarted) is dropped; the next query reconnects.
  pool.on('error', () => undefined);
  // pg-pool listens for errors only on idle clients: a session the server ends while checked out
  // (a restart, an idle-in-transaction timeout) would be an uncaught 'error' event. The query
  // that was running rejects with the same error, and the broken client is discarded on release.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    if (!target.prepare) unprepared.add(client);
  });

  // The connection the last transaction ended on, kept for the next one (see keepForNext).
  let kept: Kept | undefined;
  // Chunk transactions here follow one another at once: each COMMIT also begins the next.
  let backToBack = false;
  // Whether this pool ever connected: until then a refused connection is more likely a wrong
  // URL than an outage, and fails at once, unless the URL gives connect_retry_ms: then it is
  // waited for from the start (a node started with its database, as containers often are). The
  // server's capacity errors are retried regardless.
  let reached = false;
  const waitFromStart = target.connectRetryMs !== undefined;
  const retryFor = options.connectRetryMs ?? target.connectRetryMs ?? DEFAULT_CONNECT_RETRY_MS;
  // A host name that does not resolve is waited for like a refused connection (see isDnsFailure).
  const transient = (err: unknown): boolean => isCapacityError(err) || ((reached || waitFromStart) && (isConnectionError(err) || isDnsFailure(err)));
  const connect = (): Promise<pg.PoolClient> =>
    retrying(
      async () => {
        const client = await pool.connect();
        reached = true;
        return client;
      },
      { forMs: retryFor, transient, giveUp: (err, waited) => cannotConnect(target.display, err, transient(err) && retryFor > 0 ? waited : undefined) },
    );

  return {
    dialect: 'postgres',
    url: target.display,
    connectUrl: url,
    schema: target.schema,
    async query<R>(sql: string, params?: readonly unknown[]): Promise<R[]> {
      const client = await connect();
      try {
        return (await run(client, sql, params)).rows as R[];
      } finally {
        client.release();
      }
    },
    async execute(sql: string, params?: readonly unknown[]): Promise<number> {
      const client = await connect();
      try {
        return (await run(client, sql, params)).rowCount ?? 0;
      } finally {
        client.release();
      }
    },
    async exec(sql: string): Promise<void> {
      const client = await connect();
      try {
        await client.query(sql);
      } finally {
        client.release();
      }
    },
    transaction: <T>(fn: (tx: Tx) => Promise<T>) =>
      inTransaction(false, async (client, commit) => {
        const result = await fn(wrapPgClient(client));
        await client.query(commit);
        return result;
      }),
    transactionEndingWith: <T, R>(fn: (tx: Tx) => Promise<{ value: T; last: Statement }>) =>
      inTransaction(true, async (client, commit) => {
        const { value, last } = await fn(wrapPgClient(client));
        return { value, rows: (await runThenCommit(client, last.sql, last.params, commit)).rows as R[] };
      }),
    async close() {
      const last = kept;
      kept = undefined;
      if (last) await retire(last);
      await pool.end();
    },
  };

  /**
   * Keeps a transaction's connection until the event loop turns: a chunk loop begins its next
   * transaction within the same turn, and going through the pool in between cost about 100 µs
   * of this thread's time per chunk. While chunks follow one another like that, each chunk's
   * COMMIT also sends the next BEGIN, which saves a round trip. Unclaimed by the next turn, the
   * connection goes back to the pool, its begun transaction rolled back.
   */
  function keepForNext(client: pg.PoolClient, begun: boolean) {
    if (kept) void retire(kept);
    const mine: Kept = { client, begun, since: performance.now() };
    kept = mine;
    setImmediate(() => {
      if (kept !== mine) return;
      kept = undefined;
      backToBack = false;
      void retire(mine);
    });
  }

  async function retire({ client, begun }: Kept): Promise<void> {
    if (!begun) return client.release();
    try {
      await client.query('ROLLBACK');
      client.release();
    } catch (err) {
      client.release(err as Error);
    }
  }

  /**
   * BEGIN (unless the connection comes with it begun), then `body`, which ends with `commit`;
   * rolls back if anything fails. `preBegin`: the body is a chunk's, and may begin the next.
   */
  async function inTransaction<T>(preBegin: boolean, body: (client: pg.PoolClient, commit: string) => Promise<T>): Promise<T> {
    const claimed = kept;
    kept = undefined;
    // A pause of this thread between two chunks (a CPU-heavy chunk) leaves a begun transaction
    // idle: begin ahead only while chunks follow one another quickly.
    if (claimed) backToBack = performance.now() - claimed.since < PRE_BEGIN_WITHIN_MS;
    const client = claimed?.client ?? (await connect());
    const beginNext = preBegin && backToBack;
    let broken: Error | undefined;
    let begun = false;
    try {
      if (!claimed?.begun) await client.query('BEGIN');
      const result = await body(client, beginNext ? 'COMMIT; BEGIN' : 'COMMIT');
      begun = beginNext;
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        broken = rollbackErr as Error;
      }
      throw err;
    } finally {
      if (broken) client.release(broken);
      else keepForNext(client, begun);
    }
  }
}

/** A connection kept for the next transaction; `begun`: that transaction has begun on it. */
interface Kept {
  client: pg.PoolClient;
  begun: boolean;
  since: number;
}

// The longest gap between one chunk's COMMIT and the next chunk's transaction that still lets the
// COMMIT begin the next one: far below any idle-in-transaction limit (at least 1 s, see idleLimit).
const PRE_BEGIN_WITHIN_MS = 50;
