/**
 * Engine conformance: steps that launch other jobs (Spring Batch's JobStep), reusable flows
 * used by several jobs, and nested splits. Runs unchanged on SQLite and PostgreSQL.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { defineFlow, defineJob, type JobDefinition } from '../../src/core/job.ts';
import { p } from '../../src/core/params.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { reapDeadNodes } from '../../src/cluster/failover.ts';
import { startNode } from '../../src/cluster/node.ts';
import { SQL } from '../../src/repository/sql.ts';
import { registerNode } from '../../src/cluster/node-identity.ts';
import { createExecution } from '../../src/engine/launch.ts';
import type { ExecutionDetails, Nightshift } from '../../src/operator.ts';
import { backends, waitFor } from '../support/backends.ts';
import { deferred, step, thrown, within } from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';

/** The executions of a job, oldest first, with their steps. */
async function executionsOf(ns: Nightshift, job: string): Promise<ExecutionDetails[]> {
  return (await ns.listExecutions({ job, steps: true })).reverse();
}

describe.each(backends())('job steps, reusable flows and nested splits ($name)', (backend) => {
  const pool = suiteInstances(backend);

  describe('job steps', () => {
    /** A child job of two steps; `load` fails while `failLoad` says so. */
    const childJob = (log: string[], failLoad: () => boolean, end = 'LOADED') =>
      defineJob({
        name: 'load-region',
        params: { region: p.string({ required: true }), day: p.string({ required: true }) },
        steps: (s) => [
          s.tasklet({ name: 'fetch', tasklet: ({ params }) => void log.push(`fetch ${params.region} ${params.day}`) }),
          s.tasklet({
            name: 'load',
            tasklet: ({ params }) => {
              log.push(`load ${params.region}`);
              if (failLoad()) throw new Error(`load of ${params.region} broke`);
            },
            on: { COMPLETED: { end } },
          }),
        ],
      });

    it('runs the child as its own instance and execution in this process, with the parent parameters it declares', async () => {
      const log: string[] = [];
      const child = childJob(log, () => false);
      const parent = defineJob({
        name: 'nightly',
        params: { region: p.string({ default: 'eu' }), day: p.string({ required: true }), verbose: p.boolean({ default: false }) },
        steps: (s) => [
          s.job({ name: 'load', job: child, on: { LOADED: 'report', '*': 'fail' } }),
          s.tasklet({ name: 'report', tasklet: () => void log.push('report') }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('jobstep'), [parent]);
      const e = await ns.run('nightly', { day: '2024-01-15' });
      expect(e.status).toBe('COMPLETED');
      expect(log).toEqual(['fetch eu 2024-01-15', 'load eu', 'report']);
      const [childExecution] = await executionsOf(ns, 'load-region');
      expect(childExecution).toMatchObject({ status: 'COMPLETED', exitStatus: { code: 'LOADED' }, params: { region: 'eu', day: '2024-01-15' }, node: e.node });
      expect(childExecution.instanceId).not.toBe(e.instanceId);
      expect(childExecution.steps.map((s) => [s.stepName, s.status])).toEqual([['fetch', 'COMPLETED'], ['load', 'COMPLETED']]);
      expect(step(e, 'load')).toMatchObject({ status: 'COMPLETED', exitStatus: { code: 'LOADED', description: `job load-region execution ${childExecution.id} COMPLETED` } });
      expect(step(e, 'load').context).toMatchObject({ 'ns.job.execution': childExecution.id, 'ns.job.params': { region: 'eu', day: '2024-01-15' } });
    });

    it("takes the child's parameters from a function of the parent's step context when given", async () => {
      const log: string[] = [];
      const parent = defineJob({
        name: 'mapped',
        params: { country: p.string({ default: 'fr' }) },
        steps: (s) => [s.job({ name: 'load', job: childJob(log, () => false), params: ({ params }) => ({ region: `eu-${params.country}`, day: 'today' }) })],
      });
      const ns = await pool.create(backend.freshUrl('mapped'), [parent]);
      expect((await ns.run('mapped')).status).toBe('COMPLETED');
      expect(log).toEqual(['fetch eu-fr today', 'load eu-fr']);
    });

    it('a failed child fails the step and the parent; restarting the parent restarts the child instance', async () => {
      const log: string[] = [];
      let broken = true;
      const child = childJob(log, () => broken);
      const parent = defineJob({
        name: 'parent',
        params: { region: p.string({ default: 'us' }), day: p.string({ default: 'd1' }) },
        steps: (s) => [s.tasklet({ name: 'prepare', tasklet: () => void log.push('prepare') }), s.job({ name: 'load', job: child })],
      });
      const ns = await pool.create(backend.freshUrl('childfail'), [parent]);
      const failed = await ns.run('parent');
      expect(failed.status).toBe('FAILED');
      const [first] = await executionsOf(ns, 'load-region');
      expect(first.status).toBe('FAILED');
      expect(step(failed, 'load')).toMatchObject({ status: 'FAILED', exitStatus: { code: 'FAILED' } });
      expect(step(failed, 'load').exitStatus.description).toMatch(new RegExp(`^job load-region execution ${first.id} FAILED: .*load of us broke$`));

      broken = false;
      const restarted = await ns.restart(failed.id);
      expect(restarted.status).toBe('COMPLETED');
      expect(restarted.steps.map((s) => s.stepName)).toEqual(['load']); // prepare completed before
      const children = await executionsOf(ns, 'load-region');
      expect(children.map((c) => [c.instanceId, c.status])).toEqual([[first.instanceId, 'FAILED'], [first.instanceId, 'COMPLETED']]);
      expect(children[1].steps.map((s) => s.stepName)).toEqual(['load']); // the child restarted: fetch is not run again
      expect(log).toEqual(['prepare', 'fetch us d1', 'load us', 'load us']);
    });

    it('a child that completed is not run again when the parent restarts the step', async () => {
      const log: string[] = [];
      let breakPublish = true;
      const parent = defineJob({
        name: 'flaky-after',
        params: { region: p.string({ default: 'ap' }), day: p.string({ default: 'd2' }) },
        steps: (s) => [
          s.job({ name: 'load', job: childJob(log, () => false) }),
          s.tasklet({ name: 'publish', tasklet: () => { if (breakPublish) throw new Error('publish broke'); } }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('childdone'), [parent]);
      const failed = await ns.run('flaky-after');
      expect(step(failed, 'publish').status).toBe('FAILED');
      // The state a crash leaves when the process dies after the child ended but before the job
      // step's own end was recorded: failover marks that step FAILED.
      await ns.db.execute(`UPDATE ns_step_execution SET status = 'FAILED' WHERE id = ${Number(step(failed, 'load').id)}`);
      breakPublish = false;
      const restarted = await ns.restart(failed.id);
      expect(restarted.status).toBe('COMPLETED');
      expect(step(restarted, 'load')).toMatchObject({ status: 'COMPLETED', exitStatus: { code: 'LOADED' } });
      expect((await executionsOf(ns, 'load-region')).map((c) => c.status)).toEqual(['COMPLETED']);
      expect(log).toEqual(['fetch ap d2', 'load ap']);
    });

    it('a child instance that completed before the step launched it fails the step, naming the instance', async () => {
      const child = childJob([], () => false);
      const parent = defineJob({
        name: 'again',
        params: { region: p.string({ default: 'sa' }), day: p.string({ default: 'd3' }) },
        steps: (s) => [s.job({ name: 'load', job: child })],
      });
      const ns = await pool.create(backend.freshUrl('childbefore'), [parent, child]);
      expect((await ns.run('load-region', { region: 'sa', day: 'd3' })).status).toBe('COMPLETED');
      const e = await ns.run('again');
      expect(e.status).toBe('FAILED');
      expect(step(e, 'load').exitStatus.description).toMatch(/^job load-region already completed for parameters day=d3 region=sa/);
    });

    it("the child's parameters go through its declarations and validators", async () => {
      const child = defineJob({
        name: 'strict',
        params: { from: p.int({ required: true }), to: p.int({ required: true }) },
        validate: ({ from, to }) => (from > to ? { params: ['from', 'to'], message: 'from must not be above to' } : undefined),
        steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })],
      });
      const parent = defineJob({ name: 'caller', steps: (s) => [s.job({ name: 'call', job: child, params: () => ({ from: 5, to: 1 }) })] });
      const ns = await pool.create(backend.freshUrl('childparams'), [parent]);
      const e = await ns.run('caller');
      expect(step(e, 'call')).toMatchObject({ status: 'FAILED', exitStatus: { description: 'job strict: parameters from, to: from must not be above to' } });
      expect(await executionsOf(ns, 'strict')).toEqual([]);
    });

    describe('stop requests', () => {
      const waiting = (started: () => void) =>
        defineJob({
          name: 'wait-child',
          steps: (s) => [
            s.tasklet({
              name: 'wait',
              transactional: false,
              tasklet: async ({ stopSignal, executionNumber }) => {
                if (executionNumber > 1) return;
                started();
                await delay(60_000, undefined, { signal: stopSignal });
              },
            }),
          ],
        });
      const parentOf = (child: ReturnType<typeof waiting>) => defineJob({ name: 'wait-parent', steps: (s) => [s.job({ name: 'child', job: child })] });

      it("stopping the parent stops the child: both STOPPED, and the parent's restart restarts the child", async () => {
        const started = deferred();
        const ns = await pool.create(backend.freshUrl('stopparent'), [parentOf(waiting(started.resolve))]);
        const { execution, done } = await ns.start('wait-parent');
        await within(started.promise, 20_000, 'the child to start');
        await ns.stop(execution.id);
        const stopped = await done;
        expect(stopped.status).toBe('STOPPED');
        expect(step(stopped, 'child').status).toBe('STOPPED');
        expect((await executionsOf(ns, 'wait-child')).map((c) => c.status)).toEqual(['STOPPED']);
        const restarted = await ns.restart(execution.id);
        expect(restarted.status).toBe('COMPLETED');
        expect((await executionsOf(ns, 'wait-child')).map((c) => c.status)).toEqual(['STOPPED', 'COMPLETED']);
      });

      it('a stop of the child execution from another process reaches its tasklet, and the parent stops with it', async () => {
        const url = backend.freshUrl('stopchild');
        const started = deferred();
        const parent = parentOf(waiting(started.resolve));
        const runner = await pool.create(url, [parent], { lease: { heartbeatMs: 100, leaseMs: 3000 } });
        const operator = await pool.create(url, [parent]);
        const { done } = await runner.start('wait-parent');
        await within(started.promise, 20_000, 'the child to start');
        const [child] = await waitFor(async () => {
          const list = await operator.listExecutions({ job: 'wait-child' });
          return list.length ? list : undefined;
        });
        await operator.stop(child.id);
        const stopped = await within(done, 20_000, 'the parent to end');
        expect(stopped.status).toBe('STOPPED');
        expect((await operator.getExecution(child.id))!.status).toBe('STOPPED');
      });
    });
  });

  it("a node's death fails parent and child; only the parent is requeued, and its restart restarts the child", async () => {
    const url = backend.freshUrl('childfailover');
    const child = defineJob({ name: 'child-work', params: { batch: p.int({ required: true }) }, steps: (s) => [s.tasklet({ name: 'work', tasklet: () => undefined })] });
    const parent = defineJob({ name: 'parent-work', params: { batch: p.int({ default: 7 }) }, steps: (s) => [s.job({ name: 'run-child', job: child })] });
    const ns = await pool.create(url, [parent]);
    // A cluster node that ran the parent and its child, and then stopped heartbeating.
    const ghost = await registerNode(ns.db, { name: `ghost-${backend.name}`, kind: 'node', jobs: ['parent-work'], concurrency: 1, lease: { heartbeatMs: 20, leaseMs: 50, stuckAfterMs: 1000 } });
    // Its one beat: a node owns work only after its first beat, which cuts the first (long) lease to leaseMs.
    await ns.db.execute(SQL.heartbeat, [ghost.id]);
    const owner = { kind: 'local' as const, nodeId: ghost.id, nodeName: ghost.name };
    const parentExecution = await createExecution(ns.db, ns.jobs.get('parent-work')!, {}, owner);
    const childExecution = await createExecution(ns.db, child as unknown as JobDefinition, { batch: 7 }, owner, parentExecution.id);
    const reaped = await waitFor(async () => {
      const r = await reapDeadNodes(ns.db, -1);
      return r.failedOver.length ? r : undefined;
    }, 10_000, 'the ghost node to be declared dead');
    const byId = new Map(reaped.failedOver.map((f) => [f.failedExecutionId, f.newExecutionId]));
    expect(byId.get(childExecution.id)).toBeNull();
    expect(byId.get(parentExecution.id)).toEqual(expect.any(Number));

    const node = await startNode({ db: url, jobs: [parent], name: `survivor-${backend.name}`, pollMs: 100, logger: silentLogger });
    try {
      const done = await ns.waitForEnd(parentExecution.id, { timeoutMs: 30_000 });
      expect(done).toMatchObject({ status: 'COMPLETED', node: `survivor-${backend.name}` });
      const children = await executionsOf(ns, 'child-work');
      expect(children.map((c) => [c.instanceId, c.status])).toEqual([[childExecution.instanceId, 'FAILED'], [childExecution.instanceId, 'COMPLETED']]);
      expect(children[1].node).toBe(`survivor-${backend.name}`);
    } finally {
      await node.shutdown();
    }
  });

  describe('reusable flows', () => {
    const loadFlow = (log: string[]) =>
      defineFlow({
        name: 'load',
        params: { input: p.string({ required: true }) },
        steps: (s) => [
          s.tasklet({ name: 'fetch', tasklet: ({ params }) => { log.push(`fetch ${params.input}`); if (params.input === 'missing') throw new Error('no such input'); } }),
          s.tasklet({ name: 'import', tasklet: ({ params }) => void log.push(`import ${params.input}`) }),
        ],
      });

    it('one flow serves two jobs, with transitions on how it ended', async () => {
      const log: string[] = [];
      const load = loadFlow(log);
      const daily = defineJob({
        name: 'daily',
        params: { input: p.string({ required: true }), day: p.string({ default: 'mon' }) },
        steps: (s) => [
          s.flow({ flow: load, on: { FAILED: 'alert', '*': 'report' } }),
          s.tasklet({ name: 'report', tasklet: ({ params }) => void log.push(`report ${params.day}`), on: { '*': 'end' } }),
          s.tasklet({ name: 'alert', tasklet: () => void log.push('alert') }),
        ],
      });
      const monthly = defineJob({
        name: 'monthly',
        params: { input: p.string({ default: 'month.csv' }) },
        steps: (s) => [s.tasklet({ name: 'prepare', tasklet: () => void log.push('prepare') }), s.flow({ flow: load })],
      });
      const ns = await pool.create(backend.freshUrl('flows'), [daily, monthly]);
      const ok = await ns.run('daily', { input: 'a.csv' });
      expect(ok.status).toBe('COMPLETED');
      expect(ok.steps.map((s) => s.stepName)).toEqual(['fetch', 'import', 'report']);
      const routed = await ns.run('daily', { input: 'missing' });
      expect(routed.status).toBe('COMPLETED');
      expect(routed.steps.map((s) => [s.stepName, s.status])).toEqual([['fetch', 'FAILED'], ['alert', 'COMPLETED']]);
      const other = await ns.run('monthly');
      expect(other.steps.map((s) => s.stepName)).toEqual(['prepare', 'fetch', 'import']);
      expect(log).toEqual(['fetch a.csv', 'import a.csv', 'report mon', 'fetch missing', 'alert', 'prepare', 'fetch month.csv', 'import month.csv']);
    });

    it('a restart resumes inside the flow: its completed steps are not run again', async () => {
      let broken = true;
      const runs: string[] = [];
      const flow = defineFlow({
        name: 'two',
        steps: (s) => [
          s.tasklet({ name: 'a', tasklet: () => void runs.push('a') }),
          s.tasklet({ name: 'b', tasklet: () => { runs.push('b'); if (broken) throw new Error('b broke'); } }),
        ],
      });
      const job = defineJob({ name: 'uses-two', steps: (s) => [s.flow({ flow }), s.tasklet({ name: 'c', tasklet: () => void runs.push('c') })] });
      const ns = await pool.create(backend.freshUrl('flowrestart'), [job]);
      const failed = await ns.run('uses-two');
      expect(failed.status).toBe('FAILED');
      broken = false;
      const done = await ns.restart(failed.id);
      expect(done.status).toBe('COMPLETED');
      expect(done.steps.map((s) => s.stepName)).toEqual(['b', 'c']);
      expect(runs).toEqual(['a', 'b', 'b', 'c']);
    });

    it('a stop transition inside a flow stops the job; the restart resumes at its target inside the flow', async () => {
      const runs: string[] = [];
      const flow = defineFlow({
        name: 'gated',
        steps: (s) => [
          s.tasklet({ name: 'check', tasklet: () => void runs.push('check'), on: { '*': { stop: 'approved' } } }),
          s.tasklet({ name: 'approved', tasklet: () => void runs.push('approved') }),
        ],
      });
      const job = defineJob({ name: 'gate', steps: (s) => [s.flow({ flow, on: { COMPLETED: 'after' } }), s.tasklet({ name: 'after', tasklet: () => void runs.push('after') })] });
      const ns = await pool.create(backend.freshUrl('flowstop'), [job]);
      const stopped = await ns.run('gate');
      expect(stopped.status).toBe('STOPPED');
      const done = await ns.restart(stopped.id);
      expect(done.status).toBe('COMPLETED');
      expect(done.steps.map((s) => s.stepName)).toEqual(['approved', 'after']);
      expect(runs).toEqual(['check', 'approved', 'after']);
    });
  });

  describe('nested splits', () => {
    it('a split whose flows hold splits runs every leaf at once, and a restart re-runs only the failed leaf', async () => {
      const leaves = ['a1', 'a2', 'b1', 'b2'];
      let arrived = 0;
      const allThere = deferred();
      let broken = true;
      const runs: string[] = [];
      // Outside a transaction: on SQLite a transaction holds the database's one write lock.
      const leaf = (name: string) => ({
        name,
        transactional: false,
        tasklet: async ({ executionNumber }: { executionNumber: number }) => {
          runs.push(name);
          if (executionNumber === 1) {
            if (++arrived === leaves.length) allThere.resolve();
            await within(allThere.promise, 20_000, `all leaves to run at once (${arrived} did)`);
          }
          if (name === 'b2' && broken) throw new Error('b2 broke');
        },
      });
      const job = defineJob({
        name: 'nested',
        steps: (s) => [
          s.split({
            name: 'outer',
            flows: [
              [s.split({ name: 'inner-a', flows: [[s.tasklet(leaf('a1'))], [s.tasklet(leaf('a2'))]] })],
              [s.split({ name: 'inner-b', flows: [[s.tasklet(leaf('b1'))], [s.tasklet(leaf('b2'))]] }), s.tasklet({ name: 'after-b', tasklet: () => void runs.push('after-b') })],
            ],
          }),
          s.tasklet({ name: 'end-step', tasklet: () => void runs.push('end-step') }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('nested'), [job]);
      const failed = await ns.run('nested');
      expect(failed.status).toBe('FAILED');
      expect(failed.steps.map((s) => [s.stepName, s.status]).sort()).toEqual([['a1', 'COMPLETED'], ['a2', 'COMPLETED'], ['b1', 'COMPLETED'], ['b2', 'FAILED']]);
      broken = false;
      const done = await ns.restart(failed.id);
      expect(done.status).toBe('COMPLETED');
      expect(done.steps.map((s) => s.stepName)).toEqual(['b2', 'after-b', 'end-step']);
      expect(runs.filter((r) => r !== 'b2').sort()).toEqual(['a1', 'a2', 'after-b', 'b1', 'end-step']);
    });
  });
});

describe('job step and flow definitions', () => {
  const flow = defineFlow({ name: 'needs', params: { input: p.string({ required: true }) }, steps: (s) => [s.tasklet({ name: 'x', tasklet: () => undefined })] });

  it('a job must declare the parameters of the flows it uses, with the same types', () => {
    // @ts-expect-error: the job lacks the flow's parameter (also caught when type checks are skipped)
    const missing = () => defineJob({ name: 'j', steps: (s) => [s.flow({ flow })] });
    expect(thrown(missing).message).toBe('job j: flow needs uses parameter input (string), which the job does not declare');
    // @ts-expect-error: the job types the parameter differently
    const other = () => defineJob({ name: 'k', params: { input: p.int({ default: 1 }) }, steps: (s) => [s.flow({ flow })] });
    expect(thrown(other).message).toBe('job k: flow needs uses parameter input as string, but the job declares it int');
  });

  it("a flow's step names must not clash with the job's, and its transitions stay inside it", () => {
    const clash = () => defineJob({ name: 'j', params: { input: p.string({ default: 'i' }) }, steps: (s) => [s.flow({ flow }), s.tasklet({ name: 'x', tasklet: () => undefined })] });
    expect(thrown(clash).message).toBe('job j: duplicate step name x');
    const outward = () => defineFlow({ name: 'f', steps: (s) => [s.tasklet({ name: 'y', tasklet: () => undefined, on: { '*': 'elsewhere' } })] });
    expect(thrown(outward).message).toBe('flow f: step y: transition "*" goes to unknown step elsewhere');
  });

  it('a job step needs a job', () => {
    const bad = () => defineJob({ name: 'j', steps: (s) => [s.job({ name: 'call', job: {} as never })] });
    expect(thrown(bad).message).toBe('job j: job step call needs a job made by defineJob');
  });
});
