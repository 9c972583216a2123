/**
 * The checks every request passes before its route runs, in this order (so that a request
 * without a token answers 401 and a viewer's action 403, whatever else is wrong with them):
 *
 * 1. Host: a `Host` header that is not allowed answers 403, so a page on another site that
 *    rebinds its DNS name to this server's address (DNS rebinding) reaches nothing. This holds
 *    for the probes too: a load balancer or Kubernetes probe that calls by address sends an
 *    allowed Host (`httpHeaders: [{ name: Host, value: localhost }]`), or the address is allowed.
 * 2. Authentication: every route but the public ones (the console's page and assets, the
 *    probes) needs `Authorization: Bearer SECRET` or a session cookie (401); many different wrong
 *    tokens from one address get its requests refused for a while (429), but for those with a
 *    valid session.
 * 3. Role: a viewer on a route that acts answers 403.
 * 4. Origin: a request that changes something must come from this server's own pages or from
 *    a client that is not a browser (`Origin` absent or same, `Sec-Fetch-Site` absent, `none` or
 *    `same-origin`), and POST/PUT bodies must be JSON (415), which no cross-site form can send.
 *
 * Actions (routes with `config.audit`) are recorded in the audit log just before their answer
 * is sent, whatever it is: who, what, on what, from where, and how it ended.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type {} from '@fastify/cookie';
import type { Logger } from '../core/logger.ts';
import { recordAudit, type AuditOutcome } from '../repository/audit.ts';
import type { Database } from '../repository/database.ts';
import type { Authenticator, Principal } from './auth.ts';
import { describeError } from './errors.ts';
import type { Role } from './tokens.ts';

/** The session cookie's name. */
export const SESSION_COOKIE = 'nightshift_session';

/** What a route declares about its security (Fastify route `config`). */
export interface RouteSecurity {
  /** Served without a token (the console's page and assets, the probes). */
  public?: boolean;
  /** The role the route needs (default viewer: any valid token). */
  role?: Role;
  /** Only a bearer token proves it, not a session cookie (logging in). */
  bearerOnly?: boolean;
  /** Records the request in the audit log under this action, with the target it names. */
  audit?: { action: string; target?: (req: FastifyRequest) => string | null };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the request acts as, once authenticated. */
    principal?: Principal;
    /** Details an audited route adds to its audit record (parameters, the execution it created). */
    auditDetail?: Record<string, unknown>;
  }
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- merges RouteSecurity into Fastify's route config
  interface FastifyContextConfig extends RouteSecurity {}
}

export interface GuardOptions {
  db: Database;
  log: Logger;
  authenticator: Authenticator;
  /** Whether a Host header's name may reach this server. */
  hostAllowed: (host: string | undefined) => boolean;
}

/**
 * Different wrong tokens one address may send per minute before it is refused (429). The same
 * wrong token again (a client with an old one, polling) is no guess and does not count.
 */
const GUESSES_PER_MINUTE = 30;

