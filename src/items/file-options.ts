import { UsageError } from '../core/errors.ts';

/**
 * Refuses what a JavaScript caller may pass a file reader or writer instead of its options: the
 * path alone (`csvReader('in.csv')`), or options without a path. Without this, the first option
 * read from a string fails deep inside the parser with a message about that option.
 */
export function requireFileOptions(kind: string, options: unknown): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    const example = JSON.stringify(typeof options === 'string' ? options : 'data.csv');
    throw new UsageError(`${kind} takes an options object with the file's path, e.g. ${kind}({ path: ${example} }); got ${describe(options)}`);
  }
  const path = (options as { path?: unknown }).path;
  if (typeof path !== 'string' || path === '') throw new UsageError(`${kind}: path (the file's path, a non-empty string) is required; got ${describe(path)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return 'an array';
  return value === null ? 'null' : typeof value;
}
