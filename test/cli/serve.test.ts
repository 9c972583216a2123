/**
 * `nightshift serve` as a real process (SPEC section 7a): it needs API tokens (or
 * --insecure-no-auth on a loopback address), serves the console, the REST API and the metrics
 * until SIGTERM, closes a request whose body does not arrive in time, answers 503 while its
 * database is unreachable, and refuses bad options with exit 2 and one line naming them.
 */
import { get } from 'node:http';
import { connect, createServer } from 'node:net';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backends, PG_BASE, waitFor } from '../support/backends.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { cliFor, expectOneLineError, runCli, spawnCli, type CliChild } from './run-cli.ts';

const [sqlite, postgres] = backends();
const TOKENS = 'alice:operator:alice-operator-secret,victor:viewer:victor-viewer-secret';
const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

/** Waits for serve's "listening on URL" line; returns the URL. */
const listening = (server: CliChild) => waitFor(() => /listening on (http:\/\/\S+)/.exec(server.stdout())?.[1], 30_000, `the listening line (stderr: ${server.stderr()})`);

describe('nightshift serve', () => {
  afterAll(async () => {
    await sqlite.cleanup();
    await postgres.cleanup();
  });

  it('serves the API and /metrics to token holders, the console and /healthz to anyone, and exits 0 on SIGTERM', async () => {
    const cli = cliFor(sqlite.freshUrl('serve'));
    expect((await cli.run(['run', 'count', 'items=7'])).code).toBe(0);
    const server = cli.spawn(['serve', '--port', '0'], { env: { NIGHTSHIFT_API_TOKENS: TOKENS } });
    try {
      const base = await listening(server);
      expect((await fetch(`${base}/api/executions`)).status).toBe(401);
      expect((await fetch(`${base}/api/executions`, { headers: bearer('nope') })).status).toBe(401);
      const executions = (await (await fetch(`${base}/api/executions`, { headers: bearer('victor-viewer-secret') })).json()) as { jobName: string; status: string }[];
      expect(executions).toEqual([expect.objectContaining({ jobName: 'count', status: 'COMPLETED' })]);
      const page = await fetch(`${base}/`);
      expect(await page.text()).toContain('<title>Nightshift</title>');
      expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/favicon.ico`)).status).toBe(200);
      expect((await fetch(`${base}/metrics`)).status).toBe(401);
      const metrics = await fetch(`${base}/metrics`, { headers: bearer('victor-viewer-secret') });
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await metrics.text()).toContain('nightshift_executions{job="count",status="COMPLETED"} 1');
      // A viewer cannot act; an operator can, and the audit log names them.
      const submit = (secret: string) => fetch(`${base}/api/jobs/count/executions`, { method: 'POST', headers: { ...bearer(secret), 'content-type': 'application/json' }, body: '{"params":{"items":3}}' });
      expect((await submit('victor-viewer-secret')).status).toBe(403);
      expect((await submit('alice-operator-secret')).status).toBe(202);
      const audit = (await (await fetch(`${base}/api/audit`, { headers: bearer('victor-viewer-secret') })).json()) as { actor: string; outcome: string }[];
      // Newest first: the API's two, then the CLI's run before serve started.
      expect(audit.map((a) => [a.actor.replace(/^cli:.*/, 'cli'), a.outcome])).toEqual([['alice', 'ok'], ['victor', 'forbidden'], ['cli', 'ok']]);
      // The tokens' secrets never reach the log.
      expect(server.stderr()).not.toMatch(/secret/);
      server.child.kill('SIGTERM');
      const end = await server.exited;
      expect(end.code, end.stderr).toBe(0);
      // Its log ends saying so.
      const said = end.stderr.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { msg: string }).msg);
      expect(said.slice(-2)).toEqual(['stopping: no new connections; finishing the requests under way', 'stopped']);
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  it('on --host 0.0.0.0 says it listens on every address, and warns until --allowed-hosts names how clients call it', async () => {
    const cli = cliFor(sqlite.freshUrl('servewild'));
    for (const [extra, warns] of [[[], true], [['--allowed-hosts', 'nightshift.example.com'], false]] as [string[], boolean][]) {
      const server = cli.spawn(['serve', '--host', '0.0.0.0', '--port', '0', ...extra], { env: { NIGHTSHIFT_API_TOKENS: TOKENS } });
      try {
        const base = await listening(server);
        expect(server.stdout()).toMatch(/^listening on http:\/\/127\.0\.0\.1:\d+ and every other address of this machine \(--host 0\.0\.0\.0\)$/m);
        expect((await fetch(`${base}/healthz`)).status).toBe(200);
        await waitFor(() => server.stderr().includes('serving the API'), 10_000, 'the serving line');
        expect(server.stderr().includes('refused (403) until --allowed-hosts'), server.stderr()).toBe(warns);
        const port = new URL(base).port;
        // fetch cannot set Host; http.get can.
        const named = await new Promise<number | undefined>((resolve, reject) => {
          get({ host: '127.0.0.1', port, path: '/healthz', headers: { host: `nightshift.example.com:${port}` } }, (res) => (res.resume(), resolve(res.statusCode))).on('error', reject);
        });
        expect(named).toBe(warns ? 403 : 200);
      } finally {
        server.child.kill('SIGKILL');
      }
    }
  });

  it('warns of a short API token by name, never showing it, and serves', async () => {
    const cli = cliFor(sqlite.freshUrl('serveshort'));
    const server = cli.spawn(['serve', '--port', '0'], { env: { NIGHTSHIFT_API_TOKENS: 'alice:operator:alice-operator-secret,bob:viewer:b0bpw1' } });
    try {
      const base = await listening(server);
      expect((await fetch(`${base}/api/executions`, { headers: bearer('b0bpw1') })).status).toBe(200);
      expect(server.stderr()).toMatch(/API token bob is short \(6 characters\)/);
      expect(server.stderr()).not.toMatch(/API token alice/);
      expect(server.stderr()).not.toContain('b0bpw1');
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  it('takes tokens from --tokens-file; serves without them only with --insecure-no-auth on a loopback address', async () => {
    const cli = cliFor(sqlite.freshUrl('serve-file'));
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-tokens-'));
    const file = join(dir, 'tokens');
    writeFileSync(file, '# who may use the API\nalice:operator:alice-file-secret\n\nvictor:viewer:victor-file-secret\n');
    chmodSync(file, 0o600);
    const withFile = cli.spawn(['serve', '--port', '0', '--tokens-file', file]);
    const open = cli.spawn(['serve', '--port', '0', '--insecure-no-auth']);
    try {
      const base = await listening(withFile);
      expect((await fetch(`${base}/api/jobs`, { headers: bearer('victor-file-secret') })).status).toBe(200);
      expect((await fetch(`${base}/api/jobs`)).status).toBe(401);
      const openBase = await listening(open);
      expect((await fetch(`${openBase}/api/jobs`)).status).toBe(200);
      const me = (await (await fetch(`${openBase}/api/session`)).json()) as { name: string };
      expect(me.name).toBe('anonymous');
      // Still no DNS rebinding: a foreign Host is refused.
      const rebound = await rawRequest(Number(new URL(openBase).port), 'GET /api/jobs HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n');
      expect(rebound).toMatch(/^HTTP\/1\.1 403 /);
      expect(open.stderr()).toMatch(/serving without authentication/);
    } finally {
      for (const s of [withFile, open]) s.child.kill('SIGTERM');
      for (const s of [withFile, open]) expect((await s.exited).code).toBe(0);
    }
  });

  it('refuses to start without tokens, with a malformed token, or without authentication off loopback: exit 2, one line', async () => {
    const cli = cliFor(sqlite.freshUrl('serve-refuse'));
    const results = await Promise.all([
      cli.run(['serve', '--port', '0']),
      cli.run(['serve', '--port', '0'], { env: { NIGHTSHIFT_API_TOKENS: 'alice:admin:hush-hush-secret' } }),
      cli.run(['serve', '--port', '0'], { env: { NIGHTSHIFT_API_TOKENS: 'alice:operator:a1,hush-hush-secret' } }),
      cli.run(['serve', '--port', '0', '--host', '0.0.0.0', '--insecure-no-auth']),
      cli.run(['serve', '--port', '0', '--insecure-no-auth'], { env: { NIGHTSHIFT_API_TOKENS: TOKENS } }),
      cli.run(['serve', '--port', '0', '--tokens-file', '/nonexistent/tokens']),
    ]);
    expectOneLineError(results[0], /^nightshift: no API token is configured: set NIGHTSHIFT_API_TOKENS=NAME:ROLE:SECRET .* or serve without authentication on this machine only with --insecure-no-auth$/);
    expectOneLineError(results[1], /^nightshift: NIGHTSHIFT_API_TOKENS entry 1 \(alice\): role must be viewer or operator, got "admin"$/);
    expectOneLineError(results[2], /^nightshift: NIGHTSHIFT_API_TOKENS entry 2: expected NAME:ROLE:SECRET$/);
    expectOneLineError(results[3], /^nightshift: --insecure-no-auth serves on a loopback address only \(127\.0\.0\.1, ::1 or localhost\), not 0\.0\.0\.0$/);
    expectOneLineError(results[4], /^nightshift: --insecure-no-auth serves without tokens, but tokens are configured/);
    expectOneLineError(results[5], /^nightshift: cannot read the tokens file \/nonexistent\/tokens: /);
    for (const r of results) expect(r.stderr).not.toContain('hush-hush-secret');
  });

  it("believes X-Forwarded-For only from the proxy's addresses: a client past the proxy cannot choose its address", async () => {
    const cli = cliFor(sqlite.freshUrl('serve-proxy'));
    // Created beforehand: serve logs the creation of a new repository (one info line).
    expect((await cli.run(['migrate'])).code).toBe(0);
    const env = { NIGHTSHIFT_API_TOKENS: TOKENS };
    // Bare, the flag is for a proxy on this machine: off loopback it needs the proxy's addresses.
    const refused = await Promise.all([
      cli.run(['serve', '--port', '0', '--host', '0.0.0.0', '--trust-proxy'], { env }),
      cli.run(['serve', '--port', '0', '--trust-proxy', 'proxy.example.com'], { env }),
    ]);
    expectOneLineError(refused[0], /^nightshift: --trust-proxy on 0\.0\.0\.0 needs the proxy's addresses \(--trust-proxy 10\.0\.0\.7, or a subnet: 10\.0\.0\.0\/8\)/);
    expectOneLineError(refused[1], /^nightshift: trusted proxy "proxy\.example\.com" is not an IP address or subnet/);
    /** The address the audit log gives to a stop from this client, which says it is `claimed`. */
    const recordedAs = async (base: string, claimed: string) => {
      await fetch(`${base}/api/executions/999/stop`, { method: 'POST', headers: { ...bearer('alice-operator-secret'), 'content-type': 'application/json', 'x-forwarded-for': claimed } });
      const [last] = (await (await fetch(`${base}/api/audit?limit=1`, { headers: bearer('victor-viewer-secret') })).json()) as { remote: string }[];
      return last.remote;
    };
    // The proxy is elsewhere (10.255.255.1): this client reaches the port directly, and what it
    // writes in X-Forwarded-For is not believed: a new address per guess still gets it refused.
    const elsewhere = cli.spawn(['serve', '--port', '0', '--trust-proxy', '10.255.255.1,fd00::/8'], { env });
    try {
      const base = await listening(elsewhere);
      expect(await recordedAs(base, '203.0.113.9')).toBe('127.0.0.1');
      const statuses: number[] = [];
      for (let i = 0; i < 31; i++) {
        statuses.push((await fetch(`${base}/api/jobs`, { headers: { ...bearer(`guess-${i}`), 'x-forwarded-for': `203.0.113.${i}` } })).status);
      }
      expect(statuses.slice(0, 30).every((s) => s === 401)).toBe(true);
      expect(statuses[30]).toBe(429);
    } finally {
      elsewhere.child.kill('SIGKILL');
    }
    // The proxy on this machine: the entry it appends is the client.
    const here = cli.spawn(['serve', '--port', '0', '--trust-proxy'], { env });
    try {
      const base = await listening(here);
      expect(await recordedAs(base, '198.51.100.4, 203.0.113.9')).toBe('203.0.113.9');
    } finally {
      here.child.kill('SIGKILL');
    }
  });

  it('starts without a config when none is given or here: history, stop and abandon work, launching answers 409 saying why; a missing --config is exit 2', async () => {
    const url = sqlite.freshUrl('serve-no-config');
    const cli = cliFor(url);
    expect((await cli.run(['run', 'count', 'items=7'])).code).toBe(0);
    const queued = await cli.json(['submit', 'count', 'items=3', 'tag=queued']);
    const other = await cli.json(['submit', 'count', 'items=4', 'tag=other']);
    const empty = mkdtempSync(join(tmpdir(), 'nightshift-no-config-'));
    const server = spawnCli(['serve', '--port', '0', '--db', url], { cwd: empty, env: { NIGHTSHIFT_API_TOKENS: TOKENS } });
    try {
      const base = await listening(server);
      expect(server.stderr()).toMatch(/"level":40,.*"msg":"no config file \(no --config, no NIGHTSHIFT_CONFIG, no nightshift\.config\.ts here\)/);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const viewer = { headers: bearer('victor-viewer-secret') };
      const listed = (await (await fetch(`${base}/api/executions`, viewer)).json()) as { id: number; status: string }[];
      expect(listed.map((e) => [e.id, e.status])).toEqual([[other.id, 'STARTING'], [queued.id, 'STARTING'], [expect.any(Number), 'COMPLETED']]);
      const act = (path: string, body = '{}') => fetch(`${base}${path}`, { method: 'POST', headers: { ...bearer('alice-operator-secret'), 'content-type': 'application/json' }, body });
      const stopped = await act(`/api/executions/${queued.id}/stop`);
      expect(stopped.status).toBe(200);
      expect(await stopped.json()).toMatchObject({ id: queued.id, status: 'STOPPED' });
      expect(await (await act(`/api/executions/${other.id}/abandon`)).json()).toMatchObject({ id: other.id, status: 'ABANDONED' });
      const launch = await act('/api/jobs/count/executions', '{"params":{"items":3}}');
      expect(launch.status).toBe(409);
      expect(await launch.json()).toEqual({ error: `job "count" is not defined in this server's config: start serve with --config FILE to launch jobs` });
      const restart = await act(`/api/executions/${queued.id}/restart`);
      expect(restart.status).toBe(409);
      expect(await restart.json()).toEqual({ error: `job "count" is not defined in this server's config: start serve with --config FILE to restart executions` });
      // No node is alive: the jobs list is empty, and nothing was launched.
      expect(await (await fetch(`${base}/api/jobs`, viewer)).json()).toEqual([]);
      expect(((await (await fetch(`${base}/api/executions`, viewer)).json()) as unknown[]).length).toBe(3);
      expect(server.stderr()).not.toMatch(/"level":50|stack/);
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
    } finally {
      server.child.kill('SIGKILL');
    }
    // A config that is named but missing still stops serve, from --config or NIGHTSHIFT_CONFIG.
    const env = { NIGHTSHIFT_API_TOKENS: TOKENS };
    const [flag, fromEnv] = await Promise.all([
      runCli(['serve', '--port', '0', '--db', url, '--config', 'missing.config.ts'], { cwd: empty, env }),
      runCli(['serve', '--port', '0', '--db', url], { cwd: empty, env: { ...env, NIGHTSHIFT_CONFIG: 'gone.config.ts' } }),
    ]);
    expectOneLineError(flag, /^nightshift: config file missing\.config\.ts not found$/);
    expectOneLineError(fromEnv, /^nightshift: config file gone\.config\.ts not found$/);
  });

  it('refuses a bad port, and one already in use, with exit 2 and one line', async () => {
    const cli = cliFor(sqlite.freshUrl('serve-bad'));
    // Created beforehand: serve logs the creation of a new repository (one info line).
    expect((await cli.run(['migrate'])).code).toBe(0);
    const env = { NIGHTSHIFT_API_TOKENS: TOKENS };
    const bad = await cli.run(['serve', '--port', '70000'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('nightshift: --port must be at most 65535, got 70000');
    const busy = createServer();
    await new Promise<void>((ok) => busy.listen(0, '127.0.0.1', ok));
    const port = (busy.address() as { port: number }).port;
    try {
      const taken = await cli.run(['serve', '--port', String(port)], { env });
      expect(taken.code).toBe(2);
      expect(taken.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^nightshift: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))]);
    } finally {
      busy.close();
    }
  });

  it('closes a request whose body does not arrive within the request timeout', async () => {
    const cli = cliFor(sqlite.freshUrl('serve-slow'));
    const server = cli.spawn(['serve', '--port', '0', '--request-timeout', '1000'], { env: { NIGHTSHIFT_API_TOKENS: TOKENS } });
    try {
      const port = Number(new URL(await listening(server)).port);
      const started = Date.now();
      // The head says 1000 bytes of body; only a few come, and then nothing.
      const answer = await rawRequest(port, 'POST /api/jobs/noop/executions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer alice-operator-secret\r\n' +
        'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"par', 20_000);
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      // Nothing was submitted.
      const list = await fetch(`http://127.0.0.1:${port}/api/executions`, { headers: bearer('victor-viewer-secret') });
      expect(await list.json()).toEqual([]);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('starts and answers 503 while its PostgreSQL is unreachable, with the details in its log only, and recovers', async () => {
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(PG_BASE).port || 5432));
    const schema = new URL(postgres.freshUrl('serve-down')).searchParams.get('schema')!;
    const url = new URL(PG_BASE);
    url.host = `127.0.0.1:${proxy.port}`;
    url.password = 'hunter2-db-password';
    url.searchParams.set('schema', schema);
    const cli = cliFor(url.toString());
    // Unreachable from the start: serve starts anyway, and creates its schema once it can.
    await proxy.cut();
    const server = cli.spawn(['serve', '--port', '0'], { env: { NIGHTSHIFT_API_TOKENS: TOKENS } });
    try {
      const base = await listening(server);
      const viewer = { headers: bearer('victor-viewer-secret') };
      expect((await fetch(`${base}/healthz`)).status).toBe(503);
      expect((await fetch(`${base}/api/jobs/noop/executions`, { method: 'POST', headers: { ...bearer('alice-operator-secret'), 'content-type': 'application/json' }, body: '{}' })).status).toBe(503);
      await proxy.restore();
      await waitFor(async () => (await fetch(`${base}/api/executions`, viewer)).status === 200, 20_000, 'the API once the database answers');
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      await proxy.cut();
      for (const path of ['/api/executions', '/api/nodes', '/api/schedules']) {
        const r = await fetch(`${base}${path}`, viewer);
        expect(r.status, path).toBe(503);
        expect(await r.json()).toEqual({ error: 'the job repository is unavailable; try again later' });
      }
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(503);
      expect(await health.text()).not.toMatch(/postgres|127\.0\.0\.1|ECONN/);
      const log = await waitFor(() => (/ECONNREFUSED|Connection terminated/.test(server.stderr()) ? server.stderr() : undefined), 10_000, 'the details in the log');
      expect(log).toMatch(/^\{.*"level":50/m);
      expect(log).not.toContain('hunter2-db-password');
      expect(log).not.toContain('secret');
      await proxy.restore();
      await waitFor(async () => (await fetch(`${base}/api/executions`, viewer)).status === 200, 20_000, 'the API to recover');
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
    } finally {
      server.child.kill('SIGKILL');
      await proxy.close();
    }
  });
});

/** Sends raw bytes over HTTP/1.1 and resolves with what comes back until the server closes. */
function rawRequest(port: number, text: string, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection within ${timeoutMs} ms; got ${JSON.stringify(answer)}`));
    }, timeoutMs);
    socket.setEncoding('utf8').on('data', (d: string) => (answer += d));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.on('error', () => undefined);
  });
}
