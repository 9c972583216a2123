/**
 * A database that is not up yet when a command or node starts (services started together, as in
 * a container composition): by default a refused connection fails at once, naming the cause (a
 * wrong URL is likelier than an outage); with `?connect_retry_ms=` in the URL the command waits
 * for the database that long from the start and then runs. PostgreSQL only: the database here
 * comes up behind a TCP port that starts listening late, or (DNS) has a host name that does
 * not resolve, as a service's name in a container composition before its container is up.
 */
import { createServer, connect, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/repository/open.ts';
import { EXAMPLES, runCli } from '../cli/run-cli.ts';
import { pgBackend } from '../cluster/helpers.ts';

const backend = pgBackend();
const servers: Server[] = [];

afterAll(async () => {
  for (const s of servers) s.close();
  await backend.cleanup();
});

/** A free local port, with nothing listening on it yet, and a way to start forwarding it to PostgreSQL. */
async function latePort(): Promise<{ port: number; open: () => void }> {
  const probe = createServer();
  const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)));
  await new Promise((r) => probe.close(r));
  const pgPort = Number(new URL(backend.freshUrl('x')).port || 5432);
  const server = createServer((client) => {
    const upstream = connect(pgPort, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  servers.push(server);
  return { port, open: () => server.listen(port, '127.0.0.1') };
}

/** `url` with its port replaced. */
function viaPort(url: string, port: number, extra = ''): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString() + extra;
}

describe('a database that comes up after the command started (postgres)', () => {
  it('without connect_retry_ms, a refused connection fails at once, naming the cause', async () => {
    const { port } = await latePort();
    const started = Date.now();
    const r = await runCli(['executions', '--db', viaPort(backend.freshUrl('refused'), port), '--config', EXAMPLES]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot connect/i);
    expect(r.stderr).toMatch(/ECONNREFUSED|refused/i);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('with connect_retry_ms, the command waits for the database from the start and then runs', async () => {
    const { port, open } = await latePort();
    // A repository that exists (`executions` refuses a schema without one, see test/cli/bad-input).
    const repository = backend.freshUrl('late');
    await (await openDatabase(repository)).close();
    const url = viaPort(repository, port, '&connect_retry_ms=20000');
    const started = Date.now();
    const command = runCli(['executions', '--json', '--db', url, '--config', EXAMPLES]);
    // The database comes up a moment after the command started.
    const opening = setTimeout(open, 1500);
    const r = await command;
    clearTimeout(opening);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
  });

  it('with connect_retry_ms, it gives up once that time has passed, saying how long it waited', async () => {
    const { port } = await latePort();
    const started = Date.now();
    const r = await runCli(['executions', '--db', viaPort(backend.freshUrl('never'), port, '&connect_retry_ms=1500'), '--config', EXAMPLES]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot connect/i);
    expect(r.stderr).toMatch(/still failing after 1\.\d s of retries/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  // A name under .invalid never resolves (RFC 2606); the password must not show in any message.
  const unresolvable = (extra = '') => {
    const u = new URL(backend.freshUrl('dns'));
    u.username = 'postgres';
    u.password = 'dns-secret-pw';
    u.hostname = 'nightshift-no-such-host.invalid';
    return u.toString() + extra;
  };

  it('without connect_retry_ms, a host name that does not resolve fails at once, naming the host', async () => {
    const started = Date.now();
    const r = await runCli(['executions', '--db', unresolvable(), '--config', EXAMPLES]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot connect to postgres:\/\/postgres@nightshift-no-such-host\.invalid:5432\//);
    expect(r.stderr).toMatch(/host name "nightshift-no-such-host\.invalid" does not resolve/);
    expect(r.stderr).not.toMatch(/retries/);
    expect(r.stderr).not.toContain('dns-secret-pw');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('with connect_retry_ms, a host name that does not resolve is retried for that long, then fails saying so', async () => {
    const started = Date.now();
    const r = await runCli(['executions', '--db', unresolvable('&connect_retry_ms=1500'), '--config', EXAMPLES]);
    const took = Date.now() - started;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot connect to postgres:\/\/postgres@nightshift-no-such-host\.invalid:5432\//);
    expect(r.stderr).toMatch(/host name "nightshift-no-such-host\.invalid" does not resolve \(ENOTFOUND\) \(still failing after 1\.\d s of retries\)/);
    expect(r.stderr).not.toContain('dns-secret-pw');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(took).toBeGreaterThanOrEqual(1500);
    expect(took).toBeLessThan(15_000);
  });

  it('a programmatic user gets the same error from createNightshift, without the password', async () => {
    const { createNightshift } = await import('../../src/index.ts');
    const started = performance.now();
    const err = await createNightshift({ db: unresolvable('&connect_retry_ms=1000'), jobs: [] }).then(
      async (ns) => {
        await ns.close();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toMatch(/host name "nightshift-no-such-host\.invalid" does not resolve \(ENOTFOUND\) \(still failing after 1\.\d s of retries\)/);
    expect(err!.message).not.toContain('dns-secret-pw');
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
  });
});
