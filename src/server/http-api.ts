import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { UsageError, errorMessage } from '../core/errors.ts';
import { redactingLogger, type Logger } from '../core/logger.ts';
import type { Nightshift } from '../operator.ts';
import { scheduleAdmin } from '../scheduler/triggers.ts';
import { createAuthenticator, DEFAULT_SESSION_TTL_MS } from './auth.ts';
import type { ApiContext } from './context.ts';
import { errorHandler } from './errors.ts';
import { createEventHub } from './events.ts';
import { guardPlugin, hostAllowList, SESSION_COOKIE } from './guard.ts';
import { createMetrics } from './metrics.ts';
import { executionRoutes } from './routes/executions.ts';
import { jobRoutes } from './routes/jobs.ts';
import { liveRoutes } from './routes/live.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { scheduleRoutes } from './routes/schedules.ts';
import { sessionRoutes } from './routes/session.ts';
import { siteRoutes } from './routes/site.ts';
import { addSchemas } from './schemas.ts';
import { trustProxyOption, type TrustedProxies } from './proxies.ts';
import { MIN_SECRET_LENGTH, TOKENS_ENV, shortTokens, type ApiToken } from './tokens.ts';
import { AJV_OPTIONS, schemaErrorFormatter } from './validation.ts';

/** Options of {@link createHttpApi}. */
export interface HttpApiOptions {
  /**
   * The API tokens (see loadTokens), at least one, or `'none'` to serve without authentication:
   * every request then acts as an operator named `anonymous`. Only for a server on a loopback
   * address. An empty list is refused (a UsageError), as `serve` refuses to start without a token.
   */
  tokens: readonly ApiToken[] | 'none';
  /** The address the server listens on: allowed as a Host header besides localhost, 127.0.0.1 and [::1]. */
  host?: string | undefined;
  /** More Host names to allow: exact, `.domain` (with its subdomains), or `*` for any. */
  allowedHosts?: readonly string[] | undefined;
  /** How long a login session lasts. Default 12 h. */
  sessionTtlMs?: number | undefined;
  /** A request whose head and body have not arrived within this time is answered 408 and closed. Default 10 s. */
  requestTimeoutMs?: number | undefined;
  /** A request the server has not answered within this time is answered 503. Default 30 s. */
  handlerTimeoutMs?: number | undefined;
  /** The largest request body, in bytes (answered 413). Default 1.5 MiB. */
  bodyLimit?: number | undefined;
  /** How often the live-events stream looks at the repository. Default 1000 ms. */
  eventsPollMs?: number | undefined;
  /**
   * Take the client's address from the X-Forwarded-For entry the proxy in front adds, and the
   * protocol from its X-Forwarded-Proto: `true` whatever the peer's address (only when no client
   * can reach the server but through the proxy), or the proxy's addresses and subnets, so that a
   * client that reaches the server directly cannot choose its own address. Default false.
   */
  trustProxy?: TrustedProxies | undefined;
  /** The server log (default: the operator's). Secrets never reach it. */
  logger?: Logger | undefined;
  /**
   * The path prefix your service serves this API and its console under (`/batch`), when it
   * mounts them in its own HTTP server: the login's session cookie then goes only to paths under
   * it (its `Path`), not to the service's other routes. Default `/`.
   */
  mountPath?: string | undefined;
}

/** A mount path as a cookie's Path: `/` or `/a/b` (no trailing slash, nothing a cookie attribute cannot hold). */
function cookiePath(mountPath: string | undefined): string {
  if (mountPath === undefined || mountPath === '/') return '/';
  if (typeof mountPath !== 'string' || !/^(\/[A-Za-z0-9._~-]+)+$/.test(mountPath)) {
    throw new UsageError(`createHttpApi: mountPath must be a path such as /batch (a leading slash, no trailing one), got ${JSON.stringify(mountPath)}`);
  }
  return mountPath;
}

/** The largest request body by default: above the largest parameter value (64 KiB) by far, below 2 MB. */
export const DEFAULT_BODY_LIMIT = 1.5 * 1024 * 1024;

/**
 * The HTTP API over one operator: REST and JSON in the CLI's shapes, described by the OpenAPI
 * document at `GET /api/openapi.json`, with the web console at `/`, Prometheus metrics at
 * `/metrics`, live events at `/api/events`, and probes at `/livez`, `/healthz` and `/readyz`.
 *
 * Secure by default: every route but the console's files and the probes needs
 * a bearer token or a session cookie; actions need the operator role and are recorded in the
 * audit log; Host headers are checked against an allow-list; requests that change something must
 * be same-origin and JSON; the answers carry a strict Content-Security-Policy and the other
 * security headers; bodies, parameters and request times are bounded. When the job repository is
 * unreachable the API answers 503 with a generic message, and the details go to the log.
 */
