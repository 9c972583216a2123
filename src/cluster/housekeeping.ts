import { UsageError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { Database } from '../repository/database.ts';
import { foldExecutionCounts, pruneHistory, pruneNodes, type PruneOptions } from '../repository/retention.ts';

/** Automatic history retention on a node: `prune` with these rules, every `everyMs`. */
export type RetentionOptions = Omit<PruneOptions, 'onBatch' | 'nodes' | 'dryRun'> & {
  /** How often (default hourly). */
  everyMs?: number | undefined;
};

export interface HousekeepingOptions {
  /** Ended node incarnations are deleted this long after they ended (default 7 days). */
  nodeRetentionMs?: number | undefined;
  /** Off unless given. */
  retention?: RetentionOptions | undefined;
}

export const DEFAULT_NODE_RETENTION_MS = 7 * 86_400_000;
/** The shortest time between automatic retention rounds. */
export const MIN_RETENTION_EVERY_MS = 1000;
const FOLD_EVERY_MS = 1000;
const NODES_EVERY_MS = 60_000;

/** Checks the options before a node joins; returns them with their defaults. */
export function validateHousekeeping(o: HousekeepingOptions): { nodeRetentionMs: number; everyMs: number } {
  const nodeRetentionMs = o.nodeRetentionMs ?? DEFAULT_NODE_RETENTION_MS;
  if (!Number.isSafeInteger(nodeRetentionMs) || nodeRetentionMs < 0) throw new UsageError(`nodeRetentionMs must be a duration of 0 or more, got ${nodeRetentionMs}`);
  const everyMs = o.retention?.everyMs ?? 3_600_000;
  if (o.retention) {
    if (!Number.isSafeInteger(everyMs) || everyMs < MIN_RETENTION_EVERY_MS) throw new UsageError(`retention.everyMs must be at least ${MIN_RETENTION_EVERY_MS}, got ${everyMs}`);
    if (!Number.isSafeInteger(o.retention.olderThanMs) || o.retention.olderThanMs < 0) {
      throw new UsageError(`retention.olderThanMs must be a duration of 0 or more, got ${o.retention.olderThanMs}`);
    }
  }
  return { nodeRetentionMs, everyMs };
}

/**
 * What a node keeps tidy in the background, each task skipped while its previous round runs:
 * folding the execution counters' deltas (PostgreSQL), deleting old node incarnations, and, when
 * configured, pruning history in short batches.
 */
export function startHousekeeping(db: Database, o: HousekeepingOptions, log: Logger, foldDue: () => boolean = () => true): { stop(): Promise<void> } {
  const { nodeRetentionMs, everyMs } = validateHousekeeping(o);
  const busy = new Set<string>();
  const pending = new Set<Promise<void>>();
  const task = (name: string, fn: () => Promise<void>) => () => {
    if (busy.has(name)) return;
    busy.add(name);
    const p = fn()
      .catch((err: unknown) => log.warn({ err: errorMessage(err) }, `housekeeping (${name}) failed; will retry`))
      .finally(() => {
        busy.delete(name);
        pending.delete(p);
      });
    pending.add(p);
  };
  // `foldDue`: whether deltas wait (a node learns it from its heartbeat's probe), so that an idle node does not use its pool.
  const counters = task('counters', () => foldExecutionCounts(db));
  const fold = () => foldDue() && counters();
  const nodes = task('nodes', async () => {
    const n = await pruneNodes(db, nodeRetentionMs);
    if (n) log.info({ nodes: n }, `deleted ${n} node incarnations that ended over ${nodeRetentionMs} ms ago`);
  });
  const retention = o.retention;
  const prune = retention && task('retention', async () => {
    const r = await pruneHistory(db, { ...retention, nodes: false });
    if (r.executions) log.info(r, `retention deleted ${r.executions} executions in ${r.batches} batches`);
  });
  const timers = [
    db.dialect === 'postgres' ? setInterval(fold, FOLD_EVERY_MS) : undefined,
    setInterval(nodes, NODES_EVERY_MS),
    prune ? setInterval(prune, everyMs) : undefined,
  ];
  for (const t of timers) t?.unref();
  nodes();
  prune?.();
  return {
    async stop() {
      for (const t of timers) clearInterval(t);
      await Promise.all([...pending]);
    },
  };
}
