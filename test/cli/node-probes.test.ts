/**
 * `nightshift node --health-port`: a node's liveness and readiness over HTTP, for a load
 * balancer or Kubernetes, from the node's own health. A real node process on SQLite.
 */
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { backends, waitFor } from '../support/backends.ts';
import { killAll, startNode } from '../support/node-procs.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLES, cliFor, expectOneLineError, spawnCli } from './run-cli.ts';

const sqlite = backends().find((b) => b.name === 'sqlite')!;

afterAll(async () => {
  await killAll();
  await sqlite.cleanup();
});

const probe = async (url: string, init: RequestInit = {}) => {
  const r = await fetch(url, init);
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined, headers: r.headers };
};

describe('nightshift node --health-port', () => {
  it('answers /livez and /readyz from the node: ready while it takes work, not ready while drained, closed once it left', async () => {
    const url = sqlite.freshUrl('probes');
    const cli = cliFor(url);
    const node = startNode(url, 'probed', { args: ['--heartbeat-ms', '200', '--lease-ms', '3000', '--health-port', '0'] });
    const base = await waitFor(() => /probes at (http:\/\/127\.0\.0\.1:\d+)\/livez/.exec(node.output())?.[1], 30_000, 'the probes to listen');

    const ready = await waitFor(async () => {
      const r = await probe(`${base}/readyz`);
      return r.status === 200 ? r : undefined;
    }, 20_000, 'the node to be ready');
    expect(ready.body).toMatchObject({ state: 'running', ready: true, leaseCurrent: true, running: 0, leaseMs: 3000 });
    expect(ready.headers.get('content-type')).toMatch(/^application\/json/);
    expect(ready.headers.get('cache-control')).toBe('no-store');
    expect(await probe(`${base}/livez`)).toMatchObject({ status: 200, body: { state: 'running' } });
    expect(await probe(`${base}/readyz`, { method: 'HEAD' })).toMatchObject({ status: 200, body: undefined });
    expect(await probe(`${base}/metrics`)).toMatchObject({ status: 404, body: { error: 'not found: the probes are /livez and /readyz' } });
    expect(await probe(`${base}/livez`, { method: 'POST' })).toMatchObject({ status: 405 });

    // Drained: it takes no work, so it is not ready, yet alive (a restart would not help).
    expect((await cli.run(['drain', 'probed'])).code).toBe(0);
    const drained = await waitFor(async () => {
      const r = await probe(`${base}/readyz`);
      return r.status === 503 ? r : undefined;
    }, 20_000, 'the drained node to say it is not ready');
    expect(drained.body).toMatchObject({ state: 'draining', ready: false });
    expect(await probe(`${base}/livez`)).toMatchObject({ status: 200, body: { state: 'draining' } });

    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
    await expect(fetch(`${base}/livez`)).rejects.toThrow();
  });

  it('refuses a bad port with exit 2, and one it cannot bind with exit 2 before joining the cluster', async () => {
    const url = sqlite.freshUrl('probesbad');
    const cli = cliFor(url);
    expectOneLineError(await cli.run(['node', '--health-port', '70000']), /^nightshift: --health-port must be at most 65535, got 70000$/);
    expectOneLineError(await cli.run(['node', '--health-port', 'x']), /--health-port/);

    const taken = createServer();
    await new Promise<void>((listening) => taken.listen(0, '127.0.0.1', listening));
    const port = (taken.address() as { port: number }).port;
    try {
      const node = startNode(url, 'unbound', { args: ['--health-port', String(port)] });
      const exit = await node.exited;
      expect(exit.code, node.output()).toBe(2);
      expect(node.output()).toContain(`nightshift: cannot serve the probes on 127.0.0.1:${port} (--health-host, --health-port): listen EADDRINUSE`);
      // Checked before the node joins: it never did.
      expect(node.output()).not.toContain('joined');
    } finally {
      taken.close();
    }
  });

  it('warns when no --db or NIGHTSHIFT_DB names the repository, so a deployment that lost its URL does not run alone unnoticed', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'nightshift-nodb-'));
    const node = spawnCli(['node', '--name', 'alone', '--config', EXAMPLES, '--health-port', '0'], { cwd, env: { NIGHTSHIFT_LOG_LEVEL: 'info' } });
    await waitFor(() => /probes at http/.test(node.stderr()) || undefined, 30_000, 'the node to start');
    node.child.kill('SIGTERM');
    const r = await node.exited;
    expect(r.code, r.stderr).toBe(0);
    const warning = r.stderr.split('\n').find((l) => l.includes('no --db or NIGHTSHIFT_DB'));
    expect(JSON.parse(warning!)).toMatchObject({ level: 40, msg: expect.stringContaining(`this node's repository is sqlite:nightshift.db in ${cwd}`) });
  });

  it('answers while the node waits for its database: live (a restart would not help), not ready', async () => {
    // Nothing listens on port 1: the node retries for connect_retry_ms, then gives up (exit 2).
    const node = startNode('postgres://postgres@127.0.0.1:1/test?connect_retry_ms=6000', 'waiting', { args: ['--health-port', '0'] });
    const base = await waitFor(() => /probes at (http:\/\/127\.0\.0\.1:\d+)\/livez/.exec(node.output())?.[1], 30_000, 'the probes to listen');
    expect(await probe(`${base}/livez`)).toMatchObject({ status: 200, body: { state: 'starting' } });
    expect(await probe(`${base}/readyz`)).toMatchObject({ status: 503, body: { state: 'starting', ready: false } });
    expect((await node.exited).code).toBe(2);
    expect(node.output()).toMatch(/cannot connect to postgres:\/\/postgres@127\.0\.0\.1:1\/test/);
  });
});
