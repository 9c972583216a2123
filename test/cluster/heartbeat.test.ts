import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startHeartbeat } from '../../src/cluster/heartbeat.ts';
import { DEFAULT_LEASE, registerNode } from '../../src/cluster/node-identity.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { backends, waitFor } from '../support/backends.ts';
import { killAll, startNode } from '../support/node-procs.ts';

const noEvents = { onLost: () => undefined, onStopRequested: () => undefined };

describe.each(backends())('heartbeat thread ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('has renewed the lease by the time it reports itself started', async () => {
    const db = await openDatabase(backend.freshUrl('heartbeat'));
    const lease = { ...DEFAULT_LEASE, heartbeatMs: 5000, leaseMs: 20_000 };
    const node = await registerNode(db, { kind: 'process', jobs: [], concurrency: 0, lease });
    // Registration renewed it too: start from a lease that has run out long ago.
    await db.execute('UPDATE ns_node SET last_heartbeat = 0, lease_until = 0 WHERE id = $1', [node.id]);
    const heartbeat = startHeartbeat(db, node, lease, noEvents, silentLogger);
    try {
      const t0 = Date.now();
      await heartbeat.started;
      // Well before the fallback (one interval): it was the first beat that settled it.
      expect(Date.now() - t0).toBeLessThan(lease.heartbeatMs - 1000);
      const [row] = await db.query<{ last_heartbeat: number; lease_until: number }>(
        'SELECT last_heartbeat, lease_until FROM ns_node WHERE id = $1', [node.id],
      );
      expect(Number(row.last_heartbeat)).toBeGreaterThan(0);
      // Both are the database's clock, read twice by the same statement (a millisecond may pass).
      expect(Number(row.lease_until) - Number(row.last_heartbeat) - lease.leaseMs).toBeGreaterThanOrEqual(0);
      expect(Number(row.lease_until) - Number(row.last_heartbeat) - lease.leaseMs).toBeLessThan(50);
    } finally {
      await heartbeat.stop();
      await db.close();
    }
  });

  it('stops once: stopping it again returns at once, not after the wait for an exit that already happened', async () => {
    const db = await openDatabase(backend.freshUrl('heartbeat-stop'));
    const node = await registerNode(db, { kind: 'process', jobs: [], concurrency: 0, lease: DEFAULT_LEASE });
    const heartbeat = startHeartbeat(db, node, DEFAULT_LEASE, noEvents, silentLogger);
    try {
      await heartbeat.started;
      await heartbeat.stop();
      // A second stop used to wait out its 2 s bound: every launch the CLI refused took 2 s more to exit.
      const t0 = Date.now();
      await heartbeat.stop();
      expect(Date.now() - t0).toBeLessThan(1000);
    } finally {
      await db.close();
    }
  });
});

describe('heartbeat thread whose database is unreachable (postgres)', () => {
  const backend = backends().find((b) => b.name === 'postgres')!;
  afterAll(() => backend.cleanup());

  it('still reports itself started, and logs that the heartbeat failed', async () => {
    const db = await openDatabase(backend.freshUrl('heartbeat-down'));
    const lease = { ...DEFAULT_LEASE, heartbeatMs: 5000, leaseMs: 20_000 };
    const node = await registerNode(db, { kind: 'process', jobs: [], concurrency: 0, lease });
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(String(JSON.parse(line).msg)) });
    // The worker opens its own connection from connectUrl: nothing listens on port 1.
    const unreachable = { ...db, connectUrl: 'postgres://postgres@127.0.0.1:1/test' };
    const heartbeat = startHeartbeat(unreachable, node, lease, noEvents, log);
    try {
      const t0 = Date.now();
      await heartbeat.started;
      expect(Date.now() - t0).toBeLessThan(lease.heartbeatMs - 1000);
      expect(warnings).toContain('heartbeat failed; retrying');
    } finally {
      await heartbeat.stop();
      await db.close();
    }
  });
});

describe('heartbeat thread whose beats are slower than its interval (postgres, a real node process)', () => {
  const backend = backends().find((b) => b.name === 'postgres')!;
  afterAll(async () => {
    await killAll();
    await backend.cleanup();
  });

  it('beats one at a time on its one connection: a beat held up by a lock makes the next ones skip, not pile up behind it', async () => {
    const url = backend.freshUrl('heartbeat-slow');
    const node = startNode(url, 'slowbeat', { args: ['--heartbeat-ms', '100', '--lease-ms', '10000', '--no-scheduler', '--no-listen'] });
    const db = await openDatabase(url);
    try {
      const beatOf = async () => (await db.query<{ b: number }>("SELECT last_heartbeat AS b FROM ns_node WHERE name = 'slowbeat' AND status = 'alive'"))[0]?.b;
      await waitFor(async () => (await beatOf()) !== undefined, 20_000, 'the node is alive');
      // The fault: another transaction holds the node's row for 1.5 s, fifteen intervals, so every
      // beat meanwhile would wait behind the first.
      await db.transaction(async (tx) => {
        await tx.query("SELECT id FROM ns_node WHERE name = 'slowbeat' AND status = 'alive' FOR UPDATE");
        await new Promise((r) => setTimeout(r, 1500));
      });
      const [{ now }] = await db.query<{ now: number }>('SELECT ns_now() AS now');
      await waitFor(async () => Number(await beatOf()) > Number(now), 10_000, 'the node beats again after the lock');
      // pg warns when a query is sent on a client still running one (pg 9 will refuse it).
      expect(node.output()).not.toMatch(/already executing a query/);
      expect(node.output()).not.toMatch(/declared dead|lost its lease/);
    } finally {
      await db.close();
    }
  });
});
