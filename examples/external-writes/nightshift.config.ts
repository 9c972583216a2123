/**
 * Writing outside the job repository: to another database, and to an external service.
 *
 * Nightshift's exactly-once covers what a writer does through `chunk.tx`, the chunk's
 * transaction in the job repository's database: it commits with the step's checkpoint. Another
 * database, or a service called over the network, commits on its own; after a crash between its
 * write and the checkpoint's commit, the restart writes that chunk again. So these writes are
 * made idempotent:
 *
 * - the `load` step upserts each order into a second database (here another SQLite file, the
 *   "warehouse") keyed on the order's natural key, so writing a chunk again changes nothing;
 * - it also writes one event per order into an outbox table in the repository's database,
 *   through `chunk.tx`: those rows commit exactly once, with the checkpoint;
 * - the `relay` step sends the outbox's unsent events to the service, each with its key (an
 *   idempotency key the service deduplicates on), and marks them sent in its own transaction.
 *   After a crash between sending and marking, the restart sends them again, and the service
 *   ignores the repeats. Delivery is at least once; the effect is exactly once.
 *
 * The "service" here is an `inbox` table in the warehouse file that keeps the first delivery of
 * each key and counts the repeats, so the test can see them. `crashAt` and `relayCrashAt` kill
 * the process (SIGKILL) at the worst moment, the first time it gets there: after the warehouse
 * write of the chunk holding order `crashAt`, before its checkpoint commits; and after
 * delivering event `relayCrashAt`, before it is marked sent.
 *
 *   npx nightshift run sync-orders items=100 --config examples/external-writes/nightshift.config.ts
 */
import Sqlite from 'better-sqlite3';
import { defineJob, ensureTable, insertRows, p, rangeReader, type Tx } from 'nightshift';

interface Order {
  /** The natural key: stable across restarts, unlike an id the target would generate. */
  readonly orderNo: string;
  readonly amount: number;
}

/** The second database: a table keyed on the natural key, and the service's inbox. */
function openWarehouse(path: string): Sqlite.Database {
  const db = new Sqlite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.exec(`CREATE TABLE IF NOT EXISTS orders (order_no TEXT PRIMARY KEY, amount REAL NOT NULL, writes INTEGER NOT NULL DEFAULT 1);
           CREATE TABLE IF NOT EXISTS inbox (event_key TEXT PRIMARY KEY, payload TEXT NOT NULL, deliveries INTEGER NOT NULL DEFAULT 1)`);
  return db;
}

/** Stands in for the external service: it deduplicates on the idempotency key and counts repeats. */
function deliver(warehouse: Sqlite.Database, key: string, payload: string): void {
  warehouse
    .prepare('INSERT INTO inbox (event_key, payload) VALUES (?, ?) ON CONFLICT (event_key) DO UPDATE SET deliveries = deliveries + 1')
    .run(key, payload);
}

/** Dies at once, as a power cut would: no exception, no cleanup, no rollback. */
function crash(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

const OUTBOX = 'CREATE TABLE IF NOT EXISTS sync_outbox (event_key TEXT PRIMARY KEY, seq INTEGER NOT NULL, payload TEXT NOT NULL, sent_at BIGINT)';
const RELAY_BATCH = 20;

export const syncOrders = defineJob({
  name: 'sync-orders',
  description: 'Loads orders into a warehouse database and relays an event per order to a service, exactly once in effect.',
  params: {
    items: p.int({ default: 100, validate: (n) => (n < 0 ? 'must be >= 0' : undefined) }),
    warehouse: p.string({ default: 'warehouse.db' }),
    crashAt: p.int({ default: 0, identifying: false }),
    relayCrashAt: p.int({ default: 0, identifying: false }),
  },
  steps: (s) => [
    s.chunk<number, Order>({
      name: 'load',
      chunkSize: 10,
      reader: ({ params }) => rangeReader(1, params.items),
      processor: (n) => ({ orderNo: `ORD-${String(n).padStart(6, '0')}`, amount: n * 1.5 }),
      writer: ({ params, db }) => {
        let warehouse: Sqlite.Database;
        return {
          open: async () => {
            await ensureTable(db, OUTBOX);
            warehouse = openWarehouse(params.warehouse);
          },
          write: async (orders, chunk) => {
            // 1. Another database: an upsert on the natural key, in that database's own transaction.
            const upsert = warehouse.prepare(
              'INSERT INTO orders (order_no, amount) VALUES (?, ?) ON CONFLICT (order_no) DO UPDATE SET amount = excluded.amount, writes = writes + 1',
            );
            warehouse.transaction(() => orders.forEach((o) => upsert.run(o.orderNo, o.amount)))();
            // 2. The outbox: in the chunk's transaction, so it commits with the checkpoint, exactly once.
            const events = orders.map((o) => [`order-synced:${o.orderNo}`, Number(o.orderNo.slice(4)), JSON.stringify(o)]);
            await insertRows(chunk.tx, 'sync_outbox', ['event_key', 'seq', 'payload'], events);
            const marker = orders.find((o) => Number(o.orderNo.slice(4)) === params.crashAt);
            if (marker && writesOf(warehouse, marker.orderNo) === 1) crash(); // the chunk's checkpoint never commits
          },
          close: () => void warehouse?.close(),
        };
      },
    }),
    s.tasklet({
      name: 'relay',
      // Runs in a transaction that commits after each call; 'CONTINUABLE' asks for another call.
      tasklet: async ({ tx, params }) => {
        const events = await tx.query<{ event_key: string; seq: number; payload: string }>(
          'SELECT event_key, seq, payload FROM sync_outbox WHERE sent_at IS NULL ORDER BY seq LIMIT $1',
          [RELAY_BATCH],
        );
        const warehouse = openWarehouse(params.warehouse);
        try {
          for (const e of events) {
            deliver(warehouse, e.event_key, e.payload); // e.g. an HTTP POST with `Idempotency-Key: ${e.event_key}`
            if (e.seq === params.relayCrashAt && deliveriesOf(warehouse, e.event_key) === 1) crash(); // sent, not marked
          }
        } finally {
          warehouse.close();
        }
        await markSent(tx, events.map((e) => e.event_key));
        return events.length === RELAY_BATCH ? 'CONTINUABLE' : undefined;
      },
    }),
  ],
});

async function markSent(tx: Tx, keys: string[]): Promise<void> {
  for (const key of keys) await tx.execute('UPDATE sync_outbox SET sent_at = ns_now() WHERE event_key = $1', [key]);
}

function writesOf(warehouse: Sqlite.Database, orderNo: string): number {
  return (warehouse.prepare('SELECT writes FROM orders WHERE order_no = ?').get(orderNo) as { writes: number }).writes;
}

function deliveriesOf(warehouse: Sqlite.Database, key: string): number {
  return (warehouse.prepare('SELECT deliveries FROM inbox WHERE event_key = ?').get(key) as { deliveries: number }).deliveries;
}
