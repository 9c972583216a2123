/**
 * What `nightshift node` does on SIGTERM/SIGINT, for its whole life (no signal kills it unawares):
 *
 * - the first starts the graceful shutdown, and says so at once: the node takes no more work and
 *   stops its running executions at their next chunk boundary, for up to `--stop-timeout-ms`;
 * - a signal within {@link SAME_SIGNAL_MS} of the first is the same request, delivered twice
 *   (a supervisor or a shell that signals both the pid and its process group): it changes nothing;
 * - a later one (an impatient Ctrl-C, coreutils `timeout`'s second signal) stops waiting for chunk
 *   boundaries: the node hands what still runs over now (STOPPED and queued again, the chunk under
 *   way rolled back), a live node resumes it from its last commit, and the node leaves and exits 0.
 *
 * - a signal after that one (the hand-over hangs: a database that stopped answering) exits at
 *   once with 130, as a Ctrl-C would kill it; what still runs fails over through the lease.
 *
 * Short of that the executions are handed over and the node is recorded as `left`: none is left to
 * fail over through its lease.
 */
import type { Logger } from '../core/logger.ts';

/** Signals this soon after the first are taken as the same request. */
export const SAME_SIGNAL_MS = 1000;

export interface NodeSignals {
  /** The SIGTERM/SIGINT handler. */
  onSignal(signal: NodeJS.Signals): void;
  /** Starts the graceful shutdown as a first signal does, without naming one (the parent ended). */
  stop(): void;
  /** Resolves once a shutdown was asked for. */
  readonly stopped: Promise<void>;
  /** Whether a later signal asked to hand over at once (for a shutdown that has not begun yet). */
  now(): boolean;
}

const executions = (n: number) => `${n} running execution${n === 1 ? '' : 's'}`;

export function nodeSignals(options: {
  stopTimeoutMs: number;
  logger: Logger;
  /** The executions the node runs now; undefined while it is starting. */
  running: () => number | undefined;
  /** Stops waiting for chunk boundaries (the node's shutdown with a timeout of 0). */
  handOverNow: () => void;
  /** Ends the process at once (a signal after the one that asked to hand over now). */
  exitNow: () => void;
  /** Default {@link SAME_SIGNAL_MS}. */
  sameSignalMs?: number;
}): NodeSignals {
  const { logger: log } = options;
  let stopRequested: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  let firstAt: number | undefined;
  let now = false;
  const begin = () => {
    firstAt ??= performance.now();
    stopRequested();
  };
  return {
    stopped,
    now: () => now,
    stop: begin,
    onSignal(signal) {
      const n = options.running();
      if (firstAt === undefined) {
        begin();
        log.info(
          { signal, running: n ?? 0, stopTimeoutMs: options.stopTimeoutMs },
          n === undefined
            ? `received ${signal}: taking no more work; the node is still starting and leaves once started (signal again to leave without waiting for chunk boundaries)`
            : `received ${signal}: taking no more work, stopping ${executions(n)} at ${n === 1 ? 'its' : 'their'} next chunk boundary (up to ${options.stopTimeoutMs} ms; signal again to hand ${n === 1 ? 'it' : 'them'} over now)`,
        );
        return;
      }
      if (now) {
        // A hand-over that does not end (a database that stopped answering without refusing):
        // the operator asked three times; what still runs fails over once the lease runs out.
        log.warn({ signal }, `received ${signal} a third time: exiting now, without waiting for the hand-over; a live node fails over what still runs once this node's lease runs out`);
        options.exitNow();
        return;
      }
      const sameMs = options.sameSignalMs ?? SAME_SIGNAL_MS;
      if (performance.now() - firstAt < sameMs) {
        log.info({ signal }, `received ${signal} again within ${sameMs} ms of the first: taken as the same request (a later signal hands the running executions over now)`);
        return;
      }
      now = true;
      log.info(
        { signal, running: n ?? 0 },
        `received ${signal} again: handing over ${executions(n ?? 0)} now, without waiting for chunk boundaries (a live node resumes them from their last commit); then leaving`,
      );
      options.handOverNow();
    },
  };
}
