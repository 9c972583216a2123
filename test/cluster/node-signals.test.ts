/**
 * Signals during a `nightshift node`'s graceful shutdown, with real processes and real signals on
 * PostgreSQL. A second SIGTERM used to kill the node at once (its handlers were gone: exit 143, no
 * log, no `left`), and its executions then failed over through the lease, FAILED. Now the node
 * handles signals for its whole life: a second one within a moment of the first (a supervisor
 * signalling the pid and its group) is the same request; a later one hands what still runs over
 * at once. Either way the node exits 0, recorded `left`, and its execution ends STOPPED and is
 * resumed on the other node from its last commit, each item written exactly once.
 */
import { expect, it } from 'vitest';
import { exactlyOnce, freshPerTest, instanceExecutions, openCluster, pgBackend, startNode, waitAlive, waitFor, type NodeProc } from './helpers.ts';

const newCluster = freshPerTest(pgBackend(), openCluster);

async function signalledTwice(label: string, gapMs: number, params: { items: number; chunk: number; delayMs: number }) {
  const cluster = await newCluster(label);
  const { url, ns, db } = cluster;
  const x = startNode(url, 'x');
  const y = startNode(url, 'y');
  const procs: NodeProc[] = [x, y];
  try {
    await waitAlive(ns, ['x', 'y']);
    const submitted = await ns.submit('count', { ...params, tag: label }, { node: 'x' });
    // Running on x, within its second chunk: its first has committed, and the next one, read
    // ahead, is under way (a signal before a chunk begins stops the step at once, and x leaves).
    await waitFor(async () => ((await ns.getExecution(submitted.id))?.steps[0]?.writeCount ?? 0) >= params.chunk, 15_000, 'x to commit its first chunk');
    const t0 = performance.now();
    x.child.kill('SIGTERM');
    // The first signal is logged at once, not at the chunk boundary.
    await waitFor(() => /received SIGTERM: taking no more work/.test(x.output()), 5000, 'the shutdown line in the log');
    const gap = gapMs - (performance.now() - t0);
    if (gap > 0) await new Promise((r) => setTimeout(r, gap));
    x.child.kill('SIGTERM');
    expect(await x.exited).toEqual({ code: 0, signal: null });
    const exitedAfterMs = performance.now() - t0;

    const first = (await ns.getExecution(submitted.id))!;
    expect(first.status).toBe('STOPPED');
    expect(first.node).toBe('x');
    const done = await ns.waitForEnd(submitted.id, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ status: 'COMPLETED', node: 'y' });
    expect((await ns.getExecution(submitted.id))!.restartedAs).toMatchObject({ status: 'COMPLETED' });
    const all = await instanceExecutions(ns, submitted.id);
    expect(all.map((e) => e.status)).toEqual(['COMPLETED', 'STOPPED']);
    expect(all.some((e) => e.exitStatus.description.includes('no heartbeat'))).toBe(false);
    expect((await ns.nodes({ all: true })).find((n) => n.name === 'x')?.status).toBe('left');
    expect(await exactlyOnce(db, label, params.items)).toMatchObject({ ok: true });
    expect(y.exit).toBeUndefined();
    return { x, exitedAfterMs };
  } catch (err) {
    for (const p of procs) console.log(`--- node ${p.name} ---\n${p.output().split('\n').slice(-30).join('\n')}`);
    throw err;
  }
}

it('SIGTERM twice 100 ms apart (pid and group): one graceful shutdown, x exits 0 and left, its execution STOPPED and resumed on y exactly once', async () => {
  // Chunks of 3 s: both signals come early in the second chunk, which x then finishes.
  const { x } = await signalledTwice('twice-fast', 100, { items: 30, chunk: 10, delayMs: 300 });
  expect(x.output()).toContain('as the same request');
  expect(x.output()).toContain('node x left');
}, 60_000);

it('SIGTERM again later: x hands its execution over at once, without waiting for the chunk boundary, exits 0 and left; y resumes it exactly once', async () => {
  // Chunks of 3 s: the second signal comes 1.5 s into the second chunk, long before it would end.
  const { x, exitedAfterMs } = await signalledTwice('twice-slow', 1500, { items: 30, chunk: 10, delayMs: 300 });
  expect(x.output()).toMatch(/received SIGTERM again: handing over 1 running execution now/);
  expect(exitedAfterMs).toBeLessThan(4500);
  expect(x.output()).toContain('node x left');
}, 60_000);
