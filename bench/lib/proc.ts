/**
 * Child processes of the benchmarks: `nightshift node` processes (as the cluster suites spawn
 * them) and TypeScript worker scripts run through tsx with an IPC channel.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = join(ROOT, 'bin/nightshift.js');
const CONFIG = 'examples/nightshift.config.ts';

/** A child process with the tail of its output (for error messages). */
export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The last few KB of stdout + stderr. */
  output(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

function wrap(child: ChildProcess): Proc {
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-4096));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let gone = false;
  void exited.then(() => (gone = true));
  return {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    async stop(graceMs = 5000) {
      if (gone) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Starts `nightshift node --name NAME --db URL` with the example jobs, logging warnings only. */
export function startNode(url: string, name: string, extra: readonly string[] = []): Proc {
  return wrap(spawn(process.execPath, [CLI, 'node', '--name', name, '--db', url, '--config', CONFIG, ...extra], {
    cwd: ROOT,
    env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
}

/** Runs a TypeScript file of bench/ in a new Node process (through tsx), with IPC. */
export function startScript(file: string, args: readonly string[] = [], env: Record<string, string> = {}): Proc {
  return wrap(spawn(process.execPath, ['--import', 'tsx', '--import', join(ROOT, 'scripts/dev-alias.mjs'), join(ROOT, 'bench', file), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  }));
}

/** The next IPC message from `proc` that satisfies `match`; rejects if the process exits first. */
export function nextMessage<T>(proc: Proc, match: (m: T) => boolean, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolveMessage, reject) => {
    const onMessage = (m: T) => {
      if (!match(m)) return;
      done();
      resolveMessage(m);
    };
    const onExit = () => {
      done();
      reject(new Error(`process ${proc.pid} exited before the expected message:\n${proc.output()}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no expected message from process ${proc.pid} within ${timeoutMs} ms:\n${proc.output()}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      proc.child.off('message', onMessage);
      proc.child.off('exit', onExit);
    };
    proc.child.on('message', onMessage);
    proc.child.once('exit', onExit);
  });
}
