/**
 * Live changes for the console: one poll of the repository, shared by every connected client,
 * turned into events. The poll runs only while someone listens, and reads only what can have
 * changed: executions whose row changed since the last look (index on last_updated), the
 * executions nodes are running now with their steps (for progress), the recent nodes and the
 * triggers. An event is sent when something's signature (versions, status, what it runs)
 * differs from the last one sent.
 *
 * Events (`event:` name, `data:` JSON):
 * - `ready`: `{ "pollMs" }`, once, after the first poll that follows connecting. Every change
 *   committed after it comes as an event: read the lists (REST) after `ready`, then apply events.
 * - `execution`: an execution in the CLI shape with its steps (flat, partitions included).
 * - `node`: a node in the API's shape (see GET /api/nodes).
 * - `schedule`: a trigger in the API's shape; `schedule-removed`: `{ "name" }`.
 * - `resync`: too much changed at once to send it all; read the lists again.
 * - `status`: `{ "repository": "ok" | "unavailable" }` when that changes.
 */
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { JobExecution, StepExecution } from '../core/model.ts';
import { executionJson } from '../json.ts';
import type { Database } from '../repository/database.ts';
import { toJobExecution, type JobExplorer } from '../repository/job-repository.ts';
import { recentNodes } from '../repository/nodes.ts';
import { SQL } from '../repository/sql.ts';
import { scheduleJson, type ScheduleAdmin } from '../scheduler/triggers.ts';
import { nodeOverviewJson } from './views.ts';

export type EventName = 'ready' | 'execution' | 'node' | 'schedule' | 'schedule-removed' | 'resync' | 'status';

/** A connected client: how to send it an event (its data as JSON), and how to end its stream. */
export interface Subscriber {
  send(event: EventName, json: string, id: number): void;
  end(): void;
}

export interface EventHub {
  /** Adds a client; returns the function that removes it. */
  subscribe(s: Subscriber): () => void;
  readonly clients: number;
  readonly pollMs: number;
  /** Ends every stream and stops polling. */
  close(): void;
}

export interface EventHubOptions {
  db: Database;
  explorer: JobExplorer;
  schedules: ScheduleAdmin;
  log: Logger;
  /** Default 1000 ms. */
  pollMs?: number;
}

/** Executions changed in one poll beyond which the hub sends `resync` instead of each. */
const MAX_CHANGES = 500;
/**
 * Changes are read again for this long after they are first seen: a transaction stamps
 * last_updated with the database's clock when its statement runs, and may commit a little later
 * than one stamped after it.
 */
const SLACK_MS = 2000;
/** Nodes that ended longer ago than this are not watched. */
const NODE_HORIZON_MS = 3600_000;

