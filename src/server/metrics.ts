import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Nightshift } from '../operator.ts';
import { SQL } from '../repository/sql.ts';

/**
 * Prometheus metrics of a cluster, read from the job repository at each scrape: every process
 * serving them reports the same numbers, so scrape one (or all, and aggregate with max).
 * This process's own metrics (CPU, memory, event-loop lag) come with them.
 */
export function createMetrics(ns: Nightshift): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'nightshift_executions',
    help: 'Job executions in the repository, by job and batch status',
    labelNames: ['job', 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await ns.db.query<{ job_name: string; status: string; n: number | string }>(SQL.executionCounts);
      for (const r of rows) this.set({ job: r.job_name, status: r.status }, Number(r.n));
    },
  });
  // One repository read per scrape serves both node gauges (a scrape collects them together).
  let latest: ReturnType<Nightshift['nodes']> | undefined;
  const nodesOnce = () => (latest ??= ns.nodes().finally(() => setImmediate(() => (latest = undefined))));
  new Gauge({
    name: 'nightshift_nodes',
    help: 'Cluster nodes, by status (alive, dead, left)',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const status of ['alive', 'dead', 'left']) this.set({ status }, 0);
      for (const n of await nodesOnce()) this.inc({ status: n.status });
    },
  });
  new Gauge({
    name: 'nightshift_node_running_executions',
    help: 'Executions each live node is running',
    labelNames: ['node'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const n of await nodesOnce()) if (n.status === 'alive') this.set({ node: n.name }, n.running.length);
    },
  });
  return registry;
}
