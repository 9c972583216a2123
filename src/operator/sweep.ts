import { reapDeadNodes } from '../cluster/failover.ts';
import type { Database } from '../core/database.ts';
import type { Logger } from '../core/logger.ts';

/**
 * Fails the work of owners whose lease ran out, from any process that reads the repository (CLI
 * queries, `serve`, its metrics): with no node alive, nobody else would, and a killed
 * `nightshift run` would leave its execution STARTED for good. It is the cluster's own failover
 * ({@link reapDeadNodes}): expiry is judged by the database's clock inside the statement that
 * declares the owner dead, and only one caller in the cluster wins each declaration, so the
 * execution is failed once, naming its owner. At most once per `minIntervalMs`; a failure to
 * sweep never fails the read that triggered it.
 */
export function createLeaseSweep(db: Database, log: Logger, minIntervalMs: number): () => Promise<void> {
  let last = -Infinity;
  let running: Promise<void> | undefined;
  return () => {
    if (running) return running;
    if (performance.now() - last < minIntervalMs) return Promise.resolve();
    last = performance.now();
    running = (async () => {
      try {
        const { dead, failedOver } = await reapDeadNodes(db, 0);
        if (dead.length || failedOver.length) log.warn({ dead, failedOver }, 'failed the work of owners whose lease expired');
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'could not sweep expired leases');
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
}
