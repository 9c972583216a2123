/**
 * Clustered firing across real `nightshift node` processes on PostgreSQL: every scheduled second
 * starts exactly one job instance while a node is SIGKILLed and restarted, and while the nodes'
 * clocks are skewed by +-30 s (libfaketime). Latency is measured by the database's clock: the
 * fire log's firedAt (ns_now() in the firing transaction's last statement, before its COMMIT)
 * minus the fire time; no execution starts before its fire time.
 *
 * NIGHTSHIFT_SOAK=1 runs each phase for a minute or more instead of a few seconds.
 */
import { describe, expect, it } from 'vitest';
import { pgBackend } from '../cluster/helpers.ts';
import {
  clockSkewOf, dbNow, exactlyOncePerSecond, fireLog, freshPerTest, hasFaketime, iso, kill, latencies, openRepo, percentile, runsOf,
  sec, skewEnv, SOAK, startNode, untilFired, untilQuiet, waitAlive, type FireRow, type Run,
} from './helpers.ts';
import { itWhen } from '../support/skip.ts';

const newRepo = freshPerTest(pgBackend(), openRepo);
const PHASE_MS = SOAK ? 60_000 : 5_000;
const BULK = 20;

function report(label: string, lat: number[]) {
  const line = `${label}: ${lat.length} firings, latency p50 ${percentile(lat, 50)} ms, p99 ${percentile(lat, 99)} ms, max ${lat[lat.length - 1]} ms`;
  console.log(line);
  return line;
}

/** Common checks for one trigger's firings over [from, to]. */
function checkWindow(label: string, runs: Run[], log: FireRow[], from: number, to: number) {
  expect(exactlyOncePerSecond(runs, from, to), `${label}: exactly one instance per second`).toEqual([]);
  const lat = latencies(runs, log, from, to);
  report(label, lat);
  // Never early by the database's clock (neither the firing nor, as the commit comes after it,
  // a node's start of what it launched), and never late enough to be a misfire.
  expect(lat[0], `${label}: earliest firing`).toBeGreaterThanOrEqual(0);
  expect(runs.filter((r) => r.startTime !== null && r.startTime < r.fireTime), `${label}: started before the fire time`).toEqual([]);
  expect(lat[lat.length - 1], `${label}: latest firing`).toBeLessThan(5000);
  return lat;
}

