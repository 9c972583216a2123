/**
 * `nightshift cron`, how the CLI finds its database and config (defaults in the working
 * directory, NIGHTSHIFT_DB, NIGHTSHIFT_CONFIG, and the flags over them), and `nightshift demo`.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.ts';
import { EXAMPLES, ROOT, expectOneLineError, runCli, type ExecutionJson } from './run-cli.ts';

const root = mkdtempSync(join(tmpdir(), 'nightshift-cli-misc-'));
const dirs = { n: 0 };
const newDir = (label: string) => {
  const d = join(root, `${label}-${dirs.n++}`);
  mkdirSync(d);
  return d;
};

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A user's config, outside this package, in TypeScript, importing from 'nightshift'. */
const TS_CONFIG = `import { defineJob, p } from 'nightshift';

const greeting: string = 'hello';

export const hello = defineJob({
  name: greeting,
  params: { who: p.string({ default: 'world' }) },
  steps: (s) => [s.tasklet({ name: 'greet', tasklet: () => undefined })],
});
`;

describe('nightshift cron', () => {
  it('prints the next fire times as ISO-8601 UTC with milliseconds', async () => {
    const r = await runCli(['cron', '0 0/15 * * * ?', '--from', '2024-01-15T10:07:00Z', '--count', '3', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(['2024-01-15T10:15:00.000Z', '2024-01-15T10:30:00.000Z', '2024-01-15T10:45:00.000Z']);
    expect(r.stderr).toBe('');

    const [dst, dflt, text] = await Promise.all([
      // 09:00 in New York across the start of daylight saving time (2024-03-10).
      runCli(['cron', '0 0 9 * * ?', '--tz', 'America/New_York', '--from', '2024-03-09T00:00:00Z', '--count', '2', '--json']),
      runCli(['cron', '0 0/15 * * * ?', '--json']),
      runCli(['cron', '0 0/15 * * * ?', '--from', '2024-01-15T10:07:00Z', '--count', '2']),
    ]);
    expect(JSON.parse(dst.stdout)).toEqual(['2024-03-09T14:00:00.000Z', '2024-03-10T13:00:00.000Z']);
    const times = JSON.parse(dflt.stdout) as string[];
    expect(times).toHaveLength(5); // default --count
    for (const t of times) expect(t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:(00|15|30|45):00\.000Z$/);
    expect(Date.parse(times[0])).toBeGreaterThan(Date.now() - 60_000);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^2024-01-15T10:15:00\.000Z/m);
    expect(text.stdout).toMatch(/^2024-01-15T10:30:00\.000Z/m);
  });

  it('--from without an offset is UTC and a date alone its midnight, whatever the machine\'s time zone', async () => {
    const args = (from: string) => ['cron', '0 0 * * * ?', '--from', from, '--count', '2', '--json'];
    const expected: [string, string[]][] = [
      ['2024-01-15T10:30', ['2024-01-15T11:00:00.000Z', '2024-01-15T12:00:00.000Z']],
      ['2024-01-15 10:30:15.5', ['2024-01-15T11:00:00.000Z', '2024-01-15T12:00:00.000Z']],
      ['2024-07-15', ['2024-07-15T01:00:00.000Z', '2024-07-15T02:00:00.000Z']],
      ['2024-02-29T23:30', ['2024-03-01T00:00:00.000Z', '2024-03-01T01:00:00.000Z']],
      // An offset is honoured as given.
      ['2024-01-15T10:30+02:00', ['2024-01-15T09:00:00.000Z', '2024-01-15T10:00:00.000Z']],
    ];
    // Paris is UTC+1 in January and UTC+2 in July, Kiritimati UTC+14: a local reading would differ.
    const zones = ['UTC', 'Europe/Paris', 'Pacific/Kiritimati'];
    const runs = await Promise.all(zones.flatMap((TZ) => expected.map(([from]) => runCli(args(from), { env: { TZ } }))));
    runs.forEach((r, i) => {
      const [from, times] = expected[i % expected.length];
      const what = `TZ=${zones[Math.floor(i / expected.length)]} --from ${from}`;
      expect(r.code, `${what}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout), what).toEqual(times);
    });
  });

  it('bad expressions and options: exit 2 naming the problem', async () => {
    const checks: [string[], RegExp][] = [
      [['cron', '0 0/75 * * * ?', '--json'], /minute/],
      [['cron', '0 0 25 * * ?'], /hour/],
      [['cron', '0 0 0 * FOO ?'], /month/],
      [['cron', '0 0 0 * *'], /field|expression/],
      [['cron', '0 0/15 * * * ?', '--tz', 'Nowhere/Zone'], /Nowhere\/Zone/],
      [['cron', '0 0/15 * * * ?', '--from', 'yesterday'], /^nightshift: --from must be an ISO-8601 date or date-time .*, got "yesterday"$/],
      // A day beyond its month's end is refused, not rolled over to the next month.
      [['cron', '0 0/15 * * * ?', '--from', '2024-02-30'], /^nightshift: --from must be .*, got "2024-02-30" \(there is no such day\)$/],
      [['cron', '0 0/15 * * * ?', '--from', '2023-02-29T10:00'], /--from .*, got "2023-02-29T10:00" \(there is no such day\)$/],
      [['cron', '0 0/15 * * * ?', '--from', '2024-01-15T25:00'], /--from .*, got "2024-01-15T25:00"$/],
      [['cron', '0 0/15 * * * ?', '--from', '2024-01-15T10:00:00Zjunk'], /--from .*, got "2024-01-15T10:00:00Zjunk"$/],
      [['cron', '0 0/15 * * * ?', '--from', '15/01/2024'], /--from .*, got "15\/01\/2024"$/],
      [['cron', '0 0/15 * * * ?', '--count', '0'], /--count/],
    ];
    const results = await Promise.all(checks.map(([args]) => runCli(args)));
    results.forEach((r, i) => {
      expectOneLineError(r, checks[i][1]);
      expect(r.stdout).toBe('');
    });
  });
});

describe('nightshift config and database discovery', () => {
  it('finds nightshift.config.ts in the working directory and creates sqlite:nightshift.db there', async () => {
    const cwd = newDir('default');
    writeFileSync(join(cwd, 'nightshift.config.ts'), TS_CONFIG);
    const jobs = await runCli(['jobs', '--json'], { cwd });
    expect(jobs.code, jobs.stderr).toBe(0);
    expect(JSON.parse(jobs.stdout).map((j: { name: string }) => j.name)).toEqual(['hello']);
    expect(existsSync(join(cwd, 'nightshift.db'))).toBe(false); // jobs needs no repository

    const run = await runCli(['run', 'hello', 'who=you', '--json'], { cwd });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ jobName: 'hello', status: 'COMPLETED', parameters: { who: 'you' } });
    expect(existsSync(join(cwd, 'nightshift.db'))).toBe(true);
    const list = await runCli(['executions', '--json'], { cwd });
    expect(JSON.parse(list.stdout)).toMatchObject([{ jobName: 'hello', status: 'COMPLETED' }]);
    expect(readdirSync(cwd).filter((f) => !f.startsWith('nightshift.db')).sort()).toEqual(['nightshift.config.ts']);
  });

  it('finds nightshift.config.mjs too, and says so when there is no config', async () => {
    const cwd = newDir('mjs');
    writeFileSync(join(cwd, 'nightshift.config.mjs'), TS_CONFIG.replace(': string', ''));
    const [jobs, none] = await Promise.all([runCli(['jobs', '--json'], { cwd }), runCli(['jobs'], { cwd: newDir('empty') })]);
    expect(jobs.code, jobs.stderr).toBe(0);
    expect(JSON.parse(jobs.stdout)).toMatchObject([{ name: 'hello' }]);
    // A JavaScript user learns that a .js config is found too, here and in every command's help.
    expectOneLineError(none, /no config file: pass --config FILE, set NIGHTSHIFT_CONFIG, or create nightshift\.config\.ts \(or \.mts, \.js, \.mjs\) here$/);
    const help = await runCli(['run', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.replace(/\s+/g, ' ')).toContain('--config <file> job definitions (env NIGHTSHIFT_CONFIG, default nightshift.config.ts (or .mts, .js, .mjs) here)');
  });

  it('finds an ES-module nightshift.config.js in a folder with no package.json; a CommonJS one gets a hint', async () => {
    const cwd = newDir('js');
    writeFileSync(join(cwd, 'nightshift.config.js'), TS_CONFIG.replace(': string', ''));
    const run = await runCli(['run', 'hello', '--json'], { cwd });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ jobName: 'hello', status: 'COMPLETED' });

    const cjs = newDir('cjs');
    writeFileSync(join(cjs, 'nightshift.config.js'), "const { defineJob } = require('nightshift');\nmodule.exports = [];\n");
    expectOneLineError(await runCli(['jobs'], { cwd: cjs }), /nightshift\.config\.js.*ES module: import \{ defineJob \} from 'nightshift'/);
  });

  it('commands that only read or change the repository need no config file', async () => {
    const made = newDir('made');
    const db = `sqlite:${join(made, 'repo.db')}`;
    const run = await runCli(['run', 'count', 'items=3', '--json', '--db', db, '--config', EXAMPLES], { cwd: made });
    expect(run.code, run.stderr).toBe(0);
    const id = String((JSON.parse(run.stdout) as ExecutionJson).id);
    // A folder with no config, the database given by --db or NIGHTSHIFT_DB.
    const cwd = newDir('no-config');
    const env = { NIGHTSHIFT_DB: db };
    const [executions, execution, nodes, schedules, stop, abandon] = await Promise.all([
      runCli(['executions', '--json'], { cwd, env }),
      runCli(['execution', id, '--json', '--db', db], { cwd }),
      runCli(['nodes', '--json'], { cwd, env }),
      runCli(['schedule', 'list', '--json'], { cwd, env }),
      runCli(['stop', id], { cwd, env }),
      runCli(['abandon', id], { cwd, env }),
    ]);
    for (const r of [executions, execution, nodes, schedules]) expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(executions.stdout) as ExecutionJson[]).map((e) => [e.jobName, e.status])).toEqual([['count', 'COMPLETED']]);
    expect(JSON.parse(execution.stdout)).toMatchObject({ id: Number(id), jobName: 'count', status: 'COMPLETED' });
    expect(JSON.parse(nodes.stdout)).toEqual([]);
    expect(JSON.parse(schedules.stdout)).toEqual([]);
    // A completed execution cannot be stopped or abandoned: the repository said so, not "no config file".
    for (const r of [stop, abandon]) {
      expect(r.stderr).not.toMatch(/config/);
      expect(r.stdout + r.stderr).toMatch(/COMPLETED|completed/);
    }
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('takes the common options before the command too', async () => {
    const cwd = newDir('before');
    const db = `sqlite:${join(cwd, 'before.db')}`;
    const run = await runCli(['--db', db, '--config', EXAMPLES, '--json', 'run', 'count', 'items=3'], { cwd });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ jobName: 'count', status: 'COMPLETED' });
    const list = await runCli(['--json', 'executions', '--db', db, '--config', EXAMPLES], { cwd });
    expect((JSON.parse(list.stdout) as ExecutionJson[]).map((e) => e.jobName)).toEqual(['count']);
    expect(readdirSync(cwd).filter((f) => !f.startsWith('before.db'))).toEqual([]);
    // An option the command does not have is bad usage, before or after it.
    const [before, after] = await Promise.all([runCli(['--json', 'node'], { cwd }), runCli(['demo', '--db', db], { cwd })]);
    expectOneLineError(before, /--json does not apply to node/);
    expectOneLineError(after, /unknown option '--db'/);
  });

  it('honours NIGHTSHIFT_CONFIG and NIGHTSHIFT_DB; the flags win over them', async () => {
    const home = newDir('home');
    const config = join(home, 'jobs.config.ts');
    writeFileSync(config, TS_CONFIG);
    const cwd = newDir('elsewhere');
    const env = { NIGHTSHIFT_CONFIG: config, NIGHTSHIFT_DB: `sqlite:${join(home, 'env.db')}` };

    const jobs = await runCli(['jobs', '--json'], { cwd, env });
    expect(jobs.code, jobs.stderr).toBe(0);
    expect(JSON.parse(jobs.stdout)).toMatchObject([{ name: 'hello' }]);
    const run = await runCli(['run', 'hello', '--json'], { cwd, env });
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(join(home, 'env.db'))).toBe(true);
    expect(readdirSync(cwd)).toEqual([]);

    const flags = await runCli(['run', 'count', 'items=3', '--json', '--config', EXAMPLES, '--db', `sqlite:${join(cwd, 'flag.db')}`], { cwd, env });
    expect(flags.code, flags.stderr).toBe(0);
    expect(existsSync(join(cwd, 'flag.db'))).toBe(true);
    const [viaEnv, viaFlag] = await Promise.all([
      runCli(['executions', '--json'], { cwd, env }),
      runCli(['executions', '--json', '--db', `sqlite:${join(cwd, 'flag.db')}`], { cwd, env }),
    ]);
    expect((JSON.parse(viaEnv.stdout) as ExecutionJson[]).map((e) => e.jobName)).toEqual(['hello']);
    expect((JSON.parse(viaFlag.stdout) as ExecutionJson[]).map((e) => e.jobName)).toEqual(['count']);
  });

  it.each(backends().filter((b) => b.name === 'postgres'))('NIGHTSHIFT_DB may name a PostgreSQL repository', async (backend) => {
    try {
      const cwd = newDir('pg');
      writeFileSync(join(cwd, 'nightshift.config.ts'), TS_CONFIG);
      const env = { NIGHTSHIFT_DB: backend.freshUrl('cli-env') };
      const run = await runCli(['run', 'hello', '--json'], { cwd, env });
      expect(run.code, run.stderr).toBe(0);
      const list = await runCli(['executions', '--json'], { cwd, env });
      expect(JSON.parse(list.stdout)).toMatchObject([{ jobName: 'hello', status: 'COMPLETED' }]);
      expect(readdirSync(cwd)).toEqual(['nightshift.config.ts']);
    } finally {
      await backend.cleanup();
    }
  });
});

describe('nightshift without a command, help and --version', () => {
  it('no command is one line and exit 2; help and --version print to stdout', async () => {
    const [none, help, version] = await Promise.all([runCli([]), runCli(['help']), runCli(['--version'])]);
    expectOneLineError(none, /no command given/);
    expect(none.stdout).toBe('');
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: nightshift/);
    expect(version.code, version.stderr).toBe(0);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(version.stdout.trim()).toBe(pkg.version);
  });
});

describe('nightshift demo', () => {
  it('runs the demonstration in --dir and leaves only its own files there', async () => {
    const dir = newDir('demo');
    const cwd = newDir('demo-cwd');
    const r = await runCli(['demo', '--dir', dir, '--rows', '20000'], { cwd, timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Nightshift demo in ${dir}`);
    expect(r.stdout).toMatch(/generated .*people\.csv: 20000 rows, 20 of them bad/);
    expect(r.stdout).toMatch(/^\s+20 rejected rows/m);
    expect(r.stdout).toMatch(/line \d+: .*(integer|@|decimal|fields)/);
    expect(r.stdout).toMatch(/FAILED: failing on purpose at item 3500/);
    expect(r.stdout).toMatch(/committed before the failure: 3000 rows/);
    expect(r.stdout).toMatch(/10000 rows for 10000 distinct items: each written exactly once/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    const files = readdirSync(dir).sort();
    expect(files).toEqual(expect.arrayContaining(['demo.db', 'people.csv']));
    expect(files.every((f) => ['demo.db', 'demo.db-wal', 'demo.db-shm', 'people.csv'].includes(f)), files.join(', ')).toBe(true);
    expect(readdirSync(cwd)).toEqual([]);

    const bad = await runCli(['demo', '--rows', '0'], { cwd });
    expectOneLineError(bad, /--rows/);
  });
});
