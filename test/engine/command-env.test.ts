/**
 * A command run by `commandTasklet` does not inherit Nightshift's secrets: NIGHTSHIFT_DB (whose
 * URL may hold the database password) and NIGHTSHIFT_API_TOKENS are left out of its environment,
 * the rest of this process's environment is inherited, and a command that needs the database
 * gets it only when the job passes it in `env`. A real child process, on SQLite.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeEach, expect, it } from 'vitest';
import { defineJob } from '../../src/core/job.ts';
import { createNightshift } from '../../src/operator.ts';
import { COMMAND_WITHHELD_ENV, commandTasklet, type CommandSpec } from '../../src/tasklets/command.ts';

const dir = mkdtempSync(join(tmpdir(), 'nightshift-command-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PASSWORD = 's3cret-Pa55';
const URL = `postgres://batch:${PASSWORD}@db.internal.example:5432/jobs`;
const TOKENS = 'ci:operator:tok3n-secret-value';
const saved: Record<string, string | undefined> = {};
beforeEach(() => {
  for (const k of ['NIGHTSHIFT_DB', 'NIGHTSHIFT_API_TOKENS', 'NIGHTSHIFT_TEST_PLAIN']) saved[k] = process.env[k];
  process.env.NIGHTSHIFT_DB = URL;
  process.env.NIGHTSHIFT_API_TOKENS = TOKENS;
  process.env.NIGHTSHIFT_TEST_PLAIN = 'kept';
});
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

/** Runs one job whose single step runs `spec`; returns the lines the command wrote to stdout. */
async function runCommand(label: string, spec: CommandSpec): Promise<string[]> {
  const records: { stream?: string; msg?: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void records.push(JSON.parse(line)) });
  const job = defineJob({ name: label, steps: (s) => [s.tasklet({ name: 'run', ...commandTasklet(spec) })] });
  const ns = await createNightshift({ db: `sqlite:${join(dir, `${label}.db`)}`, jobs: [job], logger });
  try {
    expect((await ns.run(label)).status).toBe('COMPLETED');
  } finally {
    await ns.close();
  }
  return records.filter((r) => r.stream === 'stdout').map((r) => String(r.msg));
}

const dumpEnv = (file: string): CommandSpec => ({
  command: process.execPath,
  args: ['-e', 'require("fs").writeFileSync(process.argv[1], JSON.stringify(process.env))', file],
  timeoutMs: 30_000,
});
const envOf = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;

it('`env` run as a command prints neither the database URL nor its password, nor the API tokens; other variables are inherited', async () => {
  const lines = await runCommand('env-default', { command: 'env', timeoutMs: 30_000 });
  expect(lines.some((l) => l.startsWith('NIGHTSHIFT_TEST_PLAIN=kept'))).toBe(true);
  expect(lines.filter((l) => /^NIGHTSHIFT_(DB|API_TOKENS)=/.test(l))).toEqual([]);
  const all = lines.join('\n');
  for (const secret of ['db.internal.example', PASSWORD, 'tok3n-secret-value']) expect(all).not.toContain(secret);

  // What the child really got (the log would hide a URL's password anyway).
  const file = join(dir, 'default.json');
  await runCommand('env-default-file', dumpEnv(file));
  const env = envOf(file);
  for (const k of COMMAND_WITHHELD_ENV) expect(env[k]).toBeUndefined();
  expect(JSON.stringify(env)).not.toContain(PASSWORD);
  expect(env.NIGHTSHIFT_TEST_PLAIN).toBe('kept');
  expect(env.PATH).toBe(process.env.PATH);
});

it('a job that passes NIGHTSHIFT_DB in `env` gives the command exactly what it passed, and nothing it did not', async () => {
  const file = join(dir, 'explicit.json');
  await runCommand('env-explicit', { ...dumpEnv(file), env: { NIGHTSHIFT_DB: process.env.NIGHTSHIFT_DB } });
  const env = envOf(file);
  expect(env.NIGHTSHIFT_DB).toBe(URL);
  expect(env.NIGHTSHIFT_API_TOKENS).toBeUndefined();
});
