import { UsageError } from './errors.ts';

/**
 * `id` as a repository id (a positive whole number), or a UsageError naming `what`: an id read
 * from a URL or a form (`Number('abc')` is NaN) fails here with one line, not as SQL.
 */
export function requireId(what: string, id: unknown): number {
  if (typeof id === 'number' && Number.isSafeInteger(id) && id > 0) return id;
  const got = typeof id === 'string' ? `the string ${JSON.stringify(id)}` : typeof id === 'number' ? String(id) : id === null ? 'null' : typeof id;
  throw new UsageError(`${what} must be a positive whole number, got ${got}`);
}
