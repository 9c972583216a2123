import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Nightshift } from '../operator.ts';
import { executionCounts, foldExecutionCountsIfBacklog } from '../repository/retention.ts';

/** A Prometheus registry, and the scrape that refreshes it from the repository. */
export interface Metrics {
  /** The prom-client registry holding the metrics (add your own to it). */
  readonly registry: Registry;
  /** Reads the repository, then renders every metric in the text exposition format. */
  scrape(): Promise<string>;
}

/**
 * Prometheus metrics of a cluster, read from the job repository at each scrape: every process
 * serving them reports the same numbers, so scrape one (or all, and aggregate with max).
 * This process's own metrics (CPU, memory, event-loop lag) come with them.
 */
export function createMetrics(ns: Nightshift): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const executions = new Gauge({
    name: 'nightshift_executions',
    help: 'Job executions in the repository, by job and batch status',
    labelNames: ['job', 'status'],
    registers: [registry],
  });
  const nodes = new Gauge({ name: 'nightshift_nodes', help: 'Cluster nodes (the newest incarnation of each name, and every live one), by status (alive, dead, left)', labelNames: ['status'], registers: [registry] });
  const running = new Gauge({
    name: 'nightshift_node_running_executions',
    help: 'Executions each live node is running',
    labelNames: ['node'],
    registers: [registry],
  });
  const oldestQueued = new Gauge({
    name: 'nightshift_oldest_queued_seconds',
    help: 'How long the oldest execution waiting for a node has waited (queued, claimed by no node), by the database\'s clock; 0 when none waits',
    registers: [registry],
  });
  return {
    registry,
    async scrape() {
      // The counters kept as executions change state (never a GROUP BY over history), and the
      // newest incarnation of each node name. Nodes fold the counters' deltas every second; a
      // scrape folds only a backlog (no node running), so that its own reads stay short.
      await foldExecutionCountsIfBacklog(ns.db);
      const [counts, members, waitedMs] = await Promise.all([executionCounts(ns.db), ns.nodes(), ns.explorer.oldestQueuedAgeMs()]);
      // All data first, then every gauge set with no await in between: scrapes that overlap
      // cannot mix their counts.
      executions.reset();
      for (const r of counts) executions.set({ job: r.job, status: r.status }, r.count);
      nodes.reset();
      for (const status of ['alive', 'dead', 'left']) nodes.set({ status }, members.filter((n) => n.status === status).length);
      oldestQueued.set(waitedMs / 1000);
      running.reset();
      // Summed: two live incarnations of one name (a restart within the lease) are one series.
      for (const n of members) if (n.status === 'alive') running.inc({ node: n.name }, n.running.length);
      return registry.metrics();
    },
  };
}
