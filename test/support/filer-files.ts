/**
 * Checks the three files that the `filer` job of test/crash/fixtures writes: each must hold items
 * 1..n, once each and in order, every line written whole with one of the notes the attempts used.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const FILES: { file: string; header?: string; line: (n: number, note: string) => string }[] = [
  { file: 'lines.txt', line: (n, note) => `line ${n}${note}` },
  { file: 'items.csv', header: 'n,text', line: (n, note) => `${n},"item, ${n}${note}"` },
  { file: 'items.jsonl', line: (n, note) => JSON.stringify({ n, note }) },
];

/** What is wrong with the files in `dir` (empty when each holds 1..n once, in order). */
export function filerProblems(dir: string, n: number, notes: string[]): string[] {
  const problems: string[] = [];
  for (const { file, header, line } of FILES) {
    const path = join(dir, file);
    if (!existsSync(path)) {
      problems.push(`${file} is missing`);
      continue;
    }
    const text = readFileSync(path, 'utf8');
    if (!text.endsWith('\n')) problems.push(`${file} does not end with a whole line: ...${JSON.stringify(text.slice(-60))}`);
    const lines = text.split('\n').slice(0, -1);
    if (header !== undefined && lines.shift() !== header) problems.push(`${file} does not start with its header ${header}`);
    if (lines.length !== n) problems.push(`${file} has ${lines.length} item lines, expected ${n}`);
    const bad: string[] = [];
    lines.forEach((l, i) => {
      if (!notes.some((note) => line(i + 1, note) === l)) bad.push(`line ${i + 1}: ${JSON.stringify(l.slice(0, 80))}`);
    });
    if (bad.length) problems.push(`${file} is not items 1..${n} in order (${bad.length} wrong lines): ${bad.slice(0, 4).join('; ')}`);
  }
  return problems;
}

/** Whether the file of `filer` in `dir` holds item `n`'s line (with `note`). */
export function hasLine(dir: string, n: number, note: string): boolean {
  return readFileSync(join(dir, 'lines.txt'), 'utf8').includes(`\nline ${n}${note}\n`);
}
