/**
 * Failover across real `nightshift node` processes on PostgreSQL: SIGKILL of the owner (default
 * and tuned leases), SIGSTOP/SIGCONT fencing, and graceful SIGTERM hand-over.
 */
import { describe, expect, it } from 'vitest';
import { lostNodePattern } from '../support/failover-description.ts';
import { seededRandom } from '../support/rng.ts';
import {
  exactlyOnce, freshPerTest, instanceExecutions, nodesJson, openCluster, pgBackend, rowsOf, startNode, waitAlive, waitFor, type NodeProc,
} from './helpers.ts';

const newCluster = freshPerTest(pgBackend(), openCluster);

const SEED = Number(process.env.NIGHTSHIFT_CHAOS_SEED ?? Date.now() % 1_000_000);

/**
 * Two nodes; submit a count; once its execution has committed `threshold` rows, SIGKILL the
 * owner; returns what happened, with the failover time (kill -> new execution STARTED).
 */
async function killOwnerAndFailOver(label: string, threshold: number, nodeArgs: string[] = []) {
  const { ns, db, url } = await newCluster(label);
  const procs: Record<string, NodeProc> = { a: startNode(url, 'a', { args: nodeArgs }), b: startNode(url, 'b', { args: nodeArgs }) };
  await waitAlive(ns, ['a', 'b']);
  const tag = `t1_${label}`;
  const submitted = await ns.submit('count', { items: 600, chunk: 20, delayMs: 5, tag });
  const started = await waitFor(async () => {
    const e = await ns.explorer.getExecution(submitted.id);
    return e?.status === 'STARTED' && e.node && (await rowsOf(db, { executionId: submitted.id })) >= threshold ? e : undefined;
  }, 20_000, `execution ${submitted.id} STARTED with >= ${threshold} rows`);
  const owner = started.node!;
  const survivor = owner === 'a' ? 'b' : 'a';
  const rowsAtKill = await rowsOf(db, { executionId: submitted.id });
  const killedAt = Date.now();
  procs[owner].child.kill('SIGKILL');
  const next = await waitFor(async () => {
    const list = await instanceExecutions(ns, submitted.id);
    const e = list.find((x) => x.id > submitted.id && x.status !== 'STARTING');
    return e;
  }, 20_000, 'the failed-over execution to start');
  const failoverMs = Date.now() - killedAt;
  const done = await ns.waitForEnd(submitted.id, { timeoutMs: 30_000 });
  const killed = (await ns.explorer.getExecution(submitted.id))!;
  const nodes = await nodesJson(url);
  const once = await exactlyOnce(db, tag, 600);
  console.log(`[failover ${label}] seed=${SEED} threshold=${threshold} rowsAtKill=${rowsAtKill} owner=${owner} failover=${failoverMs} ms`);
  return { submitted, owner, survivor, next, failoverMs, done, killed, nodes, once, procs };
}

