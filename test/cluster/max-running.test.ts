/**
 * A job's maxRunning: at most that many of its executions run at once in the whole cluster,
 * whatever launched them. Real node processes and in-process nodes on real PostgreSQL and SQLite;
 * overlaps are judged from the executions' own start and end times (the database's clock).
 */
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startNode as startNodeHere, type ClusterNode } from '../../src/cluster/node.ts';
import { MaxRunningError, UsageError } from '../../src/core/errors.ts';
import { defineJob } from '../../src/core/job.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import type { Database } from '../../src/repository/database.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { backends, waitFor, type Backend } from '../support/backends.ts';
import { killAll, ROOT, startNode, type NodeProc } from '../support/node-procs.ts';
import { cliFor, expectOneLineError } from '../cli/run-cli.ts';
import { duo, free, solo } from '../fixtures/max-running/nightshift.config.ts';

const CONFIG = join(ROOT, 'test/fixtures/max-running/nightshift.config.ts');
const JOBS = [solo, duo, free];

interface Run {
  id: number;
  status: string;
  start: number | null;
  end: number | null;
  node: string | null;
}

async function runsOf(db: Database, job: string): Promise<Run[]> {
  const rows = await db.query<{ id: unknown; status: string; start_time: unknown; end_time: unknown; node_name: string | null }>(
    'SELECT id, status, start_time, end_time, node_name FROM ns_job_execution WHERE job_name = $1 ORDER BY id',
    [job],
  );
  const n = (v: unknown) => (v === null ? null : Number(v));
  return rows.map((r) => ({ id: Number(r.id), status: r.status, start: n(r.start_time), end: n(r.end_time), node: r.node_name }));
}

/**
 * The most executions that ran at the same moment, from their start and end times (one still
 * running has no end yet). An execution that starts in the millisecond another ended did not
 * overlap it: ends count first.
 */
function mostAtOnce(runs: readonly Run[]): number {
  const events = runs.filter((r) => r.start !== null).flatMap((r) => [
    { at: r.start!, d: 1 },
    { at: r.end ?? Number.MAX_SAFE_INTEGER, d: -1 },
  ]);
  events.sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let most = 0;
  for (const e of events) most = Math.max(most, (now += e.d));
  return most;
}

/** The ids of the runs in the order they started. */
const startOrder = (runs: readonly Run[]) => runs.filter((r) => r.start !== null).sort((a, b) => a.start! - b.start! || a.id - b.id).map((r) => r.id);

/** One repository per test, with an operator that submits and a connection that observes. */
function perTest(backend: Backend) {
  let open: { ns: Nightshift; db: Database; nodes: ClusterNode[] } | undefined;
  afterEach(async () => {
    await killAll();
    if (open) {
      await Promise.all(open.nodes.map((n) => n.shutdown({ timeoutMs: 5_000 }).catch(() => undefined)));
      await open.ns.close().catch(() => undefined);
      await open.db.close().catch(() => undefined);
    }
    open = undefined;
  });
  afterAll(() => backend.cleanup());
  return async (label: string) => {
    const url = backend.freshUrl(label);
    const ns = await createNightshift({ db: url, jobs: JOBS, logger: silentLogger });
    const db = await openDatabase(url);
    const nodes: ClusterNode[] = [];
    open = { ns, db, nodes };
    return { url, ns, db, nodes };
  };
}

describe('defineJob maxRunning', () => {
  const define = (maxRunning: unknown) =>
    defineJob({ name: 'etl', maxRunning: maxRunning as number, steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })] });

  it('takes a positive integer and keeps it on the definition', () => {
    expect(define(1).maxRunning).toBe(1);
    expect(define(3).maxRunning).toBe(3);
    expect(define(undefined).maxRunning).toBeUndefined();
    expect('maxRunning' in define(undefined)).toBe(false);
  });

  it.each([
    [0, 'got 0'],
    [1.5, 'got 1.5'],
    ['1', 'got the string "1"'],
    [-2, 'got -2'],
    [Number.NaN, 'got NaN'],
    [null, 'got null'],
  ])('refuses %j naming the job and the field', (value, got) => {
    expect(() => define(value)).toThrow(UsageError);
    expect(() => define(value)).toThrow(`job etl: maxRunning must be a positive integer (executions of the job that may run at once), ${got}`);
  });
});

