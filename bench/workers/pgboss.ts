/**
 * A pg-boss 10 process for the launch benchmark: LOOPS `work()` loops on queue `noop`, each
 * fetching up to BATCH jobs per poll at pg-boss's minimum polling interval (0.5 s). A job whose
 * data has `lat` reports its start time over IPC (the latency sample).
 *
 * Usage: node --import tsx bench/workers/pgboss.ts SCHEMA BATCH LOOPS
 */
import PgBoss from 'pg-boss';
import { epochMs, PG } from '../lib/util.ts';

const [schema, batch, loops] = process.argv.slice(2);
const boss = new PgBoss({ connectionString: PG, schema, migrate: false, schedule: false });
boss.on('error', (err) => console.error(`pg-boss error: ${err.message}`));
await boss.start();
for (let i = 0; i < Number(loops); i++) {
  await boss.work<{ lat?: number }>('noop', { batchSize: Number(batch), pollingIntervalSeconds: 0.5 }, async (jobs) => {
    for (const job of jobs) if (job.data.lat !== undefined) process.send!({ lat: job.data.lat, t: epochMs() });
  });
}
process.on('SIGTERM', () => void boss.stop({ graceful: true, wait: true }).finally(() => process.exit(0)));
process.send!({ ready: true });
