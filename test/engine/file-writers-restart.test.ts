/**
 * The file writers through the engine: a chunk job writing the same items with fileWriter,
 * csvWriter and jsonlWriter fails in the middle of a chunk (after the files got that chunk's
 * lines) and is restarted; each file then holds lines 1..N exactly once. Runs on SQLite and
 * PostgreSQL. (test/crash does the same across a SIGKILL.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import { createNightshift } from '../../src/operator.ts';
import { backends } from '../support/backends.ts';
import { filer } from '../crash/fixtures/nightshift.config.ts';
import { filerProblems, hasLine } from '../support/filer-files.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.each(backends())('file writers across a restart ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('a job that fails mid-chunk and is restarted leaves lines 1..N once in each of its three files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-filer-'));
    dirs.push(dir);
    const ns = await createNightshift({ db: backend.freshUrl('filer'), jobs: [filer], logger: silentLogger });
    try {
      const [items, chunk, failAt] = [230, 20, 137];
      // The failing attempt's lines differ from its restart's (as when the data changed in
      // between): only truncating back to the committed offset leaves each item once.
      const note = ' (from the attempt that fails, which is longer)';
      process.env.NIGHTSHIFT_TEST_FILER_NOTE = note;
      const first = await ns.run('filer', { items, chunk, dir, failAt });
      expect(first.status).toBe('FAILED');
      expect(first.steps[0].writeCount).toBe(120); // chunks 1..6 committed; the 7th (121..140) failed
      // The failed chunk's lines did reach the files: the restart has to drop them.
      expect(hasLine(dir, failAt, note)).toBe(true);

      delete process.env.NIGHTSHIFT_TEST_FILER_NOTE;
      const second = await ns.restart(first.id);
      expect(second.status).toBe('COMPLETED');
      expect(second.steps[0].readCount).toBe(items - 120);
      expect(filerProblems(dir, items, [note, ''])).toEqual([]);
      expect(hasLine(dir, 120, note) && hasLine(dir, 121, '')).toBe(true);
    } finally {
      delete process.env.NIGHTSHIFT_TEST_FILER_NOTE;
      await ns.close();
    }
  });
});
