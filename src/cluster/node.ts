import { EventEmitter } from 'node:events';
import { UsageError, errorMessage } from '../core/errors.ts';
import { hasPartitionedStep, runnableJob, type JobDefinition, type SomeJob } from '../core/job.ts';
import { createLogger, redactingLogger, type Logger } from '../core/logger.ts';
import type { ParamsSchema } from '../core/params.ts';
import type { ExecutionSummary, JobExecution, StepExecution } from '../core/model.ts';
import { createHandle, findHandle, type ExecutionHandle } from '../engine/execution-handle.ts';
import { runJobExecution } from '../engine/job-run.ts';
import { claimPartitions, releasePartition, runPartition } from '../engine/partition-worker.ts';
import { runStep } from '../engine/step-runner.ts';
import type { Database } from '../repository/database.ts';
import { createJobExplorer, toJobExecution, toStepExecution } from '../repository/job-repository.ts';
import { openDatabase } from '../repository/open.ts';
import { drainRequested, liveNamesakes, registeredJobs, requestDrain, resumeNode } from '../repository/nodes.ts';
import { SQL } from '../repository/sql.ts';
import { startScheduler, type Scheduler } from '../scheduler/scheduler.ts';
import type { ScheduleSpec } from '../scheduler/triggers.ts';
import { claimShare, wakeTurn } from './fair-share.ts';
import { handOverExecution, reapDeadNodes, releaseExecution } from './failover.ts';
import { retryingConnectionErrors } from '../repository/connection-errors.ts';
import { startHousekeeping, validateHousekeeping, type HousekeepingOptions } from './housekeeping.ts';
import { startHeartbeat, type Heartbeat, type ProbeResult } from './heartbeat.ts';
import { listenForLaunches } from './launch-listener.ts';
import { announceLaunch, encodeLaunchWake, type LaunchWake } from '../repository/announce.ts';
import { claimLimitedJob, limitedJobsQueued } from '../repository/max-running.ts';
import { idleLimit, isEarlierRun, registerNode, validateLease, validateNodeName, withLeaseDefaults, type LeaseOptions, type NodeIdentity } from './node-identity.ts';

/** What {@link startNode} takes. */
export interface NodeOptions {
  /**
   * The job repository (PostgreSQL for a cluster): a URL, or an open Database. From a URL the node
   * opens a pool of its own (`poolSize`, `poolIdleMs`) and closes it on shutdown. A Database you
   * opened (`openDatabase`, to share one pool with `createNightshift` in the same process) stays
   * open after shutdown, yours to close; `poolSize` and `poolIdleMs` do not apply to it: open it
   * with a pool of concurrency + 4 or more for the node, plus what your other uses need, and on
   * PostgreSQL with `idleInTransactionMs` no more than the lease's `leaseMs` (the node warns at
   * start otherwise: a paused node would keep its locks after its lease ran out).
   */
  db: string | Database;
  /** The jobs this node runs: it claims only executions of these. */
  jobs: readonly SomeJob[];
  /** Unique name in the cluster (default node-HOST-PID). */
  name?: string | undefined;
  /** The cluster name recorded with the node's identity (default `default`). */
  cluster?: string | undefined;
  /** Executions (and partitions) run at once. Default 4. */
  concurrency?: number | undefined;
  /** Heartbeat, lease and stuck-loop limits (defaults 1000 ms, 3500 ms, 30 s). */
  lease?: { [K in keyof LeaseOptions]?: LeaseOptions[K] | undefined } | undefined;
  /** Polling fallback for launches when no notification arrives. Default 1000 ms. */
  pollMs?: number | undefined;
  /**
   * Hold a LISTEN connection (PostgreSQL) that wakes the node at once when work is submitted, a
   * partition ends or a trigger changes (default true). With `false` the node holds one
   * connection less and learns of queued work from its heartbeat thread, which looks at every
   * beat (so a launch waits up to one heartbeat, 1 s by default), and from its polls; its
   * scheduler polls every second. For many nodes on a small `max_connections`, and behind a
   * pooler in transaction mode (which cannot LISTEN). See the README's connection budget.
   */
  listen?: boolean | undefined;
  /** Most connections the node's pool opens (PostgreSQL; default concurrency + 4). */
  poolSize?: number | undefined;
  /**
   * How long a pooled connection may sit idle before it is closed (PostgreSQL; default
   * 10,000 ms). An idle node's own checks run on its heartbeat connection, so with a value below
   * its poll and scheduler intervals (and `scheduler: false`) an idle node holds its heartbeat
   * connection only; each burst of work then opens a connection again.
   */
  poolIdleMs?: number | undefined;
  /** Where the node logs (default: pino JSON lines on stderr at NIGHTSHIFT_LOG_LEVEL). A logger of yours gets the node's lines with URL passwords hidden. */
  logger?: Logger | undefined;
  /** Declared triggers (a config's `schedules`), added or replaced at start. */
  schedules?: readonly ScheduleSpec[] | undefined;
  /** Run the scheduler loop that fires triggers (default true). */
  scheduler?: boolean | undefined;
  /**
   * How queued work is shared among the live nodes that run the same jobs. `even` (default): a
   * node claims at most its even share while others have free slots (work left waiting for two
   * polls is anyone's); `first-come`: a node claims all it has room for.
   */
  spread?: 'even' | 'first-come' | undefined;
  /** Ended node incarnations are deleted this long after they ended (default 7 days). */
  nodeRetentionMs?: HousekeepingOptions['nodeRetentionMs'] | undefined;
  /** Automatic history retention (`prune` with these rules, every `everyMs`); off unless given. */
  retention?: HousekeepingOptions['retention'] | undefined;
}

/**
 * Membership and failover events, as seen by this node, and the executions it runs. Listeners are
 * called in turn, synchronously; what one throws (or an async one rejects with) is logged as a
 * warning and the node goes on, the other listeners included.
 */
