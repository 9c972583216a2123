/**
 * NIGHTSHIFT_LOG_LEVEL is checked for every command before it does anything: a value that is not
 * a level is bad usage, exit 2 with one line naming the variable, the value and the levels (it
 * was pino's own `default level:verbose must be included in custom levels`, exit 1, and only from
 * the commands that log). A level in any case is taken (`INFO` is `info`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { envLogLevel } from '../../src/core/logger.ts';
import { EXAMPLES, expectOneLineError, runCli } from './run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'nightshift-log-level-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const db = `sqlite:${join(dir, 'jobs.db')}`;
const LINE = /^nightshift: NIGHTSHIFT_LOG_LEVEL="verbose" is not a log level: use one of fatal, error, warn, info, debug, trace, silent \(any case\)$/;

describe('NIGHTSHIFT_LOG_LEVEL', () => {
  it('a level in any case is taken, lower-cased; unset or empty is none; anything else is a UsageError naming the variable, the value and the levels', () => {
    expect(envLogLevel({ NIGHTSHIFT_LOG_LEVEL: 'INFO' })).toBe('info');
    expect(envLogLevel({ NIGHTSHIFT_LOG_LEVEL: ' Debug ' })).toBe('debug');
    expect(envLogLevel({ NIGHTSHIFT_LOG_LEVEL: 'silent' })).toBe('silent');
    expect(envLogLevel({})).toBeUndefined();
    expect(envLogLevel({ NIGHTSHIFT_LOG_LEVEL: '' })).toBeUndefined();
    expect(() => envLogLevel({ NIGHTSHIFT_LOG_LEVEL: 'verbose' })).toThrow(/^NIGHTSHIFT_LOG_LEVEL="verbose" is not a log level: use one of fatal, error/);
    expect(() => envLogLevel({ NIGHTSHIFT_LOG_LEVEL: 'verbose' })).toThrow(expect.objectContaining({ name: 'UsageError' }));
  });

  // Commands that log (run, node, serve, demo) and commands that do not (jobs, executions, cron).
  const commands: string[][] = [
    ['jobs', '--config', EXAMPLES],
    ['run', 'noop', '--db', db, '--config', EXAMPLES],
    ['node', '--db', db, '--config', EXAMPLES],
    ['serve', '--db', db, '--insecure-no-auth', '--port', '0'],
    ['executions', '--db', db],
    ['cron', '0 0 * * * ?', '--count', '1'],
    ['demo', '--dir', join(dir, 'demo'), '--rows', '10'],
  ];
  it.each(commands.map((args) => [args[0], args]))('an unknown level: `%s` exits 2 with one line naming it', async (_name, args) => {
    expectOneLineError(await runCli(args, { env: { NIGHTSHIFT_LOG_LEVEL: 'verbose' }, timeoutMs: 30_000 }), LINE);
  }, 40_000);

  it('INFO is info: `run` logs its lines at that level and completes', async () => {
    const r = await runCli(['run', 'noop', '--db', db, '--config', EXAMPLES], { env: { NIGHTSHIFT_LOG_LEVEL: 'INFO' }, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('"level":30');
  }, 40_000);
});
