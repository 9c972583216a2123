/**
 * Bad usage and bad input: exit 2 with exactly one clear line on stderr naming the problem and
 * no stack trace (unless --verbose); bad files met inside a running import-csv end the execution
 * FAILED with a description naming the file and line, and the CLI exits 1 as for any execution that
 * ended otherwise (SPEC section 7: once an execution exists, its status decides). The repository stays usable.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { backends, PG_BASE } from '../support/backends.ts';
import { cliFor, expectExecutionShape, expectOneLineError, query, runCli, type CliResult, type ExecutionJson } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'nightshift-cli-bad-'));
const file = (name: string, content: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const HEADER = 'id,name,email,amount\n';

/** A failed import on bad input: exit 1, FAILED, the description (and the one stderr line of the text form) matching `pattern`. */
function expectFailedRun(json: CliResult, text: CliResult, pattern: RegExp): ExecutionJson {
  expect(json.code, json.stderr).toBe(1);
  const e = JSON.parse(json.stdout) as ExecutionJson;
  expectExecutionShape(e);
  expect(e.status).toBe('FAILED');
  expect(e.exitStatus.description).toMatch(pattern);
  // With --json too, stderr says in one line why it failed.
  expect(json.stderr.split('\n').filter((l) => l.trim())).toEqual([expect.stringMatching(/ended FAILED: /)]);
  expect(json.stderr).toMatch(pattern);
  expect(text.code, text.stderr).toBe(1);
  expect(text.stderr).not.toMatch(/^\s+at /m);
  const lines = text.stderr.split('\n').filter((l) => l.trim());
  expect(lines.at(-1)).toMatch(/ended FAILED: /);
  expect(lines.at(-1)).toMatch(pattern);
  return e;
}

