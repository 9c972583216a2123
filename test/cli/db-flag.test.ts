/**
 * A password in `--db` shows in the process list to every user of the machine for as long as a
 * node or `serve` runs: both say so once at start (without the password), and say nothing when
 * the URL comes from NIGHTSHIFT_DB. Real processes on the real PostgreSQL (trust auth ignores
 * the password).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { dbFlagWarning } from '../../src/cli/db-flag.ts';
import { backends, waitFor } from '../support/backends.ts';
import { EXAMPLES, spawnCli, type CliChild } from './run-cli.ts';

const [, postgres] = backends();
const PASSWORD = 'pw-seen-in-ps-42';
const WARNING = 'the --db URL holds a password, which every user of this machine can read in the process list (ps) while this runs';

/** The URL of a fresh schema, with a password. */
const withPassword = (label: string) => {
  const url = new URL(postgres.freshUrl(label));
  url.password = PASSWORD;
  return url.toString();
};

/** Runs the command until `ready` shows in its output, then stops it with SIGTERM; its stderr. */
async function runUntil(child: CliChild, ready: RegExp): Promise<string> {
  await waitFor(() => ready.test(child.stdout() + child.stderr()) || undefined, 30_000, `${ready} (stderr: ${child.stderr()})`);
  child.child.kill('SIGTERM');
  const end = await child.exited;
  expect(end.code, end.stderr).toBe(0);
  return end.stderr;
}

describe('a password on the command line', () => {
  afterAll(() => postgres.cleanup());

  it('is warned about by a node and by serve, once, without the password', async () => {
    const node = await runUntil(spawnCli(['node', '--name', 'exposed', '--config', EXAMPLES, '--db', withPassword('dbflagnode'), '--health-port', '0']), /probes at http/);
    const serve = await runUntil(spawnCli(['serve', '--port', '0', '--db', withPassword('dbflagserve')], { env: { NIGHTSHIFT_API_TOKENS: 'v:viewer:a-long-enough-viewer-secret' } }), /listening on http/);
    for (const stderr of [node, serve]) {
      expect(stderr.split('\n').filter((l) => l.includes(WARNING)), stderr).toHaveLength(1);
      expect(stderr).not.toContain(PASSWORD);
    }
  }, 90_000);

  it('is not warned about when the URL comes from NIGHTSHIFT_DB', async () => {
    const stderr = await runUntil(spawnCli(['node', '--name', 'hidden', '--config', EXAMPLES, '--health-port', '0'], { env: { NIGHTSHIFT_DB: withPassword('dbflagenv') } }), /probes at http/);
    expect(stderr).not.toContain(WARNING);
    expect(stderr).not.toContain(PASSWORD);
  }, 60_000);

  it('is told from URLs without one, from SQLite and from what is not a URL', () => {
    expect(dbFlagWarning('postgres://app:secret@db/batch')).toContain(WARNING);
    expect(dbFlagWarning('postgresql://app:secret@db/batch')).toContain(WARNING);
    for (const flag of [undefined, 'postgres://app@db/batch', 'sqlite:nightshift.db', 'postgres://[bad', 'nightshift.db']) expect(dbFlagWarning(flag), String(flag)).toBeUndefined();
  });
});
