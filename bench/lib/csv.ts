/**
 * The people CSV of the import benchmarks (id,name,email,amount), written streaming so that
 * files of any size take no memory.
 */
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A generated file and what is in it. */
export interface PeopleCsv {
  path: string;
  rows: number;
  /** Rows the import-csv job rejects (their email lacks '@'). */
  bad: number;
  bytes: number;
  /** Deletes the file and its folder. */
  remove(): void;
}

/**
 * Writes `rows` people into a new temporary folder. Every 101st name is quoted with an embedded
 * comma and doubled quotes; every `badEvery`th row is invalid for the job (its email lacks '@')
 * yet loads with COPY, so all three contenders read the very same file.
 */
export async function writePeopleCsv(rows: number, badEvery = 10_007): Promise<PeopleCsv> {
  const dir = mkdtempSync(join(tmpdir(), 'nsbench-csv-'));
  const path = join(dir, 'people.csv');
  const out = createWriteStream(path);
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let bad = 0;
  let buffer = 'id,name,email,amount\n';
  for (let id = 1; id <= rows; id++) {
    const amount = (random() * 1000).toFixed(2);
    if (id % badEvery === 0) {
      bad++;
      buffer += `${id},Person ${id},person${id}.example.com,${amount}\n`;
    } else if (id % 101 === 0) {
      buffer += `${id},"Doe, Jane ""JD"" ${id}",jane${id}@example.com,${amount}\n`;
    } else {
      buffer += `${id},Person ${id},person${id}@example.com,${amount}\n`;
    }
    if (buffer.length > 1 << 16) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await once(out, 'finish');
  return { path, rows, bad, bytes: statSync(path).size, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