describe.each(backends())('nightshift bad input on $name', (backend) => {
  afterAll(() => backend.cleanup());

  it('bad CSV files inside import-csv fail the execution naming file and line', async () => {
    const db = backend.freshUrl('cli-badfile');
    const cli = cliFor(db);
    const unterminated = file(`unterminated-${backend.name}.csv`, `${HEADER}1,Ann,a@x.io,1.5\n2,"Bob,b@x.io,2\n3,Cy,c@x.io,3\n`);
    const header = file(`header-${backend.name}.csv`, 'id,nam,email,amount\n1,Ann,a@x.io,1.5\n');
    const empty = file(`empty-${backend.name}.csv`, '');
    const badHeaderBytes = file(`header-utf8-${backend.name}.csv`, Buffer.concat([Buffer.from('id,na'), Buffer.from([0xff]), Buffer.from('me,email,amount\n1,Ann,a@x.io,1\n')]));
    const badRowBytes = file(`row-utf8-${backend.name}.csv`, Buffer.concat([
      Buffer.from(`${HEADER}1,Ann,a@x.io,1\n2,B`), Buffer.from([0xc3, 0x28]), Buffer.from('b,b@x.io,2\n3,Cy,c@x.io,3\n'),
    ]));
    const both = async (args: string[]) => {
      // Text first: a second run of a FAILED instance restarts it, and must fail the same way.
      const text = await cli.run(args);
      const json = await cli.run([...args, '--json']);
      return [json, text] as const;
    };

    // (a) a missing input file: the execution FAILED, and the CLI exits 1 (as a skip limit does).
    const missing = expectFailedRun(...(await both(['run', 'import-csv', 'input=/nope.csv'])), /\/nope\.csv/);
    expect(missing.exitStatus.description).toMatch(/does not exist|not found|no such file/i);
    // (b) a wrong header: exit 1 too, naming what was expected and what was found.
    expectFailedRun(...(await both(['run', 'import-csv', `input=${header}`])), /expected.*"name".*found.*"nam"/);
    expectFailedRun(...(await both(['run', 'import-csv', `input=${unterminated}`])), new RegExp(`${unterminated}.*line 3.*unterminated|unterminated.*line 3`));
    expectFailedRun(...(await both(['run', 'import-csv', `input=${empty}`])), new RegExp(`${empty}.*empty`));
    expectFailedRun(...(await both(['run', 'import-csv', `input=${badHeaderBytes}`])), /line 1.*UTF-8|UTF-8.*line 1|:1: .*UTF-8/);

    // Invalid UTF-8 in a data row is a bad row: skipped and recorded with its line.
    const ok = await cli.json(['run', 'import-csv', `input=${badRowBytes}`]);
    expect(ok.status).toBe('COMPLETED');
    expect(ok.steps!.find((s) => s.name === 'import')).toMatchObject({ readSkipCount: 1, writeCount: 2 });
    const rejects = await query<{ line: unknown; reason: string }>(db, 'SELECT line, reason FROM people_rejects WHERE execution_id = $1', [ok.id]);
    expect(rejects.map((r) => [Number(r.line), r.reason])).toEqual([[3, expect.stringMatching(/UTF-8/)]]);

    // Nothing was half-written, and the repository still answers.
    const list = await cli.json<ExecutionJson[]>(['executions', '--limit', '100']);
    expect(list.filter((e) => e.status === 'FAILED')).toHaveLength(10);
    expect(list.every((e) => e.jobName === 'import-csv' && ['FAILED', 'COMPLETED'].includes(e.status))).toBe(true);
  });

  it('usage errors touching the repository: exit 2, one line, repository still usable', async () => {
    const db = backend.freshUrl('cli-usage');
    const cli = cliFor(db);
    const done = await cli.json(['run', 'count', 'items=5', 'chunk=5']);
    const checks: [string[], RegExp][] = [
      [['execution', '777'], /no execution with id 777/],
      [['restart', '777'], /no execution with id 777/],
      [['stop', '777'], /no execution with id 777/],
      [['abandon', '777'], /no execution with id 777/],
      [['restart', String(done.id)], new RegExp(`${done.id}.*COMPLETED.*cannot be restarted`)],
      [['stop', String(done.id)], /not running/],
      [['run', 'count', 'items=5', 'chunk=5'], /already completed/],
    ];
    const results = await Promise.all(checks.map(([args]) => cli.run(args)));
    results.forEach((r, i) => expectOneLineError(r, checks[i][1]));
    const list = await cli.json<ExecutionJson[]>(['executions']);
    expect(list.map((e) => e.id)).toEqual([done.id]);
    expect(list[0].status).toBe('COMPLETED');
    // By creation time: a time without an offset is UTC, a date alone its midnight.
    const created = new Date(list[0].createTime!);
    const noOffset = (ms: number) => new Date(ms).toISOString().slice(0, -1);
    const tomorrow = new Date(Date.UTC(created.getUTCFullYear(), created.getUTCMonth(), created.getUTCDate() + 1)).toISOString().slice(0, 10);
    const ids = async (...args: string[]) => (await cli.json<ExecutionJson[]>(['executions', ...args])).map((e) => e.id);
    expect(await ids('--from', noOffset(created.getTime()))).toEqual([done.id]);
    expect(await ids('--from', noOffset(created.getTime() + 1))).toEqual([]);
    expect(await ids('--to', noOffset(created.getTime() + 1), '--from', '2000-01-01')).toEqual([done.id]);
    expect(await ids('--from', tomorrow)).toEqual([]);
  });

  it('parameter and usage errors fail before touching the repository', async () => {
    const db = backend.freshUrl('cli-params');
    const cli = cliFor(db);
    const checks: [string[], RegExp][] = [
      [['run', 'nope'], /unknown job nope/],
      [['run', 'count', 'foo=1'], /unknown parameter foo/],
      [['run', 'count', 'items=abc'], /\bitems\b.*\bint/],
      [['run', 'count', 'items=1.5'], /\bitems\b.*\bint/],
      [['run', 'count', 'items'], /items.*key=value/],
      [['run', 'import-csv'], /\binput\b.*required|required.*\binput\b|missing.*\binput\b/i],
      [['executions', '--limit', '0'], /--limit.*positive integer/],
      [['executions', '--limit', 'x'], /--limit/],
      [['executions', '--status', 'NOPE'], /NOPE/],
      [['executions', '--status', ' , '], /--status: give at least one status/],
      [['executions', '--from', '2024-02-30'], /^nightshift: --from must be an ISO-8601 date or date-time .*, got "2024-02-30" \(there is no such day\)$/],
      // A word a command does not take is refused, not ignored (a restart takes no parameters).
      [['restart', '1', 'failAt=0'], /^nightshift: too many arguments for 'restart'\. Expected 1 argument but got 2\.$/],
      [['executions', 'FAILED'], /^nightshift: too many arguments for 'executions'/],
      // A group's command is named as typed.
      [['schedule', 'list', 'nightly'], /^nightshift: too many arguments for 'schedule list'\. Expected 0 arguments but got 1\.$/],
      [['executions', '--to', 'yesterday'], /^nightshift: --to must be an ISO-8601 date or date-time .*, got "yesterday"$/],
      [['prune', '--older-than', '1d', '--status', ''], /--status: give at least one status/],
      [['execution', 'abc'], /execution id.*"abc"/],
    ];
    const results = await Promise.all(checks.map(([args]) => cli.run(args)));
    results.forEach((r, i) => expectOneLineError(r, checks[i][1]));
    const json = await cli.run(['run', 'count', 'items=abc', '--json']);
    expectOneLineError(json, /items/);
    expect(json.stdout).toBe('');
    // Nothing was written: on SQLite not even the file, on PostgreSQL not even the schema (which
    // the commands that only read or act on what is there refuse to create).
    const schema = new URL(db.replace(/^sqlite:/, 'file:')).searchParams.get('schema');
    const missing = backend.name === 'sqlite' ? /^nightshift: no job repository at .* \(SQLite\): the file does not exist; check --db/
      : new RegExp(`^nightshift: no job repository at postgres://\\S+schema=${schema} \\(PostgreSQL\\): schema ${schema} does not exist; check --db`);
    for (const args of [['executions'], ['nodes'], ['schedule', 'list'], ['prune', '--older-than', '1d']]) expectOneLineError(await cli.run(args), missing);
    if (backend.name === 'postgres') {
      const client = new pg.Client({ connectionString: PG_BASE });
      await client.connect();
      try {
        expect((await client.query('SELECT nspname FROM pg_namespace WHERE nspname = $1', [schema])).rows).toEqual([]);
      } finally {
        await client.end();
      }
    }
  });
});

