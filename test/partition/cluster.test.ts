/**
 * Partitioned steps across real `nightshift node` processes on PostgreSQL: partitions spread
 * over the nodes, a worker node SIGKILLed mid-partition, the manager's node SIGKILLed, and a
 * stop while partitions run on several nodes.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import type { StepExecution } from '../../src/core/model.ts';
import { createNightshift, type ExecutionDetails, type Nightshift } from '../../src/operator.ts';
import type { Database } from '../../src/repository/database.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { CONFIG, cli, instanceExecutions, killAll, pgBackend, startNode, waitAlive, waitFor, type NodeProc } from '../cluster/helpers.ts';
import { partitionedCount } from '../../examples/nightshift.config.ts';
import { ranges } from './fixtures/jobs.ts';
import { counters, managerOf, onceSummary, partitionsOf, sumCounters, why } from './helpers.ts';

const backend = pgBackend();
/**
 * Two executions-or-partitions at a time on each node. The default lease (3.5 s): shorter ones
 * get live nodes declared dead on this loaded 2-core machine, which would blur what is tested.
 */
const NODE_ARGS = ['--concurrency', '2'];
const NAMES = ['a', 'b', 'c'];

interface Env {
  url: string;
  ns: Nightshift;
  db: Database;
  procs: Record<string, NodeProc>;
}
let env: Env | undefined;

afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail' && env) {
    for (const p of Object.values(env.procs)) console.log(`--- node ${p.name} ---\n${p.output().split('\n').slice(-40).join('\n')}`);
  }
  await killAll();
  await env?.ns.close().catch(() => undefined);
  await env?.db.close().catch(() => undefined);
  env = undefined;
});
afterAll(async () => {
  await killAll();
  await backend.cleanup();
});

async function threeNodes(label: string): Promise<Env> {
  const url = backend.freshUrl(label);
  const ns = await createNightshift({ db: url, jobs: [partitionedCount], logger: silentLogger });
  const db = await openDatabase(url);
  const procs = Object.fromEntries(NAMES.map((n) => [n, startNode(url, n, { args: NODE_ARGS })]));
  env = { url, ns, db, procs };
  await waitAlive(ns, NAMES);
  return env;
}

const running = (s: StepExecution) => s.status === 'STARTED';
const names = (steps: StepExecution[]) => steps.map((s) => s.stepName);

/** The most step executions running at the same time (by their start and end times). */
function maxConcurrent(steps: StepExecution[]): number {
  const events = steps.flatMap((s) => [[s.startTime!.getTime(), 1], [s.endTime!.getTime(), -1]] as const);
  events.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let now = 0;
  let most = 0;
  for (const [, d] of events) most = Math.max(most, (now += d));
  return most;
}

async function details(ns: Nightshift, id: number): Promise<ExecutionDetails> {
  return (await ns.getExecution(id))!;
}

