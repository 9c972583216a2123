/**
 * Two `nightshift node` processes on one SQLite file (one machine): both run the scheduler loop,
 * as on PostgreSQL, and each fire time still starts exactly one job instance. On SQLite a firing
 * takes the write lock first (BEGIN IMMEDIATE) and only then reads which triggers are due, so the
 * nodes fire one after the other and the second finds the trigger moved on; the fire log's key
 * (trigger, fire time) and the trigger's `WHERE next_fire_time = cur` would refuse a repeat anyway.
 */
import { describe, expect, it } from 'vitest';
import { backends } from '../support/backends.ts';
import { byFireTime, dbNow, fireLog, freshPerTest, iso, kill, openRepo, runsOf, startNode, untilFired, waitAlive } from './helpers.ts';

const newRepo = freshPerTest(backends().find((b) => b.name === 'sqlite')!, openRepo);
const EVERY_MS = 200;

describe('two nodes on one SQLite file', () => {
  it('both fire triggers, every fire time starts exactly one instance, and either fires alone', async () => {
    const { db, url, admin } = await newRepo('sqlitetwo');
    const t0 = await dbNow(db);
    const procs = { a: startNode(url, 'a'), b: startNode(url, 'b') };
    await waitAlive(db, ['a', 'b'], t0);
    await admin.add({ name: 'fast', job: 'noop', everyMs: EVERY_MS });
    const from = (Math.floor((await dbNow(db)) / EVERY_MS) + 2) * EVERY_MS;
    const to = from + 5000;
    await untilFired(db, 'noop', to);

    const fires = byFireTime(await runsOf(db, 'noop'));
    const problems: string[] = [];
    for (const [t, f] of fires) if (f.all.length !== 1) problems.push(`${iso(t)}: executions ${f.all.map((r) => r.id).join(',')}`);
    for (let t = from; t <= to; t += EVERY_MS) if (!fires.has(t)) problems.push(`${iso(t)}: missed`);
    expect(problems).toEqual([]);
    const log = (await fireLog(db, 'fast')).filter((f) => f.fireTime >= from && f.fireTime <= to);
    expect(log.every((f) => f.outcome === 'fired')).toBe(true);
    // Both nodes' schedulers run. Which one wins the write lock at each fire time is up to timing
    // (under load one can win all 25), so: without the busier one, the other fires every time.
    const fired = (node: string) => log.filter((f) => f.node === node).length;
    const [busier, other] = fired('a') >= fired('b') ? (['a', 'b'] as const) : (['b', 'a'] as const);
    await kill(procs[busier]);
    const after = (Math.floor((await dbNow(db)) / EVERY_MS) + 2) * EVERY_MS;
    const until = after + 2000;
    await untilFired(db, 'noop', until);
    const alone = (await fireLog(db, 'fast')).filter((f) => f.fireTime >= after && f.fireTime <= until);
    expect(alone.map((f) => `${f.node} ${f.outcome}`)).toEqual(Array.from({ length: (until - after) / EVERY_MS + 1 }, () => `${other} fired`));
  }, 120_000);
});
