/**
 * Repository observations shared by the chaos and PostgreSQL-restart suites: every `count`
 * execution with its owner's state, its rows and its steps' writeCount, and the invariant
 * checks both suites end with.
 */
import type { Database } from '../../src/repository/database.ts';
import type { NodeProc } from './helpers.ts';

export const RUNNING = new Set(['STARTING', 'STARTED', 'STOPPING']);

export interface CountExecution {
  id: number;
  instanceId: number;
  tag: string;
  status: string;
  exitCode: string | null;
  description: string | null;
  node: string | null;
  ownerNodeId: number | null;
  ownerStatus: string | null;
  ownerLeaseValid: boolean | null;
  /** Rows of count_items written by this execution. */
  rows: number;
  /** Sum of its steps' writeCount. */
  written: number;
}

/** Every execution of the `count` job in this repository, oldest first. */
export async function countExecutions(db: Database): Promise<CountExecution[]> {
  let rowsBy = new Map<number, number>();
  try {
    const r = await db.query<{ execution_id: number; n: number }>('SELECT execution_id, count(*) AS n FROM count_items GROUP BY execution_id');
    rowsBy = new Map(r.map((x) => [Number(x.execution_id), Number(x.n)]));
  } catch (err) {
    if (!/does not exist/.test(String(err))) throw err;
  }
  const rows = await db.query<Record<string, unknown>>(
    `SELECT e.id, e.instance_id, e.status, e.exit_code, e.exit_description, e.node_name, e.params, e.owner_node_id,
            n.status AS owner_status, (n.lease_until >= ns_now()) AS lease_valid,
            (SELECT coalesce(sum(s.write_count), 0) FROM ns_step_execution s WHERE s.job_execution_id = e.id) AS written
     FROM ns_job_execution e LEFT JOIN ns_node n ON n.id = e.owner_node_id
     WHERE e.job_name = 'count' ORDER BY e.id`,
  );
  return rows.map((r) => {
    const params = (typeof r.params === 'string' ? JSON.parse(r.params) : r.params) as Record<string, unknown>;
    return {
      id: Number(r.id),
      instanceId: Number(r.instance_id),
      tag: String(params.tag),
      status: String(r.status),
      exitCode: (r.exit_code as string | null) ?? null,
      description: (r.exit_description as string | null) ?? null,
      node: (r.node_name as string | null) ?? null,
      ownerNodeId: r.owner_node_id === null ? null : Number(r.owner_node_id),
      ownerStatus: (r.owner_status as string | null) ?? null,
      ownerLeaseValid: r.lease_valid === null || r.lease_valid === undefined ? null : r.lease_valid === true,
      rows: rowsBy.get(Number(r.id)) ?? 0,
      written: Number(r.written),
    };
  });
}

export function describeExecutions(list: CountExecution[]): string {
  return list
    .map((e) =>
      `  #${e.id} inst ${e.instanceId} tag=${e.tag} ${e.status}/${e.exitCode} node=${e.node ?? '-'} owner=${e.ownerNodeId ?? '-'}` +
      `(${e.ownerStatus ?? '-'}${e.ownerLeaseValid === false ? ', lease expired' : ''}) rows=${e.rows} writeCount=${e.written}` +
      `${e.description ? ` "${e.description.slice(0, 160)}"` : ''}`,
    )
    .join('\n');
}

/** Per-tag item statistics of count_items. */
export async function itemStats(db: Database): Promise<Map<string, { n: number; distinct: number; min: number; max: number }>> {
  const r = await db.query<{ tag: string; n: number; d: number; lo: number; hi: number }>(
    'SELECT tag, count(*) AS n, count(DISTINCT item) AS d, min(item) AS lo, max(item) AS hi FROM count_items GROUP BY tag',
  );
  return new Map(r.map((x) => [x.tag, { n: Number(x.n), distinct: Number(x.d), min: Number(x.lo), max: Number(x.hi) }]));
}

/**
 * The end-of-run invariants, as a list of violations (empty when all hold):
 * each tag's instance has a COMPLETED execution, its newest; every other execution is FAILED
 * with a description naming its node; nothing is left running; every item 1..items is written
 * exactly once; each execution's rows match its steps' writeCount.
 */
