import type { Dialect } from '../tx.ts';
import { types } from './types.ts';

/**
 * Version 2: the scheduler's triggers and their fire log.
 *
 * A trigger's `next_fire_time` is the one fire time still to come; firing it is a conditional
 * UPDATE of that column (`WHERE next_fire_time = $cur`) in the same transaction as the launch, so
 * each fire time starts at most one execution. The fire log's primary key (trigger, fire time)
 * guards the same invariant a second time and records misfires. Booleans are 0/1 integers on both
 * dialects.
 */
export function schedulerSchema(d: Dialect): string[] {
  const { big } = types(d);
  return [
    `CREATE TABLE ns_trigger (
      name TEXT PRIMARY KEY,
      job_name TEXT NOT NULL,
      cron_expr TEXT,
      time_zone TEXT,
      every_ms ${big},
      params TEXT NOT NULL DEFAULT '{}',
      misfire TEXT NOT NULL,
      misfire_threshold_ms ${big} NOT NULL,
      no_concurrent INTEGER NOT NULL DEFAULT 0,
      paused INTEGER NOT NULL DEFAULT 0,
      next_fire_time ${big},
      last_fire_time ${big},
      last_execution_id ${big},
      last_instance_id ${big},
      source TEXT NOT NULL,
      version INTEGER NOT NULL DEFAULT 0,
      create_time ${big} NOT NULL,
      update_time ${big} NOT NULL
    )`,
    `CREATE INDEX ns_trigger_due ON ns_trigger (next_fire_time) WHERE paused = 0 AND next_fire_time IS NOT NULL`,
    `CREATE TABLE ns_trigger_fire (
      trigger_name TEXT NOT NULL,
      fire_time ${big} NOT NULL,
      fired_at ${big} NOT NULL,
      node_name TEXT,
      outcome TEXT NOT NULL,
      execution_id ${big},
      missed_from ${big},
      detail TEXT,
      PRIMARY KEY (trigger_name, fire_time)
    )`,
    `CREATE INDEX ns_trigger_fire_time ON ns_trigger_fire (fired_at)`,
  ];
}
