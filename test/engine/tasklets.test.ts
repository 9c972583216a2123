/**
 * Engine conformance: tasklets. A tasklet may end with an exit status of its own; a long tasklet
 * sees a stop request (from this process or, through the heartbeat, from another) on its
 * stopSignal and ends the step STOPPED, restartable; and the system-command tasklet runs a
 * command without a shell, with a working directory, environment, timeout that kills the
 * process tree, exit-code mapping, and its output in the log, bounded. Runs unchanged on SQLite
 * and PostgreSQL.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { defineJob } from '../../src/core/job.ts';
import { exitStatus } from '../../src/core/status.ts';
import { commandTasklet } from '../../src/tasklets/command.ts';
import { backends, waitFor } from '../support/backends.ts';
import { deferred, step, takeOver, thrown, within } from '../fixtures/engine/support.ts';
import { suiteInstances } from '../fixtures/engine/suite.ts';
import type { Nightshift } from '../../src/operator.ts';

const NODE = process.execPath;

/** A logger that keeps every record, for tests that look at what a step logged. */
function capturingLogger() {
  const records: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line)) });
  return { logger, records, lines: (stream: string) => records.filter((r) => r.stream === stream).map((r) => String(r.msg)) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.each(backends())('tasklets ($name)', (backend) => {
  const pool = suiteInstances(backend);

  it('a tasklet that returns an exit status ends its step with it, and the flow routes on it', async () => {
    const job = defineJob({
      name: 'noop-route',
      steps: (s) => [
        s.tasklet({ name: 'check', tasklet: () => exitStatus('NOOP', 'nothing new'), on: { NOOP: 'skipped', '*': 'work' } }),
        s.tasklet({ name: 'work', tasklet: () => undefined, on: { '*': 'end' } }),
        s.tasklet({ name: 'skipped', tasklet: () => undefined }),
      ],
    });
    const ns = await pool.create(backend.freshUrl('noop'), [job]);
    const e = await ns.run('noop-route');
    expect(e.status).toBe('COMPLETED');
    expect(e.steps.map((s) => s.stepName)).toEqual(['check', 'skipped']);
    expect(step(e, 'check')).toMatchObject({ status: 'COMPLETED', exitStatus: { code: 'NOOP', description: 'nothing new' }, commitCount: 1 });
  });

  describe('the transaction of a tasklet call, begun when the call first uses it', () => {
    const table = (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (k TEXT PRIMARY KEY, n INTEGER NOT NULL)`;

    it('commits what the call wrote with the checkpoint, once per call; a call that throws writes nothing and puts its step context back', async () => {
      let calls = 0;
      const job = defineJob({
        name: 'lazy-writes',
        steps: (s) => [
          s.tasklet({
            name: 'write',
            tasklet: async ({ tx, stepContext }) => {
              calls++;
              stepContext.reached = calls;
              await tx.execute(`INSERT INTO lazy_writes (k, n) VALUES ($1, $2)`, [`call-${calls}`, calls]);
              if (calls === 2) throw new Error('second call fails after its write');
              return calls < 3 ? 'CONTINUABLE' : undefined;
            },
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('lazywrites'), [job]);
      await ns.db.exec(table('lazy_writes'));
      const failed = await ns.run('lazy-writes');
      expect(failed.status).toBe('FAILED');
      expect(step(failed, 'write')).toMatchObject({ commitCount: 1, rollbackCount: 1, context: { reached: 1 } });
      expect(await ns.db.query(`SELECT k FROM lazy_writes ORDER BY k`)).toEqual([{ k: 'call-1' }]);
      const restarted = await ns.restart(failed.id);
      expect(restarted.status).toBe('COMPLETED');
      expect(await ns.db.query(`SELECT k FROM lazy_writes ORDER BY k`)).toEqual([{ k: 'call-1' }, { k: 'call-3' }]);
    });

    it('a use of tx after the call ended fails with a clear error and holds nothing', async () => {
      const late = deferred<string>();
      const job = defineJob({
        name: 'lazy-late',
        steps: (s) => [
          s.tasklet({
            name: 'leak',
            tasklet: ({ tx }) => {
              setTimeout(() => void tx.query('SELECT 1').then(() => late.resolve('ran'), (e: Error) => late.resolve(e.message)), 50);
            },
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('lazylate'), [job]);
      expect((await ns.run('lazy-late')).status).toBe('COMPLETED');
      expect(await within(late.promise, 5000, 'the late use')).toMatch(/used its transaction \(tx\) after its call ended/);
      // Nothing was left holding the database: the next run goes through.
      expect((await ns.run('lazy-late', { 'run.id': 2 })).status).toBe('COMPLETED');
    });

    it('a last call that used no transaction but changed the job context commits that context at once', async () => {
      const ref: { ns?: Nightshift } = {};
      const job = defineJob({
        name: 'lazy-jobctx',
        steps: (s) => [
          s.tasklet({
            name: 'mark',
            tasklet: ({ jobContext }) => void (jobContext.marked = 'yes'),
            // The owner loses the execution before the step's end is written: only what committed stays.
            listeners: [{ afterStep: async (ctx) => void (await takeOver(ref.ns, ctx.jobExecution.id)) }],
          }),
        ],
      });
      ref.ns = await pool.create(backend.freshUrl('lazyjobctx'), [job]);
      const e = await ref.ns.run('lazy-jobctx');
      expect(e.status).toBe('STARTED');
      expect(e.context).toEqual({ marked: 'yes' });
      expect(step(e, 'mark').commitCount).toBe(1);
    });
  });

  describe('a long tasklet and a stop request', () => {
    const longJob = (started: () => void, runs: string[]) =>
      defineJob({
        name: 'long',
        steps: (s) => [
          s.tasklet({ name: 'before', tasklet: () => void runs.push('before') }),
          s.tasklet({
            name: 'wait',
            transactional: false,
            tasklet: async ({ stopSignal, executionNumber }) => {
              runs.push(`wait#${executionNumber}`);
              if (executionNumber > 1) return;
              started();
              await delay(60_000, undefined, { signal: stopSignal });
            },
          }),
          s.tasklet({ name: 'after', tasklet: () => void runs.push('after') }),
        ],
      });

    it('a stop from another process reaches the tasklet through the heartbeat: STOPPED, and the restart runs it again', async () => {
      const url = backend.freshUrl('stop-remote');
      const started = deferred();
      const runs: string[] = [];
      const job = longJob(started.resolve, runs);
      const runner = await pool.create(url, [job], { lease: { heartbeatMs: 100, leaseMs: 3000 } });
      const operator = await pool.create(url, [job]);
      const { execution, done } = await runner.start('long');
      await started.promise;
      const t0 = Date.now();
      // What stop returns is read back after the request: a runner that heard it at once (it beats
      // every 100 ms) may have ended the execution by then.
      expect((await operator.stop(execution.id)).status).toMatch(/^STOPP(ING|ED)$/);
      const stopped = await done;
      expect(Date.now() - t0).toBeLessThan(20_000); // not the tasklet's full minute
      expect(stopped.status).toBe('STOPPED');
      expect(step(stopped, 'wait')).toMatchObject({ status: 'STOPPED', exitStatus: { code: 'STOPPED' } });
      expect(step(stopped, 'wait').exitStatus.description).toContain('stopped on request');
      expect(stopped.steps.map((s) => s.stepName)).toEqual(['before', 'wait']);

      const restarted = await runner.restart(execution.id);
      expect(restarted.status).toBe('COMPLETED');
      expect(restarted.steps.map((s) => [s.stepName, s.status])).toEqual([['wait', 'COMPLETED'], ['after', 'COMPLETED']]);
      expect(runs).toEqual(['before', 'wait#1', 'wait#2', 'after']);
    });

    it('a stop from this process aborts the signal at once', async () => {
      const started = deferred();
      const runs: string[] = [];
      const ns = await pool.create(backend.freshUrl('stop-local'), [longJob(started.resolve, runs)]);
      const { execution, done } = await ns.start('long');
      await started.promise;
      await ns.stop(execution.id);
      const e = await done;
      expect(e.status).toBe('STOPPED');
      expect(step(e, 'wait').status).toBe('STOPPED');
    });

    it('a signal first asked for after the stop is already aborted, and a spread context keeps every field', async () => {
      // The handle makes its signals on first use: one made after the stop must start aborted.
      const started = deferred();
      const stopped = deferred();
      const seen: Record<string, unknown> = {};
      const job = defineJob({
        name: 'late-look',
        steps: (s) => [
          s.tasklet({
            name: 'look',
            transactional: false,
            tasklet: async (ctx) => {
              started.resolve();
              await stopped.promise;
              const copy = { ...ctx };
              seen.keys = Object.keys(copy).sort();
              seen.stopAborted = copy.stopSignal.aborted;
              seen.lostAborted = copy.signal.aborted;
              seen.sameTx = copy.tx === ctx.tx;
              copy.stopSignal.throwIfAborted();
            },
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('late-look'), [job]);
      const { execution, done } = await ns.start('late-look');
      await started.promise;
      await ns.stop(execution.id);
      stopped.resolve();
      const e = await done;
      expect(seen).toEqual({
        keys: ['db', 'executionNumber', 'jobContext', 'jobExecution', 'log', 'params', 'partition', 'signal', 'stepContext', 'stepExecution', 'stopSignal', 'tx'],
        stopAborted: true,
        lostAborted: false,
        sameTx: true,
      });
      expect(step(e, 'look').status).toBe('STOPPED');
    });

    it('a tasklet that throws an ordinary error while a stop is pending still fails', async () => {
      const started = deferred();
      const job = defineJob({
        name: 'broken',
        steps: (s) => [
          s.tasklet({
            name: 'work',
            transactional: false,
            tasklet: async ({ stopSignal }) => {
              started.resolve();
              await new Promise((resolve) => stopSignal.addEventListener('abort', resolve));
              throw new Error('cleanup broke');
            },
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('broken'), [job]);
      const { execution, done } = await ns.start('broken');
      await started.promise;
      await ns.stop(execution.id);
      const e = await done;
      expect(step(e, 'work')).toMatchObject({ status: 'FAILED', exitStatus: { code: 'FAILED', description: 'cleanup broke' } });
    });
  });

  describe('commandTasklet', () => {
    it('runs a command with arguments, a working directory and an environment; its exit code maps to the exit status', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'nightshift-cmd-'));
      const log = capturingLogger();
      const script = 'console.log(JSON.stringify({ args: process.argv.slice(1), cwd: process.cwd(), greeting: process.env.GREETING, home: process.env.HOME ?? null })); process.exit(3)';
      const job = defineJob({
        name: 'cmd',
        steps: (s) => [
          s.tasklet({
            name: 'run',
            ...commandTasklet({ command: NODE, args: ['-e', script, 'a b', '$(touch pwned)', '; echo no'], cwd: dir, env: { GREETING: 'hi', HOME: undefined }, timeoutMs: 30_000, exitCodes: { 3: 'PARTIAL' } }),
            on: { PARTIAL: 'partial', '*': 'fail' },
          }),
          s.tasklet({ name: 'partial', tasklet: () => undefined }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('cmd'), [job], { logger: log.logger });
      const e = await ns.run('cmd');
      expect(e.status).toBe('COMPLETED');
      expect(step(e, 'run')).toMatchObject({ status: 'COMPLETED', exitStatus: { code: 'PARTIAL' } });
      expect(step(e, 'run').exitStatus.description).toContain('exited with code 3');
      const printed = JSON.parse(log.lines('stdout')[0]);
      // No shell: every argument arrives as it was given, and nothing in it ran.
      expect(printed).toEqual({ args: ['a b', '$(touch pwned)', '; echo no'], cwd: dir, greeting: 'hi', home: null });
      expect(existsSync(join(dir, 'pwned'))).toBe(false);
    });

    it('a nonzero exit code fails the step, naming the command, the code and its last error line', async () => {
      const job = defineJob({
        name: 'cmd-fail',
        steps: (s) => [
          s.tasklet({ name: 'run', ...commandTasklet({ command: NODE, args: ['-e', 'console.error("disk full"); process.exit(2)'], timeoutMs: 30_000 }) }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('cmd-fail'), [job]);
      const e = await ns.run('cmd-fail');
      expect(e.status).toBe('FAILED');
      expect(step(e, 'run').status).toBe('FAILED');
      expect(step(e, 'run').exitStatus.description).toBe(`command ${JSON.stringify(NODE)} exited with code 2: disk full`);
    });

    it('a command that runs too long is killed with every process it started, and the step fails saying so', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'nightshift-cmd-'));
      const pidFile = join(dir, 'grandchild.pid');
      // The command starts a grandchild that ignores SIGTERM, so only the SIGKILL after the grace period ends it.
      const grandchild = 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)';
      const parent = `const c = require("child_process").spawn(process.execPath, ["-e", ${JSON.stringify(grandchild)}], { stdio: "ignore" });
        require("fs").writeFileSync(${JSON.stringify(pidFile)}, String(c.pid)); setInterval(() => {}, 1000)`;
      const job = defineJob({
        name: 'cmd-slow',
        steps: (s) => [s.tasklet({ name: 'run', ...commandTasklet({ command: NODE, args: ['-e', parent], timeoutMs: 1500, killGraceMs: 300 }) })],
      });
      const ns = await pool.create(backend.freshUrl('cmd-slow'), [job]);
      const e = await ns.run('cmd-slow');
      expect(e.status).toBe('FAILED');
      expect(step(e, 'run').exitStatus.description).toBe(
        `command ${JSON.stringify(NODE)} did not finish within 1500 ms; it was killed with every process it started`,
      );
      const pid = Number(readFileSync(pidFile, 'utf8'));
      await waitFor(() => !alive(pid), 10_000, `grandchild ${pid} to be killed`);
    });

    it('a command that is not found fails the step with a clear description', async () => {
      const job = defineJob({
        name: 'cmd-missing',
        steps: (s) => [s.tasklet({ name: 'run', ...commandTasklet({ command: 'nightshift-no-such-command', timeoutMs: 10_000 }) })],
      });
      const ns = await pool.create(backend.freshUrl('cmd-missing'), [job]);
      const e = await ns.run('cmd-missing');
      expect(e.status).toBe('FAILED');
      expect(step(e, 'run').exitStatus.description).toBe('command "nightshift-no-such-command" not found on PATH');
    });

    it('a working directory that does not exist fails the step naming it', async () => {
      const job = defineJob({
        name: 'cmd-cwd',
        steps: (s) => [s.tasklet({ name: 'run', ...commandTasklet({ command: NODE, args: ['-e', '0'], cwd: '/nonexistent/dir', timeoutMs: 10_000 }) })],
      });
      const ns = await pool.create(backend.freshUrl('cmd-cwd'), [job]);
      const e = await ns.run('cmd-cwd');
      expect(step(e, 'run').exitStatus.description).toBe(`command ${JSON.stringify(NODE)}: working directory "/nonexistent/dir" does not exist`);
    });

    it('a stop request kills the command and ends the step STOPPED; the restart runs it again', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'nightshift-cmd-'));
      const marker = join(dir, 'started');
      const job = defineJob({
        name: 'cmd-stop',
        steps: (s) => [
          s.tasklet({
            name: 'run',
            ...commandTasklet(({ executionNumber }) => ({
              command: NODE,
              args: ['-e', executionNumber === 1 ? `require("fs").writeFileSync(${JSON.stringify(marker)}, String(process.pid)); setInterval(() => {}, 1000)` : '0'],
              timeoutMs: 60_000,
            })),
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('cmd-stop'), [job]);
      const { execution, done } = await ns.start('cmd-stop');
      const pid = Number(await waitFor(() => existsSync(marker) && readFileSync(marker, 'utf8'), 20_000, 'the command to start'));
      await ns.stop(execution.id);
      const e = await done;
      expect(e.status).toBe('STOPPED');
      expect(step(e, 'run').status).toBe('STOPPED');
      await waitFor(() => !alive(pid), 10_000, 'the command to be killed');
      const again = await ns.restart(execution.id);
      expect(again.status).toBe('COMPLETED');
    });

    it('logs the output line by line up to maxLogBytes, and says how much it left out', async () => {
      const log = capturingLogger();
      const job = defineJob({
        name: 'cmd-chatty',
        steps: (s) => [
          s.tasklet({
            name: 'run',
            ...commandTasklet({ command: NODE, args: ['-e', 'for (let i = 0; i < 5000; i++) console.log("line " + i); console.error("oops")'], timeoutMs: 30_000, maxLogBytes: 1000 }),
          }),
        ],
      });
      const ns = await pool.create(backend.freshUrl('cmd-chatty'), [job], { logger: log.logger });
      const e = await ns.run('cmd-chatty');
      expect(e.status).toBe('COMPLETED');
      const out = log.lines('stdout');
      expect(out[0]).toBe('line 0');
      expect(out.join('\n').length).toBeLessThanOrEqual(1000);
      expect(out.length).toBeGreaterThan(50);
      const note = log.records.find((r) => String(r.msg).startsWith('command output beyond 1000 bytes was not logged'));
      expect(note).toBeDefined();
      expect(log.records.find((r) => r.stream === 'stdout')).toMatchObject({ step: 'run', job: 'cmd-chatty' });
    });

    it('refuses a spec without a timeout or command when the job is defined', () => {
      const spec = { command: 'true' } as unknown as Parameters<typeof commandTasklet>[0];
      expect(thrown(() => commandTasklet(spec)).message).toBe('commandTasklet "true": timeoutMs must be a positive integer of milliseconds, got undefined');
      expect(thrown(() => commandTasklet({ command: ' ', timeoutMs: 5 })).message).toBe('commandTasklet: command must be a non-empty string');
    });
  });
});
