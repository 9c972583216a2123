/**
 * Changing triggers while the cluster runs (PostgreSQL, real node processes): add, pause,
 * resume and remove through the CLI take effect on every node; a no-concurrent trigger with a
 * slow job never overlaps itself; and both misfire policies after the whole cluster was down.
 *
 * NIGHTSHIFT_SOAK=1 keeps the cluster down for a minute instead of 5 s.
 */
import { describe, expect, it } from 'vitest';
import { pgBackend } from '../cluster/helpers.ts';
import { runCli } from '../cli/run-cli.ts';
import {
  CONFIG, byFireTime, dbNow, fireLog, freshPerTest, iso, kill, openRepo, runsOf, sec, SOAK, startNode, untilDbTime, untilFired,
  untilQuiet, waitAlive, waitFor,
} from './helpers.ts';

const newRepo = freshPerTest(pgBackend(), openRepo);

async function schedule(url: string, ...args: string[]) {
  const r = await runCli(['schedule', ...args, '--db', url, '--config', CONFIG]);
  expect(r.code, `schedule ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

describe('triggers changed at runtime (PostgreSQL)', () => {
  it('add, pause, resume and remove through the CLI take effect on every node', async () => {
    const { db, url } = await newRepo('schedctl');
    const t0 = await dbNow(db);
    startNode(url, 'a');
    startNode(url, 'b');
    await waitAlive(db, ['a', 'b'], t0);

    const added = JSON.parse(await schedule(url, 'add', 'ctl', '--job', 'noop', '--every', '1000', '--json')) as { nextFireTime: string };
    const announced = Date.parse(added.nextFireTime);
    await untilFired(db, 'noop', announced + 2000);
    // Its first fire time is the one `add` announced (the first whole second after it was added).
    expect(Math.min(...(await runsOf(db, 'noop')).map((r) => r.fireTime))).toBe(announced);

    await schedule(url, 'pause', 'ctl');
    const pausedAt = await dbNow(db);
    const list = JSON.parse(await schedule(url, 'list', '--json')) as { name: string; paused: boolean }[];
    expect(list).toMatchObject([{ name: 'ctl', paused: true }]);
    await untilDbTime(db, pausedAt + 2500);
    const beforeResume = await runsOf(db, 'noop');
    expect(beforeResume.filter((r) => r.createTime > pausedAt)).toEqual([]);

    const resumedAt = await dbNow(db);
    const resumed = await schedule(url, 'resume', 'ctl');
    const next = /schedule ctl resumed; next fire time (\S+)/.exec(resumed);
    expect(next, resumed).not.toBeNull();
    // The resume takes effect when the CLI (a process of its own, slow to start under load) runs.
    const announcedResume = Date.parse(next![1]);
    expect(announcedResume).toBeGreaterThan(resumedAt);
    await untilFired(db, 'noop', announcedResume + 2000);
    const afterResume = (await runsOf(db, 'noop')).filter((r) => r.fireTime > pausedAt);
    // Fire times that passed while paused are not fired; afterwards every second is.
    expect(afterResume.filter((r) => r.fireTime <= resumedAt)).toEqual([]);
    const times = [...byFireTime(afterResume).keys()].sort((x, y) => x - y);
    // The first fire time after the resume is the one it announced.
    expect(times[0]).toBe(announcedResume);
    expect(times).toEqual(times.map((_, i) => times[0] + i * 1000));

    await schedule(url, 'remove', 'ctl');
    const removedAt = await dbNow(db);
    expect(JSON.parse(await schedule(url, 'list', '--json'))).toEqual([]);
    await untilDbTime(db, removedAt + 2500);
    expect((await runsOf(db, 'noop')).filter((r) => r.createTime > removedAt)).toEqual([]);
    // Every fire time fired once, on one instance.
    for (const [t, f] of byFireTime(await runsOf(db, 'noop'))) expect(f.instances.size, iso(t)).toBe(1);
  }, 90_000);

  it('a no-concurrent trigger waits for its previous execution, and misfires past the threshold', async () => {
    const { db, url } = await newRepo('schednc');
    const t0 = await dbNow(db);
    startNode(url, 'a');
    startNode(url, 'b');
    await waitAlive(db, ['a', 'b'], t0);
    // Each run takes about 2 s; the trigger fires every second.
    await schedule(url, 'add', 'slow', '--job', 'count', '--every', '1000', '--no-concurrent', '--misfire', 'skip',
      '--misfire-threshold', '1500', 'items=4', 'chunk=1', 'delayMs=500', 'tag=nc');
    await waitFor(async () => (await runsOf(db, 'count', 'nc')).filter((r) => r.status === 'COMPLETED').length >= 3, 60_000, '3 slow runs');
    await schedule(url, 'pause', 'slow');
    await untilQuiet(db);

    const runs = (await runsOf(db, 'count', 'nc')).sort((x, y) => x.startTime! - y.startTime!);
    expect(runs.every((r) => r.status === 'COMPLETED')).toBe(true);
    // Never two at once, even with two nodes free to run them.
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i].createTime, `run ${runs[i].id} created after run ${runs[i - 1].id} ended`).toBeGreaterThanOrEqual(runs[i - 1].endTime!);
    }
    // Fire times only go forward; waits past the threshold were skipped, as the policy says.
    const fireTimes = runs.map((r) => r.fireTime);
    expect(fireTimes).toEqual([...fireTimes].sort((x, y) => x - y));
    expect(new Set(fireTimes).size).toBe(fireTimes.length);
    const log = await fireLog(db, 'slow');
    expect(log.some((f) => f.outcome === 'skipped')).toBe(true);
    for (const f of log.filter((x) => x.outcome === 'skipped')) {
      expect(runs.filter((r) => r.fireTime >= f.missedFrom! && r.fireTime <= f.fireTime)).toEqual([]);
    }
  }, 90_000);

  it('a no-concurrent trigger with a backlog never overlaps itself while several nodes fire it', async () => {
    // Each run takes longer than the interval and the threshold is far off, so fire times pile
    // up: whenever a run ends, the next is due at once, and every node reaches for it at its next
    // poll. The nodes poll in step (the NOTIFY of the last add woke them together), so they often
    // reach for it in the same instant. Only one may launch it. Triggers of a job that runs on
    // other nodes (long overdue there) make each node's look at the due triggers take a while, as
    // on a busy cluster, which widens that instant.
    const { db, url, admin } = await newRepo('schedncrace');
    await db.execute(`INSERT INTO ns_trigger (name, job_name, every_ms, misfire, misfire_threshold_ms, next_fire_time, source, create_time, update_time)
      SELECT 'other-' || i, 'other-job', 1000, 'skip', 5000, 1000, 'runtime', 0, 0 FROM generate_series(1, 30000) AS i`);
    const t0 = await dbNow(db);
    startNode(url, 'a');
    startNode(url, 'b');
    startNode(url, 'c');
    await waitAlive(db, ['a', 'b', 'c'], t0);
    const tags = ['nc1', 'nc2', 'nc3', 'nc4'];
    for (const tag of tags) {
      await admin.add({ name: tag, job: 'count', everyMs: 1000, noConcurrent: true, misfireThresholdMs: 60_000,
        params: { items: 3, chunk: 1, delayMs: 300, tag } });
    }
    for (const tag of tags) {
      await waitFor(async () => (await runsOf(db, 'count', tag)).filter((r) => r.status === 'COMPLETED').length >= 8, 60_000, `8 runs of ${tag}`);
    }
    for (const tag of tags) await admin.pause(tag);
    await untilQuiet(db);

    for (const tag of tags) {
      const runs = (await runsOf(db, 'count', tag)).sort((x, y) => x.createTime - y.createTime);
      expect(runs.every((r) => r.status === 'COMPLETED')).toBe(true);
      for (let i = 1; i < runs.length; i++) {
        expect(runs[i].createTime, `${tag}: run ${runs[i].id} created after run ${runs[i - 1].id} ended`).toBeGreaterThanOrEqual(runs[i - 1].endTime!);
      }
      // Fired in order, each fire time once, none skipped (all within the threshold).
      const fireTimes = runs.map((r) => r.fireTime);
      expect(fireTimes).toEqual(fireTimes.map((_, i) => fireTimes[0] + i * 1000));
    }
  }, 90_000);

  it('applies both misfire policies after the whole cluster was down', async () => {
    const DOWN_MS = SOAK ? 60_000 : 5_000;
    const { db, url, admin } = await newRepo('schedmis');
    const t0 = await dbNow(db);
    const a = startNode(url, 'a');
    const b = startNode(url, 'b');
    await waitAlive(db, ['a', 'b'], t0);
    await admin.add({ name: 'once', job: 'count', everyMs: 1000, misfire: 'fire-once', misfireThresholdMs: 2000, params: { items: 1, tag: 'once' } });
    await admin.add({ name: 'skip', job: 'count', everyMs: 1000, misfire: 'skip', misfireThresholdMs: 2000, params: { items: 1, tag: 'skip' } });
    const started = sec(await dbNow(db));
    await untilFired(db, 'count', started + 3000, 'once');
    await untilFired(db, 'count', started + 3000, 'skip');

    await Promise.all([kill(a), kill(b)]);
    const downAt = await dbNow(db);
    await untilDbTime(db, downAt + DOWN_MS);
    const upAt = await dbNow(db);
    startNode(url, 'a');
    await waitAlive(db, ['a'], upAt);
    // Once each trigger has handled its misfire, let it fire a few more seconds.
    for (const tag of ['once', 'skip']) {
      const m = await waitFor(async () => (await fireLog(db, tag)).find((f) => f.outcome !== 'fired' && f.fireTime > downAt), 60_000, `${tag} misfire`);
      await untilFired(db, 'count', m.fireTime + 3000, tag);
    }
    await admin.pause('once');
    await admin.pause('skip');
    const pausedAt = await dbNow(db);

    for (const tag of ['once', 'skip'] as const) {
      const runs = await runsOf(db, 'count', tag);
      const fires = byFireTime(runs);
      for (const [t, f] of fires) expect(f.instances.size, `${tag} ${iso(t)}`).toBe(1);
      const log = await fireLog(db, tag);
      const misfires = log.filter((f) => f.outcome !== 'fired');
      // One run of missed fire times, starting right after the last one fired before the outage.
      expect(misfires, `${tag}: ${JSON.stringify(misfires)}`).toHaveLength(1);
      const m = misfires[0];
      const lastBefore = Math.max(...log.filter((f) => f.fireTime <= downAt).map((f) => f.fireTime));
      expect(m.missedFrom).toBe(lastBefore + 1000);
      expect(m.missedFrom!).toBeLessThanOrEqual(downAt + 1000);
      // The latest missed time is the one just before the cluster came back.
      expect(m.fireTime).toBeGreaterThanOrEqual(sec(upAt));
      expect(m.fireTime).toBeLessThanOrEqual(m.firedAt);
      // The latest time missed when the firing transaction looked; it records firedAt a moment later.
      expect(m.firedAt - m.fireTime).toBeLessThan(1000 + 250);
      const inGap = runs.filter((r) => r.fireTime >= m.missedFrom! && r.fireTime <= m.fireTime).map((r) => r.fireTime);
      if (tag === 'once') {
        expect(m.outcome).toBe('misfired');
        expect(inGap).toEqual([m.fireTime]); // fired once, with the latest missed time
      } else {
        expect(m.outcome).toBe('skipped');
        expect(inGap).toEqual([]);
      }
      // Before and after the outage every second fired, on time.
      const after = [...fires.keys()].filter((t) => t > m.fireTime && t <= sec(pausedAt) - 1000).sort((x, y) => x - y);
      expect(after.length).toBeGreaterThanOrEqual(2);
      expect(after).toEqual(after.map((_, i) => m.fireTime + (i + 1) * 1000));
      expect(log.filter((f) => f.fireTime > m.fireTime).every((f) => f.outcome === 'fired')).toBe(true);
    }
  }, SOAK ? 300_000 : 90_000);
});