async function guard(app: FastifyInstance, o: GuardOptions) {
  const failures = failureLimiter();
  // Failed logins worth recording: each different wrong token once, within an address's guess
  // budget. The others (no token, the same wrong one again, any while refused) anyone can send
  // without limit, and recording them would let them fill the audit log.
  const recordedFailures = new WeakSet<FastifyRequest>();
  app.decorateRequest('principal', undefined);
  app.decorateRequest('auditDetail', undefined);

  app.addHook('onRequest', async (req, reply) => {
    const config = req.routeOptions.config;
    if (!o.hostAllowed(req.headers.host)) {
      return deny(reply, 403, `host ${JSON.stringify(hostName(req.headers.host) ?? '')} is not allowed (allowed hosts are set with serve --allowed-hosts, or allowedHosts in createHttpApi)`);
    }
    if (!config.public) {
      const denied = await authorize(req, reply, config);
      if (denied) return denied;
    }
    if (!['GET', 'HEAD', 'OPTIONS'].includes(req.method)) {
      if (crossOrigin(req)) return deny(reply, 403, 'requests from another origin cannot change anything');
      if (['POST', 'PUT', 'PATCH'].includes(req.method) && !/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
        return deny(reply, 415, `${req.method} requests must have content-type application/json`);
      }
    }
  });

  /** Authentication and role; answers (and returns the reply) when they refuse. */
  async function authorize(req: FastifyRequest, reply: FastifyReply, config: RouteSecurity) {
    const { principal, problem, wrongToken, session } = authenticate(req, o.authenticator, !!config.bearerOnly);
    // A session was given by a login, so it is no guess: those logged in keep working while
    // guesses from their address (a shared proxy, say) are refused.
    if (!session && failures.blocked(req.ip)) {
      reply.header('retry-after', '60');
      return deny(reply, 429, 'too many failed authentications from this address; try again in a minute');
    }
    if (!principal) {
      // Only wrong tokens count: a browser without a session yet, or with an ended one, is no attack.
      if (wrongToken) {
        // Logged at most twice per address and minute (its first wrong token, and when it is refused),
        // so that a stream of guesses cannot flood the log; the token itself is never logged.
        const { failures: count, refusedNow, newGuess } = failures.fail(req.ip, wrongToken);
        if (newGuess) recordedFailures.add(req);
        if (count === 1) o.log.warn({ remote: req.ip, path: req.url.split('?')[0] }, `a wrong API token from ${req.ip} (its next ones this minute are not logged, unless it is refused)`);
        if (refusedNow) o.log.warn({ remote: req.ip, failures: count }, `refusing ${req.ip} for the rest of the minute after ${GUESSES_PER_MINUTE} different wrong API tokens`);
      }
      reply.header('www-authenticate', 'Bearer realm="nightshift"');
      return deny(reply, 401, problem);
    }
    req.principal = principal;
    if (config.role === 'operator' && principal.role !== 'operator') {
      return deny(reply, 403, `token ${principal.name} is a viewer: this needs the operator role`);
    }
    return undefined;
  }

  app.addHook('onSend', async (req, reply, payload) => {
    const audit = req.routeOptions.config.audit;
    if (!audit) return payload;
    const status = reply.statusCode;
    const principal = req.principal;
    // A request no token proved is recorded only as a failed login, at most once per different
    // wrong token and within the guess budget: anyone could fill the log otherwise.
    if (!principal && !(audit.action === 'login' && recordedFailures.has(req))) return payload;
    const outcome: AuditOutcome = status < 400 ? 'ok' : status === 401 ? 'denied' : status === 403 ? 'forbidden' : status >= 500 ? 'error' : 'refused';
    let target: string | null = null;
    try {
      target = audit.target?.(req) ?? null;
    } catch {
      // A target built from a request that failed validation.
    }
    try {
      await recordAudit(o.db, {
        actor: principal?.name ?? null,
        role: principal?.role ?? null,
        action: audit.action,
        target,
        detail: req.auditDetail ?? null,
        remote: req.ip,
        outcome,
        statusCode: status,
        message: status >= 400 ? errorOf(payload) : null,
      });
    } catch (err) {
      o.log.error({ err: describeError(err), action: audit.action, target, actor: principal?.name }, 'could not record an action in the audit log');
    }
    return payload;
  });
}

/** The guard as a Fastify plugin whose hooks apply to every route of the server. */
export const guardPlugin = fp(guard, { name: 'nightshift-guard', fastify: '5.x' });

function deny(reply: FastifyReply, status: number, error: string) {
  return reply.code(status).send({ error });
}

/** Who the request is; `wrongToken` is the secret of a bearer token that is not valid, `session` whether a session cookie proved it. */
function authenticate(req: FastifyRequest, auth: Authenticator, bearerOnly: boolean): { principal?: Principal; problem: string; wrongToken?: string; session?: boolean } {
  if (!auth.enabled) return { principal: auth.bearer(''), problem: '' };
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer +(\S+) *$/i.exec(header);
    if (!m) return { problem: 'the Authorization header must be "Bearer SECRET"' };
    const principal = auth.bearer(m[1]);
    return principal ? { principal, problem: '' } : { problem: 'the API token is not valid', wrongToken: m[1] };
  }
  const cookie = bearerOnly ? undefined : req.cookies?.[SESSION_COOKIE];
  if (cookie) {
    const principal = auth.session(cookie);
    return principal ? { principal, problem: '', session: true } : { problem: 'the session has ended; log in again' };
  }
  return { problem: bearerOnly ? 'logging in needs Authorization: Bearer SECRET' : 'this needs an API token: send Authorization: Bearer SECRET, or log in' };
}

