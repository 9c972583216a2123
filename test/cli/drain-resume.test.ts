/**
 * `nightshift drain NODE` and `nightshift resume NODE`: an operator with the CLI only drains a
 * live node (it takes no more work) and resumes it (it takes work again), as the HTTP API and the
 * console do. A real node process on an SQLite repository.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { backends, waitFor } from '../support/backends.ts';
import { killAll, startNode } from '../support/node-procs.ts';
import { cliFor } from './run-cli.ts';

const sqlite = backends().find((b) => b.name === 'sqlite')!;

afterAll(async () => {
  await killAll();
  await sqlite.cleanup();
});

describe('nightshift drain and resume', () => {
  it('drains a live node, whose queued work then waits, and resumes it, which then runs the work; an unknown node is exit 2', async () => {
    const url = sqlite.freshUrl('drainresume');
    const cli = cliFor(url);
    expect((await cli.run(['run', 'noop'])).code).toBe(0);
    const node = startNode(url, 'dr', { args: ['--heartbeat-ms', '200', '--lease-ms', '3000'] });
    await waitFor(() => /node dr joined/.test(node.output()) || undefined, 30_000, 'the node to join');

    const drained = await cli.run(['drain', 'dr']);
    expect(drained.stderr).toBe('');
    expect(drained.code).toBe(0);
    expect(drained.stdout.trim()).toBe('node dr is asked to drain: within a heartbeat it takes no more work and hands over what it runs');
    await waitFor(() => /node dr draining/.test(node.output()) || undefined, 20_000, 'the node to drain');
    expect((await cli.run(['drain', 'dr'])).stdout.trim()).toBe('node dr was already asked to drain');
    // `nodes` tells a drained node from one that takes work, in the table and in JSON.
    const table = await cli.run(['nodes']);
    expect(table.code).toBe(0);
    // Its last heartbeat as an age by the database's clock: it beats every 200 ms.
    expect(table.stdout).toMatch(/^dr\s+draining\s+\d\.\d s ago\s/m);
    expect((await cli.json<{ name: string; status: string; draining: boolean; pid: number }[]>(['nodes'])).find((n) => n.name === 'dr'))
      .toMatchObject({ status: 'alive', draining: true, pid: node.pid });
    // The only node drains, so a submit says that nothing takes the job yet, and one sent to it that it drains.
    const sent = await cli.run(['submit', 'noop', 'run.id=7', '--json']);
    expect(sent.code, sent.stderr).toBe(0);
    const submitted = JSON.parse(sent.stdout) as { id: number; status: string };
    expect(sent.stderr).toBe(`nightshift: no live node runs job noop yet: execution ${submitted.id} waits, STARTING, until one does (start one with nightshift node)\n`);
    const toDr = await cli.run(['submit', 'noop', 'run.id=8', '--node', 'dr', '--json']);
    const toDrId = (JSON.parse(toDr.stdout) as { id: number }).id;
    expect(toDr.stderr).toBe(`nightshift: node dr is draining; execution ${toDrId} waits until it resumes (nightshift resume dr) (or abandon it)\n`);
    // Its heartbeats go on for longer than two of its polls (1 s each), and the execution still
    // waits: the drained node takes nothing.
    const heartbeat = async () => Date.parse((await cli.json<{ name: string; lastHeartbeat: string }[]>(['nodes'])).find((n) => n.name === 'dr')!.lastHeartbeat);
    const since = await heartbeat();
    await waitFor(async () => ((await heartbeat()) >= since + 2500 ? true : undefined), 20_000, 'the drained node to beat on for 2.5 s');
    expect((await cli.json<{ status: string }>(['execution', String(submitted.id)])).status).toBe('STARTING');

    const resumed = await cli.json<{ name: string; status: string }>(['resume', 'dr']);
    expect(resumed).toMatchObject({ name: 'dr', status: 'alive', draining: false });
    expect((await cli.run(['nodes'])).stdout).toMatch(/^dr\s+alive\s/m);
    const done = await waitFor(async () => {
      const e = await cli.json<{ status: string; node: string | null }>(['execution', String(submitted.id)]);
      return e.status === 'COMPLETED' ? e : undefined;
    }, 30_000, 'the resumed node to run the queued execution');
    expect(done.node).toBe('dr');
    expect(node.output()).toMatch(/node dr resumed: it takes work again/);
    const again = await cli.run(['resume', 'dr']);
    expect([again.code, again.stdout.trim()]).toEqual([0, 'node dr was not draining: it takes work already']);

    for (const command of ['drain', 'resume']) {
      const r = await cli.run([command, 'nosuch']);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe('nightshift: no live node named nosuch');
    }
  }, 120_000);

  it('a second node started with the name of a live one warns that names must be unique; nodes lists both, and drain reaches both', async () => {
    const url = sqlite.freshUrl('twins');
    const cli = cliFor(url);
    const first = startNode(url, 'twin');
    await waitFor(() => /node twin joined/.test(first.output()) || undefined, 30_000, 'the first node to join');
    // Its first line says which repository it joined, from which process.
    const joined = JSON.parse(first.output().split('\n').find((l) => l.includes('"msg":"node twin joined"'))!) as Record<string, unknown>;
    expect(joined).toMatchObject({ level: 30, node: 'twin', repository: url, pid: first.pid, host: expect.any(String), concurrency: 4 });
    const second = startNode(url, 'twin');
    const warning = await waitFor(() => second.output().split('\n').find((l) => l.includes('while another node named twin is alive')), 30_000, 'the warning');
    expect(JSON.parse(warning)).toMatchObject({
      level: 40, node: 'twin', namesakes: [{ pid: first.pid }],
      msg: expect.stringMatching(/^node twin joined while another node named twin is alive \(pid \d+ on \S+\): give each node its own --name/),
    });
    expect(first.output()).not.toMatch(/another node named/);
    const listed = await cli.json<{ name: string; status: string; pid: number }[]>(['nodes']);
    expect(listed.filter((n) => n.name === 'twin').map((n) => [n.status, n.pid])).toEqual([['alive', first.pid], ['alive', second.pid]]);
    expect((await cli.run(['drain', 'twin'])).code).toBe(0);
    await waitFor(() => [first, second].every((n) => /node twin draining/.test(n.output())) || undefined, 20_000, 'both nodes to drain');
  }, 120_000);

  it('a node killed and started again under its name before its lease ran out does not warn: that namesake is its own earlier run', async () => {
    const url = sqlite.freshUrl('rerun');
    const lease = ['--heartbeat-ms', '1000', '--lease-ms', '60000'];
    const first = startNode(url, 'rerun', { args: lease });
    await waitFor(() => /node rerun joined/.test(first.output()) || undefined, 30_000, 'the first run to join');
    first.child.kill('SIGKILL');
    await first.exited;
    const again = startNode(url, 'rerun', { args: lease });
    await waitFor(() => /node rerun joined/.test(again.output()) || undefined, 30_000, 'the second run to join');
    // The killed run is still alive in the repository (its lease has a minute to go), and not warned about.
    const listed = await cliFor(url).json<{ name: string; status: string; pid: number }[]>(['nodes']);
    expect(listed.filter((n) => n.name === 'rerun').map((n) => [n.status, n.pid])).toEqual([['alive', first.pid], ['alive', again.pid]]);
    expect(again.output()).not.toMatch(/another node named/);
  }, 120_000);

  it.each(backends().filter((b) => b.name === 'postgres'))('a node on PostgreSQL names its repository in its joined line, without the password', async (pg) => {
    const u = new URL(pg.freshUrl('joinedline'));
    if (!u.password) u.password = 'hunter2-joined';
    const node = startNode(u.toString(), 'pgjoin');
    try {
      const line = await waitFor(() => node.output().split('\n').find((l) => l.includes('"msg":"node pgjoin joined"')), 30_000, 'the node to join');
      const repository = String((JSON.parse(line) as { repository: unknown }).repository);
      const shown = new URL(u);
      shown.password = '';
      expect(repository).toBe(shown.toString());
      expect(node.output()).not.toContain(u.password);
    } finally {
      // The node first: a schema dropped under a live node's connections may be left behind.
      node.child.kill('SIGKILL');
      await node.exited;
      await pg.cleanup();
    }
  }, 60_000);
});