export async function checkRun(db: Database, tags: string[], items: number): Promise<{ violations: string[]; executions: CountExecution[] }> {
  const executions = await countExecutions(db);
  const stats = await itemStats(db);
  const violations: string[] = [];
  for (const tag of tags) {
    const mine = executions.filter((e) => e.tag === tag);
    if (!mine.length) {
      violations.push(`tag ${tag}: no execution at all`);
      continue;
    }
    const completed = mine.filter((e) => e.status === 'COMPLETED');
    if (completed.length !== 1) violations.push(`tag ${tag}: ${completed.length} COMPLETED executions (${mine.map((e) => `#${e.id} ${e.status}`).join(', ')})`);
    const last = mine[mine.length - 1];
    if (last.status !== 'COMPLETED') violations.push(`tag ${tag}: newest execution #${last.id} is ${last.status}: ${last.description ?? ''}`);
    for (const e of mine.slice(0, -1)) {
      if (e.status !== 'FAILED') violations.push(`tag ${tag}: non-final execution #${e.id} is ${e.status}, expected FAILED`);
      else if (!e.node || !(e.description ?? '').includes(`node ${e.node}`)) {
        violations.push(`tag ${tag}: non-final execution #${e.id} (node ${e.node}) FAILED without naming its node: ${JSON.stringify(e.description)}`);
      }
    }
    const s = stats.get(tag) ?? { n: 0, distinct: 0, min: NaN, max: NaN };
    if (!(s.n === items && s.distinct === items && s.min === 1 && s.max === items)) {
      violations.push(`tag ${tag}: count_items has ${s.n} rows, ${s.distinct} distinct, min ${s.min}, max ${s.max}; expected ${items} exactly once`);
    }
    const totalWritten = mine.reduce((a, e) => a + e.written, 0);
    if (totalWritten !== items) violations.push(`tag ${tag}: the steps' writeCount adds up to ${totalWritten}, expected ${items}`);
  }
  for (const e of executions) {
    if (RUNNING.has(e.status)) {
      const live = e.ownerStatus === 'alive' && e.ownerLeaseValid === true;
      violations.push(`execution #${e.id} (tag ${e.tag}) left ${e.status} ${live ? 'with a live owner' : `without a live owner (owner ${e.ownerNodeId}: ${e.ownerStatus}, lease valid ${e.ownerLeaseValid})`}`);
    }
    if (e.rows !== e.written) violations.push(`execution #${e.id} (tag ${e.tag}) wrote ${e.rows} rows but its steps' writeCount says ${e.written}`);
  }
  return { violations, executions };
}

/** The warn/error lines a node process logged (pino JSON), shortened. */
export function noteworthyLines(p: NodeProc, max = 12): string[] {
  const lines = p.output().split('\n').filter((l) => l.trim());
  const picked = lines.filter((l) => {
    const m = /"level":(\d+)/.exec(l);
    return m ? Number(m[1]) >= 40 : false;
  });
  return picked.slice(-max).map((l) => {
    try {
      const j = JSON.parse(l) as Record<string, unknown>;
      const { level, msg, err, execution, peer } = j;
      return `[${level}] ${String(msg)}${err ? ` err=${typeof err === 'string' ? err : JSON.stringify(err).slice(0, 200)}` : ''}` +
        `${execution !== undefined ? ` execution=${execution}` : ''}${peer ? ` peer=${peer}` : ''}`;
    } catch {
      return l.slice(0, 240);
    }
  });
}

export function describeProcs(procs: NodeProc[]): string {
  return procs
    .map((p) => {
      const end = p.exit ? `exited code=${p.exit.code} signal=${p.exit.signal}` : 'running';
      const notes = noteworthyLines(p, 20);
      // A crash: the last lines that are not log records (the stack trace).
      const crash = p.exit && p.exit.code !== 0 && p.exit.signal === null
        ? p.output().split('\n').filter((l) => l.trim() && !l.startsWith('{')).slice(-25)
        : [];
      return `  ${p.name} pid ${p.pid}: ${end}${notes.length ? `\n      ${notes.join('\n      ')}` : ''}` +
        `${crash.length ? `\n      crash output:\n        ${crash.join('\n        ')}` : ''}`;
    })
    .join('\n');
}

/** The repository's PostgreSQL sessions (not this process's idle ones), for a report. */
export async function pgSessions(db: Database): Promise<string> {
  const rows = await db.query<Record<string, unknown>>(
    `SELECT pid, application_name AS app, state, wait_event_type AS wtype, wait_event AS wevent,
            (extract(epoch FROM now() - xact_start) * 1000)::bigint AS xact_ms, left(query, 90) AS query
     FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
       AND application_name LIKE 'nightshift%' AND state <> 'idle' ORDER BY pid`,
  );
  return rows.map((r) => `  ${JSON.stringify(r)}`).join('\n') || '  (none but idle ones)';
}
