/**
 * A closed Nightshift: once ns.close() is called, every method of it (and of its explorer) refuses
 * with a ClosedError naming the method, not with whatever the closed driver would say; close again
 * resolves. What is under way when close() is called still ends: calls already made finish, the
 * executions this process runs complete, and a waitForEnd resolves if its execution ended (else
 * it rejects with a ClosedError rather than wait on a closed repository). Runs unchanged on
 * SQLite and PostgreSQL.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ClosedError } from '../../src/core/errors.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { defineJob } from '../../src/core/job.ts';
import { createNightshift } from '../../src/operator.ts';
import { backends, waitFor } from '../support/backends.ts';

/** A job whose one tasklet waits until the test opens its latch. */
function latchedJob() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const state = { entered: false };
  const job = defineJob({
    name: 'latched',
    steps: (s) => [s.tasklet({ name: 'wait', tasklet: async () => {
      state.entered = true;
      await opened;
    } })],
  });
  return { job, open, state };
}

const quick = defineJob({ name: 'quick', steps: (s) => [s.tasklet({ name: 'noop', tasklet: () => undefined })] });

/** What a method's call came to: a value, a rejection, or a synchronous throw. */
async function outcomeOf(call: () => unknown): Promise<{ how: 'returned' | 'rejected' | 'threw'; value: unknown }> {
  let result: unknown;
  try {
    result = call();
  } catch (err) {
    return { how: 'threw', value: err };
  }
  if (!(result instanceof Promise)) return { how: 'returned', value: result };
  return result.then((value: unknown) => ({ how: 'returned' as const, value }), (err: unknown) => ({ how: 'rejected' as const, value: err }));
}

const functionsOf = (o: object) => Object.entries(o).filter((e): e is [string, (...args: unknown[]) => unknown] => typeof e[1] === 'function');

