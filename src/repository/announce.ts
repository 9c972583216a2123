import type { Database } from './database.ts';
import { SQL } from './sql.ts';

// One announcer per database (submitting processes), see announceLaunch.
const announcers = new WeakMap<Database, (job: string) => Promise<void>>();

/**
 * Wakes idle nodes after a launch committed (PostgreSQL): resolves once a NOTIFY sent after the
 * call has gone out. Calls made while one is on its way share the next one. A NOTIFY of its own,
 * rather than inside the launch's transaction, lets launches commit together: PostgreSQL
 * serialises the commits of notifying transactions, fsync and all. A lost NOTIFY (the process
 * dies in between) only delays the launch until the nodes' next poll.
 */
export function announceLaunch(db: Database, job: string): Promise<void> {
  let announce = announcers.get(db);
  if (!announce) announcers.set(db, (announce = coalesce((j) => db.query(SQL.notifyLaunch, [j]).then(() => undefined))));
  return announce(job);
}

function coalesce(send: (job: string) => Promise<void>): (job: string) => Promise<void> {
  let current: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let latest = '';
  const start = () => {
    const sent: Promise<void> = send(latest)
      .catch(() => undefined)
      .finally(() => {
        if (current === sent) current = undefined;
      });
    return (current = sent);
  };
  return (job) => {
    latest = job;
    if (!current) return start();
    return (queued ??= current.then(() => {
      queued = undefined;
      return start();
    }));
  };
}
