import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import type { ExecutionContext } from '../../src/core/model.ts';
import type { FileItemReader } from '../../src/items/record-source.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Writes `content` to a new file in a fresh temp directory and returns its path. */
export function tempFile(content: string | Buffer, name = 'input.txt'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nightshift-items-'));
  dirs.push(dir);
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

/** A path in a fresh temp directory (no file created). */
export function tempPath(name = 'output.txt'): string {
  return path.dirname(tempFile('', '.keep')) + path.sep + name;
}

/** Reads `n` items (or to the end). */
export async function take<T>(reader: FileItemReader<T>, n = Infinity): Promise<T[]> {
  const items: T[] = [];
  while (items.length < n) {
    const item = await reader.read();
    if (item === undefined) break;
    items.push(item);
  }
  return items;
}

/** Reads everything with a fresh reader (opened with `context`), and closes it. */
export async function readAll<T>(make: () => FileItemReader<T>, context: ExecutionContext = {}): Promise<T[]> {
  const reader = make();
  await reader.open(context);
  try {
    return await take(reader);
  } finally {
    await reader.close();
  }
}

/**
 * For every restart point N: reads N items, saves the position, reads two more without saving,
 * closes; reopens with the saved context and reads the rest. The items before N plus the rest must
 * equal a full read.
 */
export async function checkRestartEverywhere<T>(make: () => FileItemReader<T>): Promise<number> {
  const all = await readAll(make);
  for (let n = 0; n <= all.length; n++) {
    const first = make();
    await first.open({});
    const head = await take(first, n);
    const context: ExecutionContext = {};
    first.update(context);
    await take(first, 2); // read on, not committed
    await first.close();
    const rest = await readAll(make, context);
    if (JSON.stringify([...head, ...rest]) !== JSON.stringify(all)) {
      throw new Error(`restart after ${n} items: got ${JSON.stringify([...head, ...rest])}, expected ${JSON.stringify(all)}`);
    }
  }
  return all.length;
}

/** Calls `read()` and returns the error it throws (failing if it does not). */
export async function readError<T>(reader: FileItemReader<T>): Promise<Error & Record<string, unknown>> {
  let item: T | undefined;
  try {
    item = await reader.read();
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  throw new Error(`expected an error, got ${JSON.stringify(item)}`);
}
