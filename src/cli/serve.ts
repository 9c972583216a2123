/**
 * `nightshift serve`: the REST API, the web console and Prometheus metrics until SIGTERM/SIGINT
 * (see the README's HTTP API section). Everything is checked before the database is opened: the port, the
 * tokens (from env NIGHTSHIFT_API_TOKENS and --tokens-file), and that `--insecure-no-auth`
 * serves on a loopback address only. Bad input is a UsageError: one line, exit 2. A database
 * that cannot be reached is not bad input: the server starts and answers 503 until it can.
 */
import { statSync } from 'node:fs';
import { UsageError, errorMessage } from '../core/errors.ts';
import { createLogger } from '../core/logger.ts';
import { positiveInt } from '../core/params.ts';
import { createNightshift } from '../operator.ts';
import { isConnectionError } from '../repository/connection-errors.ts';
import { openDatabaseWhenReachable } from '../repository/open.ts';
import { SQL } from '../repository/sql.ts';
import { describeError } from '../server/errors.ts';
import { createHttpApi } from '../server/http-api.ts';
import { isWildcardHost } from '../server/guard.ts';
import { LOOPBACK_PROXIES } from '../server/proxies.ts';
import { loadTokens, TOKENS_ENV } from '../server/tokens.ts';
import { loadConfigIfAny } from './config.ts';
import { PARENT_ENDED, whenParentEnds } from './parent.ts';
import { dbFlagWarning } from './db-flag.ts';

/** The serve command's options, as given. */
export interface ServeCommandOptions {
  /** The job repository's URL. */
  db: string;
  /** The `--db` flag as given, if it was (its password, if any, shows in the process list: see dbFlagWarning). */
  dbFlag?: string;
  config?: string;
  port: string;
  host: string;
  insecureNoAuth?: boolean;
  tokensFile?: string;
  allowedHosts?: string;
  requestTimeout: string;
  /** Bare (true): a proxy on this machine; else its addresses and subnets, comma-separated. */
  trustProxy?: boolean | string;
}

/** The environment variable of extra allowed Host names (comma-separated, like --allowed-hosts). */
export const ALLOWED_HOSTS_ENV = 'NIGHTSHIFT_ALLOWED_HOSTS';

/** Whether an address is this machine's loopback (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(h);
}

/**
 * The proxies whose X-Forwarded-For `serve` believes. Bare, `--trust-proxy` is for a proxy on
 * this machine, so it needs a loopback `--host`: elsewhere a client that reaches the port
 * directly would write its own X-Forwarded-For, and choose its address (a new one per guess past
 * the guess limit, any one in the audit log), unless the proxy's addresses are named.
 */
function trustedProxies(o: ServeCommandOptions): readonly string[] | undefined {
  if (typeof o.trustProxy === 'string') return o.trustProxy.split(',').map((a) => a.trim()).filter(Boolean);
  if (!o.trustProxy) return undefined;
  if (!isLoopback(o.host)) {
    throw new UsageError(
      `--trust-proxy on ${o.host} needs the proxy's addresses (--trust-proxy 10.0.0.7, or a subnet: 10.0.0.0/8): ` +
        'a client that reaches this port past the proxy could otherwise write its own X-Forwarded-For',
    );
  }
  return LOOPBACK_PROXIES;
}