describe('maxRunning across nodes on PostgreSQL', () => {
  const backend = backends().find((b) => b.name === 'postgres')!;
  const fresh = perTest(backend);

  it('two node processes run 6 submitted executions of a limit-1 job one at a time, in id order', async () => {
    const { url, ns, db } = await fresh('mr-two-nodes');
    const procs: NodeProc[] = ['a', 'b'].map((name) => startNode(url, name, { config: CONFIG, args: ['--concurrency', '4'] }));
    await waitFor(async () => (await ns.nodes()).filter((n) => n.status === 'alive').length === 2, 30_000, 'two nodes alive');
    const ids: number[] = [];
    for (let n = 1; n <= 6; n++) ids.push((await ns.submit('solo', { n, ms: 400 })).id);
    // While they run, never two at once (sampled), and the rest wait queued.
    let sampledMost = 0;
    await waitFor(async () => {
      const runs = await runsOf(db, 'solo');
      sampledMost = Math.max(sampledMost, runs.filter((r) => r.status === 'STARTED' || r.status === 'STOPPING').length);
      return runs.every((r) => r.status === 'COMPLETED');
    }, 60_000, `6 solo executions completed; nodes said:\n${procs.map((p) => p.output()).join('\n')}`);
    const runs = await runsOf(db, 'solo');
    expect(runs.map((r) => r.id)).toEqual(ids);
    expect(sampledMost).toBe(1);
    expect(mostAtOnce(runs)).toBe(1);
    expect(startOrder(runs)).toEqual(ids);
    // A freed slot is taken at once, not at the next poll (1 s): the end wakes the nodes.
    const gaps = runs.slice(1).map((r, i) => r.start! - runs[i].end!);
    expect(gaps.sort((x, y) => x - y)[2], `gaps ${gaps.join(', ')} ms`).toBeLessThan(150);
  }, 90_000);

  it('a slot freed by an in-process run wakes a node process at once', async () => {
    const { url, ns, db } = await fresh('mr-wake');
    const procs: NodeProc[] = ['a', 'b'].map((name) => startNode(url, name, { config: CONFIG }));
    await waitFor(async () => (await ns.nodes()).filter((n) => n.status === 'alive').length === 2, 30_000, 'two nodes alive');
    // Five times: a run here holds the slot, a submitted one waits, and the run's end wakes a node.
    // The holds vary, so that the nodes' polls fall anywhere in the rounds.
    const gaps: number[] = [];
    for (let round = 0; round < 5; round++) {
      const here = await ns.start('solo', { n: 10 + round, ms: 500 + round * 337 });
      const queued = await ns.submit('solo', { n: 20 + round, ms: 10 });
      await here.done;
      const runs = await waitFor(async () => {
        const r = (await runsOf(db, 'solo')).filter((x) => x.id === here.execution.id || x.id === queued.id);
        return r.every((x) => x.status === 'COMPLETED') ? r : undefined;
      }, 30_000, `the queued one completed; nodes said:\n${procs.map((p) => p.output()).join('\n')}`);
      expect(runs.map((r) => r.id)).toEqual([here.execution.id, queued.id]);
      gaps.push(runs[1].start! - runs[0].end!);
    }
    // Without the wake a node would find it at its next poll (every second): 0 to 1,000 ms.
    expect(gaps.sort((x, y) => x - y)[2], `gaps ${gaps.join(', ')} ms`).toBeLessThan(100);
  }, 60_000);

  it('four nodes claiming at once never run more than the limit (the slot lock serialises their counts)', async () => {
    const { url, ns, db, nodes } = await fresh('mr-race');
    for (const name of ['r1', 'r2', 'r3', 'r4']) {
      nodes.push(await startNodeHere({ db: url, name, jobs: JOBS, concurrency: 4, pollMs: 50, logger: silentLogger, scheduler: false, spread: 'first-come' }));
    }
    await waitFor(async () => (await ns.nodes()).filter((n) => n.status === 'alive').length === 4, 20_000, 'four nodes alive');
    // Bursts: each wakes every node at once (one notification for the batch), and so does each end.
    for (let round = 0; round < 3; round++) {
      const results = await ns.submitMany(Array.from({ length: 8 }, (_, i) => ({ job: 'duo', params: { n: round * 100 + i, ms: 40 } })));
      expect(results.every((r) => 'executionId' in r)).toBe(true);
      await waitFor(async () => (await runsOf(db, 'duo')).every((r) => r.status === 'COMPLETED'), 60_000, `round ${round} completed`);
    }
    const runs = await runsOf(db, 'duo');
    expect(runs).toHaveLength(24);
    expect(mostAtOnce(runs)).toBe(2);
  }, 90_000);

  it('a limited execution whose node is SIGKILLed fails over and resumes, and the limit still holds', async () => {
    const { url, ns, db } = await fresh('mr-failover');
    const lease = ['--heartbeat-ms', '200', '--lease-ms', '1000'];
    const a = startNode(url, 'a', { config: CONFIG, args: lease });
    await waitFor(async () => (await ns.nodes()).some((n) => n.name === 'a' && n.status === 'alive'), 30_000, 'node a alive');
    const first = await ns.submit('solo', { n: 1, ms: 60_000 });
    await waitFor(async () => (await runsOf(db, 'solo')).find((r) => r.id === first.id && r.status === 'STARTED'), 30_000, 'the first running on a');
    const b = startNode(url, 'b', { config: CONFIG, args: lease });
    await waitFor(async () => (await ns.nodes()).some((n) => n.name === 'b' && n.status === 'alive'), 30_000, 'node b alive');
    const second = await ns.submit('solo', { n: 2, ms: 300 });
    const third = await ns.submit('solo', { n: 3, ms: 300 });
    // Node b has room but the limit is reached: they wait queued.
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await runsOf(db, 'solo')).map((r) => r.status)).toEqual(['STARTED', 'STARTING', 'STARTING']);
    a.child.kill('SIGKILL');
    await a.exited;
    // b declares a dead, fails the first and queues its restart (behind the two queued), then
    // runs all three, one at a time. The restart holds 60 s: stop it once it runs.
    const restarted = await waitFor(async () => (await runsOf(db, 'solo')).find((r) => r.id > third.id), 30_000, `the failover's restart; b said:\n${b.output()}`);
    await waitFor(async () => {
      const r = (await runsOf(db, 'solo')).find((x) => x.id === restarted.id);
      return r?.status === 'STARTED' && r;
    }, 30_000, 'the restart running');
    await ns.stop(restarted.id);
    await waitFor(async () => (await runsOf(db, 'solo')).every((r) => !['STARTING', 'STARTED', 'STOPPING'].includes(r.status)), 30_000, 'all ended');
    const runs = await runsOf(db, 'solo');
    expect(runs.map((r) => [r.id, r.status])).toEqual([[first.id, 'FAILED'], [second.id, 'COMPLETED'], [third.id, 'COMPLETED'], [restarted.id, 'STOPPED']]);
    expect(mostAtOnce(runs)).toBe(1);
    expect(startOrder(runs)).toEqual([first.id, second.id, third.id, restarted.id]);
  }, 120_000);
});