export interface NodeEvents {
  /** A node (this one or a peer) is seen alive for the first time. */
  joined: [NodeEvent];
  /** A peer missed two heartbeats (by the database's clock) but its lease has not run out yet. */
  suspected: [NodeEvent];
  /** A peer missed its lease and was declared dead, by the database's clock. */
  dead: [NodeEvent];
  /** A peer shut down gracefully. */
  left: [NodeEvent];
  /** An execution of a dead node was failed and queued again to resume elsewhere. */
  failover: [
    {
      /** The dead node. */
      node: string;
      /** The execution that was marked FAILED. */
      failedExecutionId: number;
      /** The execution queued to resume it, or null when it is not resumed on its own (a one-shot process's execution, or a child of a job step, which its parent's restart resumes). */
      newExecutionId: number | null;
    },
  ];
  /** This node was declared dead while it lived (paused, cut off): it dropped its work and rejoined. */
  lost: [NodeEvent];
  /** An operator asked this node to drain: it takes no more work and hands over what it runs. */
  draining: [NodeEvent];
  /** The drain request was withdrawn (see {@link ClusterNode.resume}): this draining node takes work again. */
  resumed: [NodeEvent];
  /**
   * An execution this node claimed starts running here: the execution as the claim left it in
   * the repository (status STARTED, `node` this node, `startTime` set; `params` all its
   * parameters). Emitted once per execution this node claims, before its first step runs; a
   * restart or a failover that resumes it elsewhere is another execution, with its own events
   * on the node that claims it. Not emitted for the child executions of job steps, nor for
   * partitions run for a partitioned step. The node claims nothing until the turn of the event
   * loop after {@link startNode} resolves: listeners attached as soon as it does hear every one.
   */
  executionStarted: [JobExecution];
  /**
   * An execution this node ran (see `executionStarted`, which always came first) is no longer
   * this node's to run. Emitted once per execution, after its end was written, with the
   * execution read back from the repository then (see {@link ExecutionEnd}); if that read fails
   * (the repository unreachable for longer than the lease), the node logs it instead. The event
   * costs that one read per execution, made only while a listener is attached.
   */
  executionEnded: [ExecutionEnd];
}

/** What {@link NodeEvents.executionEnded} carries. */
export interface ExecutionEnd {
  /**
   * The execution as the repository holds it once this node is done with it, read back then; its
   * `restartedAs` names the execution queued to resume its instance, if any (see `ending`).
   */
  execution: ExecutionSummary;
  /**
   * Why it ended here:
   * - `ended`: it ran to an end this node recorded: COMPLETED, FAILED (a step or a listener
   *   threw: `exitStatus.description` says what), or STOPPED (an operator's stop), as the job's
   *   flow ended it; a FAILED or STOPPED one is not resumed unless someone restarts it.
   * - `handedOver`: this node drained or shut down, so the execution stopped at a chunk
   *   boundary: STOPPED, and in the same transaction queued again as `restartedAs` (STARTING, or
   *   already claimed by then) to resume from its last checkpoint on any node that runs its job.
   * - `lost`: this node lost ownership of it (its lease ran out, it was declared dead, or the
   *   execution was taken from it) and wrote no end: the status is what the cluster made of it,
   *   STARTED still under this node's old incarnation until a live node fails it over, or FAILED
   *   by that failover (`exitStatus.description` names the node), `restartedAs` resuming it.
   * - `released`: its end could not be recorded (the repository refused it): this node failed it,
   *   naming itself and the cause, and queued it again as `restartedAs`.
   */
  ending: 'ended' | 'handedOver' | 'lost' | 'released';
}

/** The node a membership event is about. */
export interface NodeEvent {
  /** The node's name. */
  node: string;
}

/** A running cluster node (see {@link startNode}); it emits {@link NodeEvents}. */
export interface ClusterNode extends EventEmitter<NodeEvents> {
  /** The node's name in the cluster. */
  readonly name: string;
  /** Executions this node is running now. */
  running(): number[];
  /**
   * Drains this node: like {@link shutdown} it stops claiming work and stops its running steps at
   * a chunk boundary to hand them over to other nodes, but it stays up (and alive) until shut
   * down. An operator can ask for the same through the repository (`POST /api/nodes/NAME/drain`).
   */
  drain(): Promise<void>;
  /**
   * Undoes a drain: withdraws this node's drain request and takes work again at once (claims,
   * polls, and its scheduler if it has one). What it handed over stays with the cluster; the node
   * may claim it again like any queued work. A node that is not draining is left as it is. An
   * operator can ask for the same through the repository (`POST /api/nodes/NAME/resume`); the
   * node sees that within a heartbeat.
   */
  resume(): Promise<void>;
  /**
   * Graceful shutdown: stop claiming, stop running steps at a chunk boundary, hand them over, leave.
   * It waits for the running steps to stop for up to `timeoutMs` (default 60,000 ms): give it less
   * than your platform's stop grace (Kubernetes' `terminationGracePeriodSeconds`, 30 s by
   * default), less what the rest of your shutdown takes. An execution still running then (a
   * chunk longer than that) is handed over as the node leaves: ended STOPPED and queued again in
   * one transaction, so that a live node resumes it at once from its last committed chunk; the
   * chunk under way here is fenced off (it rolls back). A {@link Database} you gave in
   * {@link NodeOptions.db} stays open; one it opened from a URL is closed. Calling it again
   * returns the first call's promise, and may shorten the wait (never lengthen it):
   * `shutdown({ timeoutMs: 0 })` during a shutdown hands over what still runs now (what
   * `nightshift node` does on a second signal).
   */
  shutdown(options?: { timeoutMs?: number }): Promise<void>;
  /**
   * This node's state now, for health and readiness probes (it reads nothing: call it as often as
   * probes come). See {@link NodeHealth}.
   */
  health(): NodeHealth;
}

