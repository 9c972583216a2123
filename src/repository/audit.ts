import { redactUrls, redactValue } from '../core/redact.ts';
import type { SqlClient } from './tx.ts';
import { SQL } from './sql.ts';

/** How an audited action ended. */
export type AuditOutcome = 'ok' | 'refused' | 'forbidden' | 'denied' | 'error';

/** An action to record: who did what to what, from where, and how it ended. */
export interface AuditEntry {
  /**
   * The API token's name (null: no token was recognised, e.g. a failed login), or for the
   * command line `cli:USER@HOST` (the OS user and host that ran it).
   */
  actor: string | null;
  role: string | null;
  /** What was done, e.g. `execution.stop`, `schedule.pause`, `login`. */
  action: string;
  /** What it was done to, e.g. `execution 42`, `schedule nightly`, `job count`. */
  target: string | null;
  /** The request's details worth keeping (parameters, routing), as JSON. */
  detail?: Record<string, unknown> | null;
  /** The client's address, or `cli` for the command line. */
  remote: string | null;
  outcome: AuditOutcome;
  /** The HTTP status answered (null for the command line). */
  statusCode?: number | null;
  /** Why it was refused or failed. */
  message?: string | null;
}

/** A recorded action; `at` is the database's clock. */
export interface AuditRecord extends Required<AuditEntry> {
  id: number;
  at: Date;
}

export interface AuditQuery {
  actor?: string;
  action?: string;
  /** Records with an id below this one: the cursor of the next page. */
  before?: number;
  limit?: number;
}

/** Records one action, stamped with the database's time; URL passwords in its detail and message are hidden. */
export async function recordAudit(db: SqlClient, e: AuditEntry): Promise<{ id: number; at: Date }> {
  const rows = await db.query<{ id: number | string; at: number | string }>(SQL.insertAudit, [
    e.actor, e.role, e.action, e.target, e.detail ? JSON.stringify(redactValue(e.detail)) : null, e.remote, e.outcome, e.statusCode ?? null,
    e.message ? redactUrls(e.message) : null,
  ]);
  return { id: Number(rows[0].id), at: new Date(Number(rows[0].at)) };
}

/** Recorded actions, newest first, with the cursor of the next page (null: none). */
export async function listAudit(db: SqlClient, q: AuditQuery = {}): Promise<{ records: AuditRecord[]; nextCursor: number | null }> {
  const limit = q.limit ?? 50;
  const params: unknown[] = [limit + 1];
  if (q.actor !== undefined) params.push(q.actor);
  if (q.action !== undefined) params.push(q.action);
  if (q.before !== undefined) params.push(q.before);
  const sql = SQL.listAudit({ actor: q.actor !== undefined, action: q.action !== undefined, before: q.before !== undefined });
  const rows = await db.query<Record<string, unknown>>(sql, params);
  const records = rows.slice(0, limit).map((r): AuditRecord => ({
    id: Number(r.id),
    at: new Date(Number(r.at)),
    actor: (r.actor as string | null) ?? null,
    role: (r.role as string | null) ?? null,
    action: String(r.action),
    target: (r.target as string | null) ?? null,
    detail: typeof r.detail === 'string' ? (JSON.parse(r.detail) as Record<string, unknown>) : null,
    remote: (r.remote as string | null) ?? null,
    outcome: r.outcome as AuditOutcome,
    statusCode: r.status_code === null || r.status_code === undefined ? null : Number(r.status_code),
    message: (r.message as string | null) ?? null,
  }));
  return { records, nextCursor: rows.length > limit ? records[limit - 1].id : null };
}
