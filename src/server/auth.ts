import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ApiToken, Role } from './tokens.ts';

/** Who a request acts as. */
export interface Principal {
  /** The token's name (`anonymous` when serving without authentication). */
  readonly name: string;
  readonly role: Role;
  /** How the request proved it: a bearer token, a session cookie, or nothing (no authentication). */
  readonly via: 'bearer' | 'session' | 'none';
  /** When a session ends. */
  readonly expiresAt?: Date;
}

/** Checks bearer tokens and session cookies against the configured tokens. */
export interface Authenticator {
  /** False when serving without authentication (`--insecure-no-auth`). */
  readonly enabled: boolean;
  /** The principal of a bearer secret, or undefined. Takes the same time whichever token matches. */
  bearer(secret: string): Principal | undefined;
  /** A session cookie value for a principal, valid for the session lifetime from `now`. */
  createSession(principal: Principal, now?: number): { value: string; expiresAt: Date };
  /** The principal of a session cookie value, or undefined (malformed, expired, or its token is gone). */
  session(value: string, now?: number): Principal | undefined;
  readonly sessionTtlMs: number;
}

/** A session lasts this long by default: a working day. */
export const DEFAULT_SESSION_TTL_MS = 12 * 3600_000;

const sha256 = (s: string) => createHash('sha256').update(s).digest();
const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * Bearer tokens and sessions.
 *
 * Secrets are compared by their SHA-256 digests with `timingSafeEqual`, against every token with
 * no early exit, so neither the length nor the content of a guess shows in the time taken.
 *
 * Sessions are stateless: the cookie is `v1.NAME.EXPIRES.MAC`, where MAC is an HMAC-SHA256 of
 * the rest, keyed by a key derived from the token's own secret. So a session needs no storage and
 * works on every `serve` process that has the same tokens (behind a load balancer, after a
 * restart); it carries the token's name (for the audit log), never its secret; its role is the
 * token's current one; and removing or rotating a token revokes all of its sessions at once.
 * Logging out deletes the cookie in the browser; a copy of it taken before stays valid until it
 * expires or the token is rotated, which is why sessions are short (12 h by default).
 */
export function createAuthenticator(tokens: readonly ApiToken[] | 'none', sessionTtlMs = DEFAULT_SESSION_TTL_MS): Authenticator {
  if (tokens === 'none') {
    const anonymous: Principal = { name: 'anonymous', role: 'operator', via: 'none' };
    return {
      enabled: false,
      sessionTtlMs,
      bearer: () => anonymous,
      createSession: (_p, now = Date.now()) => ({ value: '', expiresAt: new Date(now + sessionTtlMs) }),
      session: () => anonymous,
    };
  }
  const known = tokens.map((t) => ({
    token: t,
    digest: sha256(t.secret),
    sessionKey: createHmac('sha256', t.secret).update('nightshift session key v1').digest(),
  }));
  const mac = (key: Buffer, payload: string) => createHmac('sha256', key).update(payload).digest();
  return {
    enabled: true,
    sessionTtlMs,
    bearer(secret) {
      const digest = sha256(secret);
      let found: ApiToken | undefined;
      for (const k of known) if (timingSafeEqual(k.digest, digest)) found = k.token;
      return found && { name: found.name, role: found.role, via: 'bearer' };
    },
    createSession(principal, now = Date.now()) {
      const k = known.find((x) => x.token.name === principal.name);
      if (!k) throw new Error(`no token named ${principal.name}`);
      const expiresAt = new Date(now + sessionTtlMs);
      const payload = `v1.${b64url(principal.name)}.${expiresAt.getTime()}`;
      return { value: `${payload}.${b64url(mac(k.sessionKey, payload))}`, expiresAt };
    },
    session(value, now = Date.now()) {
      const m = /^v1\.([A-Za-z0-9_-]{1,100})\.(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(value);
      if (!m) return undefined;
      const name = Buffer.from(m[1], 'base64url').toString('utf8');
      const k = known.find((x) => x.token.name === name);
      if (!k) return undefined;
      const expected = mac(k.sessionKey, `v1.${m[1]}.${m[2]}`);
      const given = Buffer.from(m[3], 'base64url');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
      const expires = Number(m[2]);
      if (expires <= now) return undefined;
      return { name, role: k.token.role, via: 'session', expiresAt: new Date(expires) };
    },
  };
}
