/**
 * Start-up of the `nightshift` command as users install it: the `npm pack` tarball (of this
 * run's build) installed into a fresh project, its bin run with this Node. Targets (issue 13):
 * `nightshift --version` <= 150 ms, `nightshift run noop` on SQLite with a JavaScript config
 * <= 400 ms. The same commands through tsx from the repository's source (how the CLI started
 * before it ran its build) and `node -e 0` are measured alongside.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { envFor, installProject, nodeRuntime, packOnce, ROOT } from '../test/package/install.ts';
import { secs, table } from './lib/util.ts';

const CONFIG = `import { defineJob } from 'nightshift';

export const noop = defineJob({ name: 'noop', steps: (s) => [s.tasklet({ name: 'noop', tasklet: () => undefined })] });
`;

interface Timing {
  median: number;
  p90: number;
  /** Median CPU time (user + system) of the process, in ms: what a busy machine changes least. */
  cpu: number | undefined;
}

const TIME = '/usr/bin/time';

/** Runs `args` `n` times (after one untimed run): median and 90th percentile wall time, and median CPU time, in ms. */
function time(args: string[], cwd: string, env: NodeJS.ProcessEnv, n: number): Timing {
  const withTime = existsSync(TIME);
  const once = (): [number, number | undefined] => {
    const t = process.hrtime.bigint();
    const r = withTime
      ? spawnSync(TIME, ['-f', 'cpu %U %S', process.execPath, ...args], { cwd, env, encoding: 'utf8' })
      : spawnSync(process.execPath, args, { cwd, env, encoding: 'utf8' });
    const wall = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    const m = /cpu (\d+\.\d+) (\d+\.\d+)\s*$/.exec(r.stderr);
    return [wall, m ? (Number(m[1]) + Number(m[2])) * 1000 : undefined];
  };
  once();
  const runs = Array.from({ length: n }, once);
  const ms = runs.map(([w]) => w).sort((a, b) => a - b);
  const cpus = runs.map(([, c]) => c).filter((c): c is number => c !== undefined).sort((a, b) => a - b);
  return { median: ms[Math.floor(n / 2)], p90: ms[Math.min(n - 1, Math.ceil(n * 0.9) - 1)], cpu: cpus.length ? cpus[Math.floor(cpus.length / 2)] : undefined };
}

export async function benchStartup(runs: number): Promise<string[]> {
  const runtime = await nodeRuntime(process.versions.node);
  const { tarball } = await packOnce();
  const dir = await installProject(runtime, tarball);
  writeFileSync(join(dir, 'nightshift.config.js'), CONFIG);
  const env = envFor(runtime, { NIGHTSHIFT_LOG_LEVEL: 'silent' });
  const bin = join(dir, 'node_modules/nightshift/bin/nightshift.js');
  const source = join(ROOT, 'bin/nightshift.js');
  const rows: [string, string, Timing, string][] = [
    ['`node -e 0` (Node itself)', '', time(['-e', '0'], dir, env, runs), ''],
    ['`nightshift --version`', '0.8 s', time([bin, '--version'], dir, env, runs), '<= 150 ms'],
    ['`nightshift run noop --next` (SQLite, nightshift.config.js)', '1.0 s', time([bin, 'run', 'noop', '--next', '--db', 'sqlite:startup.db'], dir, env, runs), '<= 400 ms'],
    ['`nightshift --version`, from source through tsx (the old way)', '0.8 s', time([source, '--version'], dir, env, runs), ''],
    ['`nightshift run noop --next`, from source through tsx (the old way)', '1.0 s', time([source, 'run', 'noop', '--next', '--db', 'sqlite:startup-src.db'], dir, env, runs), ''],
  ];
  rmSync(dir, { recursive: true, force: true });
  rmSync(dirname(tarball), { recursive: true, force: true });
  const ms = (t: number) => (t < 1000 ? `${Math.round(t)} ms` : secs(t));
  return [
    `## Start-up of the nightshift command (installed from the packed tarball; median of ${runs})`,
    '',
    ...table(['command', 'before (issue 13)', 'median', 'p90', 'CPU (median)', 'target'],
      rows.map(([what, before, t, target]) => [what, before, ms(t.median), ms(t.p90), t.cpu === undefined ? 'n/a' : ms(t.cpu), target])),
    '',
    `Node ${process.version}. Wall time of the whole process, spawned from the benchmark, in a project where \`npm pack\`'s tarball is installed; each command once untimed first. ` +
      'The run uses one SQLite file, so every run after the first is the next instance (`--next`): opening the repository, loading the config, one execution with one step, and exit. ' +
      'The CLI runs its compiled JavaScript (dist/); a JavaScript config loads without tsx, and the database drivers, the cluster and server modules and the progress bars load only in the commands that use them. ' +
      '"before" is what issue 13 measured when the CLI transpiled itself through tsx at every start.',
  ];
}