describe('clustered firing (PostgreSQL, 3 node processes)', () => {
  it('fires every second exactly once, in batches, while a node is SIGKILLed and restarted', async () => {
    const { db, url, admin } = await newRepo('schedkill');
    const t0 = await dbNow(db);
    const nodes = { a: startNode(url, 'a'), b: startNode(url, 'b'), c: startNode(url, 'c') };
    await waitAlive(db, ['a', 'b', 'c'], t0);
    await admin.add({ name: 'every-second', job: 'noop', everyMs: 1000 });
    await admin.add({ name: 'cron-second', job: 'count', cron: '* * * * * ?', params: { items: 1, tag: 'cron' } });
    // Many triggers due in the same second: the nodes fire them in batches (one transaction each).
    for (let i = 0; i < BULK; i++) await admin.add({ name: `bulk-${i}`, job: 'noop', everyMs: 1000, params: { 'run.id': i } });
    const from = sec(await dbNow(db)) + 2000;

    await untilFired(db, 'noop', from + PHASE_MS);
    await kill(nodes.b);
    const killedAt = await dbNow(db);
    await untilFired(db, 'noop', sec(killedAt) + PHASE_MS + 1000);
    const restartAt = await dbNow(db);
    nodes.b = startNode(url, 'b');
    await waitAlive(db, ['b'], restartAt);
    await untilFired(db, 'noop', sec(await dbNow(db)) + PHASE_MS);

    await admin.pause('every-second');
    await admin.pause('cron-second');
    const pausedAt = await dbNow(db);
    // A fire time just before the pause may legitimately not have fired yet: stop the window 1 s earlier.
    const to = sec(pausedAt) - 1000;
    for (let i = 0; i < BULK; i++) await admin.pause(`bulk-${i}`);
    await untilQuiet(db);

    const allNoop = await runsOf(db, 'noop');
    const noopRuns = allNoop.filter((r) => r.params['run.id'] === undefined);
    const cronRuns = await runsOf(db, 'count', 'cron');
    const everyLog = await fireLog(db, 'every-second');
    const cronLog = await fireLog(db, 'cron-second');
    const lat = [...checkWindow('every 1000 ms', noopRuns, everyLog, from, to), ...checkWindow('cron * * * * * ?', cronRuns, cronLog, from, to)]
      .sort((x, y) => x - y);
    for (let i = 0; i < BULK; i++) {
      const runs = allNoop.filter((r) => r.params['run.id'] === i);
      expect(exactlyOncePerSecond(runs, from, to), `bulk-${i}: exactly one instance per second`).toEqual([]);
    }
    // Rows one transaction inserted share its id (xmin): fewer transactions than firings proves batches.
    const tx = await db.query<{ fires: number | string; txs: number | string }>(
      `SELECT count(*) AS fires, count(DISTINCT xmin::text) AS txs FROM ns_trigger_fire WHERE trigger_name LIKE 'bulk-%'`,
    );
    expect(Number(tx[0].txs)).toBeLessThan(Number(tx[0].fires) / 4);
    report(`both triggers, ${iso(from)}..${iso(to)}, b killed at ${iso(killedAt)}, restarted ${iso(restartAt)}`, lat);
    // Nothing fired after the pause, and every instance completed (failover included).
    expect([...noopRuns, ...cronRuns].filter((r) => r.createTime > pausedAt)).toEqual([]);
    const completed = new Set([...noopRuns, ...cronRuns].filter((r) => r.status === 'COMPLETED').map((r) => r.instanceId));
    expect([...noopRuns, ...cronRuns].filter((r) => !completed.has(r.instanceId))).toEqual([]);
    // The fire log agrees: on time, no misfires, and fired by more than one node.
    const log = [...everyLog, ...cronLog];
    expect(log.filter((f) => f.outcome !== 'fired')).toEqual([]);
    expect(new Set(log.map((f) => f.node)).size).toBeGreaterThan(1);
  }, SOAK ? 600_000 : 90_000);

  itWhen(hasFaketime(), 'libfaketime is not installed (apt-get install faketime)')('fires on time by the database clock with node clocks skewed by +-30 s', async () => {
    const ahead = skewEnv('+30s');
    const behind = skewEnv('-30s');
    // libfaketime must really move Node's clock, or this test would prove nothing.
    expect(Math.abs(clockSkewOf(ahead) - 30_000)).toBeLessThan(3000);
    expect(Math.abs(clockSkewOf(behind) + 30_000)).toBeLessThan(3000);

    const { db, url, admin } = await newRepo('schedskew');
    const t0 = await dbNow(db);
    const nodes = { a: startNode(url, 'a', { env: ahead }), b: startNode(url, 'b', { env: behind }), c: startNode(url, 'c', { env: behind }) };
    await waitAlive(db, ['a', 'b', 'c'], t0);
    await admin.add({ name: 'cron-second', job: 'noop', cron: '* * * * * ?' });
    await admin.add({ name: 'every-second', job: 'count', everyMs: 1000, params: { items: 1, tag: 'every' } });
    const from = sec(await dbNow(db)) + 2000;
    await untilFired(db, 'noop', from + PHASE_MS);
    // Only the nodes whose clocks are 30 s behind are left: they must not fire late.
    await kill(nodes.a);
    const killedAt = await dbNow(db);
    await untilFired(db, 'noop', sec(killedAt) + PHASE_MS);
    await admin.pause('cron-second');
    await admin.pause('every-second');
    const to = sec(await dbNow(db)) - 1000;
    await untilQuiet(db);

    const noopRuns = await runsOf(db, 'noop');
    const everyRuns = await runsOf(db, 'count', 'every');
    const cronLog = await fireLog(db, 'cron-second');
    const everyLog = await fireLog(db, 'every-second');
    checkWindow('skewed, cron', noopRuns, cronLog, from, to);
    checkWindow('skewed, every', everyRuns, everyLog, from, to);
    const behindOnly = [...latencies(noopRuns, cronLog, sec(killedAt) + 1000, to), ...latencies(everyRuns, everyLog, sec(killedAt) + 1000, to)]
      .sort((x, y) => x - y);
    report('only nodes 30 s behind', behindOnly);
    expect(behindOnly.length).toBeGreaterThanOrEqual(2 * Math.floor(PHASE_MS / 1000) - 2);
    expect(percentile(behindOnly, 50)).toBeLessThan(1000);
    const log = [...cronLog, ...everyLog];
    expect(log.filter((f) => f.outcome !== 'fired')).toEqual([]);
    void nodes;
  }, SOAK ? 600_000 : 90_000);
});
