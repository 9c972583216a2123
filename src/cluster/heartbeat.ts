import { Worker } from 'node:worker_threads';
import type { Database } from '../repository/database.ts';
import { parsePgUrl, pgClientConfig } from '../repository/postgres.ts';
import { SQL } from '../repository/sql.ts';
import type { LeaseOptions, NodeIdentity } from './node-identity.ts';
import type { Logger } from '../core/logger.ts';

export interface HeartbeatEvents {
  /** The node was declared dead by a peer: everything it runs is fenced and must be dropped. */
  onLost(): void;
  /** Executions of this node that an operator asked to stop. */
  onStopRequested(ids: number[]): void;
  /** After each renewal of the lease. */
  onBeat?(): void;
  /** After each beat of a node started with a {@link NodeProbe}: what SQL.nodeProbe read. */
  onProbe?(probe: ProbeResult): void;
}

/** What a cluster node's heartbeat thread reads after each beat (see SQL.nodeProbe). */
export interface NodeProbe {
  /** The node's job names, as its claim takes them (an array on PostgreSQL, JSON on SQLite). */
  jobs: unknown;
  /** A peer whose lease runs out within this many ms is late (or expired). */
  lateMs: number;
}

/** A probe's answer. */
export interface ProbeResult {
  drainRequested: boolean;
  /** Changes when a node joins or an incarnation ends. */
  membership: string;
  /** A peer is late (two heartbeats missed) or its lease ran out. */
  late: boolean;
  /** Work this node could claim is queued. */
  queued: boolean;
  /** Execution count deltas wait to be folded (PostgreSQL). */
  countsPending: boolean;
}

export interface Heartbeat {
  /**
   * Settles once the worker has made its first attempt to renew the lease (or died trying), or
   * after one heartbeat interval at most. Awaiting it keeps the worker's start-up (a thread, a
   * connection) out of the first chunks.
   */
  readonly started: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts renewing a node's lease from a worker thread (see heartbeat-worker.js), with an
 * event-loop watchdog fed by pings from this thread.
 */
export function startHeartbeat(
  db: Database,
  node: NodeIdentity,
  lease: LeaseOptions,
  events: HeartbeatEvents,
  log: Logger,
  probe?: NodeProbe,
): Heartbeat {
  const sqlitePath = db.dialect === 'sqlite' ? db.connectUrl.slice('sqlite:'.length) : undefined;
  const pgConfig = db.dialect === 'postgres' ? pgClientConfig(parsePgUrl(db.connectUrl), {}, 'heartbeat') : undefined;
  const worker = new Worker(new URL('./heartbeat-worker.js', import.meta.url), {
    workerData: {
      dialect: db.dialect,
      sqlitePath,
      pgConfig: pgConfig && { connectionString: pgConfig.connectionString, options: pgConfig.options, application_name: pgConfig.application_name },
      nodeId: node.id,
      intervalMs: lease.heartbeatMs,
      stuckAfterMs: lease.stuckAfterMs,
      sql: { heartbeat: SQL.heartbeat, stopping: SQL.stoppingOfNode },
      probe: probe && { sql: SQL.nodeProbe(db.dialect), jobs: probe.jobs, name: node.name, lateMs: probe.lateMs },
    },
    // Plain JavaScript needs no loader. Inheriting this process's flags would boot a TypeScript
    // loader (tsx) in the worker too: about 100 ms of CPU, spent while the first chunks run.
    execArgv: [],
  });
  const ping = setInterval(() => worker.postMessage('ping'), Math.max(10, Math.min(1000, lease.heartbeatMs / 2)));
  ping.unref();
  let lost = false;
  let failing = false;
  let stopping = false;
  let markStarted!: () => void;
  // The worker keeps the process alive until it has started; from then on it beats unref'd.
  const started = new Promise<void>((resolve) => (markStarted = resolve)).then(() => {
    if (!stopping) worker.unref();
  });
  // From the start: a worker that ended on its own has nothing left to wait for when stopped.
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  void exited.then(() => markStarted());
  // A first beat that takes longer than a heartbeat interval holds up nothing beyond that.
  setTimeout(() => markStarted(), lease.heartbeatMs).unref();
  worker.on('message', (msg: { type: string; ids?: number[]; message?: string; lagMs?: number } & Partial<ProbeResult>) => {
    markStarted();
    switch (msg.type) {
      case 'beat':
        if (failing) log.info('heartbeat restored');
        failing = false;
        if (!lost) events.onBeat?.();
        break;
      case 'lost':
        if (!lost) {
          lost = true;
          log.error(`node ${node.name} was declared dead by the cluster; dropping its work`);
          events.onLost();
        }
        break;
      case 'stopping':
        events.onStopRequested(msg.ids ?? []);
        break;
      case 'probe':
        if (!lost) events.onProbe?.({ drainRequested: !!msg.drainRequested, membership: String(msg.membership), late: !!msg.late, queued: !!msg.queued, countsPending: !!msg.countsPending });
        break;
      case 'stuck':
        log.error({ lagMs: msg.lagMs }, 'event loop blocked: withholding heartbeat');
        break;
      case 'error':
        if (!failing) log.warn({ err: msg.message }, 'heartbeat failed; retrying');
        failing = true;
        break;
    }
  });
  worker.on('error', (err) => {
    markStarted();
    log.error({ err }, 'heartbeat worker crashed');
  });
  // Once: a second stop would wait its whole timeout for an exit that has already happened.
  let stopped: Promise<void> | undefined;
  return {
    started,
    stop() {
      return (stopped ??= (async () => {
        stopping = true;
        clearInterval(ping);
        // Keep the process alive until the worker is gone (it is unref'd while it beats).
        worker.ref();
        worker.postMessage('stop');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 2000)))]);
        clearTimeout(timer);
        await worker.terminate().catch(() => undefined);
      })());
    },
  };
}