/** What {@link ClusterNode.health} says. */
export interface NodeHealth {
  /**
   * `running`: takes work; `draining`: takes none and hands over what it ran, but stays a member
   * (see {@link ClusterNode.drain}); `stopping`: {@link ClusterNode.shutdown} is under way;
   * `stopped`: it has left the cluster.
   */
  readonly state: 'running' | 'draining' | 'stopping' | 'stopped';
  /**
   * Milliseconds since the node's heartbeat thread last renewed its lease, by this process's
   * monotonic clock; null before the first renewal and once stopped. It grows while the database
   * does not answer, while the event loop is blocked for longer than the lease's `stuckAfterMs`,
   * or if the heartbeat thread died.
   */
  readonly sinceLeaseRenewedMs: number | null;
  /** The node's lease (`lease.leaseMs`): a node not renewed for this long is declared dead by its peers. */
  readonly leaseMs: number;
  /**
   * Whether the lease was renewed within `leaseMs`: the cluster counts the node as alive, and what
   * it runs can commit. False while the database is unreachable, so a liveness probe that
   * restarts the process on it would restart every replica during a database outage: use it for
   * readiness, or for liveness only with a failure threshold longer than the outages you ride out.
   */
  readonly leaseCurrent: boolean;
  /** Whether the node takes work: `state` is `running` and `leaseCurrent`. */
  readonly ready: boolean;
  /** How many executions the node runs now (see {@link ClusterNode.running}). */
  readonly running: number;
}

/**
 * A Database the application opened itself may let a transaction sit idle longer than the lease
 * (`idleInTransactionMs` not given): then a paused owner keeps its locks after its lease ran out,
 * and the node that takes its work over waits for them. Said once, at start.
 */
async function warnIfIdleUnbounded(db: Database, limitMs: number, log: Logger): Promise<void> {
  if (db.dialect !== 'postgres') return;
  const [row] = await db.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'");
  const ms = Number(row?.setting);
  if (ms > 0 && ms <= limitMs) return;
  log.warn(
    `the Database this node was given lets a transaction sit idle ${ms > 0 ? `for ${ms} ms` : 'for ever'} (idle_in_transaction_session_timeout): ` +
      `open it with idleInTransactionMs: ${limitMs} (the lease) or less, so that a paused node's locks are released by the time its lease runs out`,
  );
}

