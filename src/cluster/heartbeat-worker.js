// Renews this node's lease from a worker thread with its own database connection, so a busy
// main event loop (a CPU-heavy chunk) does not cost the node its lease. The main thread pings
// this worker; when the pings stop for longer than `stuckAfterMs` the main loop is stuck, and
// the worker withholds the heartbeat so that the node loses its work (fencing keeps it safe).
// For a cluster node it also reads, on the same connection, what the node's recurring checks
// need (SQL.nodeProbe: stop and drain requests, membership changes, late peers, queued work), so
// that an idle node's pool can close its connections.
// Plain JavaScript on purpose: it must load in a worker without a TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';

const { dialect, sqlitePath, pgConfig, nodeId, intervalMs, stuckAfterMs, sql, probe } = workerData;

let client = null;
let lastPing = performance.now();
let stuckReported = false;
let stopped = false;

async function connect() {
  if (dialect === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(sqlitePath);
    db.pragma('busy_timeout = 30000');
    db.function('ns_now', { deterministic: false }, () => Date.now());
    const heartbeat = db.prepare(sql.heartbeat.replace(/\$\d+/g, '?'));
    const stopping = db.prepare(sql.stopping.replace(/\$\d+/g, '?'));
    // The probe uses a parameter more than once: each `$n` becomes a `?`, bound in this order.
    const order = [];
    const probed = probe && db.prepare(probe.sql.replace(/\$(\d+)/g, (_m, n) => (order.push(Number(n) - 1), '?')));
    return {
      beat: async () => heartbeat.all(nodeId),
      stopping: async () => stopping.all(nodeId).map((r) => Number(r.id)),
      probe: async () => probed.get(...order.map((i) => probeParams()[i])),
      close: async () => db.close(),
    };
  }
  const { default: pg } = await import('pg');
  const c = new pg.Client({ ...pgConfig, types: { getTypeParser: (oid, fmt) => (oid === 20 ? Number : pg.types.getTypeParser(oid, fmt)) } });
  c.on('error', () => undefined);
  await c.connect();
  return {
    beat: async () => (await c.query(sql.heartbeat, [nodeId])).rows,
    stopping: async () => (await c.query(sql.stopping, [nodeId])).rows.map((r) => Number(r.id)),
    probe: async () => (await c.query({ name: 'ns_probe', text: probe.sql, values: probeParams() })).rows[0],
    close: async () => c.end(),
  };
}

async function tick() {
  if (stopped) return;
  const lag = performance.now() - lastPing;
  if (lag > stuckAfterMs) {
    if (!stuckReported) parentPort.postMessage({ type: 'stuck', lagMs: Math.round(lag) });
    stuckReported = true;
    return;
  }
  stuckReported = false;
  try {
    client ??= await connect();
    if (stopped) {
      // Stopped while connecting: close now, or the open connection would keep this worker alive.
      await client.close().catch(() => undefined);
      client = null;
      return;
    }
    const rows = await client.beat();
    if (rows.length === 0) {
      parentPort.postMessage({ type: 'lost' });
      return;
    }
    parentPort.postMessage({ type: 'beat', leaseUntil: Number(rows[0].lease_until) });
    if (probe) {
      const p = await client.probe();
      const ids = parseIds(p.stopping);
      if (ids.length) parentPort.postMessage({ type: 'stopping', ids });
      parentPort.postMessage({
        type: 'probe',
        drainRequested: p.drain_requested_at !== null && p.drain_requested_at !== undefined,
        // Joins, ends, and drains begun or withdrawn (a resume lowers the count).
        membership: `${p.last_joined ?? ''}/${p.last_ended ?? ''}/${p.draining ?? 0}/${p.last_drained ?? ''}`,
        late: p.late === true || p.late === 1,
        queued: p.queued === true || p.queued === 1,
        countsPending: p.counts_pending === true || p.counts_pending === 1,
      });
    } else {
      const ids = await client.stopping();
      if (ids.length) parentPort.postMessage({ type: 'stopping', ids });
    }
  } catch (err) {
    parentPort.postMessage({ type: 'error', message: err?.message ?? String(err) });
    const old = client;
    client = null;
    old?.close().catch(() => undefined);
  }
}

function probeParams() {
  return [nodeId, probe.jobs, probe.name, probe.lateMs];
}

/** JSON ids as PostgreSQL's json_agg (parsed, or null) or SQLite's json_group_array (text) give them. */
function parseIds(v) {
  const ids = typeof v === 'string' ? JSON.parse(v) : v;
  return Array.isArray(ids) ? ids.map(Number) : [];
}

// One tick at a time: a tick slower than the interval (a slow database) makes the next one skip,
// never run beside it on the same connection or open a second one.
let ticking = false;
const guardedTick = async () => {
  if (ticking) return;
  ticking = true;
  try {
    await tick();
  } finally {
    ticking = false;
  }
};
const timer = setInterval(() => void guardedTick(), intervalMs);
void guardedTick();

parentPort.on('message', async (msg) => {
  if (msg === 'ping') {
    lastPing = performance.now();
  } else if (msg === 'stop') {
    stopped = true;
    clearInterval(timer);
    await client?.close().catch(() => undefined);
    parentPort.close();
  }
});
