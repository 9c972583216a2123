/**
 * One-shot triggers across real `nightshift node` processes on PostgreSQL: each fires exactly
 * once in the whole cluster of 3 nodes, due at the same moment as its peers, and never again
 * after the nodes are killed and restarted.
 */
import { describe, expect, it } from 'vitest';
import { pgBackend } from '../cluster/helpers.ts';
import { dbNow, fireLog, freshPerTest, kill, openRepo, runsOf, startNode, untilDbTime, untilQuiet, waitAlive, waitFor } from './helpers.ts';

const newRepo = freshPerTest(pgBackend(), openRepo);
const SHOTS = 12;

describe('one-shot triggers (PostgreSQL, 3 node processes)', () => {
  it('each fires exactly once across the cluster, and not again after a restart', async () => {
    const { db, url, admin } = await newRepo('oneshotcluster');
    const t0 = await dbNow(db);
    const nodes = [startNode(url, 'a'), startNode(url, 'b'), startNode(url, 'c')];
    await waitAlive(db, ['a', 'b', 'c'], t0);
    // All due at the same moment, a little ahead: every node wakes up for them.
    const at = (await dbNow(db)) + 800;
    for (let i = 0; i < SHOTS; i++) await admin.add({ name: `shot-${i}`, job: 'noop', at: new Date(at), params: { 'run.id': i } });
    // And one already past: a misfire, fired once at once.
    const past = at - 3600_000;
    await admin.add({ name: 'shot-past', job: 'noop', at: new Date(past).toISOString(), params: { 'run.id': SHOTS } });

    const fired = async () => (await runsOf(db, 'noop')).length;
    await waitFor(async () => (await fired()) >= SHOTS + 1, 30_000, 'every one-shot fired');
    await untilQuiet(db);
    for (const n of nodes) await kill(n);
    const restartedAt = await dbNow(db);
    startNode(url, 'a');
    startNode(url, 'b');
    startNode(url, 'c');
    await waitAlive(db, ['a', 'b', 'c'], restartedAt);
    await untilDbTime(db, (await dbNow(db)) + 2000);

    const runs = await runsOf(db, 'noop');
    expect(runs.map((r) => r.params['run.id']).sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: SHOTS + 1 }, (_, i) => i));
    expect(new Set(runs.map((r) => r.instanceId)).size).toBe(SHOTS + 1);
    for (let i = 0; i < SHOTS; i++) expect((await fireLog(db, `shot-${i}`)).map((f) => [f.fireTime, f.outcome]), `shot-${i}`).toEqual([[at, 'fired']]);
    expect((await fireLog(db, 'shot-past')).map((f) => [f.fireTime, f.outcome])).toEqual([[past, 'misfired']]);
    for (const s of await admin.list()) expect(s, s.name).toMatchObject({ nextFireTime: null });
    expect(runs.filter((r) => r.createTime > restartedAt)).toEqual([]);
  }, 90_000);
});