describe.each(backends().filter((b) => b.name === 'postgres'))('a repository in a ?schema= with capitals ($name)', (pg) => {
  afterAll(() => pg.cleanup());
  it('is found by the commands that only read, as by those that write (PostgreSQL folds the unquoted name)', async () => {
    const lower = pg.freshUrl('MixedCase');
    const schema = new URL(lower).searchParams.get('schema')!;
    const cli = cliFor(lower.replace(`schema=${schema}`, `schema=${schema[0].toUpperCase()}${schema.slice(1, 4).toUpperCase()}${schema.slice(4)}`));
    const submitted = await cli.json<{ id: number }>(['submit', 'noop']);
    for (const args of [['executions'], ['nodes'], ['schedule', 'list'], ['execution', String(submitted.id)]]) {
      const r = await cli.run(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
  });
});

describe('nightshift bad invocation', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const examples = ['--config', 'examples/nightshift.config.ts'];

  it('bad --db URLs, unreachable databases and bad config files: exit 2, one line', async () => {
    const broken = file('broken.config.ts', "import { defineJob } from 'nightshift';\nexport const x = defineJob({ name: 'x', steps: (s) => [ });\n");
    const jobless = file('jobless.config.ts', "export const answer = 42;\nexport default { jobs: [] };\n");
    const throwing = file('throwing.config.ts', "throw new Error('config exploded on purpose');\n");
    const sqlite = `sqlite:${join(dir, 'ok.db')}`;
    const checks: [string[], RegExp][] = [
      [['executions', '--db', 'foo://x', ...examples], /foo:\/\/x/],
      [['run', 'noop', '--db', 'foo://x', ...examples], /invalid database URL "foo:\/\/x": expected sqlite:PATH or postgres:\/\/USER@HOST:PORT\/DB$/],
      // A file name without sqlite: is named with it.
      [['executions', '--db', 'nightshift.db', ...examples], /invalid database URL "nightshift\.db": expected .* \(for an SQLite file: sqlite:nightshift\.db\)$/],
      // An empty one gets no such hint (sqlite: alone names no file).
      [['executions', '--db', '', ...examples], /invalid database URL "": expected sqlite:PATH or postgres:\/\/USER@HOST:PORT\/DB$/],
      [['executions', '--db', 'postgres://postgres@127.0.0.1:1/test', ...examples], /127\.0\.0\.1:1/],
      [['run', 'noop', '--db', 'postgres://postgres@127.0.0.1:1/test', '--json', ...examples], /cannot connect|ECONNREFUSED/],
      [['jobs', '--config', broken], /broken\.config\.ts/],
      [['run', 'x', '--db', sqlite, '--config', broken], /cannot load config .*broken\.config\.ts/],
      [['jobs', '--config', jobless], /jobless\.config\.ts exports no jobs/],
      [['jobs', '--config', throwing], /config exploded on purpose/],
      [['jobs', '--config', join(dir, 'missing.config.ts')], /missing\.config\.ts.*not found/],
      [['frobnicate'], /frobnicate/],
      [['schedule'], /no command given/],
      [['schedule', 'frob'], /frob/],
      [['jobs', '--frob', ...examples], /--frob/],
      [['run', ...examples], /job/],
    ];
    const results = await Promise.all(checks.map(([args]) => runCli(args)));
    results.forEach((r, i) => {
      expectOneLineError(r, checks[i][1]);
      expect(r.stdout, checks[i][0].join(' ')).toBe('');
    });
  });

  it('a PostgreSQL database that does not exist or a role it does not know: exit 2 at once, one line, no password', async () => {
    // With connect_retry_ms too: the server answered, and no wait makes a wrong name right.
    const url = (user: string, database: string) => {
      const u = new URL(PG_BASE);
      u.username = user;
      u.password = 'pg-secret-pw';
      u.pathname = `/${database}`;
      u.searchParams.set('connect_retry_ms', '20000');
      return u.toString();
    };
    const cases: [string, RegExp][] = [
      [url('postgres', 'nightshift_no_such_db'), /^nightshift: cannot connect to postgres:\/\/postgres@[^ ]+\/nightshift_no_such_db: database "nightshift_no_such_db" does not exist \(3D000\)$/],
      [url('nightshift_no_such_role', new URL(PG_BASE).pathname.slice(1)), /^nightshift: cannot connect to postgres:\/\/nightshift_no_such_role@[^ ]+: role "nightshift_no_such_role" does not exist \(28000\)$/],
    ];
    for (const [db, pattern] of cases) {
      for (const args of [['executions', '--db', db, ...examples], ['run', 'noop', '--db', db, ...examples], ['node', '--db', db, ...examples]]) {
        const started = Date.now();
        const r = await runCli(args, { timeoutMs: 30_000 });
        expectOneLineError(r, pattern);
        expect(r.stderr + r.stdout).not.toContain('pg-secret-pw');
        expect(Date.now() - started, args.join(' ')).toBeLessThan(15_000);
      }
    }
  });

  it('--verbose may add a stack trace; the first line still names the problem', async () => {
    const r = await runCli(['executions', '--db', 'foo://x', '--verbose', ...examples]);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/invalid database URL "foo:\/\/x"/);
    expect(r.stderr).toMatch(/^\s+at /m);
  });
});