describe('cluster failover (postgres, real node processes)', () => {
  const rand = seededRandom(SEED).int;
  const thresholds = [rand(1, 150), rand(150, 350), rand(350, 520)];

  it.each(thresholds.map((t, i) => [i + 1, t]))('SIGKILL of the owning node, kill point %i (>= %i rows): completes elsewhere, exactly once, in < 6 s', async (round, threshold) => {
    const r = await killOwnerAndFailOver(`kill${round}`, threshold);
    expect(r.done.status).toBe('COMPLETED');
    expect(r.done.id).toBe(r.next.id);
    expect(r.done.node).toBe(r.survivor);
    expect(r.next.node).toBe(r.survivor);
    expect(r.once).toMatchObject({ ok: true, total: 600, distinct: 600 });
    expect(r.killed.status).toBe('FAILED');
    expect(r.killed.exitStatus.description ?? '').toMatch(lostNodePattern(r.owner));
    const killedNodes = r.nodes.filter((n) => n.name === r.owner);
    expect(killedNodes.map((n) => n.status)).toEqual(['dead']);
    expect(r.nodes.find((n) => n.name === r.survivor)?.status).toBe('alive');
    expect(r.failoverMs).toBeLessThan(6000);
    // The survivor's log line of the failover is JSON attributed to the survivor, the dead node as its peer.
    const line = await waitFor(() => r.procs[r.survivor].output().split('\n').find((l) => l.includes('failed over as')), 10_000, 'the failover log line');
    expect(JSON.parse(line)).toMatchObject({
      level: 40, node: r.survivor, peer: r.owner, failedExecutionId: r.submitted.id, newExecutionId: r.next.id,
      msg: `execution ${r.submitted.id} of dead node ${r.owner} failed over as execution ${r.next.id}`,
    });
  });

  it('tuned lease (--heartbeat-ms 200 --lease-ms 800): failover in < 2.5 s', async () => {
    const r = await killOwnerAndFailOver('tuned', 60, ['--heartbeat-ms', '200', '--lease-ms', '800']);
    expect(r.done.status).toBe('COMPLETED');
    expect(r.done.node).toBe(r.survivor);
    expect(r.killed.status).toBe('FAILED');
    expect(r.once.ok).toBe(true);
    expect(r.failoverMs).toBeLessThan(2500);
  });

  it('SIGSTOP fencing: a paused owner that wakes after losing its lease writes nothing more', async () => {
    const { ns, db, url } = await newCluster('sigstop');
    const a = startNode(url, 'a');
    startNode(url, 'b');
    await waitAlive(ns, ['a', 'b']);
    const ITEMS = 1500;
    const submitted = await ns.submit('count', { items: ITEMS, chunk: 50, delayMs: 5, tag: 'stop' }, { node: 'a' });
    await waitFor(async () => {
      const e = await ns.explorer.getExecution(submitted.id);
      return e?.status === 'STARTED' && e.node === 'a' && (await rowsOf(db, { executionId: submitted.id })) >= 100;
    }, 20_000, 'a running the count with committed rows');
    a.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    const done = await ns.waitForEnd(submitted.id, { timeoutMs: 40_000 });
    expect(done.status).toBe('COMPLETED');
    expect(done.id).not.toBe(submitted.id);
    expect(done.node).toBe('b');
    const old = (await ns.explorer.getExecution(submitted.id))!;
    expect(old.status).toBe('FAILED');
    expect(old.exitStatus.description).toMatch(lostNodePattern('a'));
    const before = await rowsOf(db, { executionId: submitted.id });
    console.log(`[failover sigstop] b completed ${Date.now() - stoppedAt} ms after SIGSTOP; old execution rows=${before}`);

    a.child.kill('SIGCONT');
    // a wakes, finds itself declared dead, drops its work and rejoins as a new incarnation.
    await waitFor(async () => {
      if (a.output().includes('declared dead')) return true;
      const nodes = await nodesJson(url);
      const incarnations = nodes.filter((n) => n.name === 'a');
      return incarnations.length >= 2 && incarnations[incarnations.length - 1].status === 'alive';
    }, 10_000, 'node a to notice it was declared dead');
    // Let a's rejoined incarnation show up too (its old chunk timers have surely fired by then).
    await waitFor(async () => (await nodesJson(url)).filter((n) => n.name === 'a' && n.status === 'alive').length === 1, 10_000, 'a rejoined');
    const after = await rowsOf(db, { executionId: submitted.id });
    const aLines = a.output().split('\n').filter((l) => /declared dead|fenc|lost|joined/i.test(l));
    console.log(`[failover sigstop] rows of the old execution before/after SIGCONT: ${before}/${after}; node a said:\n${aLines.map((l) => l.slice(0, 240)).join('\n')}`);
    expect(after).toBe(before);
    expect(a.exit).toBeUndefined(); // it survived and rejoined
    expect(await exactlyOnce(db, 'stop', ITEMS)).toMatchObject({ ok: true });
    const old2 = (await ns.explorer.getExecution(submitted.id))!;
    expect(old2.status).toBe('FAILED');
  });

  it('graceful SIGTERM: a exits 0, its execution STOPS and resumes on b, exactly once; a is "left"', async () => {
    const { ns, db, url } = await newCluster('sigterm');
    const a = startNode(url, 'a');
    startNode(url, 'b');
    await waitAlive(ns, ['a', 'b']);
    const ITEMS = 1200;
    const submitted = await ns.submit('count', { items: ITEMS, chunk: 20, delayMs: 5, tag: 'term' }, { node: 'a' });
    await waitFor(async () => {
      const e = await ns.explorer.getExecution(submitted.id);
      return e?.status === 'STARTED' && e.node === 'a' && (await rowsOf(db, { executionId: submitted.id })) >= 60;
    }, 20_000, 'a running the count with committed rows');
    a.child.kill('SIGTERM');
    const exit = await a.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    const stopped = (await ns.explorer.getExecution(submitted.id))!;
    expect(stopped.status).toBe('STOPPED');
    const done = await ns.waitForEnd(submitted.id, { timeoutMs: 30_000 });
    expect(done.status).toBe('COMPLETED');
    expect(done.id).not.toBe(submitted.id);
    expect(done.node).toBe('b');
    expect(await exactlyOnce(db, 'term', ITEMS)).toMatchObject({ ok: true });
    const nodes = await nodesJson(url);
    expect(nodes.filter((n) => n.name === 'a').map((n) => n.status)).toEqual(['left']);
  });
});