/** Runs `serve` until a signal; returns the exit code. */
export async function serveCommand(o: ServeCommandOptions, out: (line: string) => void): Promise<number> {
  const port = o.port === '0' ? 0 : positiveInt('--port', o.port, 65535);
  const requestTimeoutMs = positiveInt('--request-timeout', o.requestTimeout);
  const tokens = loadTokens({ env: process.env[TOKENS_ENV], file: o.tokensFile });
  if (o.insecureNoAuth) {
    if (tokens.length) {
      throw new UsageError(`--insecure-no-auth serves without tokens, but tokens are configured (${TOKENS_ENV} or --tokens-file): give one or the other`);
    }
    if (!isLoopback(o.host)) {
      throw new UsageError(`--insecure-no-auth serves on a loopback address only (127.0.0.1, ::1 or localhost), not ${o.host}`);
    }
  } else if (!tokens.length) {
    throw new UsageError(
      `no API token is configured: set ${TOKENS_ENV}=NAME:ROLE:SECRET (ROLE viewer or operator) or give --tokens-file FILE, ` +
        'or serve without authentication on this machine only with --insecure-no-auth',
    );
  }
  const trustProxy = trustedProxies(o);
  const allowedHosts = [o.allowedHosts, process.env[ALLOWED_HOSTS_ENV]].flatMap((list) => (list ? list.split(',') : [])).map((h) => h.trim()).filter(Boolean);
  const log = createLogger();
  if (o.tokensFile && (statSync(o.tokensFile).mode & 0o077) !== 0) {
    log.warn({ file: o.tokensFile }, 'the tokens file can be read by other users of this machine: chmod 600 it');
  }
  // Without a config (none given, none here) the console still serves what acts on the repository
  // only: history, nodes, schedules, metrics, stop and abandon. Launching needs the definitions.
  const config = await loadConfigIfAny(o.config);
  if (!config) {
    log.warn('no config file (no --config, no NIGHTSHIFT_CONFIG, no nightshift.config.ts here): serving history, nodes, schedules, stop and abandon; launching jobs needs --config FILE');
  }

  // The first signal shuts down gracefully (also one that comes while starting); a second exits now.
  let stopRequested: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  let signals = 0;
  const onSignal = () => (++signals > 1 ? process.exit(130) : stopRequested());
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const unwatch = whenParentEnds(() => {
    log.warn(PARENT_ENDED);
    onSignal();
  });
  // The server starts while its database is unreachable too: it answers 503 (and its probes say
  // so) until the database answers, and brings the schema up to date then.
  // A short wait for a connection: while the database is away, /healthz and the API answer 503 soon.
  const db = openDatabaseWhenReachable(o.db, { connectRetryMs: 2000, logger: log });
  try {
    try {
      await db.query(SQL.dbNow);
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      log.error({ err: describeError(err) }, 'the job repository is unreachable: answering 503 until it answers');
    }
    const ns = await createNightshift({ db, jobs: config?.jobs ?? [], logger: log });
    try {
      const app = createHttpApi(ns, { tokens: o.insecureNoAuth ? 'none' : tokens, host: o.host, allowedHosts, requestTimeoutMs, trustProxy, logger: log });
      let address: string;
      try {
        address = await app.listen({ port, host: o.host });
      } catch (err) {
        throw new UsageError(`cannot listen on ${o.host}:${port}: ${errorMessage(err)}`);
      }
      // On 0.0.0.0 Fastify names one address (127.0.0.1); the others are served too.
      out(`listening on ${address}${isWildcardHost(o.host) ? ` and every other address of this machine (--host ${o.host})` : ''}`);
      if (isWildcardHost(o.host) && !allowedHosts.length) {
        log.warn(
          `listening on every address, but requests that name this machine otherwise than localhost or a loopback address are refused (403) ` +
            `until --allowed-hosts or ${ALLOWED_HOSTS_ENV} lists the names and addresses that clients use (e.g. nightshift.example.com,10.0.0.5)`,
        );
      }
      if (o.insecureNoAuth) log.warn('serving without authentication (--insecure-no-auth): anyone who can reach this address can act');
      // Once it serves (a command that fails at once says one line only: its error).
      const exposed = dbFlagWarning(o.dbFlag);
      if (exposed) log.warn(exposed);
      log.info({ address, tokens: tokens.map((t) => ({ name: t.name, role: t.role })), allowedHosts, trustedProxies: trustProxy ?? [] }, 'serving the API, the console and the metrics');
      await stopped;
      log.info({ address }, 'stopping: no new connections; finishing the requests under way');
      await app.close();
      log.info({ address }, 'stopped');
    } finally {
      await ns.close();
    }
  } finally {
    await db.close();
    unwatch();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}
