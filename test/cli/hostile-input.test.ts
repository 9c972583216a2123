/**
 * Hostile and bad input through the real `nightshift` process: parameter names inherited from
 * Object.prototype, a forged scheduler `fireTime`, passwords in malformed URLs, a PostgreSQL URL
 * without a database, terminal escape sequences in what the CLI prints, and unbounded output.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { noop } from '../../examples/nightshift.config.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { scheduleAdmin } from '../../src/scheduler/triggers.ts';
import { backends, PG_BASE } from '../support/backends.ts';
import { admin } from '../support/pg-admin.ts';
import { cliFor, EXAMPLES, expectOneLineError, query, runCli, scalar, type ExecutionJson } from './run-cli.ts';

const ESC = '\u001b';
const dir = mkdtempSync(join(tmpdir(), 'nightshift-hostile-'));
const EVIL_CONFIG = join(dir, 'nightshift.config.ts');
writeFileSync(EVIL_CONFIG, `
import { defineJob, p } from 'nightshift';

export const evil = defineJob({
  name: 'evil',
  params: { note: p.string({ default: '' }) },
  steps: (s) => [s.tasklet({ name: 'work', tasklet: () => { throw new Error('boom \\u001b[2J\\u001b]0;owned\\u0007 \\u009b31m done'); } })],
});
`);

/** No raw control character (but newlines) in `text`. */
// eslint-disable-next-line no-control-regex -- looking for control characters is the point
const expectNoControls = (text: string) => expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);

