import { hostname } from 'node:os';
import { processAlive } from '../engine/launch.ts';
import { UsageError } from '../core/errors.ts';
import type { Database } from '../repository/database.ts';
import { SQL } from '../repository/sql.ts';

/** How a node keeps its lease: renew every `heartbeatMs`; declared dead after `leaseMs` without renewal. */
export interface LeaseOptions {
  /** How often the process renews its lease. */
  heartbeatMs: number;
  /** How long a lease lasts after each renewal: a process silent for longer is declared dead. */
  leaseMs: number;
  /** A main event loop blocked for longer than this withholds the heartbeat. */
  stuckAfterMs: number;
}

/** Defaults chosen so that a dead node's work runs again elsewhere within 5 s. */
export const DEFAULT_LEASE: LeaseOptions = { heartbeatMs: 1000, leaseMs: 3500, stuckAfterMs: 30_000 };

/** The lease settings given, each left out or undefined one its default (an explicit undefined is not given). */
export function withLeaseDefaults(options: { [K in keyof LeaseOptions]?: LeaseOptions[K] | undefined } = {}): LeaseOptions {
  return {
    heartbeatMs: options.heartbeatMs ?? DEFAULT_LEASE.heartbeatMs,
    leaseMs: options.leaseMs ?? DEFAULT_LEASE.leaseMs,
    stuckAfterMs: options.stuckAfterMs ?? DEFAULT_LEASE.stuckAfterMs,
  };
}

/** A registered node: a cluster member, or a single process running jobs (`nightshift run`). */
export interface NodeIdentity {
  readonly id: number;
  readonly name: string;
  readonly cluster: string;
  readonly host: string;
  readonly pid: number;
  readonly kind: 'node' | 'process';
}

export interface NodeRegistration {
  name?: string;
  cluster?: string;
  kind: 'node' | 'process';
  jobs: string[];
  concurrency: number;
  lease: LeaseOptions;
}

/**
 * How long a chunk transaction may sit idle on PostgreSQL before the server ends it: about the
 * lease, so a paused owner releases its locks by the time its lease runs out.
 */
export function idleLimit(lease: LeaseOptions): number {
  return Math.max(1000, lease.leaseMs);
}

export function validateLease(lease: LeaseOptions): void {
  const check = (name: string, v: number, min: number) => {
    if (!Number.isFinite(v) || v < min || !Number.isInteger(v)) {
      throw new Error(`${name} must be a whole number of milliseconds >= ${min}, got ${v}`);
    }
  };
  check('heartbeat-ms', lease.heartbeatMs, 20);
  check('lease-ms', lease.leaseMs, 50);
  check('stuck-after-ms', lease.stuckAfterMs, 100);
  if (lease.leaseMs <= lease.heartbeatMs) {
    throw new Error(`lease-ms (${lease.leaseMs}) must be longer than heartbeat-ms (${lease.heartbeatMs})`);
  }
}

const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}$/;

/** Refuses a node name that is not letters, digits and _ . : @ - (as job names), so that no name can carry terminal escapes or spaces. */
export function validateNodeName(name: string | undefined): void {
  if (name !== undefined && (typeof name !== 'string' || !NODE_NAME.test(name))) {
    throw new UsageError(`invalid node name ${JSON.stringify(name)}: use letters, digits and _ . : @ - (at most 200, starting with a letter or digit)`);
  }
}

/**
 * A cluster node's first lease lasts at least this long: it must cover starting the heartbeat
 * thread (a thread, the driver, a connection), which on a loaded host (many nodes starting at
 * once) can take longer than a lease, and a node declared dead before its first beat would
 * rejoin only to miss it again. A node owns nothing until it has joined (its first beat), so
 * the longer first lease delays no failover; its first beat shortens it to `leaseMs`.
 */
export const FIRST_LEASE_MS = 15_000;

/**
 * Whether a live registration of this node's name is an earlier run of this same node that
 * ended without leaving (killed, then restarted before its lease ran out): on this host, and its
 * process gone, or this very pid (a container restarted under the same pid 1).
 */
export function isEarlierRun(other: { host: string; pid: number }): boolean {
  if (other.host !== hostname()) return false;
  return other.pid === process.pid || !processAlive(other.pid);
}

/** Registers this process in ns_node; its lease starts now by the database's clock. */
export async function registerNode(db: Database, reg: NodeRegistration): Promise<NodeIdentity> {
  const host = hostname();
  const pid = process.pid;
  validateNodeName(reg.name);
  const name = reg.name ?? `${reg.kind === 'node' ? 'node' : 'run'}-${host}-${pid}`;
  const cluster = reg.cluster ?? 'default';
  const rows = await db.query<{ id: number }>(SQL.insertNode, [
    name, cluster, host, pid, reg.kind, JSON.stringify(reg.jobs), reg.concurrency, reg.lease.heartbeatMs, reg.lease.leaseMs,
    reg.kind === 'node' ? Math.max(reg.lease.leaseMs, FIRST_LEASE_MS) : reg.lease.leaseMs,
  ]);
  return { id: Number(rows[0].id), name, cluster, host, pid, kind: reg.kind };
}