describe('in-process launches racing on PostgreSQL', () => {
  const backend = backends().find((b) => b.name === 'postgres')!;
  const fresh = perTest(backend);

  it('of many starts at once from two processes (operators), exactly the limit run; the others are refused, nothing created for them', async () => {
    const { url, ns, db } = await fresh('mr-start-race');
    const other = await createNightshift({ db: url, jobs: JOBS, logger: silentLogger });
    try {
      const starts = Array.from({ length: 8 }, (_, i) => (i % 2 ? other : ns).start('duo', { n: i, ms: 1_000 }));
      const settled = await Promise.allSettled(starts);
      const started = settled.filter((r) => r.status === 'fulfilled');
      const refused = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(refused.map((r) => (r.reason as Error).name)).toEqual(Array(6).fill('MaxRunningError'));
      expect(started).toHaveLength(2);
      await Promise.all(started.map((r) => r.value.done));
      const runs = await runsOf(db, 'duo');
      expect(runs.map((r) => r.status)).toEqual(['COMPLETED', 'COMPLETED']);
    } finally {
      await other.close();
    }
  }, 60_000);
});

describe('maxRunning on one SQLite node', () => {
  const backend = backends().find((b) => b.name === 'sqlite')!;
  const fresh = perTest(backend);

  it('limit 2 with concurrency 4 never runs 3 at once; a job without a limit takes the free slots meanwhile', async () => {
    const { url, ns, db, nodes } = await fresh('mr-sqlite');
    for (let n = 1; n <= 8; n++) await ns.submit('duo', { n, ms: 250 });
    for (let n = 1; n <= 2; n++) await ns.submit('free', { n, ms: 1_000 });
    nodes.push(await startNodeHere({ db: url, name: 'only', jobs: JOBS, concurrency: 4, pollMs: 100, logger: silentLogger, scheduler: false }));
    await waitFor(async () => [...(await runsOf(db, 'duo')), ...(await runsOf(db, 'free'))].every((r) => r.status === 'COMPLETED'), 60_000, 'all completed');
    const runs = await runsOf(db, 'duo');
    expect(mostAtOnce(runs)).toBe(2);
    expect(startOrder(runs)).toEqual(runs.map((r) => r.id));
    // The unlimited job did not wait for the limited queue: both ran alongside the first duos.
    const frees = await runsOf(db, 'free');
    expect(mostAtOnce(frees)).toBe(2);
    expect(Math.max(...frees.map((f) => f.start!))).toBeLessThan(runs[2].start!);
  }, 90_000);

  it('a limited job queued before a backlog of unlimited work starts first, not after the backlog', async () => {
    const { url, ns, db, nodes } = await fresh('mr-order');
    const early = await ns.submit('solo', { n: 1, ms: 10 });
    for (let n = 1; n <= 4; n++) await ns.submit('free', { n, ms: 10 });
    nodes.push(await startNodeHere({ db: url, name: 'only', jobs: JOBS, concurrency: 1, pollMs: 100, logger: silentLogger, scheduler: false }));
    await waitFor(async () => [...(await runsOf(db, 'solo')), ...(await runsOf(db, 'free'))].every((r) => r.status === 'COMPLETED'), 60_000, 'all completed');
    const [solo1] = await runsOf(db, 'solo');
    expect(solo1.id).toBe(early.id);
    const frees = await runsOf(db, 'free');
    expect(frees.every((f) => f.start! >= solo1.end!), 'the backlog ran after the older limited execution').toBe(true);
  }, 60_000);

  it("a trigger's firings of a limited job wait queued for a slot", async () => {
    const { url, db, nodes } = await fresh('mr-sqlite-sched');
    nodes.push(await startNodeHere({
      db: url, name: 'only', jobs: JOBS, concurrency: 4, pollMs: 100, logger: silentLogger,
      schedules: [{ name: 'often', job: 'solo', everyMs: 200, params: { ms: 500 } }],
    }));
    await waitFor(async () => (await runsOf(db, 'solo')).filter((r) => r.status === 'COMPLETED').length >= 3, 30_000, 'three firings completed');
    await nodes[0].shutdown({ timeoutMs: 5_000 });
    const runs = await runsOf(db, 'solo');
    // Fired faster than they run: firings queued behind the running one, and none overlapped.
    expect(runs.filter((r) => r.status === 'STARTING').length + runs.filter((r) => r.status === 'STOPPED').length).toBeGreaterThan(0);
    expect(mostAtOnce(runs)).toBe(1);
  }, 60_000);
});

