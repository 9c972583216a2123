import type { Logger } from '../core/logger.ts';
import { partitionEvents } from '../engine/partition-worker.ts';
import type { Database } from '../repository/database.ts';
import { listenOn } from '../repository/listen.ts';

/**
 * Wakes a node's claim loop on launch notifications (and waiting partition managers when a
 * partition ends). Polling stays the safety net.
 */
export function listenForLaunches(db: Database, wake: () => void, log: Logger): { close(): Promise<void> } {
  return listenOn(db, ['ns_launch', 'ns_partition'], {
    onNotify: (channel, payload) => {
      if (channel === 'ns_partition') partitionEvents.emit('ended', Number(payload));
      else wake();
    },
    onConnect: wake,
  }, log);
}
