import { readFileSync } from 'node:fs';
import { UsageError, errorMessage } from '../core/errors.ts';
import type { SubmitItem } from '../engine/bulk-launch.ts';

/** A launch read from a file of JSON lines, with the line it came from. */
export interface FileItem extends SubmitItem {
  line: number;
}

/**
 * Reads launches from a file of JSON lines (`-` for standard input): one object per line, as
 * `{"job": "count", "params": {"items": 10}}`; blank lines are skipped. A line that is not such an
 * object is bad input for the whole file, named by file and line, before anything is submitted.
 */
export function readSubmitFile(file: string): FileItem[] {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file === '-' ? 'standard input' : file}: ${errorMessage(err)}`);
  }
  const name = file === '-' ? 'stdin' : file;
  const items: FileItem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (!raw) continue;
    const where = `${name}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new UsageError(`${where}: not JSON (${errorMessage(err)})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new UsageError(`${where}: expected an object like {"job": "NAME", "params": {...}}`);
    }
    const { job, params, ...rest } = value as Record<string, unknown>;
    const extra = Object.keys(rest);
    if (extra.length) throw new UsageError(`${where}: unknown field ${extra[0]} (a line has "job" and "params")`);
    if (typeof job !== 'string' || !job) throw new UsageError(`${where}: "job" must be a job name`);
    if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params))) {
      throw new UsageError(`${where}: "params" must be an object`);
    }
    items.push({ line: i + 1, job, params: params as Record<string, unknown> | undefined });
  }
  return items;
}