describe.each(backends())('in-process launches of a limited job on $name', (backend) => {
  const fresh = perTest(backend);

  it('run is refused while the limit is reached (CLI: exit 2, one line), and allowed once the running one ends', async () => {
    const { url, ns, db } = await fresh('mr-run');
    const cli = cliFor(url, CONFIG);
    const running = cli.spawn(['run', 'solo', 'n=1', 'ms=60000']);
    const first = await waitFor(async () => (await runsOf(db, 'solo')).find((r) => r.status === 'STARTED'), 30_000, `run solo started: ${running.stderr()}`);
    const refused = await cli.run(['run', 'solo', 'n=2']);
    expectOneLineError(refused, new RegExp(
      `^nightshift: job solo allows at most 1 running execution \\(maxRunning\\) and execution ${first.id} is running: wait for it to end, or use submit to queue it$`,
    ));
    // The library says the same with its own error type; nothing was created by either.
    const err = await ns.run('solo', { n: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MaxRunningError);
    expect(err).toMatchObject({ name: 'MaxRunningError', job: 'solo', limit: 1, running: [first.id] });
    await expect(ns.start('solo', { n: 3 })).rejects.toThrow(MaxRunningError);
    expect((await runsOf(db, 'solo')).map((r) => r.id)).toEqual([first.id]);
    await ns.stop(first.id);
    expect((await running.exited).code).toBe(1);
    const again = cli.spawn(['run', 'solo', 'n=4', 'ms=60000']);
    const second = await waitFor(async () => (await runsOf(db, 'solo')).find((r) => r.status === 'STARTED'), 30_000, 'run solo n=4 started');
    // A restart is a launch in this process too.
    expectOneLineError(await cli.run(['restart', String(first.id)]), new RegExp(`execution ${second.id} is running: .* use submit`));
    await ns.stop(second.id);
    expect((await again.exited).code).toBe(1);
    // Once nothing runs, run and restart are allowed.
    const ok = await cli.json(['run', 'solo', 'n=2', 'ms=10']);
    expect(ok.status).toBe('COMPLETED');
    // The stopped first instance again (a restart, with a shorter non-identifying ms).
    const resumed = await ns.run('solo', { n: 1, ms: 10 });
    expect([resumed.status, resumed.instanceId]).toEqual(['COMPLETED', (await ns.explorer.getExecution(first.id))!.instanceId]);
    // An unlimited job is never held back.
    expect((await ns.run('free', { n: 1, ms: 10 })).status).toBe('COMPLETED');
  }, 120_000);

  it("a run killed with kill -9 holds no slot: the next run fails it (its process is gone) and runs, with no node or other command to sweep first", async () => {
    const { url, db } = await fresh('mr-killed');
    const cli = cliFor(url, CONFIG);
    const killed = cli.spawn(['run', 'solo', 'n=1', 'ms=60000']);
    const first = await waitFor(async () => (await runsOf(db, 'solo')).find((r) => r.status === 'STARTED'), 30_000, `run solo started: ${killed.stderr()}`);
    killed.child.kill('SIGKILL');
    await killed.exited;
    const next = await cli.json<{ id: number; status: string }>(['run', 'solo', 'n=2', 'ms=10']);
    expect(next.status).toBe('COMPLETED');
    const dead = await cli.json<{ status: string; exitStatus: { description: string } }>(['execution', String(first.id)]);
    expect(dead.status).toBe('FAILED');
    expect(dead.exitStatus.description).toMatch(/died: its process \d+ on .+ is gone/);
  }, 60_000);

  it('jobs --json shows maxRunning for a limited job only', async () => {
    const { url } = await fresh('mr-jobs');
    const jobs = await cliFor(url, CONFIG).json<{ name: string; maxRunning?: number }[]>(['jobs']);
    expect(Object.fromEntries(jobs.map((j) => [j.name, j.maxRunning]))).toEqual({ solo: 1, duo: 2, free: undefined });
    expect(jobs.find((j) => j.name === 'free')).not.toHaveProperty('maxRunning');
  }, 60_000);
});
