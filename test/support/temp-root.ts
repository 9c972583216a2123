/**
 * vitest's global setup: every temporary folder of a run, the tests' own and those of the
 * processes they start, goes under one folder of the system's temporary folder (TMPDIR, which
 * `os.tmpdir()` reads and child processes inherit), removed when the run ends. What a run keeps
 * for the next (Node binaries, compiled better-sqlite3) goes under NIGHTSHIFT_TEST_CACHE_DIR,
 * the system's temporary folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const system = tmpdir();
  process.env.NIGHTSHIFT_TEST_CACHE_DIR ??= system;
  const root = mkdtempSync(join(system, 'nightshift-run-'));
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true, maxRetries: 3 });
}
