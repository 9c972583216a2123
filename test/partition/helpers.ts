/**
 * Helpers for the partitioned-step suites: partition step executions of an execution, and rows
 * of count_items.
 */
import type { StepExecution } from '../../src/core/model.ts';
import type { Database } from '../../src/repository/database.ts';
import { within } from '../fixtures/engine/support.ts';
import { waitFor } from '../support/backends.ts';

export const isPartition = (s: { stepName?: string; name?: string }) => /:partition\d+$/.test(s.stepName ?? s.name ?? '');

/** The partition step executions among an execution's steps. */
export function partitionsOf(e: { steps: StepExecution[] }): StepExecution[] {
  return e.steps.filter(isPartition);
}

/** The manager step execution (the step named exactly `name`). */
export function managerOf(e: { steps: StepExecution[] }, name = 'count'): StepExecution {
  const m = e.steps.find((s) => s.stepName === name);
  if (!m) throw new Error(`no step ${name} in ${e.steps.map((s) => s.stepName).join(', ')}`);
  return m;
}

export const COUNTERS = ['readCount', 'writeCount', 'filterCount', 'readSkipCount', 'processSkipCount', 'writeSkipCount', 'commitCount', 'rollbackCount'] as const;

export function counters(s: StepExecution): Record<(typeof COUNTERS)[number], number> {
  return Object.fromEntries(COUNTERS.map((k) => [k, s[k]])) as Record<(typeof COUNTERS)[number], number>;
}

export function sumCounters(steps: StepExecution[]): Record<(typeof COUNTERS)[number], number> {
  return Object.fromEntries(COUNTERS.map((k) => [k, steps.reduce((n, s) => n + s[k], 0)])) as Record<(typeof COUNTERS)[number], number>;
}

export interface ItemRow {
  item: number;
  execution_id: number;
}

/** count_items rows of a tag, by item. A query error is thrown, never read as "no rows". */
export async function itemRows(db: Database, tag: string): Promise<ItemRow[]> {
  const rows = await db.query<{ item: number | string; execution_id: number | string }>(
    'SELECT item, execution_id FROM count_items WHERE tag = $1 ORDER BY item, execution_id',
    [tag],
  );
  return rows.map((r) => ({ item: Number(r.item), execution_id: Number(r.execution_id) }));
}

/** Whether each of 1..n is in count_items (for the tag) exactly once, with a summary for messages. */
export async function onceSummary(db: Database, tag: string, n: number) {
  const rows = await itemRows(db, tag);
  const seen = new Map<number, number>();
  for (const r of rows) seen.set(r.item, (seen.get(r.item) ?? 0) + 1);
  const duplicates = [...seen].filter(([, c]) => c > 1).map(([i]) => i);
  const missing: number[] = [];
  for (let i = 1; i <= n; i++) if (!seen.has(i)) missing.push(i);
  const extra = [...seen.keys()].filter((i) => i < 1 || i > n);
  return {
    total: rows.length,
    ok: rows.length === n && duplicates.length === 0 && missing.length === 0 && extra.length === 0,
    duplicates: duplicates.slice(0, 10),
    missing: missing.slice(0, 10),
    missingCount: missing.length,
  };
}

/** One line per step: name, status, node, counters and exit description (for assertion messages). */
export function why(e: { id: number; status: string; exitStatus: { description?: string }; steps: StepExecution[] }): string {
  return [`execution ${e.id} ${e.status}: ${e.exitStatus.description ?? ''}`,
    ...e.steps.map((s) => `  ${s.id} ${s.stepName} ${s.status}@${s.node} read=${s.readCount} ${s.exitStatus.description ?? ''}`)].join('\n');
}

/**
 * Stops execution `id` once one of its partitions has committed a chunk, and resolves with what
 * `done` (its run) ends as, within 20 s.
 */
export async function stopOncePartitionCommitted<E>(
  ns: { getExecution(id: number): Promise<{ steps: StepExecution[] } | undefined>; stop(id: number): Promise<unknown> },
  id: number,
  done: Promise<E>,
): Promise<E> {
  await waitFor(async () => {
    const e = await ns.getExecution(id);
    return e && partitionsOf(e).some((p) => p.status === 'STARTED' && p.commitCount > 0);
  }, 20_000, 'a partition with a committed chunk');
  await ns.stop(id);
  return within(done, 20_000, 'the stopped execution to end');
}
