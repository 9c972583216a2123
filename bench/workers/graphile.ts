/**
 * A graphile-worker process for the launch benchmark: runs no-op `noop` tasks. A task whose
 * payload has `lat` reports its start time over IPC (the latency sample).
 *
 * Usage: node --import tsx bench/workers/graphile.ts SCHEMA CONCURRENCY
 */
import { Logger, run } from 'graphile-worker';
import { epochMs, PG } from '../lib/util.ts';

const [schema, concurrency] = process.argv.slice(2);
// Warnings and errors only: the default logger prints a line per completed job.
const logger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') console.error(`graphile-worker ${level}: ${message}`);
});
const runner = await run({
  connectionString: PG,
  schema,
  concurrency: Number(concurrency),
  noHandleSignals: true,
  logger,
  taskList: {
    noop: async (payload) => {
      const lat = (payload as { lat?: number }).lat;
      if (lat !== undefined) process.send!({ lat, t: epochMs() });
    },
  },
});
process.on('SIGTERM', () => void runner.stop().finally(() => process.exit(0)));
process.send!({ ready: true });