/** Starts a cluster node: it registers, heartbeats, claims submitted work, and watches peers. */
export async function startNode(options: NodeOptions): Promise<ClusterNode> {
  validateNodeName(options.name);
  const lease: LeaseOptions = withLeaseDefaults(options.lease);
  validateLease(lease);
  validateHousekeeping(options);
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError(`concurrency must be a positive integer, got ${concurrency}`);
  const spread = options.spread ?? 'even';
  if (spread !== 'even' && spread !== 'first-come') throw new UsageError(`spread must be even or first-come, got ${JSON.stringify(spread)}`);
  const poolSize = options.poolSize ?? concurrency + 4;
  if (!Number.isInteger(poolSize) || poolSize < 1) throw new UsageError(`poolSize must be a positive integer, got ${poolSize}`);
  const poolIdleMs = options.poolIdleMs;
  if (poolIdleMs !== undefined && (!Number.isInteger(poolIdleMs) || poolIdleMs < 10)) {
    throw new UsageError(`poolIdleMs must be a whole number of milliseconds >= 10, got ${poolIdleMs}`);
  }
  const log = (options.logger ? redactingLogger(options.logger) : createLogger()).child({ node: options.name });
  const db = typeof options.db === 'object' ? options.db : await openDatabase(options.db, { poolSize, idleTimeoutMs: poolIdleMs, idleInTransactionMs: idleLimit(lease), logger: log });
  if (typeof options.db === 'object') await warnIfIdleUnbounded(db, idleLimit(lease), log);
  const jobs = new Map<string, JobDefinition<ParamsSchema>>(options.jobs.map((j) => [j.name, runnableJob(j)]));
  const explorer = createJobExplorer(db);
  const emitter = new EventEmitter<NodeEvents>();
  const emit = <K extends keyof NodeEvents>(event: K, ...args: NodeEvents[K]) => emitSafely(emitter, log, event, args);
  const running = new Map<number, ExecutionHandle>();
  // The executions of `running` that still hold a slot of `concurrency` (their end not yet being written).
  const working = new Set<number>();
  const pollMs = options.pollMs ?? 1000;
  let shuttingDown = false;
  // Drained (see drain below): no more claims, running work handed over, still a member.
  let draining = false;
  let me: NodeIdentity;
  let heartbeat: Heartbeat;
  const names = [...jobs.keys()];
  const claimNames = db.dialect === 'postgres' ? names : JSON.stringify(names);
  // Jobs with a maxRunning are claimed apart (claimLimitedJob, under the job's slot lock); the
  // claim of the others stays one statement, with no cost added for the limit.
  const limited = [...jobs.values()].flatMap((j) => (j.maxRunning === undefined ? [] : [{ name: j.name, limit: j.maxRunning }]));
  const unlimited = [...jobs.values()].filter((j) => j.maxRunning === undefined);
  const unlimitedNames = unlimited.map((j) => j.name);
  const hotClaimNames = db.dialect === 'postgres' ? unlimitedNames : JSON.stringify(unlimitedNames);
  const limitedNames = db.dialect === 'postgres' ? limited.map((l) => l.name) : JSON.stringify(limited.map((l) => l.name));
  // Set once the node is up (see watch); probes that come earlier are dropped.
  const probes: { handle?: (p: ProbeResult) => void } = {};
  // Whether this incarnation's heartbeat thread has renewed its lease (its first lease is long:
  // see FIRST_LEASE_MS); the node claims nothing before.
  let beaten = false;
  // When the lease was last renewed (performance.now()), for health().
  let lastBeatAt: number | undefined;
  let stopped = false;
  let shutdownDone: Promise<void> | undefined;
  // When a shutdown stops waiting for running steps to reach a chunk boundary (Date.now()): its
  // timeout, or sooner when a later shutdown call gives a shorter one.
  let leaveBy = Infinity;
  // Whether a later shutdown call shortened the wait.
  let hurried = false;
  // Executions handed over by a shutdown that stopped waiting for them (see handOverNow).
  const handedOverNow = new Set<number>();
  // Set a turn of the event loop after startNode returned: the node claims nothing before, so
  // that listeners attached as soon as it resolves hear the first executionStarted.
  let returned = false;
  // Set to `wake` once the claim loop exists (the first beat may come while the node joins).
  let afterFirstBeat = () => {};

  const join = async () => {
    beaten = false;
    me = await registerNode(db, { kind: 'node', name: options.name, cluster: options.cluster, jobs: [...jobs.keys()], concurrency, lease });
    // A drained node that rejoins (declared dead while it lived) stays drained: its new
    // incarnation carries the request, or its probe would see none and resume it.
    if (draining) await requestDrain(db, me.name);
    heartbeat = startHeartbeat(db, me, lease, {
      onLost: () => void rejoin(),
      onStopRequested: (ids) => ids.forEach((id) => {
        const h = findHandle(running.values(), id);
        if (h) h.stopRequested = true;
      }),
      // Wakes that came before the first beat were dropped (a launch announced while the node
      // joined, the listener's catch-up): look once it may claim.
      onBeat: () => {
        lastBeatAt = performance.now();
        if (beaten) return;
        beaten = true;
        afterFirstBeat();
      },
      onProbe: (p) => probes.handle?.(p),
    }, log, { jobs: claimNames, lateMs: Math.max(0, lease.leaseMs - 2 * lease.heartbeatMs) });
    await heartbeat.started;
    // The warning comes first: whoever reads the joined line has read it too.
    const namesakes = (await liveNamesakes(db, me.id, me.name)).filter((n) => !isEarlierRun(n));
    if (namesakes.length) {
      log.warn(
        { namesakes },
        `node ${me.name} joined while another node named ${me.name} is alive (${namesakes.map((n) => `pid ${n.pid} on ${n.host}`).join(', ')}): ` +
          `give each node its own --name; until then both take work, and drain ${me.name} or --node ${me.name} reach either`,
      );
    }
    log.info({ jobs: [...jobs.keys()], concurrency, ...lease, repository: db.url, host: me.host, pid: me.pid }, `node ${me.name} joined`);
  };

  // Declared dead while alive: everything it ran now belongs to others (and is fenced). Drop it
  // and join again as a new incarnation.
  const rejoin = async () => {
    const old = me;
    for (const h of running.values()) h.lost.abort();
    for (const p of partitions.values()) p.handle?.lost.abort();
    emit('lost', { node: old.name });
    await heartbeat.stop().catch(() => undefined);
    if (!shuttingDown) await join().catch((err) => log.error({ err: errorMessage(err) }, 'rejoin failed'));
  };

  await join();

  // On PostgreSQL the claim itself starts the first step of jobs that begin with one and have no
  // beforeJob listener: a round trip and a commit less per launch.
  const firstSteps = db.dialect === 'postgres' ? unlimited.flatMap(startableInClaim) : [];
  const spreadEvenly = spread === 'even';
  // Without notifications on PostgreSQL the heartbeat's probe wakes the node (see watch): a
  // launch may wait a heartbeat before anyone looks, which must not make it stale already.
  const staleMs = Math.max(2 * pollMs, options.listen === false && db.dialect === 'postgres' ? 2 * lease.heartbeatMs : 0, 500);
  // While the queue is deeper than every live node has room for, each takes all it has room for:
  // the spread is read again only once the claims since may have drawn that surplus down.
  let deep = { surplus: 0, nodes: 1 };
  const share = async (room: number, firstLook: boolean, turns: number) => {
    if (!spreadEvenly || deep.surplus > 0) return room;
    // Launches whose turn this is take a slot each without reading the spread: the turns spread
    // lone launches. An idle node's share is at least one (see claimLimit): on a wake's first look
    // it takes that one without reading the spread too; the next look reads the spread for the rest.
    if (turns > 0) return Math.min(room, turns);
    if (firstLook && working.size === 0 && partitions.size === 0) return Math.min(room, 1);
    const s = await claimShare(db, { id: me.id, name: me.name, jobs: claimNames, staleMs }, room);
    deep = { surplus: s.surplus, nodes: s.nodes };
    return s.take;
  };
  const hotClaim = (free: number) =>
    !unlimitedNames.length
      ? Promise.resolve([])
      : firstSteps.length
      ? db.query<Record<string, unknown>>(SQL.claimStartingStep, [
          me.id, me.name, hotClaimNames, free, firstSteps.map((f) => f.job), firstSteps.map((f) => f.step),
        ])
      : db.query<Record<string, unknown>>(SQL.claim(db.dialect), [me.id, me.name, hotClaimNames, free]);
  // The limited jobs' queued work first, each job under its own slot lock, then the rest with the
  // slots left: a limited job takes at most its limit, so it cannot starve the others, while
  // after them it would wait behind every backlog of unlimited work, however much older it is.
  const claim = async (free: number) => {
    const rows: Record<string, unknown>[] = [];
    // One look for all of them (not one per job) at which have work queued for this node.
    const queued = limited.length ? await limitedJobsQueued(db, me.name, limitedNames) : new Set<string>();
    for (const l of limited) {
      if (rows.length >= free || shuttingDown || draining) break;
      if (queued.has(l.name)) rows.push(...(await claimLimitedJob(db, me, l.name, l.limit, free - rows.length)));
    }
    if (rows.length < free) rows.push(...(await hotClaim(free - rows.length)));
    return rows;
  };
  // Only jobs with a partitioned step can have partitions to claim.
  const partitionJobs = [...jobs.values()].filter((j) => hasPartitionedStep(j.flow)).map((j) => j.name);
  let claiming = false;
  let again = false;
  // Launches whose turn this node has (see onLaunch): the next look takes one each, without the
  // spread, and passes on those it has no room for.
  let turns: LaunchWake[] = [];
  // Whether work may be queued that this node has not looked for: its last claim took all it asked
  // for, or a launch came while it had no room. Where notifications tell of every launch, a freed
  // slot looks for work only then (elsewhere always): a lone launch costs one claim, not one more
  // per end. Polls remain the safety net.
  let maybeMore = true;
  const notified = db.dialect === 'postgres' && options.listen !== false;
  const slotFreed = () => {
    if (maybeMore || !notified) wake();
  };
  const wake = () => look(undefined);
  afterFirstBeat = wake;
  const look = (turn: LaunchWake | undefined) => {
    if (shuttingDown || draining || !beaten || !returned) {
      if (turn) passOn([turn]);
      return;
    }
    if (turn) turns.push(turn);
    if (claiming) {
      again = true;
      return;
    }
    claiming = true;
    // From the next turn of the event loop: executions that end together free their slots
    // together, and one claim takes work for all of them.
    setImmediate(async () => {
      try {
        let firstLook = true;
        do {
          again = false;
          const room = shuttingDown || draining ? 0 : concurrency - working.size - partitions.size;
          const mine = turns;
          turns = [];
          // Turns it has no room for go to the next node (an end or a claim may have filled it).
          passOn(mine.slice(Math.max(0, room)));
          if (room <= 0) {
            maybeMore = true;
            break;
          }
          const turn = Math.min(mine.length, room);
          let free = await share(room, firstLook, turn);
          firstLook = false;
          // A wake while the share was read (an end committed meanwhile) asks for another look.
          if (free <= 0) continue;
          if (shuttingDown || draining) break;
          const cap = free;
          // One statement: it commits on its own, without a transaction around it.
          const rows = await claim(free);
          deep.surplus = rows.length < free ? 0 : deep.surplus - rows.length * deep.nodes;
          for (const r of rows) void runClaimed(toJobExecution(r), r.first_step ? toStepExecution(r.first_step as Record<string, unknown>) : undefined);
          // Claimed while this node began to leave or drain: handed over like the rest.
          if (shuttingDown || draining) for (const r of rows) stopAndHandOver(Number(r.id));
          free -= rows.length;
          const claimed = partitionJobs.length ? await claimPartitions(db, me, partitionJobs, free) : [];
          for (const id of claimed) runClaimedPartition(id);
          // All it asked for: there may be more (and a new share) now; launches' turns were for
          // those launches, unless it took more than them (first-come, a deep queue).
          const all = rows.length + claimed.length > 0 && rows.length + claimed.length >= cap;
          if (all && cap > turn) again = maybeMore = true;
          if (!all) maybeMore = false;
          // A turn's claim that took an older launch leaves the one it was for: look again.
          if (turn > 0 && mine.slice(0, turn).some((w) => !rows.some((r) => Number(r.id) === w.executionId))) again = true;
        } while (again && !shuttingDown && !draining);
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'claiming failed; will retry');
      } finally {
        claiming = false;
      }
    });
  };

  const stopAndHandOver = (id: number) => {
    const h = running.get(id);
    if (h) handOver(h);
  };

  const runClaimed = async (execution: JobExecution, firstStep: StepExecution | undefined) => {
    const id = execution.id;
    const def = jobs.get(execution.jobName)!;
    const handle = createHandle(db, execution, me, def, log);
    handle.managerRunsPartitions = false;
    running.set(id, handle);
    working.add(id);
    // Once only its end remains to be written (grouped with others'), its slot takes new work.
    handle.onFinishing = () => {
      if (working.delete(id)) slotFreed();
    };
    // A copy: the run changes its execution as it goes, and a listener must not.
    if (emitter.listenerCount('executionStarted')) emit('executionStarted', structuredClone(execution));
    let ending: ExecutionEnd['ending'] = 'lost';
    try {
      const recorded = await runJobExecution(def, handle, explorer, firstStep);
      // A handed-over execution's end was written with its requeue (see ExecutionHandle.handingOver).
      if (recorded) ending = handle.handingOver && execution.status === 'STOPPED' ? 'handedOver' : 'ended';
      else if (handedOverNow.has(id)) ending = 'handedOver';
    } catch (err) {
      log.error({ err: errorMessage(err), execution: id }, 'execution ended with an error');
      // Its end could not be recorded (e.g. no connection): release it rather than claim to run it.
      if (!handle.lost.aborted) ending = await release(id, err);
    } finally {
      if (ending === 'handedOver') log.info({ execution: id }, `execution ${id} handed over to the cluster`);
      if (working.delete(id)) slotFreed();
      // A limited job's end frees one of its slots in the whole cluster: every node that runs the
      // job looks for its queued executions now (this one too), not at its next poll.
      if (def.maxRunning !== undefined) slotOfJobFreed(def.name);
      // Before it leaves `running`: a shutdown waits for it.
      if (emitter.listenerCount('executionEnded')) await tellEnded(id, ending);
      running.delete(id);
    }
  };
  const slotOfJobFreed = (job: string) => {
    wake();
    if (db.dialect === 'postgres') announceLaunch(db, job).catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'telling the nodes that a slot of a limited job freed up failed'));
  };
  const release = async (id: number, err: unknown): Promise<ExecutionEnd['ending']> => {
    try {
      const f = await releaseExecution(db, me, id, `node ${me.name} could not run it: ${errorMessage(err)}`);
      if (!f) return 'lost';
      log.warn({ execution: id, restartedAs: f.newExecutionId }, 'released an execution this node could not run');
    } catch (e) {
      log.error({ err: errorMessage(e), execution: id }, 'could not release an execution this node cannot run');
    }
    return 'released';
  };
  // executionEnded, with the execution as the repository holds it now.
  const tellEnded = async (id: number, ending: ExecutionEnd['ending']) => {
    try {
      const execution = await retryingConnectionErrors(() => explorer.getExecutionSummary(id), lease.leaseMs);
      if (execution) emit('executionEnded', { execution, ending });
    } catch (err) {
      log.warn({ err: errorMessage(err), execution: id, ending }, `could not read execution ${id} back after it ended here (${ending}): no executionEnded event for it`);
    }
  };

  // A partition of any running execution, claimed by this node like an execution.
  const partitions = new Map<number, { handle?: ExecutionHandle; done: Promise<void> }>();
  const runClaimedPartition = (id: number) => {
    const entry: { handle?: ExecutionHandle; done: Promise<void> } = { done: Promise.resolve() };
    partitions.set(id, entry);
    entry.done = (async () => {
      try {
        const row = await db.query<{ job_name: string }>(SQL.jobOfStep, [id]);
        const def = row.length ? jobs.get(row[0].job_name) : undefined;
        const onHandle = (h: ExecutionHandle) => {
          entry.handle = h;
          // Claimed while this node began to leave or drain: handed over like the rest.
          if (shuttingDown || draining) handOver(h);
        };
        if (def) await runPartition(db, me, def, id, log, runStep, onHandle);
      } catch (err) {
        log.error({ err: errorMessage(err), partition: id }, 'partition ended with an error');
        await releasePartition(db, me, id, `partition ${id} could not start on node ${me.name}: ${errorMessage(err)}`, log);
      } finally {
        partitions.delete(id);
        wake();
      }
    })();
  };

  // Work this node stops because it drains or leaves: it ends STOPPED at a chunk boundary and, in
  // the same transaction as that end (fenced like it), is queued again for another node to resume
  // from its checkpoint (an execution as a restart, a partition as a retry under its manager).
  const handOver = (h: ExecutionHandle) => {
    h.handingOver = true;
    h.stopRequested = true;
  };

  // Membership: reap dead peers, report joins, suspicions and leaves, sweep work left running by
  // owners that ended. The heartbeat thread's probe (one indexed read per beat, on its own
  // connection; see SQL.nodeProbe) says when to look, so that a node's recurring cost does not
  // grow with the number of nodes: every quarter lease while a peer is late or expired, once
  // after a join or an end, at once for a drain request; and every FULL_WATCH_MS regardless.
  const known = new Map<number, { name: string; status: string; suspected: boolean }>();
  // The live nodes that take work, by job, as of the last look (see onLaunch).
  let runners = new Map<string, number[]>();
  let lastTurns = '';
  // The nodes a job's launches take turns over, as this node sees them: always with itself, so
  // that a node its own view has dropped (draining, late) still passes its turns on.
  const turnTakers = (job: string): number[] => {
    const ids = runners.get(job) ?? [];
    return ids.includes(me.id) ? ids : [...ids, me.id].sort((a, b) => a - b);
  };
  // Launches whose turn this node has but cannot take: to the next node, until every one had it
  // (then whichever frees a slot first takes it: maybeMore).
  const passOn = (ws: readonly LaunchWake[]) => {
    if (ws.length) maybeMore = true;
    for (const w of ws) {
      if (w.hop + 1 >= turnTakers(w.job).length) continue;
      db.query(SQL.notifyLaunch, [encodeLaunchWake({ ...w, hop: w.hop + 1 })]).catch((err) => log.warn({ err: errorMessage(err) }, 'passing a launch on failed'));
    }
  };
  let membership: string | undefined;
  let membershipChanged = true;
  let peerLate = false;
  // Whether the last probe saw work this node could claim (polls without it are skipped), and
  // execution count deltas to fold (see housekeeping).
  let queuedSeen = true;
  let countsPending = true;
  let watching = false;
  let watchedAt = -Infinity;
  // The database time of the last look: ends since then are reported.
  let lastLook = Number.MAX_SAFE_INTEGER;
  probes.handle = (p) => {
    // The first drain at once; a probe that would undo a resume or a drain is read again first.
    if (p.drainRequested && !draining && resumedAt === -Infinity) void drainHere();
    else if (p.drainRequested !== draining && !shuttingDown) void recheckDrain();
    // A late peer that beats again takes its turns back at once (a look while it was late left it out).
    if (peerLate && !p.late) membershipChanged = true;
    peerLate = p.late;
    if (p.membership !== membership) {
      membership = p.membership;
      membershipChanged = true;
    }
    if (peerLate || membershipChanged) void watch();
    queuedSeen = p.queued;
    countsPending = p.countsPending;
    // Without notifications the probe is what wakes the node; with them, polls do (while queued).
    if (p.queued && options.listen === false) wake();
  };
  const watch = async () => {
    if (watching || shuttingDown) return;
    watching = true;
    membershipChanged = false;
    watchedAt = performance.now();
    const lookedAt = watchedAt;
    try {
      const { dead, failedOver } = await reapDeadNodes(db, me.id);
      for (const node of dead) {
        log.warn({ peer: node }, `node ${node} declared dead`);
      }
      for (const f of failedOver) {
        // The dead node is the `peer`, as in "declared dead": this line's `node` is the node that writes it.
        log.warn(
          { peer: f.node, failedExecutionId: f.failedExecutionId, newExecutionId: f.newExecutionId },
          `execution ${f.failedExecutionId} of dead node ${f.node} failed over as execution ${f.newExecutionId}`,
        );
        emit('failover', f);
      }
      if (failedOver.length) wake();
      const nodes = await db.query<{ id: number; name: string; status: string; suspected: boolean | number; drain_requested_at: unknown; jobs: string; now: number }>(
        SQL.watchNodes, [lastLook],
      );
      runners = runnersOf(nodes);
      const turnsText = [...runners].map(([job, ids]) => `${job}: ${ids.map((id) => nodes.find((n) => Number(n.id) === id)?.name).join(' ')}`).sort().join('; ');
      if (turnsText !== lastTurns) log.debug({ turns: turnsText }, 'lone launches take turns over these nodes');
      lastTurns = turnsText;
      if (nodes.length) lastLook = Number(nodes[0].now) - 1000;
      const mine = nodes.find((n) => Number(n.id) === me.id);
      if (mine) void followDrainRequest(mine.drain_requested_at !== null, lookedAt);
      const seen = new Set<number>();
      for (const n of nodes) {
        const id = Number(n.id);
        seen.add(id);
        const prev = known.get(id);
        const suspected = n.status === 'alive' && (n.suspected === true || n.suspected === 1);
        if (!prev && n.status === 'alive') emit('joined', { node: n.name });
        if (prev && prev.status !== n.status) emit(n.status === 'dead' ? 'dead' : 'left', { node: n.name });
        if (suspected && !prev?.suspected) emit('suspected', { node: n.name });
        known.set(id, { name: n.name, status: n.status, suspected });
      }
      // Ended longer ago (and reported then): forget them.
      for (const [id, k] of known) if (!seen.has(id) && k.status !== 'alive') known.delete(id);
      // A peer left out of the turns for a beat or two it missed (a loaded host) is taken back at
      // the next look, a tick away: the probe tells of a late peer only past `lateMs`, much later,
      // and the full look comes 30 s apart.
      if ([...known.values()].some((k) => k.status === 'alive' && k.suspected)) membershipChanged = true;
    } catch (err) {
      membershipChanged = true;
      log.warn({ err: errorMessage(err) }, 'watching the cluster failed; will retry');
    } finally {
      watching = false;
    }
  };
  // The scheduler loop (unless options.scheduler is false): started with the node and on a
  // resume, stopped by a drain and a shutdown, one at a time in the order they were asked for.
  let scheduler: Scheduler | undefined = undefined;
  let schedulerTurn: Promise<unknown> = Promise.resolve();
  const inSchedulerTurn = (f: () => Promise<void>): Promise<void> => {
    const done = schedulerTurn.then(f);
    schedulerTurn = done.catch(() => undefined);
    return done;
  };
  const startSchedulerHere = () => inSchedulerTurn(async () => {
    if (options.scheduler === false || scheduler || draining || shuttingDown) return;
    scheduler = await startScheduler({ db, jobs: options.jobs, schedules: options.schedules, nodeName: me.name, logger: log, onFire: wake, listen: options.listen });
  });
  const stopSchedulerHere = () => inSchedulerTurn(async () => {
    const s = scheduler;
    scheduler = undefined;
    await s?.stop();
  });
  // Stops taking work and hands over what runs here, as shutdown does, but stays a member.
  // When the last drain began (performance.now()), and the write that stopped what ran here then.
  let drainingSince = -Infinity;
  let handedOver: Promise<unknown> = Promise.resolve();
  const drainHere = async () => {
    if (draining || shuttingDown) return;
    draining = true;
    drainingSince = performance.now();
    clearInterval(poll);
    log.info({ running: [...running.keys()], partitions: [...partitions.keys()] }, `node ${me.name} draining: it takes no more work and hands over what it runs`);
    emit('draining', { node: me.name });
    for (const h of running.values()) handOver(h);
    for (const p of partitions.values()) if (p.handle) handOver(p.handle);
    // Asked for now, so that a resume that follows starts the scheduler after this stop.
    const schedulerStopped = stopSchedulerHere();
    handedOver = running.size ? db.execute(SQL.stopAllOfNode, [me.id]).catch(() => undefined) : Promise.resolve();
    await handedOver;
    await schedulerStopped;
  };
  // Takes work again once the drain request is withdrawn, as seen by a look at the repository
  // that began at `lookedAt`, after the drain did (an earlier one may predate the request).
  let resumedAt = -Infinity;
  const resumeHere = async (lookedAt: number) => {
    if (!draining || shuttingDown || lookedAt < drainingSince) return;
    const since = drainingSince;
    // The drain's write that stops what ran here goes first: it must not stop what is claimed now.
    await handedOver;
    if (!draining || shuttingDown || drainingSince !== since) return;
    draining = false;
    resumedAt = performance.now();
    poll = startPolling();
    void startSchedulerHere().catch((err) => log.error({ err: errorMessage(err) }, 'could not start the scheduler again; other nodes fire the triggers'));
    log.info(`node ${me.name} resumed: it takes work again`);
    emit('resumed', { node: me.name });
    wake();
  };
  // Drains or resumes as the repository said, in a look that began at `lookedAt`: a request seen
  // by a look older than the last resume is the one that resume withdrew.
  const followDrainRequest = (requested: boolean, lookedAt: number) =>
    requested ? (lookedAt >= resumedAt ? drainHere() : Promise.resolve()) : resumeHere(lookedAt);
  // A probe says otherwise than this node does about its drain request: read it again, from a
  // look that begins now, as the probe (read on the heartbeat's thread) may have read it before
  // the drain or the resume under way changed it.
  let rechecking = false;
  const recheckDrain = async () => {
    if (rechecking) return;
    rechecking = true;
    try {
      const lookedAt = performance.now();
      await followDrainRequest(await drainRequested(db, me.id), lookedAt);
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'could not read whether this node is asked to drain; will retry');
    } finally {
      rechecking = false;
    }
  };
  const monitor = setInterval(() => {
    if (peerLate || membershipChanged || performance.now() - watchedAt >= FULL_WATCH_MS) void watch();
  }, Math.max(20, Math.floor(lease.leaseMs / 4)));
  // On PostgreSQL a poll while the probe sees nothing to claim would find nothing (every tenth
  // still runs): an idle node's pool stays unused. SQLite polls are local and its only wake-up.
  let quietPolls = 0;
  const startPolling = () => setInterval(() => {
    if (queuedSeen || db.dialect !== 'postgres' || ++quietPolls % 10 === 0) wake();
  }, pollMs);
  let poll = startPolling();
  const housekeeping = startHousekeeping(db, { nodeRetentionMs: options.nodeRetentionMs, retention: options.retention }, log, () => countsPending);
  // A launch that names its execution wakes only the node whose turn it is (see wakeTurn); the
  // look passes it on when this node cannot take it. One that names none wakes every node.
  const onLaunch = (w: LaunchWake) => {
    if (w.executionId === undefined) return wake();
    if (jobs.has(w.job) && wakeTurn(turnTakers(w.job), w.executionId, w.hop) === me.id) look(w);
  };
  const listener = options.listen === false ? { close: async () => undefined } : listenForLaunches(db, onLaunch, log);
  void watch();
  // Asked for before anything can drain this node (nothing has awaited since the probes began):
  // a drain's stop comes after it.
  await startSchedulerHere();

  setImmediate(() => {
    returned = true;
    wake();
  });
  return Object.assign(emitter, {
    get name() {
      return me.name;
    },
    running: () => [...running.keys()],
    async drain() {
      await requestDrain(db, me.name);
      await drainHere();
    },
    async resume() {
      await resumeNode(db, me.name);
      await resumeHere(performance.now());
    },
    health(): NodeHealth {
      const since = stopped || lastBeatAt === undefined ? null : Math.round(performance.now() - lastBeatAt);
      const state = stopped ? 'stopped' : shuttingDown ? 'stopping' : draining ? 'draining' : 'running';
      const leaseCurrent = since !== null && since < lease.leaseMs;
      return { state, sinceLeaseRenewedMs: since, leaseMs: lease.leaseMs, leaseCurrent, ready: state === 'running' && leaseCurrent, running: running.size };
    },
    shutdown(shutdownOptions?: { timeoutMs?: number }) {
      const timeoutMs = shutdownOptions?.timeoutMs ?? 60_000;
      if (!Number.isFinite(timeoutMs) || timeoutMs < 0) return Promise.reject(new UsageError(`shutdown timeoutMs must be a number of milliseconds >= 0, got ${timeoutMs}`));
      // A later call may only shorten the wait (0: hand over now), never lengthen it.
      const sooner = shutdownDone !== undefined && Date.now() + timeoutMs < leaveBy;
      leaveBy = Math.min(leaveBy, Date.now() + timeoutMs);
      hurried ||= sooner;
      if (sooner) log.info({ running: [...running.keys()], timeoutMs }, `node ${me.name} stops waiting for chunk boundaries ${timeoutMs ? `in ${timeoutMs} ms` : 'now'}`);
      return (shutdownDone ??= shutdownNode(timeoutMs));
    },
  }) as ClusterNode;

  /**
   * Hands over an execution still running here as the node leaves (see handOverExecution): STOPPED
   * and queued again at once, its chunk under way fenced off, rather than left running for a peer
   * to find orphaned and fail. What still runs here of it is told it lost the execution.
   */
  async function handOverNow(h: ExecutionHandle): Promise<void> {
    const id = h.execution.id;
    const reason = `node ${me.name} left before the execution reached a chunk boundary: handed over from its last commit`;
    // Marked before the hand-over commits: the run, fenced by that commit, may end before this
    // function resumes, and must then say `handedOver` (it logs that line), not `lost`.
    handedOverNow.add(id);
    try {
      const requeued = await handOverExecution(db, me, id, reason);
      // undefined: it ended meanwhile, and its end is written as it should be.
      if (requeued === undefined) handedOverNow.delete(id);
      else h.lost.abort(new Error(`execution ${id} was handed over as node ${me.name} left`));
    } catch (err) {
      handedOverNow.delete(id);
      // Left running under a node that leaves: a peer's sweep fails it over instead.
      log.warn({ err: errorMessage(err), execution: id }, `could not hand execution ${id} over; a live node fails it over once this node has left`);
    }
  }

  async function shutdownNode(timeoutMs: number): Promise<void> {
    shuttingDown = true;
    clearInterval(poll);
    clearInterval(monitor);
    await housekeeping.stop();
    await stopSchedulerHere();
    for (const h of running.values()) handOver(h);
    for (const p of partitions.values()) if (p.handle) handOver(p.handle);
    if (running.size) await db.execute(SQL.stopAllOfNode, [me.id]).catch(() => undefined);
    while ((running.size || partitions.size || claiming) && Date.now() < leaveBy) await new Promise((r) => setTimeout(r, 20));
    if (running.size || partitions.size) {
      log.warn(
        { running: [...running.keys()], partitions: [...partitions.keys()], timeoutMs },
        `node ${me.name} leaves ${hurried ? 'without waiting for its work to reach a chunk boundary' : `with work that did not stop within ${timeoutMs} ms`}: ` +
          'it hands its executions over, and a live node resumes them from their last commit (partitions: once it fails them over)',
      );
      await Promise.all([...running.values()].map((h) => handOverNow(h)));
    }
    await heartbeat.stop();
    await db.execute(SQL.leaveNode, [me.id, 'shutdown']).catch((err: unknown) => log.warn({ err }, 'could not record that this node left; its lease will run out instead'));
    // Listening until it left: the others still give it turns, which it passes on.
    await listener.close();
    log.info(`node ${me.name} left`);
    stopped = true;
    if (typeof options.db !== 'object') await db.close();
  }
}