describe.each(backends())('a closed Nightshift on $name', (backend) => {
  afterAll(() => backend.cleanup());

  it('refuses every method, its explorer\'s too, with a ClosedError naming it; close again resolves', async () => {
    const ns = await createNightshift({ db: backend.freshUrl('closed'), jobs: [quick], logger: silentLogger });
    const done = await ns.run('quick');
    expect(done.status).toBe('COMPLETED');
    const id = done.id;
    await ns.close();

    // Plausible arguments for the methods there are; a method added later is called with an
    // execution id, and must refuse all the same.
    const args: Record<string, unknown[]> = {
      run: ['quick'], start: ['quick'], runNextInstance: ['quick'], submit: ['quick'], submitMany: [[{ job: 'quick' }]],
      restart: [id], stop: [id], abandon: [id], waitForEnd: [id], getExecution: [id], listExecutions: [{}], nodes: [], stopAll: [],
      'explorer.getInstance': [done.instanceId], 'explorer.executionsOfInstance': [done.instanceId], 'explorer.listExecutions': [],
      'explorer.pageExecutions': [], 'explorer.stepsOfMany': [[id]], 'explorer.lastStepOfInstance': [done.instanceId, 'noop'],
      'explorer.dbNow': [],
    };
    const methods = [
      ...functionsOf(ns).filter(([name]) => name !== 'close'),
      ...functionsOf(ns.explorer).map(([name, fn]) => [`explorer.${name}`, fn] as const),
    ];
    expect(methods.map(([name]) => name)).toEqual(expect.arrayContaining(['run', 'start', 'submit', 'submitMany', 'stop', 'abandon', 'restart', 'waitForEnd', 'stopAll', 'explorer.getExecution']));
    for (const [name, fn] of methods) {
      const outcome = await outcomeOf(() => fn(...(args[name] ?? [id])));
      // A request to stop is never refused (a signal handler may make it while close() waits): nothing is left to stop.
      if (name === 'stopAll') {
        expect(outcome, 'ns.stopAll()').toEqual({ how: 'returned', value: undefined });
        continue;
      }
      expect(outcome.how, `ns.${name}()`).toBe('rejected');
      expect(outcome.value, `ns.${name}()`).toBeInstanceOf(ClosedError);
      expect(outcome.value, `ns.${name}()`).toMatchObject({
        name: 'ClosedError',
        method: name,
        message: `this Nightshift is closed: ns.close() was called before ns.${name}()`,
      });
    }

    await expect(ns.close()).resolves.toBeUndefined();
    await expect(Promise.all([ns.close(), ns.close()])).resolves.toEqual([undefined, undefined]);
  });

  it('lets what is under way end: calls made before close finish, the execution completes, its waitForEnd resolves', async () => {
    const url = backend.freshUrl('closing');
    const { job, open, state } = latchedJob();
    const ns = await createNightshift({ db: url, jobs: [job, quick], logger: silentLogger });
    const { execution, done } = await ns.start('latched');
    await waitFor(() => state.entered, 10_000, 'the tasklet to start');
    const waiting = ns.waitForEnd(execution.id, { pollMs: 20 });
    const reading = ns.getExecution(execution.id);
    const submitting = ns.submit('quick');
    let closed = false;
    const closing = ns.close().then(() => (closed = true));

    // Refused from the moment close() is called, while it waits for the execution.
    await expect(ns.getExecution(execution.id)).rejects.toThrow(/ns\.close\(\) was called before ns\.getExecution\(\)/);
    await expect(reading).resolves.toMatchObject({ id: execution.id, status: 'STARTED' });
    await expect(submitting).resolves.toMatchObject({ jobName: 'quick', status: 'STARTING' });
    expect(closed, 'close() waits for the execution this process runs').toBe(false);

    open();
    await closing;
    await expect(done).resolves.toMatchObject({ id: execution.id, status: 'COMPLETED' });
    await expect(waiting).resolves.toMatchObject({ id: execution.id, status: 'COMPLETED' });

    // The repository says so too, read through a new operator.
    const again = await createNightshift({ db: url, jobs: [], logger: silentLogger });
    try {
      expect(await again.getExecution(execution.id)).toMatchObject({ status: 'COMPLETED' });
    } finally {
      await again.close();
    }
  });

  it('a refused launch racing other launches leaves no registration behind: close() ends every one', async () => {
    const url = backend.freshUrl('closerace');
    const ns = await createNightshift({ db: url, jobs: [quick], logger: silentLogger });
    await ns.run('quick', { 'run.id': 0 });
    // A relaunch of the completed instance is refused and gives up its registration while the
    // others launch: each staggered a little, so that some start while that one is let go.
    for (let i = 0; i < 12; i++) {
      const refused = ns.run('quick', { 'run.id': 0 }).then(() => 'ran', (err: Error) => err.name);
      const others = new Promise((r) => setTimeout(r, i)).then(() => ns.run('quick', { 'run.id': i + 1 }));
      expect(await refused).toBe('LaunchRefusedError');
      expect(await others).toMatchObject({ status: 'COMPLETED' });
    }
    await ns.close();
    const again = await createNightshift({ db: url, jobs: [], logger: silentLogger });
    try {
      expect((await again.nodes({ all: true })).filter((n) => n.status === 'alive')).toEqual([]);
    } finally {
      await again.close();
    }
  });

  it('a waitForEnd of an execution no one runs rejects with a ClosedError at close, and close does not wait for it', async () => {
    const ns = await createNightshift({ db: backend.freshUrl('closewait'), jobs: [quick], logger: silentLogger });
    const queued = await ns.submit('quick');
    const waiting = ns.waitForEnd(queued.id, { pollMs: 60_000 });
    // A few reads first, so that the wait is most likely in its minute-long poll interval when
    // close() comes: close cuts it short (either way the wait looks once more, then refuses).
    for (let i = 0; i < 3; i++) expect(await ns.getExecution(queued.id)).toMatchObject({ status: 'STARTING' });
    const started = Date.now();
    const closing = ns.close();
    // A stop request while close() is under way (a second SIGTERM, say) is taken, not refused.
    expect(() => ns.stopAll()).not.toThrow();
    await closing;
    expect(Date.now() - started, 'close() did not wait out the poll interval').toBeLessThan(30_000);
    await expect(waiting).rejects.toThrow(ClosedError);
    await expect(waiting).rejects.toThrow(new RegExp(`ns\\.close\\(\\) was called while ns\\.waitForEnd\\(${queued.id}\\) waited, and execution ${queued.id} is still STARTING`));
  });
});
