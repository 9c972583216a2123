import type { Dialect } from './tx.ts';
import { coreSchema } from './migrations/001-core.ts';
import { schedulerSchema } from './migrations/002-scheduler.ts';
import { partitionSchema } from './migrations/003-partitions.ts';
import { operationsSchema } from './migrations/004-operations.ts';
import { historySchema } from './migrations/005-history.ts';
import { historyFiltersSchema } from './migrations/006-history-filters.ts';
import { bulkSubmitSchema } from './migrations/007-bulk-submit.ts';
import { drainSchema } from './migrations/008-drain.ts';
import { claimOrderSchema } from './migrations/009-claim-order.ts';
import { claimByJobSchema } from './migrations/010-claim-by-job.ts';
import { claimByKeyRangeSchema } from './migrations/011-claim-by-key-range.ts';
import { endedCountersSchema } from './migrations/012-ended-counters.ts';
import { endedInStatementSchema } from './migrations/013-ended-in-statement.ts';
import { genericQueuePlansSchema } from './migrations/014-generic-queue-plans.ts';
import { newestInstanceSchema } from './migrations/015-newest-instance.ts';
import { executionsByInstanceSchema } from './migrations/016-executions-by-instance.ts';
import { drainingNodesSchema } from './migrations/017-draining-nodes.ts';
import { claimWindowSchema } from './migrations/018-claim-window.ts';
import { triggerTimesSchema } from './migrations/019-trigger-times.ts';

/**
 * The repository schema, as ordered migrations, one file each in ./migrations. Times are epoch
 * milliseconds (UTC) from the database's clock (`ns_now()`), so both dialects compare them the
 * same way. JSON is stored as text. Each migration runs once, in a transaction, and bumps
 * `schema_version` in ns_meta. Append new migrations; never edit one that has shipped.
 */
const MIGRATIONS: ((d: Dialect) => string[])[] = [
  coreSchema, schedulerSchema, partitionSchema, operationsSchema, historySchema, historyFiltersSchema, bulkSubmitSchema, drainSchema, claimOrderSchema, claimByJobSchema,
  claimByKeyRangeSchema, endedCountersSchema, endedInStatementSchema, genericQueuePlansSchema, newestInstanceSchema,
  executionsByInstanceSchema, drainingNodesSchema, claimWindowSchema, triggerTimesSchema,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Migrations that a process of the version before can run on: they change nothing that version
 * reads or writes the meaning of (a function replaced by one with the same contract, an index, a
 * column that version never reads and need not write). Listed here only after checking that
 * version's statements against the migration; a migration not listed needs every process
 * upgraded before it runs.
 */
const KEEPS_PREVIOUS: ReadonlySet<(d: Dialect) => string[]> = new Set([claimWindowSchema]);

/**
 * The oldest schema version whose processes can run on a repository at `version` (stored as
 * ns_meta's `compatible_from` by each migration): nodes of that version or later keep running,
 * and may restart, while the others are upgraded one at a time.
 */
export function compatibleFrom(version: number = SCHEMA_VERSION): number {
  let from = version;
  while (from > 1 && KEEPS_PREVIOUS.has(MIGRATIONS[from - 1])) from--;
  return from;
}

/** The schema version a migration brings the repository to (its place in the list). */
export function versionOf(migration: (d: Dialect) => string[]): number {
  return MIGRATIONS.indexOf(migration) + 1;
}

/** Migrations by target version; index 0 brings an empty database to version 1. */
export function migrations(d: Dialect): string[][] {
  return MIGRATIONS.map((m) => m(d));
}
