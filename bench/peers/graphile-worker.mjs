// A graphile-worker process for the benchmarks, under bench/peers' Node 22: runs no-op `noop`
// tasks. A task whose payload has `lat` reports its start time over IPC (a latency sample).
// LOCAL_QUEUE > 0 turns on its batching as its performance docs configure it for throughput:
// preset.worker.localQueue.size = LOCAL_QUEUE, completeJobBatchDelay = failJobBatchDelay = 0.
// Its pool has CONCURRENCY + 1 connections (as it advises: fewer than CONCURRENCY draws a warning).
// The ready message says whether the local queue was set up ({ready, localQueue}).
// Usage: node graphile-worker.mjs PG_URL SCHEMA CONCURRENCY [LOCAL_QUEUE]
import { performance } from 'node:perf_hooks';
import { EventEmitter } from 'node:events';
import { Logger, run } from 'graphile-worker';

const [connectionString, schema, concurrency, localQueue = '0'] = process.argv.slice(2);
const epochMs = () => performance.timeOrigin + performance.now();
// Warnings and errors only: the default logger prints a line per completed job.
const logger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') console.error(`graphile-worker ${level}: ${message}`);
});
const size = Number(localQueue);
const events = new EventEmitter();
let localQueues = 0;
events.on('localQueue:init', () => localQueues++);
const runner = await run({
  connectionString,
  schema,
  concurrency: Number(concurrency),
  maxPoolSize: Number(concurrency) + 1,
  noHandleSignals: true,
  logger,
  events,
  preset: size > 0 ? { worker: { localQueue: { size }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } : undefined,
  taskList: {
    noop: async (payload) => {
      if (payload?.lat !== undefined) process.send({ lat: payload.lat, t: epochMs() });
    },
  },
});
process.on('SIGTERM', () => void runner.stop().finally(() => process.exit(0)));
process.send({ ready: true, localQueue: localQueues > 0 });
