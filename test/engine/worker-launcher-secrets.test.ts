/**
 * The elastic worker launcher starts `nightshift node` processes for the job repository: the
 * repository's URL, with its password, reaches them through the environment, never their
 * command line (which anyone on the host can read with ps or /proc/PID/cmdline).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { localProcessLauncher } from '../../src/engine/worker-launcher.ts';
import { EXAMPLES } from '../cli/run-cli.ts';

describe.runIf(process.platform === 'linux')('localProcessLauncher', () => {
  it('passes the database URL in the environment, not on the command line', async () => {
    const db = 'postgres://nsuser:TopSecret42@127.0.0.1:1/nightshift';
    const launched = await localProcessLauncher({ config: EXAMPLES, graceMs: 5000 }).launch({ workers: 2, db, jobs: ['count'], name: 'leak', concurrency: 1 });
    try {
      expect(launched.pids).toHaveLength(2);
      for (const pid of launched.pids!) {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        expect(argv).toContain('node');
        expect(argv.join(' ')).not.toContain('TopSecret42');
        expect(argv).not.toContain('--db');
        expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain(`NIGHTSHIFT_DB=${db}`);
      }
    } finally {
      await launched.stop();
    }
  });
});