export function createHttpApi(ns: Nightshift, options: HttpApiOptions): FastifyInstance {
  if (options?.tokens === undefined) {
    throw new UsageError("createHttpApi needs tokens (see loadTokens), or tokens: 'none' to serve without authentication");
  }
  if (options.tokens !== 'none' && options.tokens.length === 0) {
    // As `serve` refuses to start without one: an API no token opens is locked for everyone, and
    // the likely cause is an unset NIGHTSHIFT_API_TOKENS, which loadTokens reads as none.
    throw new UsageError(
      `createHttpApi got no API tokens, so every request would be refused: give at least one (loadTokens reads ${TOKENS_ENV} and a tokens file), or tokens: 'none' to serve without authentication`,
    );
  }
  const log = redactingLogger(options.logger ?? ns.log).child({ component: 'http' });
  if (options.tokens !== 'none') {
    for (const t of shortTokens(options.tokens)) {
      log.warn({ token: t.name }, `API token ${t.name} is short (${t.secret.length} characters), so easier to guess: use ${MIN_SECRET_LENGTH} or more random characters (openssl rand -hex 32)`);
    }
  }
  const sessionPath = cookiePath(options.mountPath);
  const requestTimeout = options.requestTimeoutMs ?? 10_000;
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    requestTimeout,
    handlerTimeout: options.handlerTimeoutMs ?? 30_000,
    keepAliveTimeout: 10_000,
    routerOptions: { maxParamLength: 300 },
    // One hop, the proxy in front: the address it appends to X-Forwarded-For.
    trustProxy: trustProxyOption(options.trustProxy),
    // Node checks request timeouts this often (30 s by default), and waits this long for headers.
    http: { connectionsCheckingInterval: Math.min(1000, requestTimeout), headersTimeout: requestTimeout },
    ajv: AJV_OPTIONS,
    schemaErrorFormatter,
  });
  const auth = createAuthenticator(options.tokens, options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS);
  const schedules = scheduleAdmin({ db: ns.db, jobs: ns.jobs });
  const hub = createEventHub({ db: ns.db, explorer: ns.explorer, schedules, log, pollMs: options.eventsPollMs });
  let stopping = false;
  const context: ApiContext = { ns, schedules, auth, hub, log, sessionPath, stopping: () => stopping };

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    if ((body as string).trim() === '') return done(null, {});
    try {
      done(null, JSON.parse(body as string));
    } catch (err) {
      done(new UsageError(`request body is not valid JSON: ${errorMessage(err)}`), undefined);
    }
  });

  void app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
    frameguard: { action: 'deny' },
    // Served over plain HTTP by default; a TLS-terminating proxy in front sets HSTS.
    strictTransportSecurity: false,
  });
  void app.register(cookie);
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Nightshift API',
        version: packageVersion(),
        description:
          'The REST API of a Nightshift cluster: its executions, jobs, nodes and schedules, in the JSON shapes of the CLI. Every route but the console files and the probes ' +
          'needs `Authorization: Bearer SECRET` or a session cookie (POST /api/session). Actions need the operator role, and ' +
          'are recorded in the audit log. Errors are `{ "error": "..." }` naming what is wrong.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'an API token (NAME:ROLE:SECRET; send SECRET)' },
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'a session from POST /api/session' },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    // Each operation says which role it needs (x-nightshift-role: none, viewer or operator), for clients that offer actions.
    transform: ({ schema, url, route }) => {
      const config = (route.config ?? {}) as { public?: boolean; role?: string };
      return { schema: { ...schema, 'x-nightshift-role': config.public ? 'none' : (config.role ?? 'viewer') } as typeof schema, url };
    },
  });
  void app.register(guardPlugin, { db: ns.db, log, authenticator: auth, hostAllowed: hostAllowList(options.host, options.allowedHosts) });
  addSchemas(app);
  app.addHook('onRequest', async (req, reply) => {
    if (req.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
  });
  app.addHook('preClose', async () => {
    stopping = true;
    hub.close();
  });

  const metrics = createMetrics(ns);
  for (const routes of [executionRoutes, jobRoutes, nodeRoutes, scheduleRoutes, sessionRoutes, liveRoutes]) void app.register(routes, context);
  void app.register(siteRoutes, { ...context, metrics });

  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));
  app.setErrorHandler(errorHandler(log));
  return app;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
