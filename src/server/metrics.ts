import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Nightshift } from '../operator.ts';
import { ENDED_STATUSES } from '../repository/migrations/012-ended-counters.ts';
import { endedCounts, executionCounts, foldExecutionCountsIfBacklog } from '../repository/retention.ts';

/** A Prometheus registry, and the scrape that refreshes it from the repository. */
export interface Metrics {
  /** The prom-client registry holding the metrics: the one given in {@link MetricsOptions}, else their own (add yours to it). */
  readonly registry: Registry;
  /** Renders every metric of the registry in the text exposition format (`registry.metrics()`, which reads the repository). */
  scrape(): Promise<string>;
}

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /**
   * The registry to add Nightshift's metrics to: your application's own, so that its `/metrics`
   * serves them with yours. Nightshift's metrics read the repository whenever the registry is
   * collected (`registry.metrics()`, as your route calls it), so nothing else has to refresh them.
   * Default: a registry of their own.
   */
  registry?: Registry | undefined;
  /**
   * Also collect this process's default metrics (CPU, memory, event-loop lag: prom-client's
   * `collectDefaultMetrics`) into the registry. Default: true for a registry of their own, false
   * for one you give, which has its own already (registering them twice throws).
   */
  defaultMetrics?: boolean | undefined;
}

/**
 * Prometheus metrics of a cluster, read from the job repository at each scrape: every process
 * serving them reports the same numbers, so scrape one (or all, and aggregate with max).
 * `nightshift_executions` is a gauge of the executions the repository holds (a prune lowers it);
 * `nightshift_executions_ended_total` is a counter of the executions that ended, kept in the
 * repository, which only goes up (for `rate()` and `increase()`).
 * This process's own metrics (CPU, memory, event-loop lag) come with them, unless they go into a
 * registry of yours (see {@link MetricsOptions}): `createMetrics(ns, { registry })` adds them to
 * your application's registry, whose `metrics()` then reads the repository at each scrape.
 * While the repository does not answer, a scrape still succeeds, as exporters' do: it reports
 * `nightshift_repository_up 0` (1 when it read the repository) and the process's metrics, leaves
 * the others out (no series rather than stale ones), and the log says why, once per scrape.
 */
export function createMetrics(ns: Nightshift, options: MetricsOptions = {}): Metrics {
  const registry = options.registry ?? new Registry();
  if (options.defaultMetrics ?? !options.registry) collectDefaultMetrics({ register: registry });
  // Every metric below reads the repository when collected; the collects of one
  // `registry.metrics()` start together and share one read (see refresh).
  const collect = () => refresh();
  const executions = new Gauge({
    name: 'nightshift_executions',
    help: 'Job executions in the repository, by job and batch status',
    labelNames: ['job', 'status'],
    registers: [registry],
    collect,
  });
  // A counter of the cluster's ends, kept in the repository (migration 12), not in this process:
  // the process serving /metrics (`nightshift serve`) runs no job, and every process serving it
  // reports the same numbers, which neither a restart of it nor a prune lowers.
  const ended = new Counter({
    name: 'nightshift_executions_ended_total',
    help: 'Job executions that ended, by job and the status they ended in (a later abandon counts again as ABANDONED); kept in the repository, so prune does not lower it',
    labelNames: ['job', 'status'],
    registers: [registry],
    collect,
  });
  const nodes = new Gauge({ name: 'nightshift_nodes', help: 'Cluster nodes (the newest incarnation of each name, and every live one), by status (alive, dead, left)', labelNames: ['status'], registers: [registry], collect });
  const running = new Gauge({
    name: 'nightshift_node_running_executions',
    help: 'Executions each live node is running',
    labelNames: ['node'],
    registers: [registry],
    collect,
  });
  const oldestQueued = new Gauge({
    name: 'nightshift_oldest_queued_seconds',
    help: 'How long the oldest execution waiting for a node has waited (queued, claimed by no node), by the database\'s clock; 0 when none waits',
    registers: [registry],
    collect,
  });
  const draining = new Gauge({
    name: 'nightshift_nodes_draining',
    help: 'Live nodes asked to drain: they take no work (counted as alive in nightshift_nodes); a drain left in place shows here',
    registers: [registry],
    collect,
  });
  const heartbeatAge = new Gauge({
    name: 'nightshift_node_heartbeat_age_seconds',
    help: "Seconds since each live node's last heartbeat, by the database's clock: near the heartbeat interval while it is well; peers declare it dead past its lease",
    labelNames: ['node'],
    registers: [registry],
    collect,
  });
  const up = new Gauge({
    name: 'nightshift_repository_up',
    help: 'Whether this scrape read the job repository (1) or it did not answer (0: the other nightshift_ metrics are left out)',
    registers: [registry],
    collect,
  });
  const ours = [executions, ended, nodes, running, oldestQueued, draining, heartbeatAge];
  const unread = (err: unknown): void => {
    // No series rather than stale ones; an unlabelled metric's reset leaves it at 0, which would
    // read as "nothing waits": remove() takes its one series out.
    for (const m of ours) m.reset();
    for (const m of [oldestQueued, draining]) m.remove();
    up.set(0);
    ns.log.warn({ err }, "Prometheus metrics: the job repository did not answer; this scrape reports nightshift_repository_up 0 and leaves Nightshift's other metrics out");
  };
  let reading: Promise<void> | undefined;
  const refresh = (): Promise<void> => (reading ??= read().catch(unread).finally(() => (reading = undefined)));
  const read = async (): Promise<void> => {
    // The counters kept as executions change state (never a GROUP BY over history), and the
    // newest incarnation of each node name. Nodes fold the counters' deltas every second; a
    // scrape folds only a backlog (no node running), so that its own reads stay short.
    await foldExecutionCountsIfBacklog(ns.db);
    const [counts, ends, members, waitedMs, now] = await Promise.all([
      executionCounts(ns.db), endedCounts(ns.db), ns.nodes(), ns.explorer.oldestQueuedAgeMs(), ns.explorer.dbNow(),
    ]);
    // All data first, then every gauge set with no await in between: scrapes that overlap
    // cannot mix their counts.
    executions.reset();
    for (const r of counts) executions.set({ job: r.job, status: r.status }, r.count);
    // Every ended status of every job the repository knows, 0 until one ends so: a series that
    // appears at 1 shows no increase() to an alert.
    ended.reset();
    for (const job of new Set([...counts, ...ends].map((r) => r.job))) for (const status of ENDED_STATUSES) ended.inc({ job, status }, 0);
    for (const r of ends) ended.inc({ job: r.job, status: r.status }, r.count);
    nodes.reset();
    for (const status of ['alive', 'dead', 'left']) nodes.set({ status }, members.filter((n) => n.status === status).length);
    oldestQueued.set(waitedMs / 1000);
    running.reset();
    // Summed: two live incarnations of one name (a restart within the lease) are one series.
    for (const n of members) if (n.status === 'alive') running.inc({ node: n.name }, n.running.length);
    const live = members.filter((n) => n.status === 'alive');
    draining.set(live.filter((n) => n.draining).length);
    heartbeatAge.reset();
    // Two live incarnations of one name: the one that beat last speaks for the name.
    const ages = new Map<string, number>();
    for (const n of live) ages.set(n.name, Math.min(ages.get(n.name) ?? Infinity, Math.max(0, now - n.lastHeartbeat.getTime()) / 1000));
    for (const [node, age] of ages) heartbeatAge.set({ node }, age);
    up.set(1);
  };
  return { registry, scrape: () => registry.metrics() };
}
