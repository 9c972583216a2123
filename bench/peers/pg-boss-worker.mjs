// A pg-boss process for the benchmarks, under bench/peers' Node 22: one `work()` loop on queue
// `noop` fetching up to BATCH jobs at a time; it fetches again at once while fetches come back
// full (burstWhenBatchFull), and otherwise polls every 0.5 s (pg-boss's minimum), or is woken by
// LISTEN/NOTIFY when NOTIFY is 1 (the queue must have been created with notify). A job whose data
// has `lat` reports its start time over IPC (a latency sample).
// Usage: node pg-boss-worker.mjs PG_URL SCHEMA BATCH [NOTIFY]
import { performance } from 'node:perf_hooks';
import { PgBoss } from 'pg-boss';

const [connectionString, schema, batch, notify = '0'] = process.argv.slice(2);
const epochMs = () => performance.timeOrigin + performance.now();
const boss = new PgBoss({ connectionString, schema, migrate: false, schedule: false, useListenNotify: notify === '1' });
boss.on('error', (err) => console.error(`pg-boss error: ${err.message}`));
await boss.start();
await boss.work('noop', { batchSize: Number(batch), pollingIntervalSeconds: 0.5, burstWhenBatchFull: true }, async (jobs) => {
  for (const job of jobs) if (job.data?.lat !== undefined) process.send({ lat: job.data.lat, t: epochMs() });
});
process.on('SIGTERM', () => void boss.stop({ graceful: true, wait: true }).finally(() => process.exit(0)));
process.send({ ready: true });
