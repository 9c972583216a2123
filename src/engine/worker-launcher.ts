import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../core/errors.ts';
import type { WorkerLauncher } from '../core/worker-launcher.ts';

export type { LaunchRequest, LaunchedWorkers, WorkerLauncher } from '../core/worker-launcher.ts';

/** What {@link localProcessLauncher} takes. */
export interface LocalProcessLauncherOptions {
  /** The config file the workers load (default: the request's, i.e. the file the CLI loaded; env NIGHTSHIFT_CONFIG). */
  config?: string | undefined;
  /** Time a worker gets to shut down gracefully after SIGTERM before it is killed (default 30 s). */
  graceMs?: number | undefined;
  /** Log level of the workers (default NIGHTSHIFT_LOG_LEVEL, else warn). */
  logLevel?: string | undefined;
  /** Extra environment for the workers. */
  env?: Record<string, string> | undefined;
  /** Working directory of the workers (default this process's). */
  cwd?: string | undefined;
}

const CLI = fileURLToPath(new URL('../../bin/nightshift.js', import.meta.url));

/**
 * A launcher that starts `nightshift node` child processes on this machine (the same Node
 * binary, the same repository, the same config file), each with `--exit-with-parent`, so they
 * shut down if this process dies. `stop()` sends SIGTERM (a graceful shutdown) and SIGKILL after
 * `graceMs`.
 */
export function localProcessLauncher(options: LocalProcessLauncherOptions = {}): WorkerLauncher {
  const graceMs = options.graceMs ?? 30_000;
  return {
    async launch(request) {
      const config = options.config ?? request.config;
      if (!config) {
        throw new UsageError(
          'localProcessLauncher needs the config file that defines the job: run through the nightshift CLI, ' +
            'set NIGHTSHIFT_CONFIG, or pass localProcessLauncher({ config })',
        );
      }
      if (!Number.isInteger(request.workers) || request.workers < 1) throw new UsageError(`workers must be a positive integer, got ${request.workers}`);
      const children: { name: string; child: ChildProcess; exited: Promise<void>; tail: () => string }[] = [];
      let stopping = false;
      for (let i = 1; i <= request.workers; i++) {
        const name = `${request.name}-w${i}`;
        const child = spawn(
          process.execPath,
          [CLI, 'node', '--name', name, '--config', config, '--concurrency', String(request.concurrency), '--exit-with-parent'],
          {
            cwd: options.cwd ?? process.cwd(),
            // The repository's URL goes through the environment: on a command line its password
            // would be readable by anyone on the host (ps, /proc/PID/cmdline).
            env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: options.logLevel ?? process.env.NIGHTSHIFT_LOG_LEVEL ?? 'warn', ...options.env, NIGHTSHIFT_DB: request.db },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let out = '';
        const keep = (d: Buffer) => (out = (out + d.toString()).slice(-4096));
        child.stdout!.on('data', keep);
        child.stderr!.on('data', keep);
        const exited = new Promise<void>((resolve) => {
          child.once('exit', (code, signal) => {
            if (!stopping) request.log?.warn({ worker: name, code, signal, output: out.slice(-1000) }, `worker ${name} exited early`);
            resolve();
          });
          child.once('error', (err) => {
            request.log?.error({ worker: name, err: err.message }, `worker ${name} could not start`);
            resolve();
          });
        });
        children.push({ name, child, exited, tail: () => out });
      }
      request.log?.info({ workers: children.map((c) => ({ name: c.name, pid: c.child.pid })) }, `launched ${children.length} worker process(es)`);
      let stopped: Promise<void> | undefined;
      return {
        names: children.map((c) => c.name),
        pids: children.map((c) => c.child.pid).filter((p): p is number => p !== undefined),
        stop() {
          stopped ??= (async () => {
            stopping = true;
            await Promise.all(children.map(async ({ child, exited }) => {
              if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
              child.kill('SIGTERM');
              const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
              await exited;
              clearTimeout(timer);
            }));
            request.log?.info(`stopped ${children.length} worker process(es)`);
          })();
          return stopped;
        },
      };
    },
  };
}
