/**
 * A config is checked as one, by whichever command loads it: schedules (against the jobs) and
 * retention that `nightshift node` would refuse at start are refused by `jobs`, `run` and the
 * others too, with exit 2 and one line naming the config and the schedule, so that `nightshift
 * jobs --config FILE` is a pre-deploy check. `node` refuses before it touches the repository.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backends, PG_BASE, waitFor } from '../support/backends.ts';
import { expectOneLineError, query, runCli, spawnCli } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'nightshift-config-check-'));
const all = backends();
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  for (const b of all) await b.cleanup();
});

/** A config with one job, `j`, and the given exports after it. */
function config(name: string, exports: string): string {
  const file = join(dir, name);
  writeFileSync(file, `import { defineJob, p } from 'nightshift';
export default [defineJob({ name: 'j', params: { n: p.int({ default: 1 }) }, steps: (s) => [s.tasklet({ name: 't', tasklet: () => undefined })] })];
${exports}
`);
  return file;
}

/** Whether a repository exists at a URL: the SQLite file, or the PostgreSQL schema. */
async function repositoryExists(url: string): Promise<boolean> {
  if (url.startsWith('sqlite:')) return existsSync(url.slice('sqlite:'.length));
  const schema = new URL(url).searchParams.get('schema');
  return (await query(PG_BASE, 'SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema])).length > 0;
}

const BAD = [
  ['an invalid cron expression', "{ name: 'x', job: 'j', cron: '0 0 25 * * ?' }", 'schedule x: invalid cron expression "0 0 25 \\* \\* \\?": hour: 25 is out of range 0-23'],
  ['a bad parameter', "{ name: 'x', job: 'j', everyMs: 1000, params: { n: 'many' } }", 'schedule x: job j: parameter n must be an integer, got "many"'],
  ['an unknown job', "{ name: 'x', job: 'jj', everyMs: 1000 }", 'schedule x: unknown job jj \\(known: j\\)'],
] as const;

describe('a config whose schedules a node would refuse', () => {
  describe.each(BAD)('with %s', (label, schedule, message) => {
    const file = config(`${label.replaceAll(' ', '-')}.config.ts`, `export const schedules = [${schedule}];`);
    const refusal = new RegExp(`^nightshift: config ${file}: ${message}$`);

    it('is refused by jobs, text and JSON: exit 2, one line naming the config and the schedule, nothing on stdout', async () => {
      for (const r of await Promise.all([runCli(['jobs', '--config', file]), runCli(['jobs', '--json', '--config', file])])) {
        expectOneLineError(r, refusal);
        expect(r.stdout).toBe('');
      }
    });

    it.each(all.map((b) => [b.name, b] as const))('is refused by node on %s before it starts: nothing created', async (_, backend) => {
      const url = backend.freshUrl('cfgcheck');
      const r = await runCli(['node', '--name', 'n1', '--db', url, '--config', file], { timeoutMs: 30_000 });
      expectOneLineError(r, refusal);
      expect(r.stdout).toBe('');
      expect(await repositoryExists(url)).toBe(false);
    });
  });

  it('is refused the same by every command that loads it, before any repository is created or changed', async () => {
    const [, schedule, message] = BAD[0];
    const file = config('every-command.config.ts', `export const schedules = [${schedule}];`);
    const url = `sqlite:${join(dir, 'every-command.db')}`;
    const common = ['--db', url, '--config', file];
    const commands = [
      ['run', 'j'], ['submit', 'j'], ['schedule', 'add', 'y', '--job', 'j', '--every', '1000'], ['schedule', 'trigger', 'x'],
      ['serve', '--insecure-no-auth', '--port', '0'],
    ];
    const results = await Promise.all(commands.map((args) => runCli([...args, ...common], { timeoutMs: 30_000 })));
    results.forEach((r) => expectOneLineError(r, new RegExp(`^nightshift: config ${file}: ${message}$`), 2));
    expect(results.map((r) => r.stdout)).toEqual(commands.map(() => ''));
    expect(await repositoryExists(url)).toBe(false);
  });

  it('so is a retention that a node would refuse', async () => {
    const file = config('retention.config.ts', "export const retention = { olderThan: '30d', every: '500ms' };");
    expectOneLineError(await runCli(['jobs', '--config', file]), new RegExp(`^nightshift: config ${file}: retention\\.every must be at least 1s, got "500ms"$`));
  });
});

describe('a config whose schedule had its last fire time', () => {
  // Valid the day it was written: whether a cron fires again depends on the day it is loaded.
  const file = config('expired.config.ts', "export const schedules = [{ name: 'newyear2025', job: 'j', cron: '0 0 0 1 1 ? 2025' }];");

  it('still works with every command; the node keeps the trigger with no next fire time and warns', async () => {
    const url = `sqlite:${join(dir, 'expired.db')}`;
    const jobs = await runCli(['jobs', '--config', file]);
    expect([jobs.code, jobs.stderr]).toEqual([0, '']);
    const run = await runCli(['run', 'j', '--db', url, '--config', file]);
    expect(run.code, run.stderr).toBe(0);
    expect((await runCli(['executions', '--db', url, '--config', file])).code).toBe(0);
    const node = spawnCli(['node', '--name', 'exp1', '--db', url, '--config', file], { env: { NIGHTSHIFT_LOG_LEVEL: 'warn' } });
    try {
      const rows = await waitFor(async () => {
        const found = await query<{ name: string; next_fire_time: unknown }>(url, 'SELECT name, next_fire_time FROM ns_trigger');
        return found.length === 1 && found;
      }, 30_000, 'the declared schedule');
      expect(rows).toEqual([{ name: 'newyear2025', next_fire_time: null }]);
      await waitFor(() => node.stderr().includes('schedule newyear2025 never fires again'), 10_000, 'the warning');
    } finally {
      node.child.kill('SIGTERM');
    }
    expect((await node.exited).code, node.stderr()).toBe(0);
    // Adding such a trigger now is refused: it would never fire.
    const add = await runCli(['schedule', 'add', 'late', '--job', 'j', '--cron', '0 0 0 1 1 ? 2025', '--db', url, '--config', file]);
    expectOneLineError(add, /never fires again/);
  }, 60_000);
});

describe('a valid config with schedules', () => {
  const file = config('valid.config.ts', `export const schedules = [
  { name: 'x', job: 'j', cron: '0 30 2 * * ?', tz: 'Europe/Paris', params: { n: '5' } },
  { name: 'tick', job: 'j', everyMs: 60000 },
];`);

  it('jobs lists its jobs, and its schedules under them in text (JSON: the jobs only, as before)', async () => {
    const [text, json] = await Promise.all([runCli(['jobs', '--config', file]), runCli(['jobs', '--json', '--config', file])]);
    expect([text.code, text.stderr]).toEqual([0, '']);
    expect(text.stdout).toBe(
      'job  parameters\n' +
      'j    n:int=1\n' +
      '\n' +
      'schedule  job  fires                             params\n' +
      'x         j    cron 0 30 2 * * ? (Europe/Paris)  n=5\n' +
      'tick      j    every 1m                          -\n',
    );
    expect(json.code, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as { name: string }[]).map((j) => j.name)).toEqual(['j']);
  });

  it('a config without schedules lists its jobs alone', async () => {
    const r = await runCli(['jobs', '--config', config('plain.config.ts', '')]);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'job  parameters\nj    n:int=1\n', '']);
  });

  it.each(all.map((b) => [b.name, b] as const))('run completes and node starts with it, adding its schedules, on %s', async (_, backend) => {
    const url = backend.freshUrl('cfgcheckok');
    const run = await runCli(['run', 'j', 'n=2', '--json', '--db', url, '--config', file]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ jobName: 'j', status: 'COMPLETED', parameters: { n: 2 } });
    const node = spawnCli(['node', '--name', 'ok1', '--db', url, '--config', file], { env: { NIGHTSHIFT_LOG_LEVEL: 'warn' } });
    try {
      const names = await waitFor(async () => {
        const rows = await query<{ name: string }>(url, 'SELECT name FROM ns_trigger ORDER BY name');
        return rows.length === 2 && rows.map((r) => r.name);
      }, 30_000, 'the declared schedules');
      expect(names).toEqual(['tick', 'x']);
    } finally {
      node.child.kill('SIGTERM');
    }
    const ended = await node.exited;
    expect(ended.code, node.stderr()).toBe(0);
  }, 60_000);
});
