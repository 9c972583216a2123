import type { Logger } from '../core/logger.ts';
import { partitionEvents } from '../engine/partition-worker.ts';
import { decodeLaunchWake, type LaunchWake } from '../repository/announce.ts';
import type { Database } from '../repository/database.ts';
import { listenOn } from '../repository/listen.ts';

/**
 * Tells a node's claim loop of launch notifications (and waiting partition managers when a
 * partition ends); after a reconnect, `onLaunch` gets a wake for every node, to catch up on
 * anything sent meanwhile. Polling stays the safety net.
 */
export function listenForLaunches(db: Database, onLaunch: (w: LaunchWake) => void, log: Logger): { close(): Promise<void> } {
  return listenOn(db, ['ns_launch', 'ns_partition'], {
    onNotify: (channel, payload) => {
      if (channel === 'ns_partition') partitionEvents.emit('ended', Number(payload));
      else onLaunch(decodeLaunchWake(payload));
    },
    onConnect: () => onLaunch({ job: '', hop: 0 }),
  }, log);
}
