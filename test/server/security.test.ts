/**
 * The security of the HTTP API (SPEC section 7a), in-process over real repositories: tokens and
 * roles on every route of the OpenAPI document (which must match the routes), the Host
 * allow-list, same-origin and JSON-only actions, security headers, limits on bodies and
 * parameters, login sessions, the audit log of refused actions, and a job repository that goes
 * away (503 with a generic body; the details in the log).
 */
import pino from 'pino';
import { once } from 'node:events';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { count, noop } from '../../examples/nightshift.config.ts';
import { releaseExecution } from '../../src/cluster/failover.ts';
import { DEFAULT_LEASE, registerNode } from '../../src/cluster/node-identity.ts';
import { defineJob } from '../../src/core/job.ts';
import { createExecution } from '../../src/engine/launch.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift } from '../../src/operator.ts';
import { createAuthenticator } from '../../src/server/auth.ts';
import { createHttpApi, type HttpApiOptions } from '../../src/server/http-api.ts';
import { loadTokens } from '../../src/server/tokens.ts';
import { SQL } from '../../src/repository/sql.ts';
import { scheduleAdmin } from '../../src/scheduler/triggers.ts';
import { backends, PG_BASE } from '../support/backends.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { itWhen } from '../support/skip.ts';

/** A job whose failure names a URL with its password, as a driver's or a user's error may. */
const leaky = defineJob({
  name: 'leaky',
  steps: (s) => [s.tasklet({ name: 'connect', tasklet: () => { throw new Error('cannot reach postgres://etl:hunter2-secret@warehouse.internal/dw'); } })],
});
const jobs = [noop, count, leaky];
const TOKENS: HttpApiOptions['tokens'] = [
  { name: 'alice', role: 'operator', secret: 'alice-operator-secret' },
  { name: 'victor', role: 'viewer', secret: 'victor-viewer-secret' },
];
const OPERATOR = { authorization: 'Bearer alice-operator-secret' };
const VIEWER = { authorization: 'Bearer victor-viewer-secret' };
const JSON_BODY = { 'content-type': 'application/json' };

/** A request for each documented operation, with its path parameters filled in. */
function sampleUrl(path: string): string {
  return path.replace('{id}', '1').replace('{job}', 'count').replace('{name}', 'nightly').replace('{file}', 'app.js');
}

const [sqlite] = backends().filter((b) => b.name === 'sqlite');

