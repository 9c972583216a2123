/**
 * Input a reader cannot go on from. A file whose next record cannot be found (a stray quote)
 * fails its step with the file and line, whatever the skip policy: one that skips every error
 * skipped it once per read until its limit, and failed with "skip limit exceeded". And a
 * JavaScript caller who passes a reader or writer the path alone, or options without a path, is
 * told so, where the first option read from the string failed inside the CSV parser.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createNightshift, csvReader, csvWriter, defineJob, fileWriter, fixedWidthReader, jsonlReader, jsonlWriter, silentLogger, UnreadableFileError, UsageError,
} from '../../src/index.ts';
import { backends } from '../support/backends.ts';

const dir = mkdtempSync(join(tmpdir(), 'nightshift-unreadable-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(backends())('a file the reader cannot go on from ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  it('fails the step with the file and line, skipped by no policy, not even one that skips every error', async () => {
    const file = join(dir, `stray-${backend.name}.csv`);
    writeFileSync(file, 'id,name\n1,a\n2,b"c\n3,d\n');
    const written: string[] = [];
    const job = defineJob({
      name: 'stray',
      steps: (s) => [s.chunk<Record<string, string>>({
        name: 'load',
        chunkSize: 2,
        reader: () => csvReader({ path: file }),
        writer: () => ({ write: async (items) => void written.push(...items.map((i) => i.id)) }),
        skip: { limit: 10 },
      })],
    });
    const ns = await createNightshift({ db: backend.freshUrl('stray'), jobs: [job], logger: silentLogger });
    try {
      const e = await ns.run('stray');
      expect(e.status).toBe('FAILED');
      expect(e.exitStatus.description).toContain(`${file}, line 3: malformed field: a quote inside an unquoted field (set relaxQuotes to accept it)`);
      expect(e.exitStatus.description).not.toContain('skip limit');
      expect(e.steps[0]).toMatchObject({ readCount: 1, readSkipCount: 0 });
      expect(written).toEqual([]);
    } finally {
      await ns.close();
    }
  });
});

describe('a reader or writer given no options object', () => {
  it('says it takes one, with the path given as the example, for each of them', () => {
    const cases: [string, (arg: never) => unknown][] = [
      ['csvReader', csvReader], ['jsonlReader', jsonlReader], ['fixedWidthReader', fixedWidthReader],
      ['fileWriter', fileWriter], ['csvWriter', csvWriter], ['jsonlWriter', jsonlWriter],
    ];
    for (const [name, make] of cases) {
      const thrown = (arg: unknown) => {
        try {
          make(arg as never);
        } catch (err) {
          return err;
        }
        return undefined;
      };
      const bare = thrown('in.csv');
      expect(bare, name).toBeInstanceOf(UsageError);
      expect((bare as Error).message).toBe(`${name} takes an options object with the file's path, e.g. ${name}({ path: "in.csv" }); got the string "in.csv"`);
      expect((thrown({}) as Error).message).toBe(`${name}: path (the file's path, a non-empty string) is required; got undefined`);
    }
    expect(UnreadableFileError.prototype).toBeInstanceOf(UsageError);
  });
});
