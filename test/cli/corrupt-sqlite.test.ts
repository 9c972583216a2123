/**
 * A damaged SQLite job repository is reported as such: pages overwritten in the middle of the
 * file (a real corruption, not a mock), or a damaged header. Every command exits 2 with one line
 * naming the file and saying it is corrupt, and nothing is written to it (no new run is taken).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, readFileSync, statSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { cliFor, expectOneLineError } from './run-cli.ts';

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const walBytes = (path: string) => (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0);

/** Overwrites whole pages of the file with garbage. */
function overwritePages(path: string, pages: number[], pageSize: number): void {
  const fd = openSync(path, 'r+');
  try {
    for (const page of pages) writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (page - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}

/** A repository with two completed runs of `count` (so a table of many pages), closed and checkpointed. */
async function repository(name: string) {
  const path = join(mkdtempSync(join(tmpdir(), 'nightshift-corrupt-')), `${name}.db`);
  const cli = cliFor(`sqlite:${path}`);
  for (const tag of ['a', 'b']) expect((await cli.run(['run', 'count', 'items=3000', 'chunk=500', `tag=${tag}`])).code).toBe(0);
  const db = new BetterSqlite3(path, { readonly: true });
  const pageSize = Number(db.pragma('page_size', { simple: true }));
  // The data pages of count_items (not its root): what a failing disk or a bad copy damages.
  const pages = (db.prepare(`SELECT pageno FROM dbstat WHERE name = 'count_items' AND pagetype = 'leaf' ORDER BY pageno`).all() as { pageno: number }[]).map((r) => r.pageno);
  db.close();
  expect(walBytes(path)).toBe(0);
  return { path, cli, pageSize, pages };
}

const CORRUPT = /^nightshift: the job repository .*\.db is corrupt \(.*\); nothing was read from or written to it/;

describe('a corrupted SQLite repository', () => {
  it('pages overwritten in the middle: every command exits 2 saying so, and nothing is written', async () => {
    const { path, cli, pageSize, pages } = await repository('middle');
    expect(pages.length).toBeGreaterThan(4);
    const middle = Math.floor(pages.length / 2);
    overwritePages(path, pages.slice(middle, middle + 2), pageSize);
    const before = sha(path);

    expectOneLineError(await cli.run(['execution', '1']), CORRUPT);
    expectOneLineError(await cli.run(['executions']), CORRUPT);
    expectOneLineError(await cli.run(['run', 'noop']), CORRUPT);
    expectOneLineError(await cli.run(['submit', 'noop']), CORRUPT);
    expectOneLineError(await cli.run(['schedule', 'add', 'n', '--job', 'noop', '--every', '60000']), CORRUPT);

    expect(sha(path)).toBe(before);
    expect(walBytes(path)).toBe(0);
  });

  it('a damaged header is reported as corruption too', async () => {
    const { path, cli } = await repository('header');
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(100, 0x5a), 0, 100, 0);
    closeSync(fd);
    const before = sha(path);
    expectOneLineError(await cli.run(['run', 'noop']), CORRUPT);
    expect(sha(path)).toBe(before);
  });
});
