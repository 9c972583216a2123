/**
 * One-shot triggers (`at`) and the bounds of cron and interval triggers (`startAt`, `endAt`),
 * fired by the scheduler loop in process on both backends: a one-shot fires once and then has no
 * next fire time, also across a restart of the loop; one already past when added is a misfire
 * handled by its policy (as Quartz does); a bounded trigger fires only within its bounds, then has
 * no next fire time; a declared trigger picks up changed bounds.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.ts';
import { startScheduler, type FireEvent } from '../../src/scheduler/scheduler.ts';
import type { ScheduleSpec } from '../../src/scheduler/triggers.ts';
import { count, noop } from '../../examples/nightshift.config.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { SCHEMA_VERSION, versionOf } from '../../src/repository/schema.ts';
import { triggerTimesSchema } from '../../src/repository/migrations/019-trigger-times.ts';
import { backends } from '../support/backends.ts';
import { undoTriggerTimes } from '../support/schema-undo.ts';
import { dbNow, suiteRepos, fireLog, runsOf, untilDbTime, waitFor, type Repo } from './helpers.ts';

describe.each(backends())('one-shot triggers and bounds ($name)', (backend) => {
  const open = suiteRepos(backend);
  const loop = (r: Repo, events: FireEvent[], schedules: ScheduleSpec[] = []) =>
    startScheduler({ db: r.db, jobs: [noop, count], schedules, logger: silentLogger, pollMs: 100, onFire: (e) => events.push(e) });

  it('a repository of version 18 upgrades; its triggers read with no times, and version 18 code still inserts and reads rows', async () => {
    const r = await open('upgrade19');
    await r.admin.add({ name: 'old', job: 'noop', everyMs: 60_000 });
    for (const statement of undoTriggerTimes(r.db.dialect)) await r.db.exec(statement);
    await r.db.execute(`UPDATE ns_meta SET value = $1 WHERE key = 'schema_version'`, [String(versionOf(triggerTimesSchema) - 1)]);
    const db = await openDatabase(r.url);
    try {
      expect(await db.query(`SELECT value FROM ns_meta WHERE key = 'schema_version'`)).toEqual([{ value: String(SCHEMA_VERSION) }]);
      // Version 18's insert (src/scheduler/sql.ts before version 19) names none of the new columns.
      await db.execute(`INSERT INTO ns_trigger (name, job_name, cron_expr, time_zone, every_ms, params, misfire, misfire_threshold_ms,
          no_concurrent, paused, next_fire_time, source, create_time, update_time)
        VALUES ('older', 'noop', NULL, NULL, 1000, '{}', 'skip', 5000, 0, 0, NULL, 'runtime', ns_now(), ns_now())`);
      const older = await db.query<{ name: string; every_ms: number | string }>(`SELECT name, every_ms FROM ns_trigger ORDER BY name`);
      expect(older.map((x) => [x.name, Number(x.every_ms)])).toEqual([['old', 60_000], ['older', 1000]]);
    } finally {
      await db.close();
    }
    expect((await r.admin.list()).map((s) => [s.name, s.at, s.startAt, s.endAt])).toEqual([['old', null, null, null], ['older', null, null, null]]);
  });

  it('fires a one-shot once, then has no next fire time, and never again after a restart', async () => {
    const r = await open('oneshot');
    const at = (await dbNow(r.db)) + 400;
    const added = await r.admin.add({ name: 'once', job: 'noop', at: new Date(at) });
    expect(added.schedule).toMatchObject({ at: new Date(at), startAt: null, endAt: null, nextFireTime: new Date(at) });
    const events: FireEvent[] = [];
    let scheduler = await loop(r, events);
    try {
      await waitFor(() => events.length >= 1, 15_000, 'the one-shot fired');
      expect(events).toMatchObject([{ trigger: 'once', outcome: 'fired', fireTime: new Date(at) }]);
      expect(await r.admin.get('once')).toMatchObject({ nextFireTime: null, lastFireTime: new Date(at), at: new Date(at) });
      await scheduler.stop();
      scheduler = await loop(r, events);
      await untilDbTime(r.db, (await dbNow(r.db)) + 1000);
    } finally {
      await scheduler.stop();
    }
    expect(events).toHaveLength(1);
    expect((await runsOf(r.db, 'noop')).map((x) => x.fireTime)).toEqual([at]);
    expect((await fireLog(r.db, 'once')).map((f) => [f.fireTime, f.outcome])).toEqual([[at, 'fired']]);
    // It stays listed, with its history, until removed.
    expect((await r.admin.list()).map((s) => s.name)).toEqual(['once']);
  }, 60_000);

  it('a one-shot already past when added is a misfire: fire-once fires it at once, skip records it skipped', async () => {
    const r = await open('oneshotpast');
    const at = (await dbNow(r.db)) - 60_000;
    await r.admin.add({ name: 'late-fire', job: 'noop', at: new Date(at).toISOString() });
    await r.admin.add({ name: 'late-skip', job: 'count', at: new Date(at), misfire: 'skip', params: { items: 1 } });
    const events: FireEvent[] = [];
    const scheduler = await loop(r, events);
    try {
      await waitFor(() => events.length >= 2, 15_000, 'both past one-shots handled');
    } finally {
      await scheduler.stop();
    }
    expect(events.map((e) => [e.trigger, e.outcome, e.fireTime.getTime()]).sort()).toEqual([['late-fire', 'misfired', at], ['late-skip', 'skipped', at]]);
    expect((await runsOf(r.db, 'noop')).map((x) => x.fireTime)).toEqual([at]);
    expect(await runsOf(r.db, 'count')).toEqual([]);
    for (const s of await r.admin.list()) expect(s.nextFireTime, s.name).toBeNull();
  }, 60_000);

  it('a bounded interval trigger fires only from startAt until endAt, then has no next fire time', async () => {
    const r = await open('bounded');
    const now = await dbNow(r.db);
    const startAt = Math.ceil((now + 600) / 200) * 200 + 50;
    const endAt = startAt + 650;
    const added = await r.admin.add({ name: 'window', job: 'noop', everyMs: 200, startAt: new Date(startAt), endAt: new Date(endAt) });
    expect(added.schedule).toMatchObject({ startAt: new Date(startAt), endAt: new Date(endAt), nextFireTime: new Date(startAt + 150) });
    const events: FireEvent[] = [];
    const scheduler = await loop(r, events);
    try {
      await waitFor(async () => (await r.admin.get('window'))?.nextFireTime === null, 15_000, 'the trigger past its endAt');
      await untilDbTime(r.db, endAt + 500);
    } finally {
      await scheduler.stop();
    }
    const expected = [startAt + 150, startAt + 350, startAt + 550];
    expect((await fireLog(r.db, 'window')).map((f) => f.fireTime)).toEqual(expected);
    expect((await runsOf(r.db, 'noop')).map((x) => x.fireTime)).toEqual(expected);
  }, 60_000);

  it('a declared trigger picks up changed bounds, and a restart does not fire a declared one-shot again', async () => {
    const r = await open('declared');
    const now = await dbNow(r.db);
    const far = new Date(now + 3600_000);
    const events: FireEvent[] = [];
    let scheduler = await loop(r, events, [{ name: 'bounded', job: 'noop', everyMs: 1000, startAt: far }]);
    await scheduler.stop();
    // Bounds do not move an interval's phase: it still fires at multiples of it since the epoch.
    expect(await r.admin.get('bounded')).toMatchObject({ source: 'config', startAt: far, endAt: null, nextFireTime: new Date(Math.ceil(far.getTime() / 1000) * 1000) });
    const at = (await dbNow(r.db)) + 300;
    const declared: ScheduleSpec[] = [
      { name: 'bounded', job: 'noop', everyMs: 1000, startAt: new Date(now - 1000), endAt: new Date(now + 1000) },
      { name: 'once', job: 'count', at: new Date(at), params: { items: 1 } },
    ];
    scheduler = await loop(r, events, declared);
    try {
      expect(await r.admin.get('bounded')).toMatchObject({ startAt: new Date(now - 1000), endAt: new Date(now + 1000) });
      await waitFor(() => events.some((e) => e.trigger === 'once'), 15_000, 'the declared one-shot fired');
      await scheduler.stop();
      scheduler = await loop(r, events, declared);
      await untilDbTime(r.db, (await dbNow(r.db)) + 1000);
    } finally {
      await scheduler.stop();
    }
    expect(events.filter((e) => e.trigger === 'once').map((e) => e.outcome)).toEqual(['fired']);
    expect(await r.admin.get('once')).toMatchObject({ nextFireTime: null, lastFireTime: new Date(at) });
    expect(events.filter((e) => e.trigger === 'bounded').every((e) => e.fireTime.getTime() <= now + 1000)).toBe(true);
    expect((await r.admin.get('bounded'))!.nextFireTime).toBeNull();
  }, 60_000);
});
