/**
 * What an application that runs a node in its own process needs around it (Kubernetes probes and
 * a stop grace): `node.health()` follows the node's state and its lease (the database cut off by
 * a real TCP proxy), and `node.shutdown({ timeoutMs })` leaves within the grace with a step still
 * in a long chunk, which a real peer `nightshift node` process then resumes, exactly once; the
 * CLI's `node --stop-timeout-ms` does the same on SIGTERM.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { count, noop } from '../../examples/nightshift.config.ts';
import { createLogger, silentLogger } from '../../src/core/logger.ts';
import { startNode as startNodeHere, type ClusterNode } from '../../src/cluster/node.ts';
import { createNightshift } from '../../src/operator.ts';
import { DatabaseUnreachableError } from '../../src/index.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { instanceExecutions, killAll, pgBackend, startNode, waitAlive, waitFor } from './helpers.ts';

const backend = pgBackend();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await killAll();
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(() => backend.cleanup());

describe('a node embedded in an application (PostgreSQL)', () => {
  it('a database that refuses at start-up fails at once with the exported DatabaseUnreachableError, naming the URL and the cause', async () => {
    const proxy = await startTcpProxy('127.0.0.1', 5432);
    await proxy.cut();
    cleanups.push(() => proxy.close());
    const url = backend.freshUrl('refused').replace('@127.0.0.1:5432/', `@127.0.0.1:${proxy.port}/`);
    const t0 = performance.now();
    const err = await startNodeHere({ db: url, jobs: [noop], logger: silentLogger }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseUnreachableError);
    expect((err as Error).message).toMatch(new RegExp(`^cannot connect to postgres://postgres@127\\.0\\.0\\.1:${proxy.port}/test.*ECONNREFUSED`));
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('given a Database that lets a transaction sit idle past its lease, it says so once at start; given one bounded by the lease, nothing', async () => {
    const url = backend.freshUrl('idle');
    const said: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void said.push((JSON.parse(line) as { msg: string }).msg) } });
    const lease = { heartbeatMs: 200, leaseMs: 3000 };
    for (const idleInTransactionMs of [undefined, 10_000, 3000]) {
      const db = await openDatabase(url, { poolSize: 8, ...(idleInTransactionMs === undefined ? {} : { idleInTransactionMs }) });
      cleanups.push(() => db.close());
      const node = await startNodeHere({ db, jobs: [noop], logger, lease });
      await node.shutdown({ timeoutMs: 0 });
    }
    expect(said).toEqual([
      'the Database this node was given lets a transaction sit idle for ever (idle_in_transaction_session_timeout): open it with idleInTransactionMs: 3000 (the lease) or less, so that a paused node\'s locks are released by the time its lease runs out',
      'the Database this node was given lets a transaction sit idle for 10000 ms (idle_in_transaction_session_timeout): open it with idleInTransactionMs: 3000 (the lease) or less, so that a paused node\'s locks are released by the time its lease runs out',
    ]);
  });

  it('health() follows its state and whether its lease is being renewed', async () => {
    const proxy: TcpProxy = await startTcpProxy('127.0.0.1', 5432);
    cleanups.push(() => proxy.close());
    const url = backend.freshUrl('health').replace('@127.0.0.1:5432/', `@127.0.0.1:${proxy.port}/`);
    expect(url).toContain(`:${proxy.port}/`);
    const node: ClusterNode = await startNodeHere({ db: url, jobs: [noop], logger: silentLogger, lease: { heartbeatMs: 200, leaseMs: 800 } });
    cleanups.push(() => node.shutdown({ timeoutMs: 0 }));
    const up = await waitFor(() => (node.health().ready ? node.health() : undefined), 5000, 'the node ready');
    expect(up).toMatchObject({ state: 'running', leaseCurrent: true, leaseMs: 800, running: 0 });
    expect(up.sinceLeaseRenewedMs).toBeGreaterThanOrEqual(0);
    expect(up.sinceLeaseRenewedMs).toBeLessThan(800);

    await node.drain();
    expect(node.health()).toMatchObject({ state: 'draining', ready: false, leaseCurrent: true });
    await node.resume();
    expect(node.health()).toMatchObject({ state: 'running', ready: true });

    // The database goes away: the lease is no longer renewed, so the node is not ready (nor, by
    // its peers' reckoning, alive); it is still running, and recovers when the database returns.
    await proxy.cut();
    const cut = await waitFor(() => (node.health().leaseCurrent ? undefined : node.health()), 5000, 'the lease to lapse');
    expect(cut).toMatchObject({ state: 'running', ready: false });
    expect(cut.sinceLeaseRenewedMs).toBeGreaterThanOrEqual(800);
    await proxy.restore();
    await waitFor(() => node.health().ready, 15_000, 'the node ready again');

    const stopping = node.shutdown();
    expect(node.health().state).toBe('stopping');
    await stopping;
    expect(node.health()).toMatchObject({ state: 'stopped', ready: false, leaseCurrent: false, sinceLeaseRenewedMs: null });
  }, 40_000);

  it('shutdown({ timeoutMs }) leaves within the timeout while a chunk runs on, and a peer resumes the work exactly once', async () => {
    const url = backend.freshUrl('shutdown-timeout');
    // One pool for the node and the operator, as an application shares it: the node leaves it open.
    const db = await openDatabase(url);
    cleanups.push(() => db.close());
    const ns = await createNightshift({ db, jobs: [count], logger: silentLogger });
    cleanups.push(() => ns.close());
    const node = await startNodeHere({ db, name: 'app-1', jobs: [count, noop], logger: silentLogger });
    // Chunks of 10 items at 600 ms each: 6 s a chunk, far longer than the timeout below (a
    // shutdown without it waits for the chunk's end).
    const submitted = await ns.submit('count', { items: 20, chunk: 10, tag: 'grace', delayMs: 600 });
    await waitFor(() => node.running().includes(submitted.id), 10_000, 'the node to run the execution');
    const peer = startNode(url, 'peer');
    await waitAlive(ns, ['peer']);

    const t0 = performance.now();
    await node.shutdown({ timeoutMs: 300 });
    const took = performance.now() - t0;
    expect(took).toBeLessThan(4000);
    expect(node.health().state).toBe('stopped');

    const end = await ns.waitForEnd(submitted.id, { timeoutMs: 30_000 });
    expect(end.status).toBe('COMPLETED');
    expect(end.node).toContain('peer');
    const rows = await db.query<{ n: number; d: number }>(`SELECT count(*)::int AS n, count(DISTINCT item)::int AS d FROM count_items WHERE tag = 'grace'`);
    expect(rows[0]).toEqual({ n: 20, d: 20 });
    const all = await instanceExecutions(ns, submitted.id);
    expect(all.filter((e) => ['STARTING', 'STARTED', 'STOPPING'].includes(e.status))).toEqual([]);
    // The step this process left behind ends on its own (its commit is fenced) before the pool closes.
    await waitFor(() => node.running().length === 0, 15_000, 'the step left behind to end');
    expect(peer.exit).toBeUndefined();
  }, 60_000);

  it('nightshift node --stop-timeout-ms: on SIGTERM it exits 0 within the timeout while a chunk runs on, and a peer resumes the work exactly once', async () => {
    const url = backend.freshUrl('stop-timeout-cli');
    const ns = await createNightshift({ db: url, jobs: [count], logger: silentLogger });
    cleanups.push(() => ns.close());
    const a = startNode(url, 'a', { args: ['--stop-timeout-ms', '300'] });
    await waitAlive(ns, ['a']);
    const submitted = await ns.submit('count', { items: 20, chunk: 10, tag: 'cli-grace', delayMs: 600 }, { node: 'a' });
    await waitFor(async () => (await ns.getExecution(submitted.id))?.status === 'STARTED', 10_000, 'a to run the execution');
    startNode(url, 'b');
    await waitAlive(ns, ['b']);

    const t0 = performance.now();
    a.child.kill('SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(performance.now() - t0).toBeLessThan(4000);
    expect(a.output()).toContain('did not stop within 300 ms');

    const end = await ns.waitForEnd(submitted.id, { timeoutMs: 30_000 });
    expect(end.status).toBe('COMPLETED');
    const rows = await ns.db.query<{ n: number; d: number }>(`SELECT count(*)::int AS n, count(DISTINCT item)::int AS d FROM count_items WHERE tag = 'cli-grace'`);
    expect(rows[0]).toEqual({ n: 20, d: 20 });
    const all = await instanceExecutions(ns, submitted.id);
    expect(all.filter((e) => ['STARTING', 'STARTED', 'STOPPING'].includes(e.status))).toEqual([]);
  }, 60_000);
});
