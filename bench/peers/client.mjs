// The enqueueing side of a peer system in the benchmarks, under bench/peers' Node 22 (see
// bench/lib/peers.ts). Sets up SCHEMA (graphile-worker: migrate; pg-boss: install and create the
// queue `noop`), then serves {id, cmd, ...} requests over IPC, answering {id, result} or {id, error}:
//   bulk {from, count, batch}: addJobs / insert, `batch` jobs per call -> {ms}
//   singles {from, count, producers}: addJob / send, `producers` concurrent callers -> {ms}
//   sample {i}: one job marked for a latency sample -> {t0}, the epoch ms just before the call
//   close
// Usage: node client.mjs graphile|pgboss PG_URL SCHEMA [OPTIONS_JSON]
//   pgboss options: {"notify": true} creates the queue with LISTEN/NOTIFY wake-ups.
import { performance } from 'node:perf_hooks';
import { makeWorkerUtils } from 'graphile-worker';
import { PgBoss } from 'pg-boss';

const [system, connectionString, schema, optionsJson] = process.argv.slice(2);
const options = JSON.parse(optionsJson ?? '{}');
const epochMs = () => performance.timeOrigin + performance.now();

let one; // (payload) => Promise
let many; // (payloads) => Promise
let release; // () => Promise
if (system === 'graphile') {
  const utils = await makeWorkerUtils({ connectionString, schema });
  await utils.migrate();
  one = (payload) => utils.addJob('noop', payload);
  many = (payloads) => utils.addJobs(payloads.map((payload) => ({ identifier: 'noop', payload })));
  release = () => utils.release();
} else if (system === 'pgboss') {
  const boss = new PgBoss({ connectionString, schema, supervise: false, schedule: false, useListenNotify: options.notify === true });
  boss.on('error', (err) => console.error(`pg-boss (client) error: ${err.message}`));
  await boss.start();
  await boss.createQueue('noop', options.notify === true ? { notify: true } : {});
  one = (data) => boss.send('noop', data);
  many = (datas) => boss.insert('noop', datas.map((data) => ({ data })));
  release = () => boss.stop({ graceful: false, wait: true });
} else {
  throw new Error(`unknown system ${system}`);
}

const commands = {
  async bulk({ from, count, batch }) {
    const t0 = performance.now();
    for (let at = from; at < from + count; at += batch) {
      await many(Array.from({ length: Math.min(batch, from + count - at) }, (_, k) => ({ i: at + k })));
    }
    return { ms: performance.now() - t0 };
  },
  async singles({ from, count, producers }) {
    let next = from;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: producers }, async () => {
      while (next < from + count) await one({ i: next++ });
    }));
    return { ms: performance.now() - t0 };
  },
  async sample({ i }) {
    const t0 = epochMs();
    await one({ i, lat: i });
    return { t0 };
  },
  async close() {
    await release();
    return {};
  },
};

process.on('message', (m) => {
  const command = commands[m.cmd];
  Promise.resolve()
    .then(() => (command ? command(m) : Promise.reject(new Error(`unknown command ${m.cmd}`))))
    .then((result) => process.send({ id: m.id, result }), (err) => process.send({ id: m.id, error: String(err?.stack ?? err) }));
});
process.on('SIGTERM', () => process.exit(0));
process.send({ ready: true });
