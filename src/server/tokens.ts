import { readFileSync } from 'node:fs';
import { UsageError, errorMessage } from '../core/errors.ts';

/** What a token may do: `viewer` reads, `operator` reads and acts. */
export type Role = 'viewer' | 'operator';

export const ROLES: readonly Role[] = ['viewer', 'operator'];

/** An API token: its name (recorded in the audit log), its role, and its secret. */
export interface ApiToken {
  /** Who uses it: what the audit log records. */
  readonly name: string;
  /** `viewer` reads; `operator` also acts. */
  readonly role: Role;
  /** The bearer secret; never logged. */
  readonly secret: string;
}

/** The environment variable of the API tokens (`NAME:ROLE:SECRET`, comma-separated). */
export const TOKENS_ENV = 'NIGHTSHIFT_API_TOKENS';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** One `NAME:ROLE:SECRET` entry and where it came from (for errors, which never show the secret). */
interface Entry {
  text: string;
  where: string;
}

function parseEntry({ text, where }: Entry): ApiToken {
  const first = text.indexOf(':');
  const second = first < 0 ? -1 : text.indexOf(':', first + 1);
  // The entry may be a bare secret: it is never shown.
  if (second < 0) throw new UsageError(`${where}: expected NAME:ROLE:SECRET`);
  const name = text.slice(0, first);
  const role = text.slice(first + 1, second);
  const secret = text.slice(second + 1);
  if (!NAME.test(name)) {
    throw new UsageError(`${where}: token name ${JSON.stringify(name.slice(0, 64))} is not valid (letters, digits and . _ @ -, at most 64)`);
  }
  if (!(ROLES as string[]).includes(role)) {
    throw new UsageError(`${where} (${name}): role must be viewer or operator, got ${JSON.stringify(role.slice(0, 32))}`);
  }
  if (secret === '') throw new UsageError(`${where} (${name}): the secret is empty`);
  if (/[\s,]/.test(secret)) throw new UsageError(`${where} (${name}): the secret contains a space or comma`);
  return { name, role: role as Role, secret };
}

/** The entries of `NIGHTSHIFT_API_TOKENS`: comma-separated, spaces around them ignored. */
function envEntries(value: string): Entry[] {
  return value
    .split(',')
    .map((text, i) => ({ text: text.trim(), where: `${TOKENS_ENV} entry ${i + 1}` }))
    .filter((e) => e.text !== '');
}

/** The entries of a tokens file: one per line; blank lines and lines starting with # are skipped. */
function fileEntries(path: string): Entry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the tokens file ${path}: ${errorMessage(err)}`);
  }
  return text
    .split(/\r?\n/)
    .map((line, i) => ({ text: line.trim(), where: `${path} line ${i + 1}` }))
    .filter((e) => e.text !== '' && !e.text.startsWith('#'));
}

/** Secrets shorter than this are accepted, with a warning when served (see shortTokens). */
export const MIN_SECRET_LENGTH = 16;

/** The tokens whose secret is shorter than {@link MIN_SECRET_LENGTH}: a server warns of each. */
export function shortTokens(tokens: readonly ApiToken[]): ApiToken[] {
  return tokens.filter((t) => t.secret.length < MIN_SECRET_LENGTH);
}

/**
 * The API tokens configured in env `NIGHTSHIFT_API_TOKENS` (`NAME:ROLE:SECRET,...`) and in a
 * tokens file (one `NAME:ROLE:SECRET` per line). A malformed entry, a name given twice or a
 * secret shared by two tokens is a UsageError naming the entry, never showing a secret.
 */
export function loadTokens(sources: { env?: string | undefined; file?: string | undefined }): ApiToken[] {
  const entries = [...(sources.env ? envEntries(sources.env) : []), ...(sources.file ? fileEntries(sources.file) : [])];
  const tokens: ApiToken[] = [];
  for (const entry of entries) {
    const token = parseEntry(entry);
    if (tokens.some((t) => t.name === token.name)) throw new UsageError(`${entry.where}: token name ${token.name} is given twice`);
    const same = tokens.find((t) => t.secret === token.secret);
    if (same) throw new UsageError(`${entry.where} (${token.name}): has the same secret as token ${same.name}; give each token its own`);
    tokens.push(token);
  }
  return tokens;
}
