/**
 * Rolling upgrades: each migration stores the oldest schema version whose processes can run on
 * the repository (ns_meta `compatible_from`). A process finding a newer schema runs on it when
 * that says it can, saying so in one info line and changing nothing, and refuses it otherwise,
 * naming both versions. A schema of before version 18 says nothing: only its own version runs.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createNightshift, UsageError } from '../../src/index.ts';
import type { Logger } from '../../src/core/logger.ts';
import type { Database } from '../../src/repository/database.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { openPostgres } from '../../src/repository/postgres.ts';
import { openSqlite } from '../../src/repository/sqlite.ts';
import { compatibleFrom, SCHEMA_VERSION } from '../../src/repository/schema.ts';
import { noop } from '../../examples/nightshift.config.ts';
import { backends } from '../support/backends.ts';
import { undoLastMigration } from '../support/schema-undo.ts';

describe('compatibleFrom', () => {
  it('goes back over the migrations that the version before can run on, and no further', () => {
    // Version 18 replaced the claim's function with one of the same contract; 17 added an index
    // before versions said what can run on them.
    expect(compatibleFrom(18)).toBe(17);
    expect(compatibleFrom(17)).toBe(17);
    expect(compatibleFrom(1)).toBe(1);
    expect(compatibleFrom()).toBe(compatibleFrom(SCHEMA_VERSION));
    expect(compatibleFrom()).toBeLessThanOrEqual(SCHEMA_VERSION);
  });
});

describe.each(backends())('a repository of another version ($name)', (backend) => {
  afterAll(() => backend.cleanup());

  /** The repository's database as it is: not migrated, not refused. */
  const raw = async <T>(url: string, fn: (db: Database) => Promise<T>): Promise<T> => {
    const db = url.startsWith('sqlite:') ? openSqlite(url.slice('sqlite:'.length)) : openPostgres(url);
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };
  const meta = (url: string) => raw(url, (db) => db.query<{ key: string; value: string }>(`SELECT key, value FROM ns_meta ORDER BY key`));
  /** Leaves ns_meta as a process of another version would have (no `compatible_from` for null). */
  const setMeta = (url: string, version: number, compatible: number | null) => raw(url, async (db) => {
    await db.execute(`UPDATE ns_meta SET value = $1 WHERE key = 'schema_version'`, [String(version)]);
    if (compatible === null) await db.execute(`DELETE FROM ns_meta WHERE key = 'compatible_from'`);
    else await db.execute(`INSERT INTO ns_meta (key, value) VALUES ('compatible_from', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [String(compatible)]);
  });
  const created = async (url: string) => (await openDatabase(url)).close();
  const infoLines = () => {
    const lines: { fields: object; msg: string }[] = [];
    const info = (fields: object, msg?: string) => void lines.push({ fields, msg: msg ?? '' });
    return { lines, logger: { info } as Pick<Logger, 'info'> };
  };

  it('is migrated to this version, which stores the oldest version that can run on it', async () => {
    const url = backend.freshUrl('compat');
    await created(url);
    expect(await meta(url)).toEqual([
      { key: 'compatible_from', value: String(compatibleFrom()) },
      { key: 'schema_version', value: String(SCHEMA_VERSION) },
    ]);
  });

  it('newer, saying this version can run on it: runs jobs on it, logs one line, changes nothing', async () => {
    const url = backend.freshUrl('compatnewer');
    await created(url);
    await setMeta(url, SCHEMA_VERSION + 2, SCHEMA_VERSION);
    const { lines, logger } = infoLines();
    const db = await openDatabase(url, { logger });
    await db.close();
    expect(lines.map((l) => l.msg)).toEqual([
      `job repository schema version ${SCHEMA_VERSION + 2} is newer than this Nightshift (${SCHEMA_VERSION}), which can run on it (processes of schema version ${SCHEMA_VERSION} or later can): upgrade Nightshift when you can`,
    ]);
    const ns = await createNightshift({ db: url, jobs: [noop] });
    try {
      expect((await ns.run('noop')).status).toBe('COMPLETED');
    } finally {
      await ns.close();
    }
    expect(await meta(url)).toEqual([
      { key: 'compatible_from', value: String(SCHEMA_VERSION) },
      { key: 'schema_version', value: String(SCHEMA_VERSION + 2) },
    ]);
  });

  it('newer, saying only later versions can run on it, or saying nothing: refused, naming the versions, nothing changed', async () => {
    const url = backend.freshUrl('compatrefused');
    await created(url);
    const where = await raw(url, async (db) => db.url);
    for (const [compatible, says] of [
      [SCHEMA_VERSION + 1, ` (processes of schema version ${SCHEMA_VERSION + 1} or later can run on it)`],
      [null, ''],
    ] as const) {
      await setMeta(url, SCHEMA_VERSION + 2, compatible);
      const refused = await openDatabase(url).then(async (db) => (await db.close(), undefined), (err: unknown) => err);
      expect(refused).toBeInstanceOf(UsageError);
      expect((refused as Error).message).toBe(
        `the job repository ${where} has schema version ${SCHEMA_VERSION + 2}, newer than this Nightshift (${SCHEMA_VERSION})${says}: upgrade Nightshift`,
      );
      expect(await meta(url)).toEqual([
        ...(compatible === null ? [] : [{ key: 'compatible_from', value: String(compatible) }]),
        { key: 'schema_version', value: String(SCHEMA_VERSION + 2) },
      ]);
    }
  });

  it('older: migrated, and the oldest version that can run on it written again', async () => {
    const url = backend.freshUrl('compatolder');
    await created(url);
    await setMeta(url, SCHEMA_VERSION - 1, null);
    await raw(url, async (db) => {
      for (const statement of undoLastMigration(db.dialect)) await db.exec(statement);
    });
    const { lines, logger } = infoLines();
    await (await openDatabase(url, { logger })).close();
    expect(lines.map((l) => l.msg)).toEqual([`job repository schema migrated from version ${SCHEMA_VERSION - 1} to ${SCHEMA_VERSION}`]);
    expect(await meta(url)).toEqual([
      { key: 'compatible_from', value: String(compatibleFrom()) },
      { key: 'schema_version', value: String(SCHEMA_VERSION) },
    ]);
  });
});