describe.each(backends())('HTTP API security ($name)', (backend) => {
  const opened: { close(): Promise<unknown> }[] = [];
  afterAll(async () => {
    for (const x of opened.reverse()) await x.close();
    await backend.cleanup();
  });
  const setup = async (label: string, options: Partial<HttpApiOptions> = {}, db?: string) => {
    const ns = await createNightshift({ db: db ?? backend.freshUrl(label), jobs, logger: silentLogger });
    opened.push(ns);
    const app = createHttpApi(ns, { tokens: TOKENS, ...options });
    opened.push(app);
    return { ns, app };
  };

  it('documents every route in the OpenAPI document, and nothing that is not a route', async () => {
    const { app } = await setup('sec-doc');
    const routes: string[] = [];
    app.addHook('onRoute', (r) => {
      for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push(`${m} ${r.url.replace(/:(\w+)/g, '{$1}')}`);
    });
    const r = await app.inject({ url: '/api/openapi.json', headers: VIEWER });
    expect(r.statusCode).toBe(200);
    const doc = r.json() as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown>; summary?: string }>> };
    expect(doc.openapi).toMatch(/^3\./);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual([...routes].sort());
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(op.summary, `${method} ${path}`).toBeTruthy();
        expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(0);
      }
    }
    // The routes of the contract are there.
    for (const route of ['POST /api/jobs/{job}/executions', 'POST /api/executions/{id}/restart', 'POST /api/executions/{id}/stop', 'POST /api/executions/{id}/abandon', 'GET /healthz', 'GET /metrics']) {
      expect(documented).toContain(route);
    }
  });

  it('answers 401 without a token or with a wrong one on every API route and /metrics; a viewer on every action 403, recorded', async () => {
    const { app } = await setup('sec-tokens');
    const doc = (await app.inject({ url: '/api/openapi.json', headers: VIEWER })).json() as { paths: Record<string, Record<string, { security?: unknown[]; 'x-nightshift-role': string }>> };
    const ops = Object.entries(doc.paths).flatMap(([path, o]) => Object.entries(o).map(([method, op]) => ({
      method: method.toUpperCase(), path, open: Array.isArray(op.security) && op.security.length === 0, role: op['x-nightshift-role'],
    })));
    let client = 0;
    // Each request from its own address: wrong tokens from one address are soon refused (429).
    const send = (method: string, path: string, headers: Record<string, string>) =>
      app.inject({ method: method as 'GET', url: sampleUrl(path), remoteAddress: `10.0.${Math.floor(++client / 250)}.${client % 250}`, headers: { ...headers, ...(method === 'POST' || method === 'PUT' ? JSON_BODY : {}) }, payload: method === 'POST' || method === 'PUT' ? '{}' : undefined });
    const guarded = ops.filter((o) => !o.open);
    expect(guarded.map((o) => o.path)).toEqual(expect.arrayContaining(['/metrics', '/api/openapi.json', '/api/events']));
    expect(guarded.every((o) => o.path.startsWith('/api/') || o.path === '/metrics')).toBe(true);
    expect(ops.filter((o) => o.open).map((o) => `${o.method} ${o.path}`).sort()).toEqual(['GET /', 'GET /assets/{file}', 'GET /favicon.ico', 'GET /healthz', 'GET /livez', 'GET /readyz']);
    for (const o of guarded) {
      for (const headers of [{}, { authorization: 'Bearer wrong-secret' }, { authorization: 'Basic YWxpY2U6eA==' }] as Record<string, string>[]) {
        const r = await send(o.method, o.path, headers);
        expect(r.statusCode, `${o.method} ${o.path} ${JSON.stringify(headers)}`).toBe(401);
        expect(r.headers['www-authenticate']).toBe('Bearer realm="nightshift"');
        expect(r.json().error).toMatch(/token|Bearer/);
      }
    }
    expect((await app.inject({ url: '/api/nope' })).statusCode).toBe(401);
    // Who asks comes first: no token is 401 and a viewer's action 403, whatever the body.
    expect((await app.inject({ method: 'POST', url: '/api/executions/1/stop', headers: { 'content-type': 'text/plain' }, payload: 'x' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/api/executions/1/stop', headers: VIEWER })).statusCode).toBe(403);
    // Actions: every POST, PUT and DELETE but logging in and out.
    const actions = guarded.filter((o) => o.method !== 'GET' && o.path !== '/api/session');
    expect(actions).toHaveLength(12);
    // The document says which role each operation needs.
    expect(actions.every((o) => o.role === 'operator')).toBe(true);
    expect(ops.filter((o) => o.role === 'operator')).toHaveLength(12);
    expect(ops.filter((o) => o.open).every((o) => o.role === 'none')).toBe(true);
    for (const o of actions) {
      const r = await send(o.method, o.path, VIEWER);
      expect(r.statusCode, `${o.method} ${o.path}`).toBe(403);
      expect(r.json()).toEqual({ error: 'token victor is a viewer: this needs the operator role' });
    }
    const audit = (await app.inject({ url: `/api/audit?actor=victor&limit=100`, headers: VIEWER })).json() as { action: string; outcome: string; role: string }[];
    expect(audit).toHaveLength(actions.length + 1);
    expect(audit.every((a) => a.outcome === 'forbidden' && a.role === 'viewer')).toBe(true);
    expect(new Set(audit.map((a) => a.action))).toEqual(new Set([
      'execution.restart', 'execution.stop', 'execution.abandon', 'job.submit', 'job.submitMany', 'node.drain', 'node.resume', 'schedule.put', 'schedule.remove', 'schedule.pause',
      'schedule.resume', 'schedule.trigger',
    ]));
  });

  it('refuses a Host that is not allowed (DNS rebinding), on every route', async () => {
    const { app } = await setup('sec-host', { host: '10.1.2.3', allowedHosts: ['.example.com', 'ops.internal'] });
    const status = async (host: string, url = '/api/executions') => (await app.inject({ url, headers: { ...VIEWER, host } })).statusCode;
    for (const host of ['localhost', 'localhost:8080', '127.0.0.1:9', '[::1]:8080', '10.1.2.3:8080', 'a.example.com', 'example.com', 'OPS.internal:443']) {
      expect(await status(host), host).toBe(200);
    }
    for (const host of ['evil.test', 'evil.test:8080', 'badexample.com', '127.0.0.2', '10.1.2.4', 'localhost.evil.test']) {
      expect(await status(host), host).toBe(403);
    }
    const refused = await app.inject({ url: '/', headers: { host: 'attacker.test:8080' } });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toEqual({ error: 'host "attacker.test" is not allowed (allowed hosts are set with serve --allowed-hosts, or allowedHosts in createHttpApi)' });
    for (const url of ['/healthz', '/readyz', '/metrics', '/favicon.ico', '/api/openapi.json']) expect(await status('10.0.0.7:8080', url), url).toBe(403);
    expect(await status('localhost:8080', '/healthz')).toBe(200);
    const anyHost = (await setup('sec-host-any', { allowedHosts: ['*'] })).app;
    expect((await anyHost.inject({ url: '/api/jobs', headers: { ...VIEWER, host: 'whatever.test' } })).statusCode).toBe(200);
  });

  it('acts only on same-origin JSON requests: a cross-origin POST changes nothing', async () => {
    const { ns, app } = await setup('sec-origin');
    let n = 0;
    const submit = (headers: Record<string, string>, contentType = 'application/json') =>
      app.inject({ method: 'POST', url: '/api/jobs/count/executions', headers: { ...OPERATOR, 'content-type': contentType, ...headers }, payload: JSON.stringify({ params: { tag: `t${n++}` } }) });
    for (const headers of [{ origin: 'http://evil.test' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site', origin: 'http://sub.localhost' }] as Record<string, string>[]) {
      const r = await submit(headers);
      expect(r.statusCode, JSON.stringify(headers)).toBe(403);
      expect(r.json()).toEqual({ error: 'requests from another origin cannot change anything' });
    }
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      expect((await submit({}, type)).statusCode, type).toBe(415);
    }
    expect(await ns.listExecutions()).toEqual([]);
    expect((await submit({ origin: 'http://localhost:80', 'sec-fetch-site': 'same-origin' })).statusCode).toBe(202);
    expect((await submit({})).statusCode).toBe(202);
    expect(await ns.listExecutions()).toHaveLength(2);
  });

  it('sends a strict Content-Security-Policy and the other security headers; the page has no inline script', async () => {
    const { app } = await setup('sec-headers');
    const page = await app.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(page.body).not.toMatch(/\son\w+=|<style/);
    // The page's only script is a module file; the libraries it imports are served as files too.
    expect(page.body).toContain('<script type="module" src="assets/app.js"></script>');
    for (const file of ['app.js', 'preact.js', 'preact-hooks.js', 'htm.js', 'uplot.js']) {
      const script = await app.inject({ url: `/assets/${file}` });
      expect(script.statusCode, file).toBe(200);
      expect(script.headers['content-type'], file).toBe('text/javascript; charset=utf-8');
      // Every import is relative: a browser resolves it without an import map (an inline script).
      expect(script.body, file).not.toMatch(/(?:^|[;}\s])(?:import\s*[\w{}*,\s]*\s*from|import|export\s*[\w{}*,\s]*\s*from)\s*["'](?![./])/);
    }
    expect((await app.inject({ url: '/assets/console.css' })).headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await app.inject({ url: '/favicon.ico' })).headers['content-type']).toBe('image/svg+xml');
    expect((await app.inject({ url: '/assets/nope.js' })).statusCode).toBe(404);
    const api = await app.inject({ url: '/api/jobs', headers: VIEWER });
    expect(api.headers['x-content-type-options']).toBe('nosniff');
    expect(api.headers['cache-control']).toBe('no-store');
  });

  it('refuses a 2 MB body (413), and names a 1 MB parameter inside an acceptable body (400)', async () => {
    const { ns, app } = await setup('sec-size');
    const post = (payload: string) => app.inject({ method: 'POST', url: '/api/jobs/count/executions', headers: { ...OPERATOR, ...JSON_BODY }, payload });
    const huge = await post(JSON.stringify({ params: { tag: 'x'.repeat(2_000_000) } }));
    expect(huge.statusCode).toBe(413);
    expect(huge.json()).toEqual({ error: 'the request body is too large' });
    const big = await post(JSON.stringify({ params: { tag: 'y'.repeat(1_048_576) } }));
    expect(big.statusCode).toBe(400);
    expect(big.json()).toEqual({ error: 'parameter tag is 1048576 characters long; at most 65536 are allowed' });
    expect(big.body.length).toBeLessThan(200);
    const put = await app.inject({ method: 'PUT', url: '/api/schedules/big', headers: { ...OPERATOR, ...JSON_BODY }, payload: JSON.stringify({ job: 'count', everyMs: 1000, params: { tag: 'z'.repeat(100_000) } }) });
    expect(put.json()).toEqual({ error: 'parameter tag is 100000 characters long; at most 65536 are allowed' });
    expect(await ns.listExecutions()).toEqual([]);
    expect((await app.inject({ url: `/api/executions?q=${'q'.repeat(201)}`, headers: VIEWER })).json()).toEqual({ error: 'q is 201 characters long; at most 200 are allowed' });
  });

  it('closes a request whose body trickles in slower than the request timeout (408), and serves others meanwhile', async () => {
    const { app } = await setup('sec-slow', { requestTimeoutMs: 1000 });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const socket = connect(Number(new URL(base).port), '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    let answer = '';
    socket.on('data', (d) => (answer += d));
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
    const started = Date.now();
    socket.write(
      'POST /api/jobs/count/executions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer alice-operator-secret\r\n' +
        'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"params":',
    );
    // A byte every 200 ms: never idle, but never done either (a slowloris body).
    const trickle = setInterval(() => socket.writable && socket.write(' '), 200);
    try {
      // Meanwhile the server answers everyone else.
      expect((await fetch(`${base}/healthz`, { headers: { host: 'localhost' } })).status).toBe(200);
      const closedAt = await Promise.race([closed, new Promise<never>((_, fail) => setTimeout(() => fail(new Error('the slow request is still open after 8 s')), 8000))]);
      expect(closedAt - started).toBeGreaterThanOrEqual(900);
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
    const list = await app.inject({ url: '/api/executions', headers: VIEWER });
    expect(list.json()).toEqual([]);
  });

  it('logs in with a token for an HttpOnly, SameSite=Strict session cookie that the API accepts; logs out; records logins', async () => {
    const { ns, app } = await setup('sec-login');
    const login = (headers: Record<string, string>) => app.inject({ method: 'POST', url: '/api/session', headers: { ...headers, ...JSON_BODY }, payload: '' });
    const ok = await login(VIEWER);
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ name: 'victor', role: 'viewer', via: 'session' });
    const setCookie = String(ok.headers['set-cookie']);
    expect(setCookie).toMatch(/^nightshift_session=v1\.[^;]+; Max-Age=43200; Path=\/; HttpOnly; SameSite=Strict$/);
    expect(setCookie).not.toContain('victor-viewer-secret');
    const cookie = setCookie.split(';')[0];
    const me = await app.inject({ url: '/api/session', headers: { cookie } });
    expect(me.json()).toMatchObject({ name: 'victor', role: 'viewer', via: 'session' });
    expect((await app.inject({ url: '/api/executions', headers: { cookie } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/api/jobs/noop/executions', headers: { cookie, ...JSON_BODY }, payload: '{}' })).statusCode).toBe(403);
    // A session cannot log in again (only a token can), nor be altered.
    expect((await login({ cookie })).statusCode).toBe(401);
    const forged = cookie.replace(/\.(\d+)\./, (_m, t: string) => `.${Number(t) + 1000}.`);
    expect((await app.inject({ url: '/api/executions', headers: { cookie: forged } })).statusCode).toBe(401);
    const operator = String((await login(OPERATOR)).headers['set-cookie']).split(';')[0];
    expect((await app.inject({ method: 'POST', url: '/api/jobs/noop/executions', headers: { cookie: operator, ...JSON_BODY }, payload: '{}' })).statusCode).toBe(202);
    // Over HTTPS (behind a proxy that says so) the cookie is Secure too.
    const tls = createHttpApi(ns, { tokens: TOKENS, trustProxy: true });
    opened.push(tls);
    const secure = await tls.inject({ method: 'POST', url: '/api/session', headers: { ...VIEWER, ...JSON_BODY, 'x-forwarded-proto': 'https' }, payload: '' });
    expect(String(secure.headers['set-cookie'])).toMatch(/; Secure;/);
    // Mounted under a prefix in an application's server, the cookie goes only there; a bad prefix is refused.
    const mounted = createHttpApi(ns, { tokens: TOKENS, mountPath: '/ops/batch' });
    opened.push(mounted);
    const under = await mounted.inject({ method: 'POST', url: '/api/session', headers: { ...VIEWER, ...JSON_BODY }, payload: '' });
    expect(String(under.headers['set-cookie'])).toMatch(/; Path=\/ops\/batch; HttpOnly; SameSite=Strict$/);
    const leaving = await mounted.inject({ method: 'DELETE', url: '/api/session', headers: { cookie: String(under.headers['set-cookie']).split(';')[0] } });
    expect(String(leaving.headers['set-cookie'])).toContain('; Path=/ops/batch;');
    for (const bad of ['batch', '/batch/', '/a b', '/batch;Domain=evil.test']) {
      expect(() => createHttpApi(ns, { tokens: TOKENS, mountPath: bad })).toThrow(`createHttpApi: mountPath must be a path such as /batch (a leading slash, no trailing one), got ${JSON.stringify(bad)}`);
    }
    // Removing (or rotating) the token ends its sessions, on any server that has the new tokens.
    const rotated = createHttpApi(ns, { tokens: [{ name: 'victor', role: 'viewer', secret: 'victor-new-secret' }] });
    opened.push(rotated);
    expect((await rotated.inject({ url: '/api/executions', headers: { cookie } })).statusCode).toBe(401);
    const out = await app.inject({ method: 'DELETE', url: '/api/session', headers: { cookie } });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/^nightshift_session=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict$/);
    expect((await login({ authorization: 'Bearer guess' })).statusCode).toBe(401);
    const audit = (await app.inject({ url: '/api/audit', headers: VIEWER })).json() as { actor: string | null; action: string; outcome: string }[];
    expect(audit.filter((a) => a.action === 'login' || a.action === 'logout').map((a) => [a.action, a.actor, a.outcome])).toEqual([
      ['login', null, 'denied'], ['logout', 'victor', 'ok'], ['logout', 'victor', 'ok'], ['login', 'victor', 'ok'], ['login', 'victor', 'ok'],
      ['login', 'alice', 'ok'], ['login', 'victor', 'ok'],
    ]);
  });

  it('refuses an address after many different wrong tokens (429), and logs the first and the refusal, never the token', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
    const { ns, app } = await setup('sec-limit', { logger });
    // Logged in before the guessing starts, from the same address (a shared proxy, say).
    const session = String((await app.inject({ method: 'POST', url: '/api/session', headers: { ...VIEWER, ...JSON_BODY }, payload: '' })).headers['set-cookie']).split(';')[0];
    let status = 401;
    for (let i = 0; i < 40 && status === 401; i++) status = (await app.inject({ url: '/api/jobs', headers: { authorization: `Bearer guess-${i}` } })).statusCode;
    expect(status).toBe(429);
    const warned = lines.map((l) => JSON.parse(l) as { level: number; msg: string; remote?: string }).filter((l) => l.level === 40);
    expect(warned.map((l) => l.msg)).toEqual([
      'a wrong API token from 127.0.0.1 (its next ones this minute are not logged, unless it is refused)',
      'refusing 127.0.0.1 for the rest of the minute after 30 different wrong API tokens',
    ]);
    expect(lines.join('')).not.toMatch(/guess-/);
    expect((await app.inject({ url: '/api/jobs', headers: VIEWER })).statusCode).toBe(429);
    // A session came from a login, not a guess: it keeps working; a made-up one does not.
    expect((await app.inject({ url: '/api/jobs', headers: { cookie: session } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/jobs', headers: { cookie: 'nightshift_session=v1.made-up' } })).statusCode).toBe(429);
    // A client that polls with an old token is not guessing: the same wrong token 100 times stays
    // a 401, logged once, and its neighbours' valid tokens keep working.
    for (let i = 0; i < 100; i++) {
      expect((await app.inject({ url: '/metrics', headers: { authorization: 'Bearer an-old-token' }, remoteAddress: '10.7.7.7' })).statusCode).toBe(401);
    }
    expect((await app.inject({ url: '/api/jobs', headers: VIEWER, remoteAddress: '10.7.7.7' })).statusCode).toBe(200);
    expect(lines.filter((l) => l.includes('10.7.7.7')).map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual([
      'a wrong API token from 10.7.7.7 (its next ones this minute are not logged, unless it is refused)',
    ]);
    expect((await app.inject({ url: '/api/jobs', headers: { ...VIEWER }, remoteAddress: '10.9.9.9' })).statusCode).toBe(200);
    // Behind a trusted proxy the client is the entry the proxy appends: a guesser that writes its
    // own X-Forwarded-For entries is still one address, and refused.
    const proxied = createHttpApi(ns, { tokens: TOKENS, trustProxy: true, logger: silentLogger });
    opened.push(proxied);
    let behind = 401;
    for (let i = 0; i < 40 && behind === 401; i++) {
      behind = (await proxied.inject({ url: '/api/jobs', headers: { authorization: `Bearer guess-${i}`, 'x-forwarded-for': `203.0.113.${i}, 198.51.100.7` } })).statusCode;
    }
    expect(behind).toBe(429);
    expect((await proxied.inject({ url: '/api/jobs', headers: { ...VIEWER, 'x-forwarded-for': '198.51.100.8' } })).statusCode).toBe(200);
  });

  it('records failed logins only as many as the guess limit allows: what anyone can send without end does not fill the audit log', async () => {
    const { app } = await setup('sec-login-flood');
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const login = (headers: Record<string, string>) => fetch(`${base}/api/session`, { method: 'POST', headers: { ...JSON_BODY, ...headers } }).then((r) => r.status);
    // Without a token, with one that is not "Bearer SECRET", or with the same wrong token again
    // and again: nothing was guessed, and nothing is recorded.
    for (let i = 0; i < 50; i++) {
      expect(await login({})).toBe(401);
      expect(await login({ authorization: 'Basic YWxpY2U6eA==' })).toBe(401);
      expect(await login({ authorization: 'Bearer the-same-wrong-one' })).toBe(401);
    }
    // Different wrong tokens: each recorded once, until the address is refused; the refused
    // attempts after that are not recorded (the server's log tells of the refusal).
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) statuses.push(await login({ authorization: `Bearer guess-${i}` }));
    expect(statuses.filter((s) => s === 401)).toHaveLength(29);
    expect(statuses.slice(29).every((s) => s === 429)).toBe(true);
    const audit = (await app.inject({ url: '/api/audit?limit=1000', headers: VIEWER, remoteAddress: '10.1.1.1' })).json() as { action: string; actor: string | null; outcome: string }[];
    const logins = audit.filter((a) => a.action === 'login');
    expect(logins).toHaveLength(30);
    expect(logins.every((a) => a.actor === null && a.outcome === 'denied')).toBe(true);
  });

  it("hides the password of a URL in a failure's message from everyone who reads the execution", async () => {
    const { ns, app } = await setup('sec-exit-url');
    const ended = await ns.run('leaky');
    expect(ended.status).toBe('FAILED');
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const text = await (await fetch(`${base}/api/executions/${ended.id}`, { headers: VIEWER })).text();
    expect(text).toContain('cannot reach postgres://etl:***@warehouse.internal/dw');
    const list = await (await fetch(`${base}/api/executions?steps=1`, { headers: VIEWER })).text();
    expect(list).toContain('postgres://etl:***@warehouse.internal/dw');
    // Nor does the repository keep it, for the readers that come later (the CLI, embedding code).
    const again = await ns.getExecution(ended.id);
    expect(JSON.stringify(again)).toContain('postgres://etl:***@warehouse.internal/dw');
    expect(`${text}${list}${JSON.stringify(again)}`).not.toContain('hunter2');
  });

  it('hides the password of a URL in the reason a node stores when it releases an execution it could not run', async () => {
    const { ns } = await setup('sec-release-url');
    const node = await registerNode(ns.db, { name: `releasing-${backend.name}`, kind: 'node', jobs: ['leaky'], concurrency: 1, lease: DEFAULT_LEASE });
    await ns.db.execute(SQL.heartbeat, [node.id]);
    const claimed = await createExecution(ns.db, ns.jobs.get('leaky')!, {}, { kind: 'local', nodeId: node.id, nodeName: node.name });
    const released = await releaseExecution(ns.db, node, claimed.id, `node ${node.name} could not run it: cannot reach postgres://etl:hunter2-secret@warehouse.internal/dw`);
    expect(released?.newExecutionId).toEqual(expect.any(Number));
    const failed = await ns.getExecution(claimed.id);
    expect(failed?.status).toBe('FAILED');
    expect(failed?.exitStatus.description).toContain('cannot reach postgres://etl:***@warehouse.internal/dw');
    expect(JSON.stringify(failed)).not.toContain('hunter2');
  });

  it("without authentication ('none') acts as anonymous, still checks the Host, and records actions", async () => {
    const { ns, app } = await setup('sec-none', { tokens: 'none' });
    expect((await app.inject({ url: '/api/session' })).json()).toEqual({ name: 'anonymous', role: 'operator', via: 'none', expiresAt: null });
    expect((await app.inject({ method: 'POST', url: '/api/jobs/noop/executions', headers: JSON_BODY, payload: '{}' })).statusCode).toBe(202);
    expect((await app.inject({ url: '/api/jobs', headers: { host: 'evil.test' } })).statusCode).toBe(403);
    const [entry] = (await app.inject({ url: '/api/audit' })).json() as { actor: string; action: string }[];
    expect(entry).toMatchObject({ actor: 'anonymous', action: 'job.submit' });
    expect(await ns.listExecutions()).toHaveLength(1);
  });

  itWhen(backend.name === 'postgres', 'PostgreSQL only: an unreachable server')('answers 503 with a generic body while the repository is unreachable, logs the details, and recovers', async () => {
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(PG_BASE).port || 5432));
    opened.push(proxy);
    const schema = new URL(backend.freshUrl('sec-down')).searchParams.get('schema');
    const url = new URL(PG_BASE);
    url.host = `127.0.0.1:${proxy.port}`;
    url.password = 'hunter2-db-password';
    url.searchParams.set('schema', schema!);
    // As `serve` does: connection errors are retried briefly, so that an outage answers 503 soon.
    url.searchParams.set('connect_retry_ms', '1000');
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
    const { ns, app } = await setup('sec-down', { logger }, url.toString());
    await scheduleAdmin({ db: ns.db, jobs }).add({ name: 'nightly', job: 'noop', cron: '0 0 2 * * ?' });
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    await proxy.cut();
    const down = [
      await app.inject({ url: '/api/executions', headers: VIEWER }),
      await app.inject({ url: '/api/executions/1', headers: VIEWER }),
      await app.inject({ url: '/api/schedules', headers: VIEWER }),
      await app.inject({ url: '/api/nodes', headers: VIEWER }),
      await app.inject({ method: 'POST', url: '/api/jobs/noop/executions', headers: { ...OPERATOR, ...JSON_BODY }, payload: '{}' }),
    ];
    // The scrape succeeds, as an exporter's does, and says the repository is down.
    const metrics = await app.inject({ url: '/metrics', headers: VIEWER });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('nightshift_repository_up 0\n');
    expect(metrics.body).not.toMatch(/^nightshift_executions\{/m);
    // The process itself is alive: a liveness probe must not restart it for the database's outage.
    const live = await app.inject({ url: '/livez' });
    expect([live.statusCode, live.json()]).toEqual([200, { status: 'ok' }]);
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(503);
    for (const r of down) {
      expect(r.statusCode, r.body).toBe(503);
      expect(r.json()).toEqual({ error: 'the job repository is unavailable; try again later' });
      expect(r.headers['retry-after']).toBe('5');
    }
    // The config's jobs need no repository: the console's Jobs page and launch forms stay.
    const listed = await app.inject({ url: '/api/jobs', headers: VIEWER });
    expect(listed.statusCode, listed.body).toBe(200);
    expect((listed.json() as { name: string; launchable: boolean }[]).map((j) => [j.name, j.launchable])).toEqual(jobs.map((j) => [j.name, true]));
    const health = await app.inject({ url: '/healthz' });
    expect(health.statusCode).toBe(503);
    expect(health.body).not.toMatch(/127\.0\.0\.1|postgres|ECONN/);
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(503);
    const log = lines.join('');
    expect(log).toMatch(/"level":50.*ECONNREFUSED|"level":50.*Connection terminated/);
    expect(log).toContain('"route":"/api/executions"');
    // Each error once, by its type: not its cause appended again, nor an empty "caused by" (pino's serializer).
    expect(log).not.toContain('"type":"Object"');
    expect(log).not.toMatch(/caused by: "|(ECONNREFUSED \S+): connect \1|(Connection terminated[^"]*): Connection terminated/);
    expect(log).not.toContain('hunter2-db-password');
    expect(log).not.toContain('alice-operator-secret');
    await proxy.restore();
    expect((await app.inject({ url: '/api/executions', headers: VIEWER })).statusCode).toBe(200);
    expect((await app.inject({ url: '/metrics', headers: VIEWER })).body).toContain('nightshift_repository_up 1\n');
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('API tokens and sessions', () => {
  afterAll(() => sqlite.cleanup());

  it('parses NAME:ROLE:SECRET entries and names a bad one without showing its secret', () => {
    expect(loadTokens({ env: ' alice:operator:s3cret:with:colons , bob:viewer:b0b,' })).toEqual([
      { name: 'alice', role: 'operator', secret: 's3cret:with:colons' },
      { name: 'bob', role: 'viewer', secret: 'b0b' },
    ]);
    const bad = (env: string, message: string) => {
      expect(() => loadTokens({ env }), env).toThrow(message);
      try {
        loadTokens({ env });
      } catch (err) {
        expect(String(err)).not.toMatch(/topsecret/);
      }
    };
    bad('alice:admin:topsecret', 'NIGHTSHIFT_API_TOKENS entry 1 (alice): role must be viewer or operator, got "admin"');
    bad('a:viewer:x,topsecret', 'NIGHTSHIFT_API_TOKENS entry 2: expected NAME:ROLE:SECRET');
    bad('a:viewer:', 'NIGHTSHIFT_API_TOKENS entry 1 (a): the secret is empty');
    bad('bad name:viewer:topsecret', 'NIGHTSHIFT_API_TOKENS entry 1: token name "bad name" is not valid (letters, digits and . _ @ -, at most 64)');
    bad('a:viewer:topsecret,a:operator:other', 'NIGHTSHIFT_API_TOKENS entry 2: token name a is given twice');
    bad('a:viewer:topsecret,b:operator:topsecret', 'NIGHTSHIFT_API_TOKENS entry 2 (b): has the same secret as token a; give each token its own');
  });

  it('keeps sessions without storage: signed, expiring, tied to the token', () => {
    const auth = createAuthenticator([{ name: 'alice', role: 'operator', secret: 'a-secret' }], 60_000);
    const { value, expiresAt } = auth.createSession({ name: 'alice', role: 'operator', via: 'bearer' }, 1_000_000);
    expect(expiresAt.getTime()).toBe(1_060_000);
    expect(auth.session(value, 1_059_999)).toMatchObject({ name: 'alice', role: 'operator', via: 'session' });
    expect(auth.session(value, 1_060_000)).toBeUndefined();
    expect(auth.session(value.slice(0, -2) + (value.endsWith('AA') ? 'AB' : 'AA'), 1_000_001)).toBeUndefined();
    // The same token on another server verifies it; a changed secret does not.
    expect(createAuthenticator([{ name: 'alice', role: 'viewer', secret: 'a-secret' }]).session(value, 1_000_001)).toMatchObject({ role: 'viewer' });
    expect(createAuthenticator([{ name: 'alice', role: 'operator', secret: 'b-secret' }]).session(value, 1_000_001)).toBeUndefined();
    expect(auth.bearer('a-secret')).toEqual({ name: 'alice', role: 'operator', via: 'bearer' });
    expect(auth.bearer('a-secre')).toBeUndefined();
    expect(auth.bearer('')).toBeUndefined();
  });
});