describe.each(backends())('hostile input on $name', (backend) => {
  afterAll(() => backend.cleanup());

  it('refuses parameter names inherited from Object.prototype like any unknown name, writing nothing', async () => {
    const url = backend.freshUrl('proto');
    const cli = cliFor(url);
    for (const word of ['constructor=1', 'toString=x', '__proto__=5', 'hasOwnProperty=1', 'valueOf=2']) {
      const name = word.slice(0, word.indexOf('='));
      expectOneLineError(await cli.run(['run', 'count', 'items=1', word]), new RegExp(`job count: unknown parameter ${name} \\(known: `));
      expectOneLineError(await cli.run(['submit', 'count', word]), new RegExp(`unknown parameter ${name}\\b`));
    }
    expect(await scalar(url, 'SELECT count(*) FROM ns_job_execution')).toBe(0);
  });

  it('refuses a forged fireTime from run and submit, so that no launch can take a future firing', async () => {
    const url = backend.freshUrl('firetime');
    const cli = cliFor(url);
    const future = '2099-01-01T00:00:00.000Z';
    expectOneLineError(await cli.run(['run', 'noop', `fireTime=${future}`]), /job noop: parameter fireTime is set by the scheduler/);
    expectOneLineError(await cli.run(['submit', 'noop', `fireTime=${future}`]), /job noop: parameter fireTime is set by the scheduler.*to fire a trigger now, `nightshift schedule trigger NAME` or POST/);
    expectOneLineError(await cli.run(['run', 'noop', '--next', `fireTime=${future}`]), /parameter fireTime is set by the scheduler/);
    const file = join(dir, `forged-${backend.name}.jsonl`);
    writeFileSync(file, `{"job":"noop","params":{"fireTime":"${future}"}}\n{"job":"count","params":{"items":1,"fireTime":"${future}"}}\n`);
    const many = await cli.run(['submit-many', file]);
    expect(many.code, many.stderr).toBe(1);
    expect(many.stderr.split('\n').filter((l) => l.includes('parameter fireTime is set by the scheduler'))).toHaveLength(2);
    expect(await scalar(url, 'SELECT count(*) FROM ns_job_instance')).toBe(0);

    // A firing's own instance may run again with its fireTime: a stopped firing, re-run by hand.
    const db = await openDatabase(url);
    let fired;
    try {
      const admin = scheduleAdmin({ db, jobs: [noop] });
      await admin.add({ name: 'nightly', job: 'noop', cron: '0 0 0 * * ?' });
      fired = await admin.fireNow('nightly');
    } finally {
      await db.close();
    }
    expect((await cli.run(['stop', String(fired.id)])).code).toBe(0);
    const again = await cli.json<ExecutionJson>(['run', 'noop', `fireTime=${String(fired.params.fireTime)}`]);
    expect(again).toMatchObject({ status: 'COMPLETED', instanceId: fired.instanceId });
  });

  it('escapes control characters in parameters, exit descriptions and errors on the terminal', async () => {
    const cli = cliFor(backend.freshUrl('escapes'), EVIL_CONFIG);
    const note = `${ESC}[31mred${ESC}]0;title\u0007\u009b2J`;
    const run = await cli.run(['run', 'evil', `note=${note}`]);
    expect(run.code, run.stderr).toBe(1);
    expectNoControls(run.stdout);
    expectNoControls(run.stderr);
    expect(run.stdout).toContain('note=\\u001b[31mred\\u001b]0;title\\u0007\\u009b2J');
    expect(run.stdout).toContain('boom \\u001b[2J\\u001b]0;owned\\u0007 \\u009b31m done');
    expect(run.stderr).toMatch(/ended FAILED: .*boom \\u001b\[2J/);
    for (const args of [['executions'], ['execution', '1']]) {
      const r = await cli.run(args);
      expect(r.code, r.stderr).toBe(0);
      expectNoControls(r.stdout);
      expect(r.stdout).toContain('\\u001b[31mred');
    }
    // JSON output stays JSON with the same values.
    const json = await cli.run(['execution', '1', '--json']);
    expectNoControls(json.stdout);
    expect((JSON.parse(json.stdout) as ExecutionJson).parameters.note).toBe(note);
    // An error that echoes input does not echo it raw either.
    const bad = await cli.run(['run', `evil${ESC}[2J`]);
    expectOneLineError(bad, /unknown job evil\\u001b\[2J/);
    expectNoControls(bad.stderr);
  });

  it('refuses node names that are not letters, digits and _ . : @ -', async () => {
    const cli = cliFor(backend.freshUrl('nodename'));
    for (const name of [`n${ESC}]0;x\u0007`, 'two words', '-dash', '']) {
      const r = await cli.run(['node', '--name', name], { timeoutMs: 30_000 });
      expectOneLineError(r, /invalid node name ".*": use letters, digits and _ \. : @ -/);
      expectNoControls(r.stderr);
    }
  });
});

describe('bounded output and database URLs', () => {
  it('caps cron --count and executions --limit with a clear message', async () => {
    expectOneLineError(await runCli(['cron', '* * * * * ?', '--count', '5000000']), /^nightshift: --count must be at most 10000, got 5000000$/);
    expect(JSON.parse((await runCli(['cron', '* * * * * ?', '--count', '10000', '--json'])).stdout)).toHaveLength(10000);
    const db = `sqlite:${join(dir, 'limit.db')}`;
    await query(db, 'SELECT 1 AS one'); // executions reads an existing repository
    expectOneLineError(await runCli(['executions', '--limit', '1000001', '--db', db, '--config', EXAMPLES]), /^nightshift: --limit must be at most 1000, got 1000001$/);
    expect((await runCli(['executions', '--limit', '1000', '--db', db, '--config', EXAMPLES])).code).toBe(0);
  });

  it('refuses a PostgreSQL URL without a database name instead of using the default database', async () => {
    for (const url of ['postgres://postgres@127.0.0.1:5432', 'postgres://postgres@127.0.0.1:5432/', 'postgresql://u:hunter2@127.0.0.1:5432/?schema=x']) {
      const r = await runCli(['executions', '--db', url, '--config', EXAMPLES]);
      expectOneLineError(r, /invalid database URL ".*": no database name \(expected postgres:\/\/USER@HOST:PORT\/DB\)/);
      expect(r.stderr).not.toContain('hunter2');
    }
  });

  // The driver ignores a parameter it does not know: a misspelt schema would put the repository
  // in the database's default schema without a word.
  it('refuses a URL parameter nobody reads (a misspelt ?schema=), before connecting; accepts the driver\'s own', async () => {
    const base = PG_BASE.split('?')[0];
    for (const [param, hint] of [['shema=batch', true], ['currentSchema=batch', true], ['search_path=batch', true], ['retry=5', false]] as const) {
      const url = `postgres://admin:hunter2@${base.slice(base.indexOf('@') + 1)}?${param}`;
      const r = await runCli(['executions', '--db', url, '--config', EXAMPLES]);
      const key = param.slice(0, param.indexOf('='));
      expectOneLineError(r, new RegExp(`^nightshift: invalid database URL: unknown parameter "${key}"${hint ? ` \\(the repository's schema is \\?schema=NAME\\)` : ';'}`));
      expect(r.stderr).toContain('Nightshift reads schema, prepare, connect_retry_ms, application_name');
      expect(r.stderr).not.toContain('hunter2');
    }
    // What node-postgres or libpq reads still passes (connect_timeout and target_session_attrs are
    // libpq's, which a URL shared with psql may carry).
    const schema = `nst_urlparams_${process.pid}`;
    try {
      const url = `${base}?schema=${schema}&sslmode=disable&connect_timeout=5&target_session_attrs=any&application_name=nsx`;
      const r = await runCli(['run', 'noop', '--db', url, '--config', EXAMPLES, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(await scalar(`${base}?schema=${schema}`, 'SELECT count(*) AS n FROM ns_job_execution')).toBe(1);
    } finally {
      await admin((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
    }
  });

  it('never prints the password of a malformed database URL', async () => {
    const secret = 's3cr3t-p@ss/word';
    for (const url of [`postgres://admin:${secret}@`, `postgres://admin:${secret}@host:99999/db`, `postgress://admin:${secret}@host/db`, `mysql://admin:${secret}@host/db`]) {
      for (const args of [['executions', '--db', url, '--config', EXAMPLES], ['executions', '--db', url, '--config', EXAMPLES, '--verbose']]) {
        const r = await runCli(args);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(/invalid database URL/);
        expect(r.stderr + r.stdout).not.toMatch(/s3cr3t|p@ss|word@/);
      }
    }
  });
});
