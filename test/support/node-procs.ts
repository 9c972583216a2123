/** Real `nightshift node` OS processes for the cluster, scheduler and partition suites. */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach } from 'vitest';
import type { Backend } from './backends.ts';
import { builtCliEnv } from './built-cli.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = join(ROOT, 'bin/nightshift.js');
export const CONFIG = 'examples/nightshift.config.ts';

export interface NodeProc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** stdout + stderr so far (the node logs there). */
  output(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

export interface StartOptions {
  /** Added to this process's environment (e.g. a skewed clock). */
  env?: Record<string, string>;
  /** Default CONFIG. */
  config?: string;
  /** More `nightshift node` arguments. */
  args?: string[];
}

const spawned = new Set<NodeProc>();

/** Starts `nightshift node --name NAME` as a real OS process. */
export function startNode(url: string, name: string, options: StartOptions = {}): NodeProc {
  const child = spawn(process.execPath, [CLI, 'node', '--name', name, '--db', url, '--config', options.config ?? CONFIG, ...(options.args ?? [])], {
    cwd: ROOT,
    env: { ...process.env, ...builtCliEnv(), NIGHTSHIFT_LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const proc: NodeProc = {
    name,
    child,
    pid: child.pid!,
    output: () => out,
    exited: new Promise((r) =>
      child.once('exit', (code, signal) => {
        proc.exit = { code, signal };
        spawned.delete(proc);
        r({ code, signal });
      }),
    ),
  };
  spawned.add(proc);
  return proc;
}

export async function kill(proc: NodeProc): Promise<void> {
  proc.child.kill('SIGKILL');
  await proc.exited;
}

/** Kills every node process still running (SIGCONT first, in case it is paused). */
export async function killAll(): Promise<void> {
  const all = [...spawned];
  for (const p of all) {
    try {
      p.child.kill('SIGCONT');
      p.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  await Promise.all(all.map((p) => p.exited));
}

/**
 * For a suite's top level: returns `label => open(backend, label)` for one repository per test.
 * After each test the node processes are killed and that repository closed; after all, the
 * backend drops what it created.
 */
export function freshPerTest<T extends { close(): Promise<void> }>(
  backend: Backend,
  open: (backend: Backend, label: string) => Promise<T>,
): (label: string) => Promise<T> {
  let current: T | undefined;
  afterEach(async () => {
    await killAll();
    await current?.close();
    current = undefined;
  });
  afterAll(async () => {
    await killAll();
    await backend.cleanup();
  });
  return async (label) => (current = await open(backend, label));
}
