/**
 * Routing of submitted launches through the CLI, against real `nightshift node` processes on
 * PostgreSQL: named node, affinity key, unknown node/job, bad node options, queued work for a
 * node that left, and the `submit --json` / `submit --wait --json` contract.
 */
import { describe, expect, it } from 'vitest';
import { CONFIG, cli, exactlyOnce, freshPerTest, openCluster, pgBackend, startNode, waitAlive, waitFor } from './helpers.ts';

const newCluster = freshPerTest(pgBackend(), openCluster);

interface ExecJson {
  id: number;
  status: string;
  node: string | null;
  jobName: string;
  exitStatus: { code: string; description: string | null };
  parameters: Record<string, unknown>;
  steps: unknown[];
}

const submit = (url: string, args: string[]) => cli(['submit', ...args, '--db', url, '--config', CONFIG]);

describe('cluster routing (postgres, real node processes)', () => {
  it('submit --node b runs on b', async () => {
    const { ns, url } = await newCluster('route');
    startNode(url, 'a');
    startNode(url, 'b');
    await waitAlive(ns, ['a', 'b']);

    const onB = await submit(url, ['count', 'items=40', 'chunk=10', 'tag=onb', '--node', 'b', '--wait', '--json']);
    expect(onB.code, onB.stderr).toBe(0);
    const eB = JSON.parse(onB.stdout) as ExecJson;
    expect(eB.status).toBe('COMPLETED');
    expect(eB.node).toBe('b');
  });

  it('--key: each key follows its first placement (on b), though routing alone now prefers a', async () => {
    const { ns, url, db } = await newCluster('affinity');
    const keys = ['k1', 'k2', 'k3'];
    const run = async (key: string, tag: string) => {
      const r = await submit(url, ['count', 'items=20', 'chunk=10', `tag=${tag}`, '--key', key, '--wait', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const e = JSON.parse(r.stdout) as ExecJson;
      expect(e.status, `${key} (${tag})`).toBe('COMPLETED');
      return e.node;
    };
    // Only b is alive: the first placement of every key lands on b.
    startNode(url, 'b');
    await waitAlive(ns, ['b']);
    expect(await Promise.all(keys.map((k) => run(k, `${k}_first`)))).toEqual(keys.map(() => 'b'));

    // a joins. Both are idle, and a tie goes to a (by name): a key never placed before lands on a,
    // so any key that lands on b again is there because it followed its first placement.
    startNode(url, 'a');
    await waitAlive(ns, ['a', 'b']);
    expect(await run('fresh', 'fresh'), 'a new key with both nodes idle').toBe('a');
    for (const k of keys) expect(await run(k, `${k}_again`), `key ${k} after a joined`).toBe('b');
    // Its first placement on a sticks too.
    expect(await run('fresh', 'fresh_again')).toBe('a');
    for (const k of keys) expect(await exactlyOnce(db, `${k}_again`, 20)).toMatchObject({ ok: true });
  });

  it('bad usage exits 2 with one clear line: unknown node, unknown job, bad lease options', async () => {
    const { ns, url } = await newCluster('usage');
    startNode(url, 'a');
    await waitAlive(ns, ['a']);

    const [ghost, nojob, abc, short] = await Promise.all([
      submit(url, ['count', 'tag=ghost', '--node', 'ghost']),
      submit(url, ['nosuchjob']),
      cli(['node', '--name', 'x', '--lease-ms', 'abc', '--db', url, '--config', CONFIG]),
      cli(['node', '--name', 'y', '--heartbeat-ms', '1000', '--lease-ms', '500', '--db', url, '--config', CONFIG]),
    ]);
    expect(ghost.code).toBe(2);
    expect(ghost.stderr).toMatch(/ghost/);
    expect(ghost.stderr.trim().split('\n')).toHaveLength(1);
    expect(ghost.stdout).toBe('');
    expect(nojob.code).toBe(2);
    expect(nojob.stderr).toMatch(/nosuchjob/);
    expect(nojob.stderr.trim().split('\n')).toHaveLength(1);
    expect(abc.code).toBe(2);
    expect(abc.stderr).toMatch(/lease-ms/);
    expect(abc.stderr).toMatch(/abc/);
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/lease/);
    expect(short.stderr).toMatch(/heartbeat/);
    expect(short.stderr.trim().split('\n')).toHaveLength(1);
    // Nothing was queued by the rejected submissions.
    expect(await ns.listExecutions({})).toHaveLength(0);
    // Neither bad node registered.
    expect((await ns.nodes()).map((n) => n.name)).toEqual(['a']);
  });

  it('work for a node that left stays queued (STARTING) until a node of that name joins again', async () => {
    const { ns, url } = await newCluster('queued');
    startNode(url, 'a');
    const b = startNode(url, 'b');
    await waitAlive(ns, ['a', 'b']);
    b.child.kill('SIGTERM');
    expect(await b.exited).toEqual({ code: 0, signal: null });
    expect((await ns.nodes()).find((n) => n.name === 'b')?.status).toBe('left');

    const r = await submit(url, ['count', 'items=30', 'chunk=10', 'tag=forb', 'delayMs=30', '--node', 'b', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const queued = JSON.parse(r.stdout) as ExecJson;
    expect(queued.status).toBe('STARTING');
    expect(r.stderr).toBe(`nightshift: node b is not alive; execution ${queued.id} waits until a node named b joins (or abandon it)\n`);
    // Proof that a had every chance to claim it: a later, unaddressed submission completes on a.
    const later = await submit(url, ['count', 'items=10', 'chunk=10', 'tag=later', '--wait', '--json']);
    expect(later.code, later.stderr).toBe(0);
    expect((JSON.parse(later.stdout) as ExecJson).node).toBe('a');
    expect((await ns.explorer.getExecution(queued.id))?.status).toBe('STARTING');
    // a polls every second; wait for another poll round via a second probe too.
    const later2 = await submit(url, ['noop', '--wait', '--json']);
    expect((JSON.parse(later2.stdout) as ExecJson).node).toBe('a');
    expect((await ns.explorer.getExecution(queued.id))?.status).toBe('STARTING');

    startNode(url, 'b');
    // While it runs, b's new incarnation lists it among what it runs.
    await waitFor(async () => (await ns.nodes()).some((n) => n.name === 'b' && n.status === 'alive' && n.running.includes(queued.id)), 20_000, 'b running the queued execution');
    const done = await ns.waitForEnd(queued.id, { timeoutMs: 20_000 });
    expect(done.status).toBe('COMPLETED');
    expect(done.id).toBe(queued.id);
    expect(done.node).toBe('b');
  });

  it('submit --json prints a STARTING execution with its id at once; --wait --json prints it COMPLETED', async () => {
    const { ns, url } = await newCluster('json');
    // No node yet: the submission cannot have been claimed when it is printed.
    const r = await submit(url, ['count', 'items=30', 'chunk=10', 'tag=json1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const e = JSON.parse(r.stdout) as ExecJson;
    expect(Number.isInteger(e.id) && e.id > 0).toBe(true);
    expect(e.status).toBe('STARTING');
    expect(e.jobName).toBe('count');
    expect(e.parameters).toMatchObject({ items: 30, chunk: 10, tag: 'json1' });
    expect((await ns.explorer.getExecution(e.id))?.status).toBe('STARTING');

    startNode(url, 'a');
    await waitAlive(ns, ['a']);
    const w = await submit(url, ['count', 'items=30', 'chunk=10', 'tag=json2', '--wait', '--json']);
    expect(w.code, w.stderr).toBe(0);
    const done = JSON.parse(w.stdout) as ExecJson;
    expect(done.status).toBe('COMPLETED');
    expect(done.node).toBe('a');
    expect(done.exitStatus.code).toBe('COMPLETED');
    expect(done.steps.length).toBe(1);
    // The first submission is picked up by the node too.
    const first = await waitFor(async () => {
      const x = await ns.explorer.getExecution(e.id);
      return x?.status === 'COMPLETED' ? x : undefined;
    }, 20_000, `execution ${e.id} to complete`);
    expect(first.node).toBe('a');
  });
});
