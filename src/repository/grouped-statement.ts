import { isConnectionError } from './connection-errors.ts';
import type { Database } from './database.ts';

/**
 * Many callers' runs of one single-row statement, sent as one statement (PostgreSQL group
 * commit). A call waits while earlier calls' statement is in flight and goes with the others that
 * waited: no timer, so an idle system pays no latency and a busy one pays one commit per group.
 *
 * `many` is the statement over arrays: its `$n` is the array of every call's `$n` of `one`, and it
 * returns a row with the `id` (the first parameter) of each call that wrote. A call's result is
 * its own rows, as `one` would have returned them. When the grouped statement fails for another
 * reason than a lost connection (a deadlock with an operator's statement, one call's bad value),
 * each call of the group runs `one` on its own, so that one call's failure is only its own.
 */
export interface GroupedStatement {
  sql: { one: string; many: string };
  /** Calls per grouped statement, at most. */
  maxGroup?: number;
}

type Row = Record<string, unknown>;

interface Call {
  params: readonly unknown[];
  resolve: (rows: Row[]) => void;
  reject: (error: unknown) => void;
}

interface Group {
  queued: Call[];
  inFlight: number;
}

const groups = new WeakMap<Database, Map<string, Group>>();

/** Grouped statements a database runs at once for one statement: the next group gathers meanwhile. */
const IN_FLIGHT = 2;

/** Runs `statement` with `params` as part of a group (see {@link GroupedStatement}). */
export function runGrouped(db: Database, statement: GroupedStatement, params: readonly unknown[]): Promise<Row[]> {
  let byStatement = groups.get(db);
  if (!byStatement) groups.set(db, (byStatement = new Map()));
  let group = byStatement.get(statement.sql.many);
  if (!group) byStatement.set(statement.sql.many, (group = { queued: [], inFlight: 0 }));
  const g = group;
  return new Promise<Row[]>((resolve, reject) => {
    g.queued.push({ params, resolve, reject });
    // Calls made in the same turn of the event loop go together.
    if (g.queued.length === 1 && g.inFlight < IN_FLIGHT) setImmediate(() => flush(db, statement, g));
  });
}

function flush(db: Database, statement: GroupedStatement, group: Group): void {
  if (!group.queued.length || group.inFlight >= IN_FLIGHT) return;
  const calls = group.queued.splice(0, statement.maxGroup ?? 500);
  group.inFlight++;
  void runCalls(db, statement, calls).finally(() => {
    group.inFlight--;
    flush(db, statement, group);
  });
}

async function runCalls(db: Database, statement: GroupedStatement, calls: Call[]): Promise<void> {
  if (calls.length === 1) return runAlone(db, statement, calls);
  let rows: Row[];
  try {
    const columns = calls[0].params.map((_, i) => calls.map((c) => c.params[i]));
    rows = await db.query<Row>(statement.sql.many, columns);
  } catch (error) {
    if (isConnectionError(error)) {
      for (const c of calls) c.reject(error);
      return;
    }
    return runAlone(db, statement, calls);
  }
  const wrote = new Set(rows.map((r) => String(r.id)));
  for (const c of calls) c.resolve(wrote.has(String(c.params[0])) ? [{ id: c.params[0] }] : []);
}

async function runAlone(db: Database, statement: GroupedStatement, calls: Call[]): Promise<void> {
  await Promise.all(
    calls.map((c) => db.query<Row>(statement.sql.one, c.params).then(c.resolve, c.reject)),
  );
}
