/**
 * `nightshift schedule ...` (SPEC section 7) on both backends: add/list/pause/resume/remove, the
 * JSON shape of `schedule list --json`, and every bad input (exit 2, one stderr line naming the
 * problem). Then a node on SQLite firing a trigger, and schedules declared in a config.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { backends } from '../support/backends.ts';
import { cliFor, EXAMPLES, expectOneLineError, ISO_MS, query, runCli } from '../cli/run-cli.ts';
import { formatDuration, parseDuration } from '../../src/core/duration.ts';
import { openDatabase } from '../../src/repository/open.ts';
import { byFireTime, dbNow, killAll, runsOf, startNode, untilFired, waitAlive } from './helpers.ts';

const all = backends();
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  for (const b of all) await b.cleanup();
});

interface ScheduleJson {
  name: string;
  job: string;
  cron: string | null;
  tz: string | null;
  everyMs: number | null;
  at: string | null;
  startAt: string | null;
  endAt: string | null;
  params: Record<string, unknown>;
  misfire: string;
  misfireThresholdMs: number;
  noConcurrent: boolean;
  paused: boolean;
  nextFireTime: string | null;
  lastFireTime: string | null;
  lastExecutionId: number | null;
  source: string;
}

describe.each(all)('schedule commands ($name)', (backend) => {
  it('adds, lists, pauses, resumes, replaces and removes triggers', async () => {
    const url = backend.freshUrl('schedcli');
    const cli = cliFor(url);
    const added = await cli.run(['schedule', 'add', 'nightly', '--job', 'count', '--cron', '0 30 2 * * ?', '--tz', 'Europe/Paris', 'items=50', 'tag=n']);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/^schedule nightly added: job count, cron 0 30 2 \* \* \? \(Europe\/Paris\); next fire time \d{4}-.*Z\n$/);
    const every = await cli.json<ScheduleJson>(['schedule', 'add', 'tick', '--job', 'noop', '--every', '1m', '--misfire', 'skip', '--misfire-threshold', '2000', '--no-concurrent']);
    expect(every).toMatchObject({ name: 'tick', everyMs: 60000, cron: null, tz: null, misfire: 'skip', misfireThresholdMs: 2000, noConcurrent: true });

    const list = await cli.json<ScheduleJson[]>(['schedule', 'list']);
    expect(list.map((s) => s.name)).toEqual(['nightly', 'tick']);
    const [nightly, tick] = list;
    expect(Object.keys(nightly).sort()).toEqual([
      'at', 'cron', 'endAt', 'everyMs', 'job', 'lastExecutionId', 'lastFireTime', 'misfire', 'misfireThresholdMs', 'name', 'nextFireTime', 'noConcurrent',
      'params', 'paused', 'source', 'startAt', 'tz',
    ]);
    expect(nightly).toMatchObject({
      job: 'count', cron: '0 30 2 * * ?', tz: 'Europe/Paris', everyMs: null, at: null, startAt: null, endAt: null, params: { items: 50, tag: 'n' }, misfire: 'fire-once',
      misfireThresholdMs: 5000, noConcurrent: false, paused: false, lastFireTime: null, lastExecutionId: null, source: 'runtime',
    });
    expect(nightly.nextFireTime).toMatch(ISO_MS);
    // 02:30 in Paris is 00:30 or 01:30 UTC, depending on the season.
    expect(nightly.nextFireTime).toMatch(/T0[01]:30:00\.000Z$/);
    expect(Date.parse(tick.nextFireTime!) % 60000).toBe(0);

    const text = await cli.run(['schedule', 'list']);
    expect(text.stdout).toMatch(/nightly\s+count\s+cron 0 30 2 \* \* \? \(Europe\/Paris\)\s+items=50 tag=n/);
    // An interval shows as --every takes it (the JSON above keeps the milliseconds).
    expect(text.stdout).toMatch(/tick\s+noop\s+every 1m\s/);

    expect((await cli.run(['schedule', 'pause', 'tick'])).stdout).toBe('schedule tick paused\n');
    expect((await cli.json<ScheduleJson[]>(['schedule', 'list'])).find((s) => s.name === 'tick')!.paused).toBe(true);
    const resumed = await cli.run(['schedule', 'resume', 'tick']);
    expect(resumed.stdout).toMatch(/^schedule tick resumed; next fire time \d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z\n$/);

    // add replaces: same timing keeps the pending fire time; a paused trigger stays paused, and
    // shows no next fire time while paused.
    const kept = await cli.json<ScheduleJson>(['schedule', 'add', 'nightly', '--job', 'count', '--cron', '0 30 2 * * ?', '--tz', 'Europe/Paris', 'items=55']);
    expect(kept).toMatchObject({ paused: false, params: { items: 55 }, nextFireTime: nightly.nextFireTime });
    expect(await cli.json<ScheduleJson>(['schedule', 'pause', 'nightly'])).toMatchObject({ name: 'nightly', paused: true, nextFireTime: null });
    const replaced = await cli.json<ScheduleJson>(['schedule', 'add', 'nightly', '--job', 'count', '--cron', '0 30 2 * * ?', '--tz', 'Europe/Paris', 'items=60']);
    expect(replaced).toMatchObject({ paused: true, params: { items: 60 }, nextFireTime: null });
    expect((await cli.run(['schedule', 'list'])).stdout).toMatch(/nightly\s+count\s+.*paused\s+-\s/);

    // Fire now, paused or not: an execution queued with fireTime = now, which the fire log shows as manual.
    const fired = await cli.run(['schedule', 'trigger', 'nightly']);
    expect(fired.code, fired.stderr).toBe(0);
    const firedId = Number(fired.stdout.trim());
    const queued = await cli.json<{ id: number; jobName: string; status: string; parameters: Record<string, unknown> }>(['execution', String(firedId)]);
    expect(queued).toMatchObject({ id: firedId, jobName: 'count', status: 'STARTING', parameters: { items: 60, fireTime: expect.stringMatching(ISO_MS) } });
    const again = await cli.json<{ id: number; parameters: Record<string, unknown> }>(['schedule', 'trigger', 'nightly']);
    expect(again.id).toBeGreaterThan(firedId);
    const history = await cli.json<{ trigger: string; fireTime: string; outcome: string; executionId: number; detail: string }[]>(['schedule', 'history', 'nightly']);
    expect(history.map((f) => [f.outcome, f.executionId])).toEqual([['manual', again.id], ['manual', firedId]]);
    expect(history[1]).toMatchObject({ trigger: 'nightly', fireTime: queued.parameters.fireTime, detail: expect.stringMatching(/^fired now by .+ \(CLI\)$|^fired now by the CLI$/) });
    expect((await cli.run(['schedule', 'history', 'nightly', '--limit', '1'])).stdout).toMatch(new RegExp(`^fire time\\s+fired at\\s+outcome\\s+execution\\s+fired by node\\s+detail\\n\\S+Z\\s+\\S+Z\\s+manual\\s+${again.id}\\s+-\\s+fired now by .+\\n$`));
    expect((await cli.json<ScheduleJson[]>(['schedule', 'list'])).find((s) => s.name === 'nightly')).toMatchObject({ paused: true, nextFireTime: null });
    for (const args of [['schedule', 'trigger', 'nosuch'], ['schedule', 'history', 'nosuch']]) expectOneLineError(await cli.run(args), /^nightshift: no schedule named nosuch$/);
    expectOneLineError(await cli.run(['schedule', 'history', 'nightly', '--limit', '0']), /^nightshift: --limit must be a whole number from 1 to 1000, got "0"$/);
    // Paging back: --before the oldest fire time shown gives the firings before it.
    const older = await cli.json<{ executionId: number }[]>(['schedule', 'history', 'nightly', '--limit', '1', '--before', history[0].fireTime]);
    expect(older.map((f) => f.executionId)).toEqual([firedId]);
    expect(await cli.json(['schedule', 'history', 'nightly', '--before', history[1].fireTime])).toEqual([]);
    expectOneLineError(await cli.run(['schedule', 'history', 'nightly', '--before', 'yesterday']), /^nightshift: --before must be /);

    expect((await cli.run(['schedule', 'remove', 'nightly'])).stdout).toBe('schedule nightly removed\n');
    expect(await cli.json(['schedule', 'remove', 'tick'])).toEqual({ name: 'tick', removed: true });
    expect((await cli.run(['schedule', 'add', 'tick', '--job', 'noop', '--every', '5400000'])).stdout).toMatch(/^schedule tick added: job noop, every 90m; next fire time /);
    expect((await cli.json<ScheduleJson[]>(['schedule', 'list'])).map((s) => [s.name, s.everyMs])).toEqual([['tick', 5400000]]);
    expect((await cli.run(['schedule', 'list'], { env: {} })).code).toBe(0);
  }, 120_000);

  it('fires a no-concurrent trigger now only while its previous firing does not run', async () => {
    // As Quartz's triggerJob on a @DisallowConcurrentExecution job: a fire now would otherwise
    // run beside the firing it must not overlap. No node runs here, so a firing stays queued.
    const url = backend.freshUrl('schedncnow');
    const cli = cliFor(url);
    await cli.json(['schedule', 'add', 'solo', '--job', 'noop', '--every', '1h', '--no-concurrent']);
    const first = await cli.json<{ id: number; status: string }>(['schedule', 'trigger', 'solo']);
    expect(first.status).toBe('STARTING');
    expectOneLineError(await cli.run(['schedule', 'trigger', 'solo']),
      new RegExp(`^nightshift: schedule solo is no-concurrent and its previous firing still runs \\(execution ${first.id}, STARTING\\): fire it again once that ends$`));
    expect((await cli.json<{ outcome: string }[]>(['schedule', 'history', 'solo'])).map((f) => f.outcome)).toEqual(['manual']);
    // Once it ended (here: stopped before a node took it), the trigger fires now again.
    expect((await cli.run(['stop', String(first.id)])).code).toBe(0);
    const second = await cli.json<{ id: number }>(['schedule', 'trigger', 'solo']);
    expect(second.id).toBeGreaterThan(first.id);
    // A trigger that allows overlapping firings fires now whatever runs.
    await cli.json(['schedule', 'add', 'many', '--job', 'noop', '--every', '1h']);
    await cli.json(['schedule', 'trigger', 'many']);
    expect((await cli.run(['schedule', 'trigger', 'many'])).code).toBe(0);
  }, 60_000);

  it('rejects bad input with exit 2 and one line naming the problem', async () => {
    const url = backend.freshUrl('schedbad');
    const cli = cliFor(url);
    // An existing, empty repository: pause, resume and remove refuse an SQLite file that does not exist.
    await query(url, 'SELECT 1 AS one');
    // Each case is a process; a few at a time, to leave the machine to the suites running alongside.
    const add = (...args: string[]) => ['schedule', 'add', 'x', ...args];
    const cases: [string[], RegExp][] = [
      [add('--job', 'nope', '--every', '1000'), /unknown job nope \(known: noop, count/],
      [add('--job', 'noop', '--cron', '0 61 * * * ?'), /invalid cron expression "0 61 \* \* \* \?": minute: /],
      [add('--job', 'noop', '--cron', '* * * * *'), /invalid cron expression "\* \* \* \* \*".*Unix cron: a Quartz cron starts with a seconds field: try "0 \* \* \* \* \?"$/],
      [add('--job', 'noop', '--cron', '0 0 12 ? * MON-FRIX'), /day-of-week/],
      [add('--job', 'noop', '--cron', '0 0 * * * ?', '--tz', 'Mars/Olympus'), /unknown time zone "Mars\/Olympus"/],
      [add('--job', 'count', '--every', '1000', 'items=many'), /parameter items must be an integer, got "many"/],
      [add('--job', 'count', '--every', '1000', 'bogus=1'), /unknown parameter bogus/],
      [add('--job', 'count', '--every', '1000', 'items'), /"items" is not of the form key=value/],
      [add('--job', 'noop', '--every', '1000', 'fireTime=2024-01-01'), /fireTime is set by the scheduler/],
      [add('--job', 'noop', '--every', 'soon'), /--every must be a whole number of milliseconds or a duration such as 30s, 5m or 1h, of at least 100 ms, got "soon"/],
      [add('--job', 'noop', '--every', '10'), /--every must be a whole number of milliseconds or a duration such as 30s, 5m or 1h, of at least 100 ms, got "10"/],
      [add('--job', 'noop', '--every', '0.05s'), /--every must be .* of at least 100 ms, got "0\.05s"/],
      [add('--job', 'noop', '--every', '1000', '--cron', '* * * * * ?'), /^nightshift: schedule add: give one of --cron EXPR, --every INTERVAL and --at TIME, not --cron and --every$/],
      [add('--job', 'noop'), /^nightshift: schedule add: give one of --cron EXPR, --every INTERVAL and --at TIME, not none$/],
      [add('--job', 'noop', '--every', '1000', '--at', '2099-01-01T00:00:00Z'), /not --every and --at$/],
      [add('--job', 'noop', '--at', '2099-01-01T00:00:00Z', '--start-at', '2099-01-01T00:00:00Z'), /^nightshift: schedule add: --start-at bound --cron and --every, not --at \(a one-shot fires once\)$/],
      [add('--job', 'noop', '--at', '2099-01-01T00:00:00Z', '--tz', 'Europe/Paris'), /--tz applies to --cron only/],
      [add('--job', 'noop', '--at', '2099-01-01 10:00'), /^nightshift: --at must name its offset \(Z or \+HH:MM\), got "2099-01-01 10:00": a local time is ambiguous across machines and zones$/],
      [add('--job', 'noop', '--at', 'noon'), /^nightshift: --at must be an ISO-8601 date-time with an offset or Z, such as .*, got "noon"$/],
      [add('--job', 'noop', '--every', '1s', '--end-at', '2099-02-30T00:00:00Z'), /^nightshift: --end-at must be .*\(there is no such day\)$/],
      [add('--job', 'noop', '--every', '1s', '--start-at', '2099-01-02T00:00:00Z', '--end-at', '2099-01-01T00:00:00+01:00'),
        /^nightshift: schedule x: endAt 2098-12-31T23:00:00\.000Z must be after startAt 2099-01-02T00:00:00\.000Z$/],
      [add('--job', 'noop', '--cron', '* * * * * ?', '--end-at', '2020-01-01T00:00:00Z'), /^nightshift: schedule x: endAt 2020-01-01T00:00:00\.000Z leaves no fire time after now$/],
      [add('--job', 'noop', '--every', '1000', '--tz', 'UTC'), /--tz applies to --cron only/],
      [add('--job', 'noop', '--every', '1000', '--misfire', 'later'), /--misfire.*later.*fire-once, skip/],
      [add('--job', 'noop', '--every', '1000', '--misfire-threshold', '-5'), /--misfire-threshold must be a whole number/],
      [add('--every', '1000'), /required option '--job <job>'/],
      [['schedule', 'add', 'bad name', '--job', 'noop', '--every', '1000'], /schedule name "bad name" is not valid/],
      [['schedule', 'pause', 'ghost'], /no schedule named ghost/],
      [['schedule', 'resume', 'ghost'], /no schedule named ghost/],
      [['schedule', 'remove', 'ghost'], /no schedule named ghost/],
      [['schedule', 'frobnicate'], /unknown command 'frobnicate'/],
    ];
    const queue = [...cases];
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let c = queue.shift(); c; c = queue.shift()) expectOneLineError(await cli.run(c[0]), c[1]);
    }));
    // Nothing was added by any of them.
    expect(await cli.json(['schedule', 'list'])).toEqual([]);
  }, 90_000);
});

describe.each(all)('one-shot and bounded triggers in the CLI ($name)', (backend) => {
  it('adds them with --at, --start-at and --end-at, and lists them as once at / from ... until ...', async () => {
    const cli = cliFor(backend.freshUrl('schedat'));
    const once = await cli.run(['schedule', 'add', 'launch', '--job', 'noop', '--at', '2099-01-15T11:00:00+01:00']);
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout).toBe('schedule launch added: job noop, once at 2099-01-15T10:00:00.000Z; next fire time 2099-01-15T10:00:00.000Z\n');
    const window = await cli.json<ScheduleJson>(['schedule', 'add', 'window', '--job', 'noop', '--every', '1h', '--start-at', '2099-01-01T00:00:00Z', '--end-at', '2099-01-02T00:00:00Z']);
    expect(window).toMatchObject({ everyMs: 3600_000, at: null, startAt: '2099-01-01T00:00:00.000Z', endAt: '2099-01-02T00:00:00.000Z', nextFireTime: '2099-01-01T00:00:00.000Z' });
    const list = await cli.json<ScheduleJson[]>(['schedule', 'list']);
    expect(list.map((s) => [s.name, s.at, s.startAt, s.endAt, s.nextFireTime])).toEqual([
      ['launch', '2099-01-15T10:00:00.000Z', null, null, '2099-01-15T10:00:00.000Z'],
      ['window', null, '2099-01-01T00:00:00.000Z', '2099-01-02T00:00:00.000Z', '2099-01-01T00:00:00.000Z'],
    ]);
    const text = (await cli.run(['schedule', 'list'])).stdout;
    expect(text).toMatch(/launch\s+noop\s+once at 2099-01-15T10:00:00\.000Z\s/);
    expect(text).toMatch(/window\s+noop\s+every 1h from 2099-01-01T00:00:00\.000Z until 2099-01-02T00:00:00\.000Z\s/);
    // Replacing with other bounds re-times it; the same bounds keep its pending fire time.
    const moved = await cli.json<ScheduleJson>(['schedule', 'add', 'window', '--job', 'noop', '--every', '1h', '--start-at', '2099-01-01T05:30:00Z']);
    expect(moved).toMatchObject({ startAt: '2099-01-01T05:30:00.000Z', endAt: null, nextFireTime: '2099-01-01T06:00:00.000Z' });
  }, 60_000);
});

describe('an interval as schedule list and add print it', () => {
  it('is in the largest whole unit, and --every reads it back to the same milliseconds', () => {
    expect([100, 1000, 1500, 90_000, 300_000, 5_400_000, 36 * 3_600_000, 86_400_000, 604_800_000].map(formatDuration))
      .toEqual(['100ms', '1s', '1500ms', '90s', '5m', '90m', '36h', '1d', '1w']);
    for (const n of [1, 2, 7, 59, 60, 61, 999, 1000, 1001, 1500, 86_399]) {
      for (const unit of [1, 1000, 60_000, 3_600_000, 86_400_000]) expect(parseDuration('--every', formatDuration(n * unit))).toBe(n * unit);
    }
  });
});

describe('a node on SQLite', () => {
  it('fires declared and added triggers', async () => {
    const sqlite = all.find((b) => b.name === 'sqlite')!;
    const url = sqlite.freshUrl('schedsqlite');
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-sched-'));
    const config = join(dir, 'nightshift.config.ts');
    writeFileSync(config, `export { default } from ${JSON.stringify(EXAMPLES)};
export const schedules = [{ name: 'declared', job: 'count', everyMs: 1000, params: { items: 1, tag: 'declared' } }];
`);
    const db = await openDatabase(url);
    try {
      const t0 = await dbNow(db);
      startNode(url, 'solo', { config });
      await waitAlive(db, ['solo'], t0);
      const cli = cliFor(url, config);
      const added = await cli.run(['schedule', 'add', 'added', '--job', 'noop', '--cron', '* * * * * ?']);
      expect(added.code, added.stderr).toBe(0);
      const since = await dbNow(db);
      await untilFired(db, 'noop', since + 3000);
      await untilFired(db, 'count', since + 3000, 'declared');
      const list = await cli.json<ScheduleJson[]>(['schedule', 'list']);
      expect(list.map((s) => [s.name, s.source])).toEqual([['added', 'runtime'], ['declared', 'config']]);
      for (const runs of [await runsOf(db, 'noop'), await runsOf(db, 'count', 'declared')]) {
        const times = [...byFireTime(runs).keys()].sort((x, y) => x - y);
        expect(times.length).toBeGreaterThanOrEqual(3);
        expect(times).toEqual(times.map((_, i) => times[0] + i * 1000));
        for (const r of runs) expect(r.createTime - r.fireTime).toBeGreaterThanOrEqual(0);
      }
      // Removing a declared trigger says that the config would bring it back; a runtime one says nothing more.
      const removed = await cli.run(['schedule', 'remove', 'declared']);
      expect(removed.code, removed.stderr).toBe(0);
      expect(removed.stdout.trim()).toBe('schedule declared removed');
      expect(removed.stderr).toMatch(/^nightshift: schedule declared came from a config's schedules: a node that starts or resumes with that config adds it again/);
      const removedAdded = await cli.run(['schedule', 'remove', 'added']);
      expect([removedAdded.code, removedAdded.stderr]).toEqual([0, '']);
    } finally {
      await db.close();
    }
  }, 60_000);

  it('refuses to start with an invalid declared schedule', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-sched-'));
    const config = join(dir, 'nightshift.config.ts');
    writeFileSync(config, `export { default } from ${JSON.stringify(EXAMPLES)};
export const schedules = [{ name: 'broken', job: 'noop', cron: '0 0 25 * * ?' }];
`);
    const r = await runCli(['node', '--name', 'x', '--db', all[0].freshUrl('schedbadcfg'), '--config', config]);
    expectOneLineError(r, /config .*nightshift\.config\.ts: schedule broken: invalid cron expression "0 0 25 \* \* \?": hour: /);
  }, 30_000);
});
