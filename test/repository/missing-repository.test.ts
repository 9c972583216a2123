/**
 * The repository's error for an SQLite file that should exist and does not: it names the file and
 * what is wrong, and nothing of the CLI (its --db flag, NIGHTSHIFT_DB), which a program that
 * uses the repository directly has not got; the CLI adds its own hint (test/cli/user-input).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertRepositoryExists } from '../../src/repository/open.ts';
import { createNightshift, UsageError } from '../../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'ns-missing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a missing SQLite repository', () => {
  it('is refused with a message that names the file and says it does not exist, without CLI flags', () => {
    const missing = join(dir, 'no', 'x.db');
    let caught: unknown;
    try {
      assertRepositoryExists(`sqlite:${missing}`);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as Error).name).toBe('RepositoryMissingError');
    expect((caught as Error).message).toBe(`no job repository at ${missing} (SQLite): the file does not exist`);
    expect((caught as Error).message).not.toMatch(/--db|NIGHTSHIFT_DB|run a job/);
    expect(existsSync(join(dir, 'no'))).toBe(false);
  });

  it('is created, not refused, by createNightshift, after which it passes the check', async () => {
    const path = join(dir, 'made', 'x.db');
    const ns = await createNightshift({ db: `sqlite:${path}`, jobs: [] });
    await ns.close();
    expect(existsSync(path)).toBe(true);
    expect(() => assertRepositoryExists(`sqlite:${path}`)).not.toThrow();
  });
});
