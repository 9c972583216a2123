import { afterAll, describe, expect, it } from 'vitest';
import { startNode } from '../../src/cluster/node.ts';
import { createLogger } from '../../src/core/logger.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { backends, waitFor } from '../support/backends.ts';
import { seedHistory } from '../support/history.ts';

const DAY = 86_400_000;

describe.each(backends())('automatic retention on a node ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('prunes old history and old node incarnations by its options, keeping restartable instances', async () => {
    const url = backend.freshUrl('autoretention');
    const db = await openDatabase(url);
    await seedHistory(db, { count: 200, jobs: 2, newestAgeMs: 40 * DAY });
    await seedHistory(db, { count: 5, jobs: 2, newestAgeMs: 0 });
    await db.execute(`INSERT INTO ns_node (name, cluster, host, pid, kind, status, jobs, concurrency, heartbeat_ms, lease_ms, started_at,
      last_heartbeat, lease_until, ended_at) VALUES ('gone', 'c', 'h', 1, 'node', 'dead', '[]', 1, 1000, 5000, 0, 0, 0, ns_now() - ${3 * DAY})`);
    const node = await startNode({
      db: url, jobs: [], name: 'keeper', logger: createLogger({ level: 'silent' }), scheduler: false,
      nodeRetentionMs: 2 * DAY, retention: { olderThanMs: 30 * DAY, everyMs: 1000 },
    });
    try {
      // 200 old: every 47th FAILED (4) and every 97th STOPPED (2) stay, as do the 5 recent ones.
      const left = await waitFor(async () => {
        const [{ n }] = await db.query<{ n: number }>('SELECT count(*) AS n FROM ns_job_execution');
        return Number(n) === 11 && Number(n);
      }, 20_000, 'the node to prune old history');
      expect(left).toBe(11);
      const statuses = (await db.query<{ status: string }>(`SELECT status FROM ns_job_execution WHERE create_time < ns_now() - ${DAY}`)).map((r) => r.status);
      expect(statuses.sort()).toEqual(['FAILED', 'FAILED', 'FAILED', 'FAILED', 'STOPPED', 'STOPPED']);
      await waitFor(async () => (await db.query(`SELECT id FROM ns_node WHERE name = 'gone'`)).length === 0, 20_000, 'the old incarnation to go');
      expect((await db.query<{ name: string }>(`SELECT name FROM ns_node`)).map((r) => r.name)).toEqual(['keeper']);
    } finally {
      await node.shutdown();
      await db.close();
    }
  });

  it('refuses a bad retention option before joining', async () => {
    const url = backend.freshUrl('autoretention');
    await expect(startNode({ db: url, jobs: [], retention: { olderThanMs: 30 * DAY, everyMs: 10 } })).rejects.toThrow(/retention.everyMs must be at least 1000/);
    await expect(startNode({ db: url, jobs: [], nodeRetentionMs: -5 })).rejects.toThrow(/nodeRetentionMs must be a duration/);
  });
});

describe('retention in the config', () => {
  const load = async (body: string) => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { loadConfig } = await import('../../src/cli/config.ts');
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-retention-config-'));
    const file = join(dir, 'nightshift.config.ts');
    const examples = join(import.meta.dirname, '../../examples/nightshift.config.ts');
    writeFileSync(file, `export * from ${JSON.stringify(examples)};\n${body}\n`);
    return { file, loadConfig };
  };

  it('reads durations, statuses and keepLast, and names a bad setting', async () => {
    const { parseDuration } = await import('../../src/core/duration.ts');
    expect(parseDuration('x', '30d')).toBe(30 * DAY);
    expect(parseDuration('x', '90m')).toBe(90 * 60_000);
    // What prune prints back: `m` is minutes, said in words.
    const { spellDuration } = await import('../../src/core/duration.ts');
    expect([parseDuration('x', '1m'), parseDuration('x', '30d'), parseDuration('x', '1.5h'), parseDuration('x', '2w')].map(spellDuration))
      .toEqual(['1 minute', '30 days', '90 minutes', '2 weeks']);
    expect(() => parseDuration('retention.olderThan', '30 days')).toThrow(/retention.olderThan: expected a duration such as 30d/);
    const good = await load(`export const retention = { olderThan: '30d', statuses: ['COMPLETED'], keepLast: 3, every: '1h', nodes: '7d' };`);
    const config = await good.loadConfig(good.file);
    expect(config.retention).toEqual({ olderThanMs: 30 * DAY, statuses: ['COMPLETED'], keepLast: 3, includeRestartable: undefined, everyMs: 3_600_000 });
    expect(config.nodeRetentionMs).toBe(7 * DAY);
    const bad = await load(`export const retention = { olderThan: '30d', kepLast: 3 };`);
    await expect(bad.loadConfig(bad.file)).rejects.toThrow(/retention: unknown setting "kepLast"/);
  });
});
