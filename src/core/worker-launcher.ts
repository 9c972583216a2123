import type { Logger } from './logger.ts';

/** What a partitioned step's manager asks a launcher for: extra worker nodes for its partitions. */
export interface LaunchRequest {
  /** How many workers to start (at least 1). */
  readonly workers: number;
  /** The job repository's URL (the workers join its cluster). */
  readonly db: string;
  /** The config file defining the jobs, when the launcher runs `nightshift node` (see localProcessLauncher). */
  readonly config?: string;
  /** The jobs whose partitions the workers are for. */
  readonly jobs: readonly string[];
  /** A name the workers' names start from (the manager's node name): worker i is `NAME-wI`. */
  readonly name: string;
  /** Partitions each worker runs at once. */
  readonly concurrency: number;
  /** Where the launcher logs what it starts and stops. */
  readonly log?: Logger;
}

/** Workers a launcher started. */
export interface LaunchedWorkers {
  /** Their node names. */
  readonly names: readonly string[];
  /** Their process ids, for launchers that start local processes. */
  readonly pids?: readonly number[];
  /** Stops them gracefully (they stop claiming, hand over what they run, and leave) and waits until they are gone. */
  stop(): Promise<void>;
}

/**
 * Starts extra workers for a partitioned step while it runs. The workers are ordinary cluster
 * nodes that have the job: they claim queued partitions like any node. Implement this to launch
 * them elsewhere (containers, a cloud platform); `localProcessLauncher` starts local processes.
 */
export interface WorkerLauncher {
  /** Starts `request.workers` workers; resolves once they were started, with how to stop them. */
  launch(request: LaunchRequest): Promise<LaunchedWorkers>;
}