export function createEventHub(o: EventHubOptions): EventHub {
  const pollMs = o.pollMs ?? 1000;
  const subscribers = new Set<Subscriber>();
  // Connected, but not sent `ready` yet (see above).
  const pending = new Set<Subscriber>();
  // Pending clients told that the repository is unavailable.
  const told = new WeakSet<Subscriber>();
  const sent = { executions: new Map<number, { sig: string; poll: number }>(), nodes: new Map<string, string>(), schedules: new Map<string, string>() };
  let since: number | undefined;
  let polls = 0;
  let eventId = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let closed = false;
  let repository: 'ok' | 'unavailable' = 'ok';

  const emit = (event: EventName, data: unknown) => {
    eventId++;
    if (!subscribers.size) return;
    // Serialised once, however many clients listen.
    const json = JSON.stringify(data);
    for (const s of subscribers) s.send(event, json, eventId);
  };

  const poll = async () => {
    const baseline = since === undefined;
    const now = Number((await o.db.query<{ now: number }>(SQL.dbNow))[0].now);
    const [changedRows, activeRows, nodes, schedules] = await Promise.all([
      o.db.query<Record<string, unknown>>(SQL.changedExecutions, [(since ?? now) - SLACK_MS, MAX_CHANGES + 1]),
      o.db.query<Record<string, unknown>>(SQL.activeExecutions),
      recentNodes(o.db, NODE_HORIZON_MS),
      o.schedules.list(),
    ]);
    since = now;
    polls++;
    if (changedRows.length > MAX_CHANGES && !baseline) emit('resync', { reason: `more than ${MAX_CHANGES} executions changed at once` });
    const executions = new Map<number, JobExecution>();
    for (const r of [...(changedRows.length > MAX_CHANGES ? [] : changedRows), ...activeRows]) {
      const e = toJobExecution(r);
      executions.set(e.id, e);
    }
    const steps: Map<number, StepExecution[]> = executions.size ? await o.explorer.stepsOfMany([...executions.keys()]) : new Map();
    for (const e of executions.values()) {
      const own = steps.get(e.id) ?? [];
      const sig = `${e.version}|${own.map((s) => `${s.id}:${s.version}`).join(',')}`;
      const last = sent.executions.get(e.id);
      sent.executions.set(e.id, { sig, poll: polls });
      if (!baseline && last?.sig !== sig) emit('execution', executionJson({ ...e, steps: own }));
    }
    // Forget executions that have not changed for a while: a later change is new again.
    for (const [id, v] of sent.executions) if (polls - v.poll > Math.ceil((4 * SLACK_MS) / pollMs) + 2) sent.executions.delete(id);

    for (const n of nodes) {
      const sig = [n.status, n.draining, n.suspected, n.leaseLeftMs < 0, n.concurrency, n.running.join(','), n.runningPartitions.map((p) => p.id).join(',')].join('|');
      const key = `${n.name}@${n.startedAt.getTime()}`;
      if (!baseline && sent.nodes.get(key) !== sig) emit('node', nodeOverviewJson(n));
      sent.nodes.set(key, sig);
    }
    const seen = new Set<string>();
    for (const s of schedules) {
      const json = scheduleJson(s);
      const sig = JSON.stringify(json);
      seen.add(s.name);
      if (!baseline && sent.schedules.get(s.name) !== sig) emit('schedule', json);
      sent.schedules.set(s.name, sig);
    }
    for (const name of sent.schedules.keys()) {
      if (!seen.has(name)) {
        sent.schedules.delete(name);
        emit('schedule-removed', { name });
      }
    }
  };

  const loop = async () => {
    if (running || closed) return;
    running = true;
    try {
      await poll();
      if (repository !== 'ok') emit('status', { repository: (repository = 'ok') });
      for (const s of pending) {
        s.send('ready', JSON.stringify({ pollMs }), ++eventId);
        subscribers.add(s);
      }
      pending.clear();
    } catch (err) {
      if (repository === 'ok') {
        o.log.warn({ err: errorMessage(err) }, 'live events: reading the repository failed; will retry');
        emit('status', { repository: (repository = 'unavailable') });
      }
      // Clients still waiting for `ready` learn why it does not come.
      for (const s of pending) {
        if (told.has(s)) continue;
        told.add(s);
        s.send('status', JSON.stringify({ repository }), ++eventId);
      }
    } finally {
      running = false;
      if ((subscribers.size || pending.size) && !closed) timer = setTimeout(() => void loop(), pollMs);
      else {
        timer = undefined;
        // Nobody listens: the next client starts from a fresh baseline.
        since = undefined;
      }
    }
  };

  return {
    pollMs,
    get clients() {
      return subscribers.size + pending.size;
    },
    subscribe(s) {
      pending.add(s);
      if (!timer && !running) void loop();
      return () => {
        pending.delete(s);
        subscribers.delete(s);
      };
    },
    close() {
      closed = true;
      clearTimeout(timer);
      for (const s of [...subscribers, ...pending]) s.end();
      subscribers.clear();
      pending.clear();
    },
  };
}