describe('partitioned steps on a cluster (postgres, real node processes)', () => {
  it('partitioned-count items=3000 grid=9 on 3 nodes (concurrency 2): partitions spread over all nodes, rows exactly once', async () => {
    const { ns, db, url } = await threeNodes('spread');
    const submitted = await ns.submit('partitioned-count', { items: 3000, grid: 9, delayMs: 3, tag: 'spread' });
    const done = await ns.waitForEnd(submitted.id, { timeoutMs: 40_000 });
    expect(done.status, why(done)).toBe('COMPLETED');
    expect(done.id).toBe(submitted.id);

    // The CLI's view: `execution ID --json` lists the partitions with their node.
    const r = await cli(['execution', String(done.id), '--db', url, '--config', CONFIG, '--json']);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout) as { node: string; steps: { name: string; status: string; node: string | null; readCount: number }[] };
    const parts = json.steps.filter((s) => /^count:partition\d+$/.test(s.name));
    expect(parts.map((s) => s.name).sort()).toEqual(Array.from({ length: 9 }, (_, i) => `count:partition${i}`).sort());
    expect(parts.every((s) => s.status === 'COMPLETED')).toBe(true);
    const used = new Set(parts.map((s) => s.node));
    console.log(`[spread] manager on ${json.node}; partitions: ${parts.map((s) => `${s.name.replace('count:', '')}@${s.node}`).join(' ')}`);
    expect([...used].sort()).toEqual(NAMES);
    expect(json.steps.find((s) => s.name === 'count')?.node).toBe(json.node);
    // No node ran more than its concurrency (2) at once; on the manager's node the execution takes a slot.
    for (const n of NAMES) {
      const most = maxConcurrent(partitionsOf(done).filter((p) => p.node === n));
      expect(most, `partitions at once on ${n}`).toBeLessThanOrEqual(n === json.node ? 1 : 2);
    }
    expect(counters(managerOf(done))).toEqual(sumCounters(partitionsOf(done)));
    expect(managerOf(done).writeCount).toBe(3000);
    expect(await onceSummary(db, 'spread', 3000)).toMatchObject({ ok: true, total: 3000 });
  });

  it('a worker node SIGKILLed mid-partition: its partition fails naming it and completes on another node; rows exactly once', async () => {
    const { ns, db, procs } = await threeNodes('killworker');
    const submitted = await ns.submit('partitioned-count', { items: 3000, grid: 9, delayMs: 4, tag: 'kw' });
    // A partition on a node other than the manager's, with a committed chunk and more to go.
    const { manager, victim } = await waitFor(async () => {
      const e = await details(ns, submitted.id);
      if (e.status !== 'STARTED' || !e.node) return undefined;
      const p = partitionsOf(e).find((s) => running(s) && s.node && s.node !== e.node && s.commitCount >= 1);
      return p ? { manager: e.node, victim: p } : undefined;
    }, 20_000, 'a worker partition with a committed chunk');
    const killed = victim.node!;
    procs[killed].child.kill('SIGKILL');
    await procs[killed].exited;

    const done = await ns.waitForEnd(submitted.id, { timeoutMs: 40_000 });
    expect(done.status, why(done)).toBe('COMPLETED');
    // The manager was not touched: the same execution, on the same node.
    expect(done.id).toBe(submitted.id);
    expect(done.node).toBe(manager);
    const all = partitionsOf(done).filter((s) => s.stepName === victim.stepName).sort((x, y) => x.id - y.id);
    console.log(`[kill worker] manager ${manager}, killed ${killed} running ${victim.stepName}: ${all.map((s) => `${s.id} ${s.status}@${s.node} read=${s.readCount} (${s.exitStatus.description})`).join(' | ')}`);
    const failed = all.find((s) => s.id === victim.id)!;
    expect(failed.status).toBe('FAILED');
    expect(failed.node).toBe(killed);
    expect(failed.exitStatus.description).toContain(`node ${killed}`);
    const last = all[all.length - 1];
    expect(last.id).toBeGreaterThan(failed.id);
    expect(last.status).toBe('COMPLETED');
    expect(last.node).not.toBe(killed);
    // The retry resumed from the checkpoint: together they read the partition's range once.
    const range = Number(victim.context.to) - Number(victim.context.from) + 1;
    expect(all.reduce((n, s) => n + s.readCount, 0)).toBe(range);
    expect(failed.readCount).toBeGreaterThan(0);
    // Every partition's newest execution completed; the manager sums every partition execution.
    expect(managerOf(done).status).toBe('COMPLETED');
    expect(counters(managerOf(done))).toEqual(sumCounters(partitionsOf(done)));
    expect(managerOf(done).writeCount).toBe(3000);
    expect(await onceSummary(db, 'kw', 3000)).toMatchObject({ ok: true, total: 3000 });
    // No other partition ran on the dead node after it died.
    expect(partitionsOf(done).filter((s) => s.node === killed && s.status !== 'FAILED' && s.startTime! > failed.endTime!)).toEqual([]);
  });

  it("the manager's node SIGKILLed: the job completes in a new execution without re-running completed partitions; rows exactly once", async () => {
    const { ns, db, procs } = await threeNodes('killmanager');
    // Partitions of ~4 s: those running on live nodes when the failover happens (a lease later)
    // are cut off there and resume from their checkpoints in the new execution.
    const submitted = await ns.submit('partitioned-count', { items: 3000, grid: 9, delayMs: 12, tag: 'km' });
    const { manager, before } = await waitFor(async () => {
      const e = await details(ns, submitted.id);
      if (e.status !== 'STARTED' || !e.node) return undefined;
      const parts = partitionsOf(e);
      const ok = parts.some((s) => s.status === 'COMPLETED') && parts.some((s) => running(s) && s.node !== e.node);
      return ok ? { manager: e.node, before: e } : undefined;
    }, 30_000, 'a completed partition and another running on a worker node');
    const completedAtKill = partitionsOf(before).filter((s) => s.status === 'COMPLETED').map((s) => s.stepName);
    procs[manager].child.kill('SIGKILL');
    await procs[manager].exited;

    const done = await ns.waitForEnd(submitted.id, { timeoutMs: 60_000 });
    expect(done.status, why(done)).toBe('COMPLETED');
    expect(done.id).toBeGreaterThan(submitted.id);
    expect(done.instanceId).toBe(submitted.instanceId);
    expect(done.node).not.toBe(manager);
    const execs = await instanceExecutions(ns, submitted.id);
    expect(execs.map((e) => e.id).sort((x, y) => x - y)).toEqual([submitted.id, done.id]);

    const old = await details(ns, submitted.id);
    expect(old.status).toBe('FAILED');
    expect(old.exitStatus.description).toContain(`node ${manager}`);
    const completedInOld = partitionsOf(old).filter((s) => s.status === 'COMPLETED').map((s) => s.stepName);
    const rerun = names(partitionsOf(done));
    const fmt = (e: ExecutionDetails) => partitionsOf(e).map((s) => `${s.stepName.replace('count:', '')} ${s.status}@${s.node} r=${s.readCount}`).join(' ');
    console.log(`[kill manager] manager ${manager}; completed at kill: ${completedAtKill.join(',')}\n  old: ${fmt(old)}\n  new: ${fmt(done)}`);
    expect(completedAtKill.length).toBeGreaterThan(0);
    for (const n of completedAtKill) expect(rerun, `${n} completed before the kill`).not.toContain(n);
    for (const n of completedInOld) expect(rerun, `${n} completed in the failed execution`).not.toContain(n);
    // Between them, the two executions completed each partition exactly once.
    expect([...completedInOld, ...rerun].sort()).toEqual(Array.from({ length: 9 }, (_, i) => `count:partition${i}`).sort());
    expect(partitionsOf(done).every((s) => s.status === 'COMPLETED')).toBe(true);
    expect(await onceSummary(db, 'km', 3000)).toMatchObject({ ok: true, total: 3000 });
    // Each partition's executions, old and new, read its range once: a cut-off one resumed from its checkpoint.
    const all = [...partitionsOf(old), ...partitionsOf(done)];
    for (const [i, r] of ranges(3000, 9).entries()) {
      const name = `count:partition${i}`;
      expect(all.filter((s) => s.stepName === name).reduce((n, s) => n + s.readCount, 0), `items read by ${name}`).toBe(Number(r.to) - Number(r.from) + 1);
    }
    expect(managerOf(done).readCount + sumCounters(partitionsOf(old)).readCount).toBe(3000);
    // Nothing of the failed execution is left looking as if it still ran.
    expect(partitionsOf(old).filter((s) => s.status === 'STARTED' || s.status === 'STARTING').map((s) => `${s.stepName} ${s.status}@${s.node}`),
      'partitions left running under the FAILED execution').toEqual([]);
  });

  it('stop while partitions run on the nodes: STOPPED; the restart completes, rows exactly once', async () => {
    const { ns, db, url } = await threeNodes('stop');
    // Partitions of about 3 s: the stop (a CLI process, slow to start on a loaded machine) must
    // come while they run, or they all complete first.
    const submitted = await ns.submit('partitioned-count', { items: 3000, grid: 9, delayMs: 10, tag: 'st' });
    await waitFor(async () => {
      const e = await details(ns, submitted.id);
      return e.status === 'STARTED' && partitionsOf(e).filter((s) => running(s) && s.commitCount >= 1).length >= 2;
    }, 20_000, 'partitions with committed chunks');
    const stop = await cli(['stop', String(submitted.id), '--db', url, '--config', CONFIG]);
    expect(stop.code, stop.stderr).toBe(0);
    const stopped = await ns.waitForEnd(submitted.id, { timeoutMs: 20_000 });
    expect(stopped.id).toBe(submitted.id);
    expect(stopped.status).toBe('STOPPED');
    const p1 = partitionsOf(stopped);
    expect(p1.filter((s) => !['STOPPED', 'COMPLETED'].includes(s.status)).map((s) => `${s.stepName} ${s.status}`)).toEqual([]);
    expect(p1.some((s) => s.status === 'STOPPED')).toBe(true);
    expect(managerOf(stopped).status).toBe('STOPPED');
    expect(counters(managerOf(stopped))).toEqual(sumCounters(p1));

    const r = await cli(['restart', String(submitted.id), '--db', url, '--config', CONFIG, '--json'], 60_000);
    expect(r.code, r.stderr).toBe(0);
    const second = JSON.parse(r.stdout) as { id: number; status: string; steps: { name: string; status: string; readCount: number }[] };
    expect(second.status, r.stdout).toBe('COMPLETED');
    const completedBefore = p1.filter((s) => s.status === 'COMPLETED').map((s) => s.stepName);
    const rerun = second.steps.filter((s) => /:partition\d+$/.test(s.name));
    for (const n of completedBefore) expect(rerun.map((s) => s.name)).not.toContain(n);
    expect(rerun.every((s) => s.status === 'COMPLETED')).toBe(true);
    expect(managerOf(stopped).readCount + second.steps.find((s) => s.name === 'count')!.readCount).toBe(3000);
    expect(await onceSummary(db, 'st', 3000)).toMatchObject({ ok: true, total: 3000 });
  });
});
