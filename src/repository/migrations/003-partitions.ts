import type { Dialect } from '../tx.ts';
import { types } from './types.ts';

/**
 * Partitions are step executions too: each has a manager (the partitioned step's execution),
 * an owner and epoch of its own (claimed and fenced like executions), and optionally a node it
 * must run on (local partitioning).
 */
export function partitionSchema(d: Dialect): string[] {
  const { big } = types(d);
  return [
    `ALTER TABLE ns_step_execution ADD COLUMN manager_id ${big}`,
    `ALTER TABLE ns_step_execution ADD COLUMN owner_node_id ${big}`,
    `ALTER TABLE ns_step_execution ADD COLUMN owner_epoch INTEGER NOT NULL DEFAULT 0`,
    `ALTER TABLE ns_step_execution ADD COLUMN target_node TEXT`,
    `CREATE INDEX ns_step_execution_queued ON ns_step_execution (id) WHERE status = 'STARTING' AND manager_id IS NOT NULL`,
    `CREATE INDEX ns_step_execution_manager ON ns_step_execution (manager_id) WHERE manager_id IS NOT NULL`,
    `CREATE INDEX ns_step_execution_owner ON ns_step_execution (owner_node_id) WHERE status = 'STARTED' AND manager_id IS NOT NULL`,
  ];
}
