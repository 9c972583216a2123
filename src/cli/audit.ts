/**
 * The command line's part of the audit log: each command that acts records one entry, as the
 * HTTP API records its actions (src/server/guard.ts) and under the same action names, by
 * `cli:USER@HOST` from `cli`. Read-only commands record nothing.
 */
import { hostname, userInfo } from 'node:os';
import { RepositoryMissingError, errorMessage, isUserError } from '../core/errors.ts';
import { recordAudit, type AuditEntry, type AuditOutcome } from '../repository/audit.ts';
import type { Database } from '../repository/database.ts';
import { isConnectionError } from '../repository/connection-errors.ts';
import { openExistingDatabase } from '../repository/open.ts';
import { CronError } from '../scheduler/cron.ts';
import { terminalText } from './output.ts';

/** What a command does, to what, named as the API names it: `execution.stop` on `execution 12`. */
export interface CliAction {
  action: string;
  target: string | null;
}

/** What a command tells its audit entry while it runs. */
export interface AuditNote {
  /** Details worth keeping, as the API keeps them: the parameters, the execution created. */
  readonly detail: Record<string, unknown>;
  /**
   * Records the command's outcome now, ok or with `failure.error`, on its own repository
   * connection `db` (a second one could be left holding the schema check's lock while a job
   * blocks this process), before that connection closes: when it ends (see {@link recordedOn}),
   * or at launch for a command that goes on after launching (`run`, `submit --wait`). Settles
   * once recorded (or not: see {@link audited}); once recorded, later calls change nothing.
   */
  record(db: Database, failure?: { error: unknown }): Promise<void>;
}

/**
 * Runs `fn`, the part of a command that acts on `db`, and records its outcome there, so that a
 * command opens no second connection for its audit entry. Without a note (a command that records
 * nothing) it only runs `fn`.
 */
export async function recordedOn<T>(note: AuditNote | undefined, db: Database, fn: () => Promise<T>): Promise<T> {
  if (!note) return fn();
  let result: T;
  try {
    result = await fn();
  } catch (error) {
    await note.record(db, { error });
    throw error;
  }
  await note.record(db);
  return result;
}

/** The OS user running this process, where the system knows one. */
export function osUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    // No entry for this uid (a container's arbitrary user).
    return process.env.USER || process.env.LOGNAME || undefined;
  }
}

/** Who acts from the command line, as the audit log names them: `cli:USER@HOST`. */
export function cliActor(): string {
  return `cli:${osUser() ?? `uid${process.getuid?.() ?? '?'}`}@${hostname()}`;
}

/** A refusal of the user's input or of the state acted on (exit 2, recorded as refused), rather than a failure. */
export function isRefusal(err: unknown): boolean {
  return isUserError(err) || err instanceof CronError;
}

/**
 * Runs a command that acts (`what`; undefined: it acts on nothing this time, e.g. a dry run) and
 * records it once: when it launches (see AuditNote.record), else when it ends, as ok, refused or
 * error with the error's message. It is recorded on the command's own connection (see
 * {@link recordedOn}); a command that failed before it had one records on a connection of its
 * own to `url`. Recording never changes the
 * command's result: a failure to record is one line on stderr, and none when the command failed
 * (its own error says what is wrong). A command that failed because the repository is missing or
 * unreachable records nothing: there is nowhere to record it.
 */
export async function audited(url: string, what: CliAction | undefined, fn: (note: AuditNote) => Promise<number>): Promise<number> {
  const detail: Record<string, unknown> = {};
  if (!what) return fn({ detail, record: async () => undefined });
  let recording: Promise<void> | undefined;
  const record = (outcome: AuditOutcome, err?: unknown, db?: Database) => (recording ??= store(db ?? url, {
    actor: cliActor(),
    role: null,
    ...what,
    detail: Object.keys(detail).length ? { ...detail } : null,
    remote: 'cli',
    outcome,
    statusCode: null,
    message: err === undefined ? null : errorMessage(err),
  }, err !== undefined));
  const ended = (failure: { error: unknown } | undefined, db?: Database) => (!failure ? record('ok', undefined, db)
    : unrecordable(failure.error) ? recording : record(isRefusal(failure.error) ? 'refused' : 'error', failure.error, db));
  try {
    const code = await fn({ detail, record: async (db, failure) => ended(failure, db) });
    await record('ok');
    return code;
  } catch (error) {
    await ended({ error });
    throw error;
  }
}

/** An error that says the repository cannot be written to at all. */
const unrecordable = (err: unknown) => err instanceof RepositoryMissingError || isConnectionError(err);

/** Records `entry` in `db`, or on a connection of its own to the URL; a failure is said on stderr unless `quiet`. */
async function store(target: string | Database, entry: AuditEntry, quiet: boolean): Promise<void> {
  try {
    if (typeof target !== 'string') {
      await recordAudit(target, entry);
      return;
    }
    const db = await openExistingDatabase(target);
    try {
      await recordAudit(db, entry);
    } finally {
      await db.close();
    }
  } catch (err) {
    if (!quiet) process.stderr.write(`nightshift: ${entry.action} was done but not recorded in the audit log: ${terminalText(errorMessage(err))}\n`);
  }
}