/**
 * Whether a request comes from a web page of another origin. Browsers send `Sec-Fetch-Site` and
 * `Origin` on such requests and cannot forge them; clients that are not browsers send neither.
 */
function crossOrigin(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    const from = new URL(origin);
    // Parsed the same way, so that default ports (http://host and host:80) compare equal.
    return from.host !== new URL(`${from.protocol}//${req.headers.host ?? ''}`).host;
  } catch {
    return true; // "null" (a sandboxed frame, a file) or garbage
  }
}

/** The host name of a Host header, lower case, without port or trailing dot; IPv6 in brackets. */
export function hostName(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(host.trim());
  return m ? m[1].toLowerCase().replace(/\.$/, '') : undefined;
}

/** Names that are always allowed: this machine's loopback names. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/** Whether a listen address means every address of the machine (0.0.0.0, ::). */
export function isWildcardHost(host: string): boolean {
  return ['0.0.0.0', '::', '::0'].includes(host.toLowerCase().replace(/^\[(.*)\]$/, '$1'));
}

/**
 * The Host allow-list: the loopback names, the address the server listens on (unless it is a
 * wildcard such as 0.0.0.0), and `extra` names: exact (`nightshift.example.com`), a domain and
 * its subdomains (`.example.com`), or `*` for any (when a proxy in front checks the host).
 */
export function hostAllowList(listenHost: string | undefined, extra: readonly string[] = []): (host: string | undefined) => boolean {
  const exact = new Set(LOOPBACK_HOSTS);
  const listen = listenHost && (listenHost.includes(':') && !listenHost.startsWith('[') ? `[${listenHost}]` : listenHost).toLowerCase();
  if (listen && !isWildcardHost(listen)) exact.add(listen);
  const suffixes: string[] = [];
  let any = false;
  for (const raw of extra) {
    const h = raw.trim().toLowerCase();
    if (h === '*') any = true;
    else if (h.startsWith('.')) suffixes.push(h);
    else if (h) exact.add(h.includes(':') && !h.startsWith('[') ? `[${h}]` : h);
  }
  return (header) => {
    const name = hostName(header);
    if (name === undefined) return false;
    return any || exact.has(name) || suffixes.some((s) => name.endsWith(s) || name === s.slice(1));
  };
}

/**
 * Counts failed authentications per address in one-minute windows, and the different wrong
 * tokens among them (as hashes: no secret stays in memory), up to the limit.
 */
function failureLimiter() {
  const windows = new Map<string, { failures: number; guesses: Set<string>; until: number }>();
  const current = (ip: string) => {
    const now = Date.now();
    let w = windows.get(ip);
    if (!w || w.until <= now) {
      if (windows.size > 10_000) for (const [k, v] of windows) if (v.until <= now) windows.delete(k);
      w = { failures: 0, guesses: new Set(), until: now + 60_000 };
      windows.set(ip, w);
    }
    return w;
  };
  return {
    blocked: (ip: string) => {
      const w = windows.get(ip);
      return !!w && w.until > Date.now() && w.guesses.size >= GUESSES_PER_MINUTE;
    },
    /**
     * Counts a wrong token; says how many failures this address has had in its window, whether
     * this token is a new guess in it, and whether this one got the address refused.
     */
    fail: (ip: string, token: string) => {
      const w = current(ip);
      w.failures++;
      const before = w.guesses.size;
      // 12 characters of a hash tell 30 guesses apart, and keep an address's window small.
      if (before < GUESSES_PER_MINUTE) w.guesses.add(createHash('sha256').update(token).digest('base64').slice(0, 12));
      return { failures: w.failures, newGuess: w.guesses.size > before, refusedNow: before < GUESSES_PER_MINUTE && w.guesses.size === GUESSES_PER_MINUTE };
    },
  };
}

function errorOf(payload: unknown): string | null {
  if (typeof payload !== 'string') return null;
  try {
    const error = (JSON.parse(payload) as { error?: unknown }).error;
    return typeof error === 'string' ? error : null;
  } catch {
    return null;
  }
}
