/**
 * A partitioned step's worker reads its partition typed (`ctx.partition`), on SQLite and
 * PostgreSQL: each item is written with what the worker saw of its partition's values (numbers
 * still numbers, an array still an array, ISO text for a day), on the first run and on a restart
 * in another process, which reads the unfinished partition's values back from the repository.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { suiteInstances } from '../fixtures/engine/suite.ts';
import { backends } from '../support/backends.ts';
import { pcTyped } from './fixtures/typed.ts';
import { managerOf, partitionsOf, why } from './helpers.ts';
import type { Database } from '../../src/repository/database.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/** What the worker must have seen for `item` of pc-typed with 100 items in 4 partitions. */
function expectedSeen(item: number): string {
  const i = Math.floor((item - 1) / 25);
  const [from, to] = [i * 25 + 1, (i + 1) * 25];
  return `slice-${i}|number:${from}-number:${to}|${from}..${to}|${i + 1}|no note`;
}

async function rows(db: Database, tag: string) {
  const r = await db.query<{ item: number | string; seen: string; legacy: string }>('SELECT item, seen, legacy FROM typed_items WHERE tag = $1 ORDER BY item', [tag]);
  return r.map((x) => ({ item: Number(x.item), seen: x.seen, legacy: x.legacy }));
}

describe.each(backends())('typed partitions ($name)', (backend) => {
  const pool = suiteInstances(backend);

  it("the worker's reader, processor and writer see the partition's values as the partitioner typed them", async () => {
    const ns = await pool.create(backend.freshUrl('typed'), [pcTyped]);
    const e = await ns.run('pc-typed', { tag: 'once' });
    expect(e.status, why(e)).toBe('COMPLETED');
    expect(managerOf(e).readCount).toBe(100);
    const written = await rows(ns.db, 'once');
    expect(written.map((r) => r.item)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    for (const r of written) {
      expect(r.seen, `item ${r.item}`).toBe(expectedSeen(r.item));
      // The untyped stepContext starts with the same values, as before.
      expect(r.legacy, `item ${r.item}`).toBe(expectedSeen(r.item).replace(/\|number:(\d+).*/, ':$1'));
    }
  });

  it('a restart in another process reads the unfinished partition from the repository, typed the same', { timeout: 60_000 }, async () => {
    const url = backend.freshUrl('typedrestart');
    const ns = await pool.create(url, [pcTyped]);
    // Partition 2 is 51..75, chunks of 10: 51..60 commits, then 63 fails.
    const first = await ns.run('pc-typed', { tag: 'restart', failAt: 63 });
    expect(first.status).toBe('FAILED');
    expect(partitionsOf(first).filter((p) => p.status !== 'COMPLETED').map((p) => p.stepName)).toEqual(['count:partition2']);
    expect((await rows(ns.db, 'restart')).length).toBe(85);

    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--import', './scripts/dev-alias.mjs', 'test/partition/fixtures/typed-restart.ts', url, String(first.id)], {
      cwd: ROOT,
      env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'silent' },
      timeout: 45_000,
    });
    const second = JSON.parse(stdout.trim().split('\n').at(-1)!) as { id: number; status: string };
    expect(second.status).toBe('COMPLETED');
    const restarted = partitionsOf((await ns.getExecution(second.id))!);
    expect(restarted.map((p) => [p.stepName, p.status, p.readCount])).toEqual([['count:partition2', 'COMPLETED', 15]]);

    const written = await rows(ns.db, 'restart');
    expect(written.map((r) => r.item)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    for (const r of written) expect(r.seen, `item ${r.item}`).toBe(expectedSeen(r.item));
  });
});
