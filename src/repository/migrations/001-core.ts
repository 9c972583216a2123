import type { Dialect } from '../tx.ts';
import { types } from './types.ts';

/** Version 1: nodes, job instances, job executions and step executions. */
export function coreSchema(d: Dialect): string[] {
  const { id, big } = types(d);
  return [
    `CREATE TABLE ns_node (
      id ${id},
      name TEXT NOT NULL,
      cluster TEXT NOT NULL,
      host TEXT NOT NULL,
      pid INTEGER NOT NULL,
      kind TEXT NOT NULL,
      status TEXT NOT NULL,
      jobs TEXT NOT NULL,
      concurrency INTEGER NOT NULL,
      heartbeat_ms INTEGER NOT NULL,
      lease_ms INTEGER NOT NULL,
      started_at ${big} NOT NULL,
      last_heartbeat ${big} NOT NULL,
      lease_until ${big} NOT NULL,
      ended_at ${big},
      end_reason TEXT
    )`,
    `CREATE INDEX ns_node_alive ON ns_node (lease_until) WHERE status = 'alive'`,
    `CREATE TABLE ns_job_instance (
      id ${id},
      job_name TEXT NOT NULL,
      job_key TEXT NOT NULL,
      identifying_params TEXT NOT NULL,
      create_time ${big} NOT NULL,
      UNIQUE (job_name, job_key)
    )`,
    `CREATE TABLE ns_job_execution (
      id ${id},
      instance_id ${big} NOT NULL REFERENCES ns_job_instance (id),
      job_name TEXT NOT NULL,
      status TEXT NOT NULL,
      exit_code TEXT NOT NULL,
      exit_description TEXT NOT NULL DEFAULT '',
      params TEXT NOT NULL,
      create_time ${big} NOT NULL,
      start_time ${big},
      end_time ${big},
      last_updated ${big},
      version INTEGER NOT NULL DEFAULT 0,
      owner_node_id ${big},
      owner_epoch INTEGER NOT NULL DEFAULT 0,
      node_name TEXT,
      context TEXT NOT NULL DEFAULT '{}',
      target_node TEXT,
      affinity_key TEXT
    )`,
    `CREATE INDEX ns_job_execution_instance ON ns_job_execution (instance_id)`,
    `CREATE INDEX ns_job_execution_job ON ns_job_execution (job_name, id)`,
    `CREATE INDEX ns_job_execution_queued ON ns_job_execution (id) WHERE status = 'STARTING'`,
    `CREATE INDEX ns_job_execution_affinity ON ns_job_execution (affinity_key, id) WHERE affinity_key IS NOT NULL`,
    `CREATE INDEX ns_node_name ON ns_node (name, id)`,
    `CREATE INDEX ns_job_execution_running ON ns_job_execution (owner_node_id) WHERE status IN ('STARTING', 'STARTED', 'STOPPING')`,
    `CREATE TABLE ns_step_execution (
      id ${id},
      job_execution_id ${big} NOT NULL REFERENCES ns_job_execution (id),
      step_name TEXT NOT NULL,
      status TEXT NOT NULL,
      exit_code TEXT NOT NULL,
      exit_description TEXT NOT NULL DEFAULT '',
      read_count ${big} NOT NULL DEFAULT 0,
      write_count ${big} NOT NULL DEFAULT 0,
      filter_count ${big} NOT NULL DEFAULT 0,
      read_skip_count ${big} NOT NULL DEFAULT 0,
      process_skip_count ${big} NOT NULL DEFAULT 0,
      write_skip_count ${big} NOT NULL DEFAULT 0,
      commit_count ${big} NOT NULL DEFAULT 0,
      rollback_count ${big} NOT NULL DEFAULT 0,
      start_time ${big},
      end_time ${big},
      last_updated ${big},
      version INTEGER NOT NULL DEFAULT 0,
      context TEXT NOT NULL DEFAULT '{}',
      node_name TEXT
    )`,
    `CREATE INDEX ns_step_execution_job ON ns_step_execution (job_execution_id)`,
  ];
}
