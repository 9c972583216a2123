/**
 * The elastic launcher of partitioned steps (`workers`), with real processes on PostgreSQL: the
 * manager (this process) launches `nightshift node` workers that join and run partitions, and
 * stops them when the step ends, after success and after failure; a worker whose parent dies
 * leaves on its own (`--exit-with-parent`); and the option's validation.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { defineJob } from '../../src/core/job.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import type { Database } from '../../src/repository/database.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { ROOT, pgBackend, waitFor } from '../cluster/helpers.ts';
import { launches, pcElastic } from './fixtures/elastic.ts';
import { counters, managerOf, onceSummary, partitionsOf, sumCounters, why } from './helpers.ts';

const backend = pgBackend();
const open: { ns?: Nightshift; db?: Database; parent?: ChildProcess; orphan?: { pid: number; name: string } } = {};

/** Whether `pid` is still the `nightshift node --name NAME` process (not a reused pid). */
function isWorker(pid: number, name: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes(`node --name ${name} `);
  } catch {
    return false;
  }
}

afterEach(async () => {
  // After a failed test: the launches' own stop(), and the orphan only if its pid is still it.
  await Promise.all(launches.map((l) => l.stop()));
  open.parent?.kill('SIGKILL');
  if (open.orphan && isWorker(open.orphan.pid, open.orphan.name)) process.kill(open.orphan.pid, 'SIGKILL');
  open.parent = open.orphan = undefined;
  await open.ns?.close().catch(() => undefined);
  await open.db?.close().catch(() => undefined);
  open.ns = open.db = undefined;
});
afterAll(() => backend.cleanup());

async function manager(label: string) {
  const url = backend.freshUrl(label);
  open.ns = await createNightshift({ db: url, jobs: [pcElastic], logger: silentLogger, nodeName: 'mgr' });
  open.db = await openDatabase(url);
  return { url, ns: open.ns, db: open.db };
}

async function nodeRows(db: Database, prefix: string) {
  return db.query<{ name: string; status: string; pid: number }>('SELECT name, status, pid FROM ns_node WHERE name LIKE $1 ORDER BY name', [`${prefix}%`]);
}

describe('elastic workers of a partitioned step (postgres, real processes)', () => {
  it('launches 2 worker processes that run partitions, and stops them when the step ends', async () => {
    const { ns, db } = await manager('elastic');
    const before = launches.length;
    const done = await ns.run('pc-elastic', { items: 600, grid: 6, delayMs: 25, workers: 2, tag: 'elastic' });
    expect(done.status, why(done)).toBe('COMPLETED');

    const launched = launches.slice(before);
    expect(launched).toHaveLength(1);
    expect(launched[0].names).toEqual(['mgr-w1', 'mgr-w2']);
    const pids = launched[0].pids!;
    expect(pids).toHaveLength(2);

    // Both workers joined and ran partitions: their names are on partition step executions.
    const parts = partitionsOf(done);
    const where = parts.map((s) => `${s.stepName.replace('count:', '')}@${s.node}`).join(' ');
    console.log(`[elastic] partitions: ${where}`);
    expect(parts).toHaveLength(6);
    const used = new Set(parts.map((s) => s.node));
    expect(used.has('mgr-w1') && used.has('mgr-w2'), where).toBe(true);
    expect(counters(managerOf(done))).toEqual(sumCounters(parts));
    expect(await onceSummary(db, 'elastic', 600)).toMatchObject({ ok: true });

    // Gone when the step ended: the processes have exited and the nodes left gracefully.
    pids.forEach((pid, i) => expect(isWorker(pid, `mgr-w${i + 1}`), `worker pid ${pid}`).toBe(false));
    const rows = await nodeRows(db, 'mgr-w');
    expect(rows.map((r) => [r.name, r.status, Number(r.pid)])).toEqual([['mgr-w1', 'left', pids[0]], ['mgr-w2', 'left', pids[1]]]);
  });

  it('stops the workers when the step fails, too', async () => {
    const { ns, db } = await manager('elasticfail');
    const before = launches.length;
    const done = await ns.run('pc-elastic', { items: 200, grid: 4, workers: 1, failAt: 1, tag: 'elasticfail' });
    expect(done.status, why(done)).toBe('FAILED');
    const launched = launches.slice(before);
    expect(launched).toHaveLength(1);
    expect(launched[0].pids).toHaveLength(1);
    expect(isWorker(launched[0].pids![0], 'mgr-w1')).toBe(false);
    expect((await nodeRows(db, 'mgr-w')).every((r) => r.status === 'left')).toBe(true);
  });

  it('a worker whose parent is SIGKILLed leaves on its own (--exit-with-parent)', async () => {
    const { db, url } = await manager('orphan');
    const parent = spawn(process.execPath, ['--import', 'tsx', '--import', './scripts/dev-alias.mjs', 'test/partition/fixtures/launch-orphan.ts', url], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    open.parent = parent;
    let out = '';
    parent.stdout!.on('data', (d) => (out += d));
    const { pids } = await waitFor(() => (out.includes('\n') ? (JSON.parse(out.split('\n')[0]) as { pids: number[] }) : undefined), 20_000, 'the launch');
    open.orphan = { pid: pids[0], name: 'orphan-w1' };
    expect(isWorker(pids[0], 'orphan-w1')).toBe(true);
    await waitFor(async () => (await nodeRows(db, 'orphan-w1'))[0]?.status === 'alive', 20_000, 'orphan-w1 alive');

    const exited = new Promise((r) => parent.once('exit', r));
    parent.kill('SIGKILL');
    await exited;
    await waitFor(() => !isWorker(pids[0], 'orphan-w1'), 10_000, `worker ${pids[0]} to exit`);
    expect((await nodeRows(db, 'orphan-w1'))[0].status).toBe('left');
  });

  it('validates the option', () => {
    const job = (workers: object, mode?: 'local') => () =>
      defineJob({
        name: 'bad',
        steps: (s) => [
          s.partitioned({
            name: 'p',
            partitioner: () => [{}],
            ...(mode ? { mode } : {}),
            workers: workers as never,
            worker: s.tasklet({ name: 'w', tasklet: () => undefined }),
          }),
        ],
      });
    expect(job({ count: 2 }, 'local')).toThrow(/workers need mode 'cluster'/);
    expect(job({ count: -1 })).toThrow(/workers.count must be a non-negative integer/);
    expect(job({ count: 1, concurrency: 0 })).toThrow(/workers.concurrency must be a positive integer/);
    expect(job({ count: 0 })).not.toThrow();
    expect(job({ count: () => 3 })).not.toThrow();
  });
});
