import type { Dialect } from '../tx.ts';
import { types } from './types.ts';

/**
 * Version 4: what the HTTP API needs to run production from.
 *
 * - `ns_audit`: one row per action taken through the API or the CLI (who, what, on what, when by the
 *   database's clock, from where, and how it ended), paged newest first by id.
 * - `ns_node.drain_requested_at`: an operator asked this node to drain (stop taking work and hand
 *   its executions over, as on SIGTERM, but stay up). The node sees it in its membership loop.
 * - Indexes for the execution list's filters, each ending in `id` so a page is one index range
 *   read newest first (`id < cursor ORDER BY id DESC LIMIT n`), and for the live-events poll
 *   (`last_updated`), which reads only what changed since its last look.
 */
export function operationsSchema(d: Dialect): string[] {
  const { id, big } = types(d);
  return [
    `CREATE TABLE ns_audit (
      id ${id},
      at ${big} NOT NULL,
      actor TEXT,
      role TEXT,
      action TEXT NOT NULL,
      target TEXT,
      detail TEXT,
      remote TEXT,
      outcome TEXT NOT NULL,
      status_code INTEGER,
      message TEXT
    )`,
    `CREATE INDEX ns_audit_actor ON ns_audit (actor, id)`,
    `CREATE INDEX ns_audit_action ON ns_audit (action, id)`,
    `ALTER TABLE ns_node ADD COLUMN drain_requested_at ${big}`,
    `CREATE INDEX ns_node_ended ON ns_node (ended_at) WHERE ended_at IS NOT NULL`,
    `CREATE INDEX ns_job_execution_status ON ns_job_execution (status, id)`,
    `CREATE INDEX ns_job_execution_node ON ns_job_execution (node_name, id)`,
    `CREATE INDEX ns_job_execution_created ON ns_job_execution (create_time, id)`,
    `CREATE INDEX ns_job_execution_updated ON ns_job_execution (last_updated)`,
  ];
}
