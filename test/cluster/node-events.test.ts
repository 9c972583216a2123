/**
 * A node embedded in an application tells it of the executions it runs (`executionStarted`,
 * `executionEnded`), on a real SQLite file and a real PostgreSQL schema, with in-process nodes:
 * each payload is what the repository reads back, a completed and a failed execution end
 * `ended`, one a drain or a shutdown stops ends `handedOver` with the execution that resumes it,
 * one whose node loses its lease ends `lost` with what its peer's failover wrote, and a listener that throws (or rejects) is logged while the node and the other listeners go on.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { count, noop } from '../../examples/nightshift.config.ts';
import { createLogger, silentLogger } from '../../src/core/logger.ts';
import type { JobExecution } from '../../src/core/model.ts';
import { startNode, type ClusterNode, type ExecutionEnd } from '../../src/cluster/node.ts';
import { createNightshift, type Nightshift } from '../../src/operator.ts';
import { createJobExplorer } from '../../src/repository/job-repository.ts';
import { backends } from '../support/backends.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { pgBackend, waitFor } from './helpers.ts';

const lease = { heartbeatMs: 200, leaseMs: 3000 };
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A node that records the execution events it emits. */
async function recordingNode(url: string, name: string, logger = silentLogger, nodeLease = lease) {
  const node: ClusterNode = await startNode({ db: url, jobs: [noop, count], name, lease: nodeLease, pollMs: 100, logger, scheduler: false });
  cleanups.push(() => node.shutdown({ timeoutMs: 0 }));
  const started: JobExecution[] = [];
  const ended: ExecutionEnd[] = [];
  node.on('executionStarted', (e) => started.push(e));
  node.on('executionEnded', (e) => ended.push(e));
  const endOf = (id: number) => waitFor(() => ended.find((e) => e.execution.id === id), 20_000, `the end of execution ${id} on ${name}`);
  const startOf = (id: number) => waitFor(() => started.find((e) => e.id === id), 20_000, `the start of execution ${id} on ${name}`);
  return { node, started, ended, endOf, startOf };
}

async function operator(url: string): Promise<Nightshift> {
  const ns = await createNightshift({ db: url, jobs: [noop, count], logger: silentLogger });
  cleanups.push(() => ns.close());
  return ns;
}

/** What the repository holds of execution `id` now, as executionEnded carries it. */
const readBack = async (ns: Nightshift, id: number) => (await createJobExplorer(ns.db).getExecutionSummary(id))!;