/**
 * Calls each listener of `event` in turn, as `emit` does, but what one throws (or an async one
 * rejects with) is logged: it neither breaks the node's work that emitted it nor keeps the event
 * from the listeners after it.
 */
function emitSafely<K extends keyof NodeEvents>(emitter: EventEmitter<NodeEvents>, log: Logger, event: K, args: NodeEvents[K]): void {
  const failed = (err: unknown) => log.warn({ err: errorMessage(err), event }, `a listener of the node's ${event} event failed`);
  for (const listener of emitter.rawListeners(event) as ((...a: unknown[]) => unknown)[]) {
    try {
      const result = listener.apply(emitter, args);
      if (result instanceof Promise) result.catch(failed);
    } catch (err) {
      failed(err);
    }
  }
}

/** The longest a node goes without a full look at the cluster's membership (see watch). */
const FULL_WATCH_MS = 30_000;

/** The live, undrained nodes that are not late, by job, their ids ascending (see wakeTurn). */
function runnersOf(nodes: readonly { id: number | string; status: string; suspected: boolean | number; drain_requested_at: unknown; jobs: unknown }[]): Map<string, number[]> {
  const byJob = new Map<string, number[]>();
  for (const n of nodes) {
    if (n.status !== 'alive' || n.suspected === true || n.suspected === 1 || n.drain_requested_at !== null) continue;
    for (const job of registeredJobs(n.jobs)) byJob.set(job, [...(byJob.get(job) ?? []), Number(n.id)]);
  }
  for (const ids of byJob.values()) ids.sort((a, b) => a - b);
  return byJob;
}

/** The job and its first step, when a claim may start that step itself (see SQL.claimStartingStep). */
function startableInClaim(job: JobDefinition<ParamsSchema>): { job: string; step: string }[] {
  const first = job.flow[0];
  if (!first || first.type === 'decision' || first.type === 'split' || first.type === 'flow' || job.listeners.some((l) => l.beforeJob)) return [];
  return [{ job: job.name, step: first.name }];
}
