/**
 * The repository's error for an SQLite file that should exist and does not: it names the file and
 * what is wrong, and nothing of the CLI (its --db flag, NIGHTSHIFT_DB), which a program that
 * uses the repository directly has not got; the CLI adds its own hint (test/cli/user-input).
 * openExistingDatabase, what the commands that only read or act on what is there open the
 * repository with, refuses a missing SQLite file or PostgreSQL schema, creating nothing, and
 * migrates an older repository as opening one always does.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { assertRepositoryExists, openDatabase, openExistingDatabase } from '../../src/repository/open.ts';
import { SCHEMA_VERSION } from '../../src/repository/schema.ts';
import { createNightshift, UsageError } from '../../src/index.ts';
import { backends, PG_BASE } from '../support/backends.ts';

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

describe.each(backends())('openExistingDatabase ($name)', (backend) => {
  afterAll(() => backend.cleanup());
  const refusal = async (url: string) => {
    try {
      await (await openExistingDatabase(url)).close();
    } catch (err) {
      return err as Error;
    }
    throw new Error(`${url} was opened`);
  };

  it('refuses a repository that is not there, creating nothing', async () => {
    const url = backend.freshUrl('exist-missing');
    const err = await refusal(url);
    expect(err.name).toBe('RepositoryMissingError');
    if (backend.name === 'sqlite') {
      expect(err.message).toMatch(/^no job repository at .* \(SQLite\): the file does not exist$/);
      expect(existsSync(url.slice('sqlite:'.length))).toBe(false);
      return;
    }
    const schema = new URL(url).searchParams.get('schema')!;
    expect(err.message).toMatch(new RegExp(`^no job repository at postgres://\\S+ \\(PostgreSQL\\): schema ${schema} does not exist$`));
    expect(await pgRows('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).toEqual([]);
    // A schema without Nightshift's tables is refused too, and left without them.
    await pgRows(`CREATE SCHEMA ${schema}`);
    expect((await refusal(url)).message).toMatch(new RegExp(`\\(PostgreSQL\\): schema ${schema} has no Nightshift tables$`));
    expect(await pgRows(`SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`, [schema])).toEqual([]);
  });

  it('opens a repository that is there, migrating one of an older version', async () => {
    const url = backend.freshUrl('exist-older');
    // The oldest repository there is: its ns_meta, no schema version yet.
    const bare = await openDatabase(url);
    try {
      for (const t of (await bare.query<{ name: string }>(bare.dialect === 'sqlite'
        ? `SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'ns\\_%' ESCAPE '\\' AND name <> 'ns_meta'`
        : `SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'ns_meta'`))) {
        await bare.exec(bare.dialect === 'sqlite' ? `DROP TABLE ${t.name}` : `DROP TABLE ${t.name} CASCADE`);
      }
      await bare.execute(`DELETE FROM ns_meta`);
    } finally {
      await bare.close();
    }
    const db = await openExistingDatabase(url);
    try {
      expect(await db.query(`SELECT value FROM ns_meta WHERE key = 'schema_version'`)).toEqual([{ value: String(SCHEMA_VERSION) }]);
      expect(await db.query(`SELECT count(*) AS n FROM ns_job_execution`)).toHaveLength(1);
    } finally {
      await db.close();
    }
  });
});

async function pgRows(sql: string, params: unknown[] = []): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: PG_BASE });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}