describe.each(backends())('node execution events ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('a completed and a failed execution: started as claimed, ended as the repository holds them', async () => {
    const url = backend.freshUrl('events');
    const ns = await operator(url);
    const a = await recordingNode(url, 'a');
    const ok = await ns.submit('noop', { 'run.id': 1 });
    const bad = await ns.submit('count', { items: 5, chunk: 5, tag: 'bad', failAt: 3 });

    for (const submitted of [ok, bad]) {
      const start = await a.startOf(submitted.id);
      const end = await a.endOf(submitted.id);
      // The start came first, and says what the claim wrote: this node runs it, STARTED, with its parameters.
      expect(a.started.indexOf(start)).toBeLessThanOrEqual(a.ended.indexOf(end));
      const now = await readBack(ns, submitted.id);
      expect(start).toMatchObject({ id: submitted.id, instanceId: now.instanceId, jobName: submitted.jobName, params: now.params, status: 'STARTED', node: 'a', startTime: now.startTime });
      expect(end.execution).toEqual(now);
    }
    expect((await a.endOf(ok.id)).ending).toBe('ended');
    expect((await a.endOf(ok.id)).execution).toMatchObject({ status: 'COMPLETED', exitStatus: { code: 'COMPLETED' }, restartedAs: null });
    const failed = await a.endOf(bad.id);
    expect(failed.ending).toBe('ended');
    expect(failed.execution).toMatchObject({ status: 'FAILED', exitStatus: { code: 'FAILED' }, restartedAs: null });
    expect(failed.execution.exitStatus.description).toContain('failing on purpose at item 3');
    expect(failed.execution.endTime).toBeInstanceOf(Date);
    // One event of each per execution.
    expect(a.started.map((e) => e.id).sort()).toEqual([ok.id, bad.id].sort());
    expect(a.ended.map((e) => e.execution.id).sort()).toEqual([ok.id, bad.id].sort());
  });

  it('a drain, then a shutdown, hand the execution over: STOPPED, resumed as the execution the event names, each item written once', async () => {
    const url = backend.freshUrl('handover');
    const ns = await operator(url);
    const a = await recordingNode(url, 'a');
    const first = await ns.submit('count', { items: 60, chunk: 1, tag: 'slow', delayMs: 50 });
    await a.startOf(first.id);
    await waitFor(async () => (await ns.getExecution(first.id))?.steps[0]?.writeCount, 20_000, 'a chunk committed');

    await a.node.drain();
    const drained = await a.endOf(first.id);
    expect(drained.ending).toBe('handedOver');
    expect(drained.execution).toEqual(await readBack(ns, first.id));
    expect(drained.execution.status).toBe('STOPPED');
    const second = drained.execution.restartedAs!.id;
    expect((await ns.explorer.getExecution(second))?.instanceId).toBe(first.instanceId);

    // Resumed, the node claims the restart again; its shutdown hands that over in turn, and
    // tells of it before it resolves.
    await a.node.resume();
    await a.startOf(second);
    await waitFor(async () => (await ns.getExecution(second))?.steps[0]?.writeCount, 20_000, 'a chunk committed');
    await a.node.shutdown({ timeoutMs: 10_000 });
    const left = a.ended.find((e) => e.execution.id === second)!;
    expect(left.ending).toBe('handedOver');
    expect(left.execution).toEqual(await readBack(ns, second));
    expect(left.execution.status).toBe('STOPPED');

    const b = await recordingNode(url, 'b');
    const done = await b.endOf(left.execution.restartedAs!.id);
    expect(done).toMatchObject({ ending: 'ended', execution: { status: 'COMPLETED', restartedAs: null } });
    const [rows] = await ns.db.query<{ total: number; items: number }>('SELECT count(*) AS total, count(DISTINCT item) AS items FROM count_items WHERE tag = $1', ['slow']);
    expect([Number(rows.total), Number(rows.items)]).toEqual([60, 60]);
  });

  it('a listener that throws or rejects is logged; the node and the other listeners go on', async () => {
    const url = backend.freshUrl('throwing');
    const ns = await operator(url);
    const warned: { msg: string; event?: string; err?: string }[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void warned.push(JSON.parse(line) as (typeof warned)[number]) } });
    const node = await startNode({ db: url, jobs: [noop, count], name: 'a', lease, pollMs: 100, logger, scheduler: false });
    cleanups.push(() => node.shutdown({ timeoutMs: 0 }));
    node.on('executionStarted', () => {
      throw new Error('started listener broke');
    });
    node.on('executionEnded', async () => {
      throw new Error('ended listener rejected');
    });
    const ended: ExecutionEnd[] = [];
    node.on('executionEnded', (e) => ended.push(e));

    const ids: number[] = [];
    for (const i of [1, 2]) {
      const { id } = await ns.submit('noop', { 'run.id': i });
      ids.push(id);
      await waitFor(() => ended.some((e) => e.execution.id === id), 20_000, `execution ${id} ended`);
    }
    expect(ended.map((e) => [e.execution.id, e.execution.status, e.ending])).toEqual(ids.map((id) => [id, 'COMPLETED', 'ended']));
    await waitFor(() => warned.filter((w) => w.event === 'executionEnded').length === 2, 5000, 'the rejections logged');
    const failures = warned.filter((w) => w.msg.startsWith('a listener of the node'));
    expect(failures.map((w) => [w.msg, w.err])).toEqual([
      ["a listener of the node's executionStarted event failed", 'started listener broke'],
      ["a listener of the node's executionEnded event failed", 'ended listener rejected'],
      ["a listener of the node's executionStarted event failed", 'started listener broke'],
      ["a listener of the node's executionEnded event failed", 'ended listener rejected'],
    ]);
    expect(node.health()).toMatchObject({ state: 'running', running: 0 });
  });
});

describe('node execution events when the node loses its lease (postgres, the database cut off by a TCP proxy)', () => {
  const backend = pgBackend();
  afterAll(() => backend.cleanup());

  it('ends `lost`, with the FAILED and the restart the failover wrote, not an end of its own', async () => {
    const url = backend.freshUrl('lost');
    const ns = await operator(url);
    const proxy = await startTcpProxy('127.0.0.1', 5432);
    cleanups.push(() => proxy.close());
    const a = await recordingNode(url.replace('@127.0.0.1:5432/', `@127.0.0.1:${proxy.port}/`), 'a', silentLogger, { heartbeatMs: 200, leaseMs: 1500 });
    // A peer that does not run the job: it declares a dead and fails its execution over.
    const peer = await startNode({ db: url, jobs: [noop], name: 'peer', lease, pollMs: 100, logger: silentLogger, scheduler: false });
    cleanups.push(() => peer.shutdown({ timeoutMs: 0 }));
    const failovers: { failedExecutionId: number; newExecutionId: number | null }[] = [];
    peer.on('failover', (f) => failovers.push(f));
    const submitted = await ns.submit('count', { items: 60, chunk: 1, tag: 'lost', delayMs: 50 });
    await a.startOf(submitted.id);
    await waitFor(async () => (await ns.getExecution(submitted.id))?.steps[0]?.writeCount, 20_000, 'a chunk committed');

    await proxy.cut();
    const failover = await waitFor(() => failovers.find((f) => f.failedExecutionId === submitted.id), 20_000, 'the failover');
    await proxy.restore();
    const end = await a.endOf(submitted.id);
    expect(end.ending).toBe('lost');
    const now = await readBack(ns, submitted.id);
    // The restart may have moved on since (a claimed it again): its id is what is compared.
    expect({ ...end.execution, restartedAs: end.execution.restartedAs?.id }).toEqual({ ...now, restartedAs: now.restartedAs?.id });
    expect(end.execution).toMatchObject({ status: 'FAILED', restartedAs: { id: failover.newExecutionId } });
    expect(end.execution.exitStatus.description).toContain('node a lost');
  }, 60_000);
});
