/**
 * What a new user's mistakes meet through the real `nightshift` process: a bad parameter default,
 * a mistyped repository path, a repeated or out-of-range parameter, a Unix cron, a config that does
 * not parse. Each gets exit 2 and one line naming what is wrong and where, and writes nothing.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../support/backends.ts';
import { expectOneLineError, runCli, spawnCli } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'nightshift-user-input-'));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const job = (params: string) =>
  `import { defineJob, p } from 'nightshift';\n` +
  `export const k = defineJob({ name: 'k', params: { ${params} }, steps: (s) => [s.tasklet({ name: 't', tasklet: () => {} })] });\n`;

describe('CLI user input', () => {
  it('refuses a config whose parameter default does not fit its type, before any execution exists', async () => {
    for (const [name, params, shown] of [
      ['float.mjs', 'n: p.int({ default: 1.5 })', 'n: default must be a whole number \\(a safe integer\\), got 1\\.5'],
      ['text.mjs', "n: p.int({ default: 'x' })", 'n: default must be a whole number \\(a safe integer\\), got "x"'],
      ['date.mjs', "d: p.date({ default: 'notadate' })", 'd: default must be a valid Date .*got "notadate"'],
    ] as const) {
      const config = file(name, job(params));
      const db = join(dir, `${name}.db`);
      const pattern = new RegExp(`^nightshift: config ${config}: job k: parameter ${shown}$`);
      expectOneLineError(await runCli(['jobs', '--config', config]), pattern);
      expectOneLineError(await runCli(['run', 'k', '--config', config, '--db', `sqlite:${db}`]), pattern);
      expect(existsSync(db)).toBe(false);
    }
  });

  it('refuses a mistyped SQLite repository for commands that read or act on executions, creating nothing', async () => {
    const missing = join(dir, 'no', 'such', 'dir', 'x.db');
    const db = `sqlite:${missing}`;
    // The repository says what is wrong with which file; the CLI adds how to name another one.
    const pattern = new RegExp(`^nightshift: no job repository at ${missing} \\(SQLite\\): the file does not exist; check --db \\(or NIGHTSHIFT_DB\\), or run a job first to create it$`);
    for (const args of [
      ['executions'], ['executions', '--json'], ['execution', '1'], ['nodes'], ['stop', '1'], ['abandon', '1'], ['restart', '1'],
      ['prune', '--older-than', '1d'], ['schedule', 'list'], ['schedule', 'pause', 's'], ['schedule', 'resume', 's'], ['schedule', 'remove', 's'],
    ]) {
      expectOneLineError(await runCli([...args, '--db', db]), pattern);
    }
    // Through NIGHTSHIFT_DB too, and with a config named.
    expectOneLineError(await runCli(['executions'], { env: { NIGHTSHIFT_DB: db } }), pattern);
    expectOneLineError(await runCli(['restart', '1', '--db', db, '--config', file('ok.mjs', job('n: p.int({ default: 1 })'))]), pattern);
    expect(existsSync(join(dir, 'no'))).toBe(false);
    // A command that launches creates it, and then the others find it.
    const config = file('ok.mjs', job('n: p.int({ default: 1 })'));
    expect((await runCli(['run', 'k', '--db', db, '--config', config])).code).toBe(0);
    const list = await runCli(['executions', '--db', db]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/COMPLETED/);
  });

  it('submit --wait says once on stderr when no live node runs the job, keeps waiting, and ends when a node takes it', async () => {
    const db = `sqlite:${join(dir, 'submit-wait.db')}`;
    const config = file('submit.mjs', job('n: p.int({ default: 1 })'));
    const note = /^nightshift: no live node runs job k yet: execution (\d+) waits, STARTING, until one does/m;
    const waiting = spawnCli(['submit', 'k', '--wait', '--json', '--db', db, '--config', config]);
    const node = { current: undefined as ReturnType<typeof spawnCli> | undefined };
    try {
      const id = Number((await waitFor(() => note.exec(waiting.stderr()), 30_000, 'the note'))[1]);
      expect(waiting.stdout()).toBe('');
      // Still waiting: the execution is queued, the command has not ended.
      const shown = await runCli(['execution', String(id), '--json', '--db', db]);
      expect(JSON.parse(shown.stdout)).toMatchObject({ id, status: 'STARTING' });
      expect(waiting.child.exitCode).toBe(null);
      node.current = spawnCli(['node', '--name', 'late', '--db', db, '--config', config]);
      const done = await waiting.exited;
      expect(done.code, done.stderr).toBe(0);
      expect(JSON.parse(done.stdout)).toMatchObject({ id, status: 'COMPLETED' });
      expect(done.stderr.match(new RegExp(note.source, 'gm'))).toHaveLength(1);
    } finally {
      if (waiting.child.exitCode === null) waiting.child.kill('SIGTERM');
      node.current?.child.kill('SIGTERM');
      await Promise.all([waiting.exited, node.current?.exited]);
    }
    // With a live node that has the job, no note.
    const live = spawnCli(['node', '--name', 'up', '--db', db, '--config', config]);
    try {
      await waitFor(async () => (await runCli(['nodes', '--json', '--db', db])).stdout.includes('"up"'), 30_000, 'node up');
      const r = await runCli(['submit', 'k', 'n=2', '--wait', '--db', db, '--config', config]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/no live node/);
    } finally {
      live.child.kill('SIGTERM');
      await live.exited;
    }
  });

  it('refuses a parameter out of range, or given twice, naming it, before anything is written', async () => {
    const config = file('params.mjs', job('items: p.int({ default: 1 }), ratio: p.number({ default: 0.5 }), ms: p.int({ default: 0 })'));
    const db = join(dir, 'params.db');
    const run = (...words: string[]) => runCli(['run', 'k', ...words, '--config', config, '--db', `sqlite:${db}`]);
    expectOneLineError(await run('items=99999999999999999999'),
      /^nightshift: job k: parameter items is out of range: an integer parameter must be between -9007199254740991 and 9007199254740991 \(Number\.MAX_SAFE_INTEGER\), got "99999999999999999999"$/);
    expectOneLineError(await run('ratio=1e400'), /^nightshift: job k: parameter ratio is out of range: a number parameter must be finite.*got "1e400"$/);
    expectOneLineError(await run('ms=1', 'ms=2'), /^nightshift: parameter ms is given twice \(ms=1 and ms=2\)$/);
    expectOneLineError(await runCli(['submit', 'k', 'ms=1', 'items=3', 'ms=1', '--config', config, '--db', `sqlite:${db}`]), /^nightshift: parameter ms is given twice/);
    expect(existsSync(db)).toBe(false);
    expect((await run('items=9007199254740991', 'ratio=-1e300')).code).toBe(0);
  });

  it('says a five-field Unix cron needs a seconds field first', async () => {
    expectOneLineError(await runCli(['cron', '* * * * *']),
      /^nightshift: invalid cron expression "\* \* \* \* \*": expression: expected 6 or 7 fields .*, got 5; this looks like a Unix cron: a Quartz cron starts with a seconds field: try "0 \* \* \* \* \?"$/);
  });

  it('names the line and column of a syntax error in a .mjs or a .ts config, or in the module it imports', async () => {
    const source = `import { defineJob } from 'nightshift';\n\nexport const k = defineJob({ name: 'k', steps: (s) => [;] });\n`;
    for (const name of ['syntax.mjs', 'syntax.ts']) {
      const config = file(name, source);
      const message = name.endsWith('.ts') ? 'Unexpected ";"' : "Unexpected token ';'";
      expectOneLineError(await runCli(['jobs', '--config', config]), new RegExp(`^nightshift: cannot load config ${config}:3:56: ${message}$`));
    }
    const js = file('plain.js', 'export const a = 1;\nconst b = ;\n');
    expectOneLineError(await runCli(['jobs', '--config', js]), new RegExp(`^nightshift: cannot load config ${js}:2:11: Unexpected token ';'$`));
    const helper = file('helper.ts', 'export const n: number = ;\n');
    const importing = file('importing.ts', `import { n } from './helper.ts';\nexport const m = n;\n${job('n: p.int({ default: 1 })')}`);
    expectOneLineError(await runCli(['jobs', '--config', importing]), new RegExp(`^nightshift: cannot load config ${importing}: ${helper}:1:26: Unexpected ";"$`));
  });

  it('a node whose config throws while it is imported exits 2 naming the file and line where it threw, or the missing package', async () => {
    const node = (config: string) => runCli(['node', '--config', config, '--db', `sqlite:${join(dir, 'throwing.db')}`], { timeoutMs: 30_000 });
    // Thrown in the config itself (a .ts, which tsx maps back to its source lines).
    const own = file('throws.ts', `import { defineJob } from 'nightshift';\nconst key = process.env.NO_SUCH_KEY_FOR_TEST;\nif (!key) throw new Error('NO_SUCH_KEY_FOR_TEST is not set');\n`);
    expectOneLineError(await node(own), new RegExp(`^nightshift: cannot load config ${own}:3:\\d+: NO_SUCH_KEY_FOR_TEST is not set$`));
    // Thrown in an ES module the config imports (a TypeError, as a bug in a job module throws).
    const helper = file('jobs-helper.mjs', `const settings = undefined;\nexport const size = settings.size;\n`);
    const importing = file('imports-throwing.mjs', `import { size } from './jobs-helper.mjs';\nexport const n = size;\n`);
    expectOneLineError(await node(importing), new RegExp(`^nightshift: cannot load config ${importing}: ${helper}:2:\\d+: Cannot read properties of undefined \\(reading 'size'\\)$`));
    // A package the config imports is not installed.
    const missing = file('missing-package.ts', `import pad from 'nightshift-no-such-package-xyz';\nexport const n = pad;\n`);
    expectOneLineError(await node(missing), new RegExp(`^nightshift: cannot load config ${missing}: Cannot find (package|module) 'nightshift-no-such-package-xyz'.*${missing}`));
    expect(existsSync(join(dir, 'throwing.db'))).toBe(false);
  });
});
