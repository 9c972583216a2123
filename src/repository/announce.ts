import type { Database } from './database.ts';
import { SQL } from './sql.ts';

/**
 * What a launch notification asks of the nodes. Without `executionId`: every node that runs the
 * job looks for work (a bulk submit, a requeue, several launches in one notification). With it:
 * only the node whose turn it is (see wakeTurn in the cluster) looks, so that one launch costs one
 * claim however many nodes idle; `hop` counts the nodes that passed it on, having no free slot.
 */
export interface LaunchWake {
  job: string;
  executionId?: number;
  hop: number;
}

/** The payload of a launch notification (job names have no spaces, see defineJob). */
export function encodeLaunchWake(w: LaunchWake): string {
  return w.executionId === undefined ? w.job : `${w.job} ${w.executionId} ${w.hop}`;
}

/** Reads a payload of {@link encodeLaunchWake}; anything else (an older node's) wakes every node. */
export function decodeLaunchWake(payload: string | undefined): LaunchWake {
  const [job = '', id, hop] = (payload ?? '').split(' ');
  const executionId = Number(id);
  const hops = Number(hop);
  return Number.isSafeInteger(executionId) && executionId > 0 && Number.isSafeInteger(hops) && hops >= 0 ? { job, executionId, hop: hops } : { job, hop: 0 };
}

// One announcer per database (submitting processes), see announceLaunch.
const announcers = new WeakMap<Database, (w: LaunchWake) => Promise<void>>();

/**
 * Wakes a node after a launch committed (PostgreSQL): resolves once a NOTIFY sent after the call
 * has gone out. Calls made while one is on its way share the next one, which then wakes every
 * node. A NOTIFY of its own, rather than inside the launch's transaction, lets launches commit
 * together: PostgreSQL serialises the commits of notifying transactions, fsync and all. A lost
 * NOTIFY (the process dies in between) only delays the launch until the nodes' next poll.
 */
export function announceLaunch(db: Database, job: string, executionId?: number): Promise<void> {
  let announce = announcers.get(db);
  if (!announce) announcers.set(db, (announce = coalesce((w) => db.query(SQL.notifyLaunch, [encodeLaunchWake(w)]).then(() => undefined))));
  return announce({ job, executionId, hop: 0 });
}

function coalesce(send: (w: LaunchWake) => Promise<void>): (w: LaunchWake) => Promise<void> {
  let current: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let next: LaunchWake | undefined;
  const start = (): Promise<void> => {
    const w = next;
    // Sent already by a caller that found none on its way (before the queued start ran).
    if (w === undefined) return Promise.resolve();
    next = undefined;
    const sent: Promise<void> = send(w)
      .catch(() => undefined)
      .finally(() => {
        if (current === sent) current = undefined;
      });
    return (current = sent);
  };
  return (w) => {
    // Two launches in one notification: no single node's turn covers both.
    next = next === undefined ? w : { job: w.job, hop: 0 };
    if (!current) return start();
    return (queued ??= current.then(() => {
      queued = undefined;
      return start();
    }));
  };
}
