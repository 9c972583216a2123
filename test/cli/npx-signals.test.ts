/**
 * `npx nightshift node|serve|run`, stopped by signalling npx: npx (npm exec) runs the command
 * through `sh -c` and passes a SIGTERM to that shell only, which ends and leaves the command
 * running, re-parented, with nobody to stop it. The command takes the end of its parent as the
 * signal. Real npx, real processes, SQLite.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EXAMPLES, ROOT, runCli } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'nightshift-npx-'));

/** The pids of the `nightshift` processes (not npm, not a shell) whose command line has `marker`. */
function nightshiftPids(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // ended meanwhile
    }
    // node running the nightshift script (npx itself is node running npx, with nightshift as an argument).
    if (args.some((a) => a.includes(marker)) && /(^|\/)node$/.test(args[0]) && /\/(\.bin\/nightshift|bin\/nightshift\.js)$/.test(args[1] ?? '')) {
      pids.push(Number(entry));
    }
  }
  return pids;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const started: number[] = [];
afterEach(() => {
  // Whatever the outcome, leave no process behind (without the fix the command outlives npx).
  for (const pid of started.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
});

/** Starts `npx nightshift ARGS` in the repository (where npx runs its bin) and the nightshift process under it. */
async function npx(args: string[], marker: string) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('NIGHTSHIFT_') || k.startsWith('VITEST')) delete env[k];
  const child = spawn('npx', ['--no-install', 'nightshift', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const pid = await until(`nightshift ${args[0]} under npx`, () => nightshiftPids(marker)[0]);
  started.push(pid);
  return { npx: child, pid, stdout: () => stdout, stderr: () => stderr };
}

describe('npx nightshift, stopped through npx', () => {
  it('a node leaves the cluster gracefully when npx gets SIGTERM, instead of running on re-parented', async () => {
    const db = `sqlite:${join(dir, 'node.db')}`;
    const p = await npx(['node', '--name', 'npx-node', '--db', db, '--config', EXAMPLES], 'node.db');
    // Until the node has made the repository, `nodes` refuses the missing file.
    const nodes = async () => {
      const r = await runCli(['nodes', '--json', '--db', db]);
      return r.code === 0 ? (JSON.parse(r.stdout) as { name: string; status: string }[]) : [];
    };
    await until('the node to join', async () => ((await nodes()).some((n) => n.name === 'npx-node' && n.status === 'alive') ? true : undefined));
    p.npx.kill('SIGTERM');
    await until('the node process to end', () => (alive(p.pid) ? undefined : true), 30_000);
    expect((await nodes()).find((n) => n.name === 'npx-node')?.status).toBe('left');
  }, 120_000);

  it('serve shuts down when npx gets SIGTERM', async () => {
    const db = `sqlite:${join(dir, 'serve.db')}`;
    const p = await npx(['serve', '--port', '0', '--insecure-no-auth', '--db', db, '--config', EXAMPLES], 'serve.db');
    await until('serve to listen', () => (p.stdout().includes('listening on') ? true : undefined));
    p.npx.kill('SIGTERM');
    await until('the serve process to end', () => (alive(p.pid) ? undefined : true), 30_000);
  }, 120_000);
});
